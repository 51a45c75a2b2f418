// qtensor/io/mapped_file.hpp: a whole file mapped read-only into memory.
//
// Checkpoints are read through the page cache: tensors stay views into the
// mapping, so opening a multi-GB file costs no copy and pages load on first
// touch. The mapping lives as long as the mapped_file object (move-only).
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <utility>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

QTENSOR_BEGIN_NAMESPACE
namespace io {

class mapped_file {
public:
    mapped_file() = default;

    // Throws qtensor::error naming the file when it cannot be opened, is not a
    // regular file, or cannot be mapped. An empty file maps to an empty span.
    explicit mapped_file(std::string path) : path_(std::move(path)) {
        const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) fail("cannot open");
        struct stat st {};
        if (::fstat(fd, &st) != 0) {
            const int err = errno;
            ::close(fd);
            fail("cannot stat", err);
        }
        if (!S_ISREG(st.st_mode)) {
            ::close(fd);
            throw error(path_ + ": not a regular file");
        }
        size_ = static_cast<std::size_t>(st.st_size);
        if (size_ != 0) {
            void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
            if (p == MAP_FAILED) {
                const int err = errno;
                ::close(fd);
                fail("cannot map", err);
            }
            data_ = static_cast<const std::byte*>(p);
        }
        ::close(fd); // the mapping keeps the file alive
    }

    mapped_file(mapped_file&& other) noexcept
        : path_(std::move(other.path_)), data_(std::exchange(other.data_, nullptr)),
          size_(std::exchange(other.size_, 0)) {}
    mapped_file& operator=(mapped_file&& other) noexcept {
        if (this != &other) {
            unmap();
            path_ = std::move(other.path_);
            data_ = std::exchange(other.data_, nullptr);
            size_ = std::exchange(other.size_, 0);
        }
        return *this;
    }
    mapped_file(const mapped_file&) = delete;
    mapped_file& operator=(const mapped_file&) = delete;
    ~mapped_file() { unmap(); }

    const std::string& path() const noexcept { return path_; }
    std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }
    std::size_t size() const noexcept { return size_; }

    // Drops the whole pages inside `part` from the process's resident memory
    // (madvise MADV_DONTNEED): the mapping is read-only and private, so a page
    // touched again is read back from the file (from the page cache, where the
    // kernel still has it). For a model that has copied those bytes elsewhere.
    // False, and nothing done, when `part` is not inside this mapping.
    bool drop_pages(std::span<const std::byte> part) const noexcept {
        const auto first = reinterpret_cast<std::uintptr_t>(data_), at = reinterpret_cast<std::uintptr_t>(part.data());
        if (part.empty() || at < first || at - first > size_ || part.size() > size_ - (at - first)) return false;
        const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
        const auto begin = (at + page - 1) / page * page, end = (at + part.size()) / page * page;
        if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
        return true;
    }

private:
    [[noreturn]] void fail(const char* what, int err = errno) const {
        throw error(path_ + ": " + what + ": " + std::strerror(err));
    }
    void unmap() noexcept {
        if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
        data_ = nullptr;
    }

    std::string path_;
    const std::byte* data_ = nullptr;
    std::size_t size_ = 0;
};

} // namespace io
QTENSOR_END_NAMESPACE
