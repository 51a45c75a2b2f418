// qtensor/io/output_file.hpp: where a writer's bytes go, treating whatever
// already exists at the output path the way a careful tool must.
//
// - Nothing there, or a regular file: the bytes go to a new file beside it,
//   renamed over the path by commit(). Until then an old file survives
//   untouched, and a write that fails or is abandoned leaves no partial file
//   under the path. A replaced file keeps its permission bits; like any
//   rename, this needs write access to the folder, not to the old file.
// - A symbolic link: followed (hop by hop, so a dangling last link works);
//   the file it leads to is replaced as above and the link stays a link.
// - A FIFO or a character device (/dev/stdout, /dev/null, a pipe): written in
//   place. It cannot be renamed over, and must never be: as root, renaming
//   over /dev/stdout would replace the system's device entry.
// - Anything else (a directory, a block device, a socket): refused with an
//   error, before a byte is written.
//
// POSIX only, like the readers' memory mapping.
#pragma once

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace io {

class output_file {
public:
    explicit output_file(std::string path) : path_(std::move(path)) {
        // stat() follows every link, /proc's magic ones included (/dev/stdout
        // on a pipe leads to "pipe:[N]", which is no path to follow by hand).
        struct stat st {};
        const bool exists = ::stat(path_.c_str(), &st) == 0;
        if (!exists && errno != ENOENT) fail("cannot inspect");
        if (exists && (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode))) {
            fd_ = ::open(path_.c_str(), O_WRONLY | O_CLOEXEC);
            if (fd_ < 0) fail("cannot open");
            struct stat opened {};
            if (::fstat(fd_, &opened) != 0 || !(S_ISFIFO(opened.st_mode) || S_ISCHR(opened.st_mode))) {
                ::close(std::exchange(fd_, -1));
                throw error(path_ + ": was replaced while it was being opened");
            }
            return;
        }
        if (exists && !S_ISREG(st.st_mode))
            throw error(path_ + ": is " + kind_of(st.st_mode) +
                        "; an output must be a regular file, a FIFO or a character device");
        target_ = resolve_links(path_);
        std::random_device random;
        for (int attempt = 0; fd_ < 0; ++attempt) {
            temp_ = target_ + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(random());
            fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
            if (fd_ < 0 && (errno != EEXIST || attempt == 100)) fail("cannot create the temporary file " + temp_);
        }
        if (exists && ::fchmod(fd_, st.st_mode & 07777) != 0)
            close_and_fail("cannot set the mode of the temporary file " + temp_);
    }

    // Whether an output_file at `path` would be written in place (a FIFO or a
    // character device is there, links followed): no temporary file, and an
    // open that may wait for a reader.
    static bool writes_in_place(const std::string& path) {
        struct stat st {};
        return ::stat(path.c_str(), &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode));
    }

    output_file(const output_file&) = delete;
    output_file& operator=(const output_file&) = delete;
    ~output_file() {
        if (fd_ >= 0) ::close(fd_);
        if (!committed_ && !temp_.empty()) ::unlink(temp_.c_str());
    }

    // The path as given, for messages.
    const std::string& path() const noexcept { return path_; }
    // The temporary file commit() renames over the path; empty when the
    // output is written in place. A program that wants it removed when a
    // signal ends it registers this name with its handler.
    const std::string& temp_path() const noexcept { return temp_; }

    void write(std::span<const std::byte> bytes) {
        if (buffer_.size() + bytes.size() > buffer_bytes) flush();
        if (bytes.size() >= buffer_bytes) write_all(bytes);
        else buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
    }
    void write_zeros(std::uint64_t n) {
        static constexpr std::array<std::byte, 4096> zeros{};
        for (; n > 0; n -= std::min<std::uint64_t>(n, zeros.size()))
            write(std::span(zeros).first(static_cast<std::size_t>(std::min<std::uint64_t>(n, zeros.size()))));
    }

    // Flushes and closes the output; a temporary file reaches the disk
    // (fsync) and is then renamed over the path.
    void commit() {
        flush();
        if (!temp_.empty() && ::fsync(fd_) != 0) fail("cannot sync the temporary file " + temp_);
        if (::close(std::exchange(fd_, -1)) != 0) fail("cannot close");
        if (!temp_.empty() && ::rename(temp_.c_str(), target_.c_str()) != 0) fail("cannot rename the temporary file " + temp_ + " onto it");
        committed_ = true;
    }

private:
    static constexpr std::size_t buffer_bytes = std::size_t{1} << 20;

    // `path` with symbolic links followed one hop at a time (the last one
    // may point to a file that does not exist yet).
    static std::string resolve_links(const std::string& path) {
        namespace fs = std::filesystem;
        fs::path p = path;
        std::error_code ec;
        for (int hop = 0; fs::is_symlink(fs::symlink_status(p, ec)); ++hop) {
            if (hop == 40) throw error(path + ": too many levels of symbolic links");
            const fs::path next = fs::read_symlink(p, ec);
            if (ec) throw error(path + ": cannot read the symbolic link " + p.string() + ": " + ec.message());
            p = next.is_absolute() ? next : p.parent_path() / next;
        }
        return p.string();
    }

    static const char* kind_of(mode_t mode) {
        return S_ISDIR(mode) ? "a directory" : S_ISBLK(mode) ? "a block device" : S_ISSOCK(mode) ? "a socket" : "not a file";
    }

    void flush() {
        write_all(buffer_);
        buffer_.clear();
    }
    void write_all(std::span<const std::byte> bytes) {
        while (!bytes.empty()) {
            const ::ssize_t n = ::write(fd_, bytes.data(), bytes.size());
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) fail("cannot write");
            bytes = bytes.subspan(static_cast<std::size_t>(n));
        }
    }

    // errno is read first: building the message may change it.
    [[noreturn]] void fail(const std::string& what) const {
        const int err = errno;
        throw error(path_ + ": " + what + ": " + std::strerror(err));
    }
    // For a failure after fd_ is open: the destructor will not run.
    [[noreturn]] void close_and_fail(const std::string& what) {
        const int err = errno;
        ::close(std::exchange(fd_, -1));
        if (!temp_.empty()) ::unlink(temp_.c_str());
        errno = err;
        fail(what);
    }

    std::string path_;   // as given
    std::string target_; // path_ with links followed: what is replaced or written
    std::string temp_;   // empty when writing in place
    std::vector<std::byte> buffer_;
    int fd_ = -1;
    bool committed_ = false;
};

} // namespace io
QTENSOR_END_NAMESPACE
