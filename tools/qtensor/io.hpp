// tools/qtensor/io.hpp: streaming file access for the tool: an input read one
// row at a time, an output that only appears under its name once complete, and
// progress on stderr.
//
// Files can be many GB, so nothing here holds more than one row.
#pragma once

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>

#include "cli.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/io/tensor_entry.hpp"
#include "qtensor/io/output_file.hpp"

// POSIX only, like io::output_file and the memory-mapped readers.
#include <pthread.h>
#include <sys/resource.h>
#include <signal.h>
#include <unistd.h>

namespace qtensor::cli {

// stdio's default 4-8 KiB buffer makes one syscall per few rows; 1 MiB does not.
inline constexpr std::size_t io_buffer_bytes = std::size_t{1} << 20;

inline std::string errno_text(int err) { return std::strerror(err); }

// A file read front to back in rows of a fixed byte size.
class input_file {
public:
    explicit input_file(std::string path) : path_(std::move(path)) {
        std::error_code ec;
        const auto st = std::filesystem::status(path_, ec);
        if (!ec && std::filesystem::is_directory(st))
            run_error("cannot read input " + in_quotes(path_) + ": it is a directory");
        if (!ec && std::filesystem::is_regular_file(st)) {
            const auto size = std::filesystem::file_size(path_, ec);
            if (!ec) size_ = size;
        }
        file_ = std::fopen(path_.c_str(), "rb");
        if (file_ == nullptr)
            run_error("cannot open input " + in_quotes(path_) + ": " + errno_text(errno));
        std::setvbuf(file_, nullptr, _IOFBF, io_buffer_bytes);
    }
    input_file(const input_file&) = delete;
    input_file& operator=(const input_file&) = delete;
    ~input_file() { std::fclose(file_); }

    const std::string& path() const noexcept { return path_; }
    // The size in bytes when the input is a regular file (a pipe has none).
    std::optional<std::uintmax_t> size() const noexcept { return size_; }

    // Reads the next `bytes`-byte row into dst. Returns false at the end of the
    // file; a file that ends inside a row (a pipe can, where no size was known
    // up front) or a read error is a run error.
    bool read_row(void* dst, std::size_t bytes, std::uintmax_t row) {
        const std::size_t got = std::fread(dst, 1, bytes, file_);
        if (got == bytes) return true;
        if (std::ferror(file_))
            run_error("cannot read input " + in_quotes(path_) + ": " + errno_text(errno));
        if (got == 0) return false;
        run_error(path_ + ": ends inside row " + std::to_string(row) + " (" + std::to_string(got) +
                  " of its " + std::to_string(bytes) + " bytes)");
    }

private:
    std::string path_;
    std::optional<std::uintmax_t> size_;
    std::FILE* file_ = nullptr;
};

// SIGINT, SIGTERM and SIGHUP remove the temporary file of the output being
// written before they end the tool, so an interrupted convert leaves no
// multi-GB OUT.tmp-* behind. main() blocks them in every thread (the pool's
// workers inherit the mask) and one thread waits for them with sigwait(): an
// ordinary thread, so it may take a mutex and need not be async-signal-safe,
// and it gets the signal even while the main thread waits in an open().
// Signals that were ignored when the tool started (nohup, a background job)
// stay ignored.
namespace interrupt {

struct state {
    std::mutex mutex;  // held while a temporary file is created and registered
    std::string temp;  // the one to remove; the tool writes one output at a time
};
inline state& shared() {
    static state s;
    return s;
}

inline void install() {
    sigset_t set;
    sigemptyset(&set);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
        struct sigaction old {};
        if (sigaction(sig, nullptr, &old) == 0 && old.sa_handler != SIG_IGN) sigaddset(&set, sig);
    }
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    try {
        std::thread([set] {
            int sig = 0;
            if (sigwait(&set, &sig) != 0) return;
            {
                const std::lock_guard lock(shared().mutex);
                if (!shared().temp.empty()) ::unlink(shared().temp.c_str());
            }
            // End as the signal would have, so the parent sees it.
            std::signal(sig, SIG_DFL);
            sigset_t one;
            sigemptyset(&one);
            sigaddset(&one, sig);
            ::kill(::getpid(), sig);
            pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
        }).detach();
    } catch (const std::system_error&) { // no thread: the signals keep their default action
        pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
    }
}

} // namespace interrupt

// The tool's output: io::output_file (a regular file is replaced atomically
// by commit(), a FIFO or character device written in place, anything else
// refused), with its temporary file registered for removal by a signal.
class output {
public:
    explicit output(const std::string& path) {
        try {
            if (io::output_file::writes_in_place(path)) { // may wait for a reader: not under the lock
                file_.emplace(path);
                return;
            }
            interrupt::state& s = interrupt::shared();
            const std::lock_guard lock(s.mutex);
            file_.emplace(path);
            s.temp = file_->temp_path();
        } catch (const qtensor::error& e) {
            run_error("output " + library_message(e));
        }
    }
    output(const output&) = delete;
    output& operator=(const output&) = delete;
    ~output() {
        interrupt::state& s = interrupt::shared();
        const std::lock_guard lock(s.mutex);
        file_.reset(); // removes the temporary file unless committed
        s.temp.clear();
    }

