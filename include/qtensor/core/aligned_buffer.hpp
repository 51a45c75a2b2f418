// qtensor/core/aligned_buffer.hpp: an owning, 64-byte aligned byte buffer.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <new>
#include <utility>

#include "qtensor/core/config.hpp"

QTENSOR_BEGIN_NAMESPACE

// 64 bytes: one cache line, and the width of an AVX-512 register.
inline constexpr std::size_t storage_alignment = 64;

// Zero-initialised storage of `size` bytes. Move-only; copy with clone().
class aligned_buffer {
public:
    aligned_buffer() = default;
    explicit aligned_buffer(std::size_t size) : size_(size) {
        if (size_ != 0) {
            data_.reset(static_cast<std::byte*>(
                ::operator new(size_, std::align_val_t{storage_alignment})));
            std::memset(data_.get(), 0, size_);
        }
    }

    aligned_buffer(aligned_buffer&& other) noexcept
        : data_(std::move(other.data_)), size_(std::exchange(other.size_, 0)) {}
    aligned_buffer& operator=(aligned_buffer&& other) noexcept {
        data_ = std::move(other.data_);
        size_ = std::exchange(other.size_, 0);
        return *this;
    }

    aligned_buffer clone() const {
        aligned_buffer copy(size_);
        if (size_ != 0) std::memcpy(copy.data(), data(), size_);
        return copy;
    }

    std::byte* data() noexcept { return data_.get(); }
    const std::byte* data() const noexcept { return data_.get(); }
    std::size_t size() const noexcept { return size_; }

private:
    struct deleter {
        void operator()(std::byte* p) const noexcept {
            ::operator delete(p, std::align_val_t{storage_alignment});
        }
    };
    std::unique_ptr<std::byte, deleter> data_;
    std::size_t size_ = 0;
};

QTENSOR_END_NAMESPACE
