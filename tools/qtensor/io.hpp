// tools/qtensor/io.hpp: streaming file access for the tool: an input read one
// row at a time, an output that only appears under its name once complete, and
// progress on stderr.
//
// Files can be many GB, so nothing here holds more than one row.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <system_error>

#include "cli.hpp"

#if __has_include(<unistd.h>)
#include <unistd.h>
#define QTENSOR_CLI_ISATTY(f) (::isatty(::fileno(f)) != 0)
#elif defined(_WIN32)
#include <io.h>
#define QTENSOR_CLI_ISATTY(f) (::_isatty(::_fileno(f)) != 0)
#else
#define QTENSOR_CLI_ISATTY(f) false
#endif

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

// An output written to a temporary file beside its final path and renamed onto
// it by commit(). Until then the final path is untouched (an old file there
// survives a failed run), and if commit() is never reached the temporary file
// is removed: a failure never leaves a truncated file that looks valid.
//
// A symlink is followed, so the file it points to is replaced, not the link.
// An existing path that is no regular file (/dev/stdout, a FIFO, a device) is
// written in place: it cannot be renamed over, and must not be.
class atomic_output {
public:
    explicit atomic_output(std::string path) : path_(std::move(path)) {
        namespace fs = std::filesystem;
        std::error_code ec;
        fs::path link = path_; // follow links one hop at a time: the last one may dangle
        for (int hop = 0; hop < 40 && fs::is_symlink(fs::symlink_status(link, ec)); ++hop) {
            const fs::path next = fs::read_symlink(link, ec);
            if (ec) break;
            link = next.is_absolute() ? next : link.parent_path() / next;
        }
        const std::string target = link.string();
        const auto st = fs::status(target, ec);
        if (!ec && fs::is_directory(st))
            run_error("cannot write output " + in_quotes(path_) + ": it is a directory");
        if (!ec && fs::exists(st) && !fs::is_regular_file(st)) {
            file_ = std::fopen(target.c_str(), "wb");
            if (file_ == nullptr)
                run_error("cannot open output " + in_quotes(path_) + ": " + errno_text(errno));
        } else {
            std::random_device random;
            for (int attempt = 0; attempt < 16 && file_ == nullptr; ++attempt) {
                char suffix[16];
                std::snprintf(suffix, sizeof suffix, ".tmp-%08x", static_cast<unsigned>(random()));
                temp_ = target + suffix;
                // "x": fail rather than truncate a file that happens to have this name.
                file_ = std::fopen(temp_.c_str(), "wbx");
                if (file_ == nullptr && errno != EEXIST) break;
            }
            if (file_ == nullptr)
                run_error("cannot create output " + in_quotes(path_) + ": " + errno_text(errno));
            final_ = target;
        }
        std::setvbuf(file_, nullptr, _IOFBF, io_buffer_bytes);
    }
    atomic_output(const atomic_output&) = delete;
    atomic_output& operator=(const atomic_output&) = delete;
    ~atomic_output() {
        if (file_ != nullptr) std::fclose(file_);
        if (!committed_ && !temp_.empty()) std::remove(temp_.c_str());
    }

    void write(const void* data, std::size_t bytes) {
        if (std::fwrite(data, 1, bytes, file_) != bytes) fail_write(errno);
    }

    // Flushes, closes and renames onto the final path.
    void commit() {
        const int flushed = std::fflush(file_);
        const int flush_errno = errno;
        const int closed = std::fclose(file_);
        const int close_errno = errno;
        file_ = nullptr;
        if (flushed != 0) fail_write(flush_errno);
        if (closed != 0) fail_write(close_errno);
        if (temp_.empty()) return; // written in place
        std::error_code ec;
        std::filesystem::rename(temp_, final_, ec);
        if (ec) run_error("cannot write output " + in_quotes(path_) + ": " + ec.message());
        committed_ = true;
    }

private:
    [[noreturn]] void fail_write(int err) {
        run_error("cannot write output " + in_quotes(path_) + ": " + errno_text(err));
    }

    std::string path_;  // as the user gave it, for messages
    std::string final_; // where commit() renames to (the symlink's target)
    std::string temp_;  // empty when writing in place
    std::FILE* file_ = nullptr;
    bool committed_ = false;
};

// True while a progress line without its newline is on the terminal; main()
// ends it before printing an error so the error stays one line of its own.
inline bool progress_line_open = false;

inline void end_progress_line() {
    if (progress_line_open) std::fputc('\n', stderr);
    progress_line_open = false;
}

// "qtensor: quantize: 1024 / 4096 MiB" every 64 MiB of input: rewritten in
// place on a terminal, one line each with --verbose when stderr is not one.
class progress {
public:
    progress(std::string_view what, bool verbose, std::optional<std::uintmax_t> total_bytes)
        : what_(what), total_(total_bytes), tty_(QTENSOR_CLI_ISATTY(stderr)),
          enabled_(verbose || tty_) {}

    void advance(std::size_t bytes) {
        done_ += bytes;
        if (!enabled_ || done_ < next_) return;
        next_ = done_ + step;
        std::fprintf(stderr, "%sqtensor: %s: %ju", tty_ ? "\r" : "", what_.c_str(), done_ >> 20);
        if (total_) std::fprintf(stderr, " / %ju", *total_ >> 20);
        std::fprintf(stderr, " MiB");
        if (tty_) progress_line_open = true;
        else std::fputc('\n', stderr);
        std::fflush(stderr);
    }

    void finish() { end_progress_line(); }

private:
    static constexpr std::uintmax_t step = std::uintmax_t{64} << 20;
    std::string what_;
    std::optional<std::uintmax_t> total_;
    bool tty_;
    bool enabled_;
    std::uintmax_t done_ = 0;
    std::uintmax_t next_ = step;
};

} // namespace qtensor::cli