    io::output_file& file() noexcept { return *file_; }

    void write(const void* data, std::size_t bytes) {
        guarded([&] { file_->write({static_cast<const std::byte*>(data), bytes}); });
    }
    void commit() {
        guarded([&] { file_->commit(); });
    }

private:
    template <class Fn>
    void guarded(Fn&& fn) {
        try {
            fn();
        } catch (const qtensor::error& e) {
            run_error("output " + library_message(e));
        }
    }

    std::optional<io::output_file> file_;
};

// The process's peak resident set size so far (Linux reports KiB).
inline std::size_t peak_rss_bytes() {
    rusage usage{};
    if (::getrusage(RUSAGE_SELF, &usage) != 0) return 0;
    return static_cast<std::size_t>(usage.ru_maxrss) * 1024;
}

// True while a progress line without its newline is on the terminal; main()
// ends it before printing an error so the error stays one line of its own.
inline bool progress_line_open = false;

inline void end_progress_line() {
    if (progress_line_open) std::fputc('\n', stderr);
    progress_line_open = false;
}

// "qtensor: convert: 1024.0 / 4096.0 MiB, 310.2 MiB/s, 0:10 left": bytes
// done against the total (when known), the rate so far and the time left.
// Shown every 64 MiB (every fiftieth of a smaller total, but not below 64 KiB):
// rewritten in place
// on a terminal; one line each when stderr is not one and `verbose`, else
// nothing.
class progress {
public:
    progress(std::string_view what, bool verbose, std::optional<std::uintmax_t> total_bytes)
        : what_(what), total_(total_bytes), tty_((::isatty(::fileno(stderr)) != 0)), enabled_(verbose || tty_),
          step_(total_ ? std::clamp<std::uintmax_t>(*total_ / 50, min_step, max_step) : max_step), next_(step_),
          start_(std::chrono::steady_clock::now()) {}

    void advance(std::size_t bytes) {
        done_ += bytes;
        if (!enabled_ || done_ < next_) return;
        next_ = done_ + step_;
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
        const double rate = seconds > 0 ? static_cast<double>(done_) / seconds : 0.0; // bytes/s
        std::fprintf(stderr, "%sqtensor: %s: %.1f", tty_ ? "\r\033[K" : "", what_.c_str(), mebibytes(done_));
        if (total_) std::fprintf(stderr, " / %.1f", mebibytes(*total_));
        std::fprintf(stderr, " MiB, %.1f MiB/s", rate / 1048576.0);
        if (total_ && rate > 0 && *total_ >= done_) {
            const auto left = static_cast<std::uintmax_t>(static_cast<double>(*total_ - done_) / rate + 0.5);
            std::fprintf(stderr, ", %ju:%02ju left", left / 60, left % 60);
        }
        if (tty_) progress_line_open = true;
        else std::fputc('\n', stderr);
        std::fflush(stderr);
    }

    // For a tensor_callback: the bytes of each tensor done.
    void operator()(const io::tensor_entry& e) { advance(e.data.size()); }

    void finish() { end_progress_line(); }

private:
    static constexpr std::uintmax_t min_step = std::uintmax_t{64} << 10;
    static constexpr std::uintmax_t max_step = std::uintmax_t{64} << 20;
    static double mebibytes(std::uintmax_t b) { return static_cast<double>(b) / 1048576.0; }

    std::string what_;
    std::optional<std::uintmax_t> total_;
    bool tty_;
    bool enabled_;
    std::uintmax_t step_;
    std::uintmax_t done_ = 0;
    std::uintmax_t next_;
    std::chrono::steady_clock::time_point start_;
};

// The status line of a loop of `total` steps (train, ppl): rewritten in place
// on a terminal, else one line every twentieth of the run and at its end.
class step_progress {
public:
    explicit step_progress(std::size_t total)
        : every_(std::max<std::size_t>(1, total / 20)), tty_(::isatty(::fileno(stderr)) != 0) {}

    // Whether step `done` (1-based) shows; `last`: the run's final step.
    bool due(std::size_t done, bool last) const noexcept { return tty_ || last || done % every_ == 0; }

    void show(const char* line) {
        std::fprintf(stderr, "%s%s%s", tty_ ? "\r\033[K" : "", line, tty_ ? "" : "\n");
        progress_line_open = tty_;
        std::fflush(stderr);
    }

private:
    std::size_t every_;
    bool tty_;
};

} // namespace qtensor::cli
