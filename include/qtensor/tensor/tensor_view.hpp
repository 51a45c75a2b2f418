// qtensor/tensor/tensor_view.hpp: a non-owning view of a tensor in any scheme,
// over any memory (a std::vector, a tensor, an mmap'd GGUF file). It never
// copies.
//
// Layout: the innermost extent is a row, stored as whole blocks back to back
// (row_bytes<S>(cols) bytes); row r starts at data_handle() + r *
// row_stride_bytes(). The stride is the row size by default; a larger one
// views padded rows or the rows of a wider matrix. Outer indices flatten row
// major: element (i, j, k) of shape [a, b, cols] lies in row i * b + j.
//
// tensor_view<S, R> hands out mutable blocks, tensor_view<const S, R> const
// ones only, as std::span<T> and std::span<const T> do; mutable converts to
// const implicitly. Like span, the view's own constness is shallow.
//
// Elements are read by value: a quantized element has no address, so
// view(i, j) dequantizes the block that holds it. That is a whole block's work
// per element; a loop over a row should take blocks(r) to S::dequantize_row.
// Every index (element, row, block) is checked: one comparison is noise next
// to that work, and a row or block access is followed by a row's worth of it.
#pragma once

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/scheme/scheme.hpp"
#include "qtensor/tensor/extents.hpp"

QTENSOR_BEGIN_NAMESPACE

// The accessor policy, after std::mdspan's: access(p, i) is element i of the
// row whose first block is p.
template <scheme S>
struct dequantize_accessor {
    using element_type = float;
    using reference = float; // by value: a quantized element has no address
    using data_handle_type = const block_of<S>*;

    float access(data_handle_type row, std::size_t i) const {
        std::array<float, S::block_elems> block;
        S::dequantize_row(row + i / S::block_elems, block.data(), S::block_elems);
        return block[i % S::block_elems];
    }
};

namespace detail {

// "q4_0 tensor of shape [4, 64]": how messages name a tensor.
template <scheme S, std::size_t Rank>
std::string describe(const extents<Rank>& shape) {
    return std::string(S::name) + " tensor of shape " + shape.to_string();
}

template <scheme S, std::size_t Rank>
std::size_t mul_or_throw(std::size_t a, std::size_t b, const extents<Rank>& shape) {
    if (b != 0 && a > std::numeric_limits<std::size_t>::max() / b)
        throw error(describe<S>(shape) + " is too large to address");
    return a * b;
}

template <scheme S, std::size_t Rank>
std::size_t add_or_throw(std::size_t a, std::size_t b, const extents<Rank>& shape) {
    if (a > std::numeric_limits<std::size_t>::max() - b)
        throw error(describe<S>(shape) + " is too large to address");
    return a + b;
}

// Bytes of one row, after checking that a row is whole blocks.
template <scheme S, std::size_t Rank>
std::size_t checked_row_bytes(const extents<Rank>& shape) {
    if (shape.cols() % S::block_elems != 0)
        throw error(describe<S>(shape) + ": the innermost extent " + std::to_string(shape.cols()) +
                    " is not a multiple of the " + std::string(S::name) + " block size " +
                    std::to_string(S::block_elems));
    return mul_or_throw<S>(shape.cols() / S::block_elems, S::block_bytes, shape);
}

// Number of rows, checked against overflow (shapes may come from files).
template <scheme S, std::size_t Rank>
std::size_t checked_rows(const extents<Rank>& shape) {
    std::size_t n = 1;
    for (std::size_t i = 0; i + 1 < Rank; ++i) n = mul_or_throw<S>(n, shape.extent(i), shape);
    return n;
}

// Access to the unchecked constructor, for views that tensor and tensor_view
// derive from a checked one.
struct unchecked_t {};

} // namespace detail

template <class S, std::size_t Rank>
    requires scheme<std::remove_const_t<S>>
class tensor_view {
    static constexpr bool read_only = std::is_const_v<S>;

public:
    using scheme_type = std::remove_const_t<S>;
    using extents_type = qtensor::extents<Rank>;
    using accessor_type = dequantize_accessor<scheme_type>;
    using element_type = float;
    using reference = float;
    using index_type = std::size_t;
    using rank_type = std::size_t;
    using byte_type = std::conditional_t<read_only, const std::byte, std::byte>;
    using block_type = std::conditional_t<read_only, const block_of<scheme_type>, block_of<scheme_type>>;
    using data_handle_type = byte_type*;

    // An empty view of shape [0, ..., 0].
    tensor_view() = default;

    // Rows back to back over `bytes`. `bytes` may be longer than the tensor
    // (a view into a file); too short, or misaligned for the blocks, throws.
    tensor_view(std::span<byte_type> bytes, const extents_type& shape)
        : tensor_view(bytes, shape, detail::checked_row_bytes<scheme_type>(shape)) {}

