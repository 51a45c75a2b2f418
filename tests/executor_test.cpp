// kernels::thread_pool when the system refuses a thread: a clear error, and
// no hang or abort from the threads already started.
#include <doctest/doctest.h>

#include <atomic>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <string>

#include <pthread.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qtensor/kernels/executor.hpp"

namespace {

// The address space this process maps now, in bytes.
unsigned long long mapped_bytes() {
    std::ifstream statm("/proc/self/statm");
    unsigned long long pages = 0;
    statm >> pages;
    return pages * static_cast<unsigned long long>(::sysconf(_SC_PAGESIZE));
}

} // namespace

TEST_CASE("thread_pool: the system refusing a thread is a qtensor::error, not a hang") {
    // In a child process, so the limits below touch nothing else. Threads get
    // 4 GiB stacks and the address space may grow by 10 GiB: at most two
    // workers start, the third cannot map its stack.
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::alarm(20); // a hang ends in SIGALRM, which the parent reports
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, std::size_t{4} << 30);
        pthread_setattr_default_np(&attr);
        const rlimit limit{mapped_bytes() + (10ull << 30), RLIM_INFINITY};
        ::setrlimit(RLIMIT_AS, &limit);
        int status = 3;
        try {
            qtensor::kernels::thread_pool pool(8);
        } catch (const qtensor::error& e) {
            const std::string m = e.what();
            // How many start depends on the machine's overcommit policy; not all 8.
            status = m.find("cannot start 8 threads (") != std::string::npos &&
                             m.find(" running when the system refused another") != std::string::npos
                         ? 0
                         : 1;
            if (status != 0) std::fprintf(stderr, "message: %s\n", m.c_str());
        } catch (const std::exception& e) {
            std::fprintf(stderr, "not a qtensor::error: %s\n", e.what());
            status = 2;
        }
        std::_Exit(status);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    INFO("child status " << status);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("thread_pool: one that starts runs every task") {
    qtensor::kernels::thread_pool pool(3);
    std::atomic<int> sum{0};
    pool.run(100, [&](std::size_t i) { sum += static_cast<int>(i); });
    CHECK(sum == 4950);
}
