// The qtensor tool run as a process, for what a CMake script cannot set up:
// outputs that are FIFOs, links or sockets, signals in the middle of a write,
// and files whose names hold terminal control sequences.
#include <doctest/doctest.h>

#include "test_util.hpp"

#include <chrono>
#include <csignal>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qtensor/io/gguf.hpp"

extern char** environ;

using namespace qtensor;
using qtensor_test::scratch_dir;
namespace fs = std::filesystem;

namespace {

const std::string tiny_e2b = std::string(QTENSOR_TEST_DATA_DIR) + "/gemma4/tiny-e2b";

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Starts `qtensor args...` with stdout and stderr going to files in `dir`.
pid_t start(const scratch_dir& dir, const std::vector<std::string>& args) {
    std::vector<std::string> all{QTENSOR_CLI_PATH};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t files;
    posix_spawn_file_actions_init(&files);
    posix_spawn_file_actions_addopen(&files, 1, (dir / "stdout.txt").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&files, 2, (dir / "stderr.txt").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid = -1;
    const int rc = posix_spawn(&pid, argv[0], &files, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&files);
    REQUIRE(rc == 0);
    return pid;
}

int wait_for(pid_t pid) {
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    return status;
}

// Runs qtensor to the end; its exit status (a crash fails the test).
int run(const scratch_dir& dir, const std::vector<std::string>& args) {
    const int status = wait_for(start(dir, args));
    INFO("stderr: " << qtensor_test::read_file(dir / "stderr.txt"));
    REQUIRE(WIFEXITED(status));
    return WEXITSTATUS(status);
}

// The names in `dir` that contain ".tmp-": temporary outputs left behind.
std::vector<std::string> temp_files(const fs::path& dir) {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir))
        if (contains(e.path().filename().string(), ".tmp-")) out.push_back(e.path().string());
    return out;
}

// Waits until `dir` holds a temporary output: the tool is writing.
void wait_for_temp_file(const fs::path& dir) {
    for (int i = 0; i < 1000 && temp_files(dir).empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    REQUIRE(!temp_files(dir).empty());
}

// `qtensor quantize` reading rows from a FIFO, caught in the middle of its
// write: one row sent, the temporary output there, the FIFO still open.
struct quantize_on_fifo {
    pid_t pid = -1;
    int writer = -1;
    explicit quantize_on_fifo(const scratch_dir& tmp) {
        const std::string in = tmp / "in.fifo";
        REQUIRE(::mkfifo(in.c_str(), 0600) == 0);
        pid = start(tmp, {"quantize", "-t", "q4_0", "-c", "32", in, tmp / "out.q4_0"});
        writer = ::open(in.c_str(), O_WRONLY); // blocks until the tool opens it
        REQUIRE(writer >= 0);
        const std::vector<float> row(32, 1.0f);
        REQUIRE(::write(writer, row.data(), sizeof(float) * row.size()) == 128);
        wait_for_temp_file(tmp.path);
    }
    int wait() const {
        const int status = wait_for(pid);
        ::close(writer);
        return status;
    }
};

} // namespace

TEST_CASE("convert to a FIFO writes into it; to a link, replaces the file it leads to; to a socket, refuses") {
    const scratch_dir tmp;
    const std::string fifo = tmp / "out.fifo";
    qtensor_test::fifo_reader reader(fifo);
    CHECK(run(tmp, {"convert", tiny_e2b, fifo}) == 0);
    const std::string received = reader.take();
    CHECK(fs::is_fifo(fifo));
    CHECK(received.size() > 4000000);
    CHECK(received.starts_with("GGUF"));

    fs::create_symlink("real.gguf", tmp / "link.gguf");
    CHECK(run(tmp, {"convert", tiny_e2b, tmp / "link.gguf"}) == 0);
    CHECK(fs::is_symlink(tmp / "link.gguf"));
    CHECK(qtensor_test::read_file(tmp / "real.gguf") == received);

    const std::string socket_path = tmp / "out.sock";
    const qtensor_test::bound_socket listener(socket_path);
    CHECK(run(tmp, {"convert", tiny_e2b, socket_path}) == 1);
    CHECK(contains(qtensor_test::read_file(tmp / "stderr.txt"), "out.sock: is a socket"));
    CHECK(fs::is_socket(socket_path));
    CHECK(temp_files(tmp.path).empty());
}