    // Row r at bytes.data() + r * row_stride_bytes; the stride is at least a
    // row and keeps every row aligned for the blocks.
    tensor_view(std::span<byte_type> bytes, const extents_type& shape, std::size_t row_stride_bytes)
        : data_(bytes.data()), ext_(shape), stride_(row_stride_bytes) {
        using B = block_of<scheme_type>;
        const std::size_t row = detail::checked_row_bytes<scheme_type>(shape);
        const std::size_t rows = detail::checked_rows<scheme_type>(shape);
        const std::string what = detail::describe<scheme_type>(shape);
        if (stride_ < row)
            throw error(what + ": row stride " + std::to_string(stride_) +
                        " bytes is shorter than a row (" + std::to_string(row) + " bytes)");
        if (stride_ % alignof(B) != 0)
            throw error(what + ": row stride " + std::to_string(stride_) +
                        " bytes is not a multiple of the block alignment " +
                        std::to_string(alignof(B)) + ", so rows after the first would be misaligned");
        // The last row needs no padding after it.
        const std::size_t needed =
            rows == 0 ? 0 : detail::add_or_throw<scheme_type>(
                                detail::mul_or_throw<scheme_type>(rows - 1, stride_, shape), row, shape);
        if (bytes.size() < needed)
            throw error(what + " needs " + std::to_string(needed) + " bytes, the buffer has " +
                        std::to_string(bytes.size()));
        if (reinterpret_cast<std::uintptr_t>(data_) % alignof(B) != 0)
            throw error(what + ": data is not aligned to " + std::to_string(alignof(B)) +
                        " bytes; blocks are read in place, never copied, so the bytes must be "
                        "aligned for the block type");
    }

    // Mutable to const.
    template <class T>
        requires(read_only && std::is_same_v<T, scheme_type>)
    tensor_view(const tensor_view<T, Rank>& other) noexcept
        : data_(other.data_handle()), ext_(other.extents()), stride_(other.row_stride_bytes()) {}

    // The unchecked form, for views made from a view or a tensor already checked.
    tensor_view(detail::unchecked_t, data_handle_type data, const extents_type& shape,
                std::size_t row_stride_bytes) noexcept
        : data_(data), ext_(shape), stride_(row_stride_bytes) {}

    // --- shape (mdspan vocabulary) ---
    static constexpr rank_type rank() noexcept { return Rank; }
    index_type extent(rank_type i) const noexcept { return ext_.extent(i); }
    const extents_type& extents() const noexcept { return ext_; }
    index_type size() const noexcept { return ext_.size(); }
    bool empty() const noexcept { return size() == 0; }
    data_handle_type data_handle() const noexcept { return data_; }

    // --- rows ---
    index_type num_rows() const noexcept { return ext_.rows(); }
    index_type cols() const noexcept { return ext_.cols(); }
    index_type blocks_per_row() const noexcept { return cols() / scheme_type::block_elems; }
    std::size_t row_bytes() const noexcept { return blocks_per_row() * scheme_type::block_bytes; }
    std::size_t row_stride_bytes() const noexcept { return stride_; }
    bool is_contiguous() const noexcept { return stride_ == row_bytes(); }

    // Element by value; view(i, j) or view[{i, j}].
    template <std::integral... I>
        requires(sizeof...(I) == Rank)
    float operator()(I... idx) const {
        return (*this)[std::array<index_type, Rank>{detail::to_size(idx, "index")...}];
    }
    float operator[](const std::array<index_type, Rank>& idx) const {
        index_type r = 0; // row major over the outer extents
        for (rank_type d = 0; d < Rank; ++d) {
            if (idx[d] >= ext_.extent(d))
                throw error("index " + std::to_string(idx[d]) + " is out of range for dimension " +
                            std::to_string(d) + " of " + describe());
            if (d + 1 < Rank) r = r * ext_.extent(d) + idx[d];
        }
        return accessor_type{}.access(row_blocks(r), idx[Rank - 1]);
    }

    // Row r (flattened over the outer extents) as a rank-1 view.
    tensor_view<S, 1> row(index_type r) const {
        check_row(r);
        return {detail::unchecked_t{}, data_ + r * stride_, qtensor::extents<1>{cols()}, row_bytes()};
    }

    // The blocks of row r, in place.
    std::span<block_type> blocks(index_type r) const {
        check_row(r);
        return {row_blocks(r), blocks_per_row()};
    }

    block_type& block(index_type r, index_type b) const {
        check_row(r);
        if (b >= blocks_per_row())
            throw error("block " + std::to_string(b) + " is out of range for " + describe() + " (" +
                        std::to_string(blocks_per_row()) + " blocks per row)");
        return row_blocks(r)[b];
    }

    // Rows [first, first + count) as a [count, cols] view of the same bytes.
    tensor_view<S, 2> row_slice(index_type first, index_type count) const
        requires(Rank >= 2)
    {
        if (first > num_rows() || count > num_rows() - first)
            throw error("rows [" + std::to_string(first) + ", " + std::to_string(first) + " + " +
                        std::to_string(count) + ") are out of range for " + describe() + " (" +
                        std::to_string(num_rows()) + " rows)");
        // An empty slice keeps the base pointer: first * stride may lie past the buffer.
        return {detail::unchecked_t{}, count == 0 ? data_ : data_ + first * stride_,
                qtensor::extents<2>{count, cols()}, stride_};
    }

    // All elements as floats, row major (drops any row padding).
    std::vector<float> dequantize() const {
        std::vector<float> out(size());
        for (index_type r = 0; r < num_rows(); ++r)
            scheme_type::dequantize_row(row_blocks(r), out.data() + r * cols(), cols());
        return out;
    }

private:
    std::string describe() const { return detail::describe<scheme_type>(ext_); }

    void check_row(index_type r) const {
        if (r >= num_rows())
            throw error("row " + std::to_string(r) + " is out of range for " + describe() + " (" +
                        std::to_string(num_rows()) + " rows)");
    }

    block_type* row_blocks(index_type r) const noexcept {
        return reinterpret_cast<block_type*>(data_ + r * stride_);
    }

    data_handle_type data_ = nullptr;
    extents_type ext_{};
    std::size_t stride_ = 0;
};

template <class S, std::size_t Rank>
using const_tensor_view = tensor_view<const S, Rank>;

QTENSOR_END_NAMESPACE
