// qtensor/kernels/checks.hpp: the two forms of every public kernel function
// (quant.hpp, matmul.hpp, float_ops.hpp), and the size checks of the first.
//
//   - kernels::f(spans or views..., t): checks that the sizes agree and throws
//     qtensor::error naming the function, the argument and both sizes;
//   - kernels::unchecked::f(pointers..., n, t): the same kernel on raw
//     pointers, trusting the caller that every buffer holds what n says.
//
// unchecked, not detail: the raw forms are a supported API for hot loops that
// checked their sizes once above (nn::rmsnorm checks a [rows, n] buffer once,
// then runs one kernel per row), inside and outside the library; detail is
// for what nobody outside should call. Checks of values (a whole number of
// blocks, eps, cap, RoPE angles) stay in both forms: they guard the kernel's
// arithmetic, not the buffers' lengths.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "qtensor/core/error.hpp"
#include "qtensor/kernels/abi.hpp"

QTENSOR_KERNELS_BEGIN_NAMESPACE
namespace detail {

// An argument as a message names it: "x has 128 elements".
struct sized {
    std::string_view name;
    std::size_t size = 0;
    std::string_view unit = "elements";

    std::string text() const { return std::string(name) + " has " + std::to_string(size) + " " + std::string(unit); }
};

// Unless got.size == want, throws
// "kernels::quantize_q4_0: y has 3 blocks, expected 4 (x has 128 elements)".
inline void check_size(std::string_view fn, const sized& got, std::size_t want, const sized& from) {
    if (got.size != want)
        throw error("kernels::" + std::string(fn) + ": " + got.text() + ", expected " + std::to_string(want) +
                    " (" + from.text() + ")");
}

// Rows of x[rows, n]; throws unless x is whole rows.
inline std::size_t rows_of(std::string_view fn, const sized& x, std::size_t n) {
    if (n == 0 || x.size % n != 0)
        throw error("kernels::" + std::string(fn) + ": " + x.text() + ", not whole rows of " +
                    std::to_string(n));
    return x.size / n;
}

// Blocks in x (elements); throws unless x is whole blocks of `block`:
// "kernels::quantize_q4_0: x has 48 elements, not whole q4_0 blocks of 32".
inline std::size_t blocks_of(std::string_view fn, const sized& x, std::string_view scheme, std::size_t block) {
    if (x.size % block != 0)
        throw error("kernels::" + std::string(fn) + ": " + x.text() + ", not whole " + std::string(scheme) +
                    " blocks of " + std::to_string(block));
    return x.size / block;
}

} // namespace detail
QTENSOR_KERNELS_END_NAMESPACE
