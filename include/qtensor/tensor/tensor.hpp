// qtensor/tensor/tensor.hpp: an owning tensor in any scheme: 64-byte aligned,
// zeroed storage with rows back to back (no row padding), and the accessors
// of tensor_view.
//
// Move is cheap (the storage changes hands); copy is explicit, with clone().
// A tensor converts implicitly to its views, as std::string to string_view.
#pragma once

#include <array>
#include <concepts>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "qtensor/core/aligned_buffer.hpp"
#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/scheme/scheme.hpp"
#include "qtensor/tensor/extents.hpp"
#include "qtensor/tensor/tensor_view.hpp"

QTENSOR_BEGIN_NAMESPACE

template <scheme S, std::size_t Rank>
class tensor {
public:
    using scheme_type = S;
    using extents_type = qtensor::extents<Rank>;
    using view_type = tensor_view<S, Rank>;
    using const_view_type = tensor_view<const S, Rank>;
    using block_type = block_of<S>;
    using index_type = std::size_t;
    using rank_type = std::size_t;

    tensor() = default;

    // Zeroed storage for `shape`; tensor<q4_0, 2> t({rows, cols}).
    explicit tensor(const extents_type& shape)
        : buf_(detail::mul_or_throw<S>(detail::checked_rows<S>(shape),
                                       detail::checked_row_bytes<S>(shape), shape)),
          ext_(shape) {}

    tensor(tensor&& other) noexcept
        : buf_(std::move(other.buf_)), ext_(std::exchange(other.ext_, extents_type{})) {}
    tensor& operator=(tensor&& other) noexcept {
        buf_ = std::move(other.buf_);
        ext_ = std::exchange(other.ext_, extents_type{});
        return *this;
    }

    tensor clone() const {
        tensor copy;
        copy.buf_ = buf_.clone();
        copy.ext_ = ext_;
        return copy;
    }

    // values[shape.size()], row major -> a tensor, row by row with S::quantize_row.
    // A failing row (NaN, a scale past fp16) is named with its index and the shape.
    static tensor quantize(std::span<const float> values, const extents_type& shape) {
        if (values.size() != shape.size())
            throw error(detail::describe<S>(shape) + " has " + std::to_string(shape.size()) +
                        " elements, got " + std::to_string(values.size()) + " values");
        tensor t(shape);
        const view_type v = t.view();
        for (index_type r = 0; r < v.num_rows(); ++r) {
            try {
                S::quantize_row(values.data() + r * v.cols(), v.blocks(r).data(), v.cols());
            } catch (const error& e) {
                throw error(detail::describe<S>(shape) + ", row " + std::to_string(r) + ": " +
                            std::string(e.message()));
            }
        }
        return t;
    }

    // All elements as floats, row major, with S::dequantize_row.
    std::vector<float> dequantize() const { return view().dequantize(); }

    view_type view() noexcept { return {detail::unchecked_t{}, buf_.data(), ext_, row_bytes()}; }
    const_view_type view() const noexcept {
        return {detail::unchecked_t{}, buf_.data(), ext_, row_bytes()};
    }
    operator view_type() noexcept { return view(); }
    operator const_view_type() const noexcept { return view(); }

    // --- the accessors of tensor_view ---
    static constexpr rank_type rank() noexcept { return Rank; }
    index_type extent(rank_type i) const noexcept { return ext_.extent(i); }
    const extents_type& extents() const noexcept { return ext_; }
    index_type size() const noexcept { return ext_.size(); }
    bool empty() const noexcept { return size() == 0; }
    std::byte* data_handle() noexcept { return buf_.data(); }
    const std::byte* data_handle() const noexcept { return buf_.data(); }
    std::size_t size_bytes() const noexcept { return buf_.size(); }

    index_type num_rows() const noexcept { return ext_.rows(); }
    index_type cols() const noexcept { return ext_.cols(); }
    index_type blocks_per_row() const noexcept { return cols() / S::block_elems; }
    std::size_t row_bytes() const noexcept { return blocks_per_row() * S::block_bytes; }
    std::size_t row_stride_bytes() const noexcept { return row_bytes(); }

    template <std::integral... I>
        requires(sizeof...(I) == Rank)
    float operator()(I... idx) const {
        return view()(idx...);
    }
    float operator[](const std::array<index_type, Rank>& idx) const { return view()[idx]; }

    tensor_view<S, 1> row(index_type r) { return view().row(r); }
    tensor_view<const S, 1> row(index_type r) const { return view().row(r); }
    std::span<block_type> blocks(index_type r) { return view().blocks(r); }
    std::span<const block_type> blocks(index_type r) const { return view().blocks(r); }
    block_type& block(index_type r, index_type b) { return view().block(r, b); }
    const block_type& block(index_type r, index_type b) const { return view().block(r, b); }
    tensor_view<S, 2> row_slice(index_type first, index_type count)
        requires(Rank >= 2)
    {
        return view().row_slice(first, count);
    }
    tensor_view<const S, 2> row_slice(index_type first, index_type count) const
        requires(Rank >= 2)
    {
        return view().row_slice(first, count);
    }

private:
    aligned_buffer buf_;
    extents_type ext_{};
};

// ---- what an op that reads a tensor accepts -------------------------------------

namespace detail {
template <class T>
struct viewed {};
template <class S, std::size_t Rank>
struct viewed<tensor_view<S, Rank>> {
    using scheme_type = std::remove_const_t<S>;
    static constexpr std::size_t rank = Rank;
};
template <class S, std::size_t Rank>
struct viewed<tensor<S, Rank>> {
    using scheme_type = S;
    static constexpr std::size_t rank = Rank;
};
} // namespace detail

// A tensor<S, Rank>, tensor_view<S, Rank> or tensor_view<const S, Rank>: what
// an op that only reads a tensor takes, so that callers need not spell the
// const view (a template parameter would not deduce through the conversion).
template <class T>
concept viewable = requires { typename detail::viewed<std::remove_cvref_t<T>>::scheme_type; };

template <viewable T>
using viewed_scheme_t = typename detail::viewed<std::remove_cvref_t<T>>::scheme_type;

template <viewable T>
inline constexpr std::size_t viewed_rank_v = detail::viewed<std::remove_cvref_t<T>>::rank;

// A [rows, cols] weight matrix in any of the three forms.
template <class W>
concept weight_like = viewable<W> && viewed_rank_v<W> == 2;

// The read-only view of any of them; a tensor must outlive it.
template <viewable T>
tensor_view<const viewed_scheme_t<T>, viewed_rank_v<T>> as_const_view(const T& x) noexcept {
    return x;
}

QTENSOR_END_NAMESPACE
