// qtensor/tensor/extents.hpp: the shape of a tensor, after std::extents.
//
// GCC 12 has no <mdspan>, so this is a small stand-in with the same names
// (rank(), extent(i)); every extent is dynamic. The innermost extent is the
// row: for shape [a, b, cols] a tensor holds a * b rows of cols elements.
#pragma once

#include <array>
#include <concepts>
#include <cstddef>
#include <string>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"

QTENSOR_BEGIN_NAMESPACE

namespace detail {
// A shape or index given as any integer; negative values are errors, not huge
// unsigned numbers.
template <std::integral I>
constexpr std::size_t to_size(I v, const char* what) {
    if constexpr (std::signed_integral<I>) {
        if (v < 0) throw error(std::string("negative ") + what + " " + std::to_string(v));
    }
    return static_cast<std::size_t>(v);
}
} // namespace detail

template <std::size_t Rank>
class extents {
    static_assert(Rank >= 1, "qtensor: a tensor has at least one dimension");

public:
    using index_type = std::size_t;
    using rank_type = std::size_t;

    constexpr extents() noexcept = default; // every extent 0
    constexpr explicit extents(const std::array<index_type, Rank>& e) noexcept : e_(e) {}

    // extents<2>{4, 64}. Implicit, so a shape can be written `{4, 64}` where
    // an extents is expected. Negative extents throw.
    template <std::integral... I>
        requires(sizeof...(I) == Rank)
    constexpr extents(I... e) : e_{detail::to_size(e, "extent")...} {}

    static constexpr rank_type rank() noexcept { return Rank; }
    constexpr index_type extent(rank_type i) const noexcept { return e_[i]; }
    constexpr const std::array<index_type, Rank>& array() const noexcept { return e_; }

    // The innermost extent: elements per row.
    constexpr index_type cols() const noexcept { return e_[Rank - 1]; }
    // The product of the outer extents (1 for rank 1).
    constexpr index_type rows() const noexcept {
        index_type n = 1;
        for (rank_type i = 0; i + 1 < Rank; ++i) n *= e_[i];
        return n;
    }
    // Number of elements.
    constexpr index_type size() const noexcept { return rows() * cols(); }

    friend constexpr bool operator==(const extents&, const extents&) = default;

    // "[2, 3, 64]": how error messages name a shape.
    std::string to_string() const {
        std::string s = "[";
        for (rank_type i = 0; i < Rank; ++i) {
            if (i != 0) s += ", ";
            s += std::to_string(e_[i]);
        }
        return s + "]";
    }

private:
    std::array<index_type, Rank> e_{};
};

template <std::integral... I>
extents(I...) -> extents<sizeof...(I)>;

QTENSOR_END_NAMESPACE