TEST_CASE("SIGTERM or SIGINT in the middle of a write removes the temporary output") {
    const scratch_dir tmp;
    SUBCASE("quantize, reading rows from a FIFO") {
        const quantize_on_fifo q(tmp);
        ::kill(q.pid, SIGTERM);
        const int status = q.wait();
        CHECK(WIFSIGNALED(status));
        CHECK(WTERMSIG(status) == SIGTERM);
        CHECK(temp_files(tmp.path).empty());
        CHECK(!fs::exists(tmp / "out.q4_0"));
    }
    SUBCASE("a signal ignored when the tool started stays ignored (nohup)") {
        const auto previous = std::signal(SIGHUP, SIG_IGN); // inherited through exec
        const quantize_on_fifo q(tmp);
        std::signal(SIGHUP, previous);
        ::kill(q.pid, SIGHUP);
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        CHECK(::waitpid(q.pid, nullptr, WNOHANG) == 0); // still running
        ::kill(q.pid, SIGINT);
        const int status = q.wait();
        CHECK(WIFSIGNALED(status));
        CHECK(WTERMSIG(status) == SIGINT);
        CHECK(temp_files(tmp.path).empty());
    }
    SUBCASE("convert, stopped while opening its input") {
        // The output is created first; the model's config.json is a FIFO
        // nobody writes, so the tool waits there until the signal.
        fs::create_directory(tmp / "model");
        fs::create_symlink(tiny_e2b + "/model.safetensors", tmp / "model/model.safetensors");
        REQUIRE(::mkfifo((tmp / "model/config.json").c_str(), 0600) == 0);
        const pid_t pid = start(tmp, {"convert", tmp / "model", tmp / "out.gguf"});
        wait_for_temp_file(tmp.path);
        ::kill(pid, SIGINT);
        const int status = wait_for(pid);
        CHECK(WIFSIGNALED(status));
        CHECK(WTERMSIG(status) == SIGINT);
        CHECK(temp_files(tmp.path).empty());
    }
}

TEST_CASE("inspect and error messages print names from files with control characters escaped") {
    const scratch_dir tmp;
    io::gguf_writer w;
    w.set("general.\x1b[31mred", io::gguf_value::string("\x1b]0;title\x07"));
    const float one = 1.0f;
    w.add_tensor("t\x1b[2J", ggml_type::f32, {1}, std::as_bytes(std::span(&one, 1)));
    w.write(tmp / "names.gguf");
    CHECK(run(tmp, {"inspect", tmp / "names.gguf"}) == 0);
    const std::string out = qtensor_test::read_file(tmp / "stdout.txt");
    CHECK(contains(out, "general.\\x1b[31mred"));
    CHECK(contains(out, "\\x1b]0;title\\x07"));
    CHECK(contains(out, "t\\x1b[2J"));
    CHECK(out.find('\x1b') == std::string::npos);
    CHECK(out.find('\x07') == std::string::npos);

    // Errors quote names from files and arguments: escaped as well.
    io::gguf_writer model;
    model.set("general.architecture", io::gguf_value::string("\x1b[2Jevil"));
    model.write(tmp / "model.gguf");
    CHECK(run(tmp, {"generate", tmp / "model.gguf", "--ids", "1", "--max-new", "1"}) == 1);
    std::string err = qtensor_test::read_file(tmp / "stderr.txt");
    CHECK(contains(err, "general.architecture is \"\\x1b[2Jevil\", not \"gemma4\""));
    CHECK(err.find('\x1b') == std::string::npos);
    CHECK(run(tmp, {"inspect", tmp / "no\x1b[2Jfile"}) == 1);
    err = qtensor_test::read_file(tmp / "stderr.txt");
    CHECK(contains(err, "no\\x1b[2Jfile"));
    CHECK(err.find('\x1b') == std::string::npos);
}
