// qtensor/scheme/q4_1.hpp: Q4_1, 4-bit asymmetric blocks of 32 (GGUF type 3),
// 5 bits per weight. Published "Q4_0" GGUF files keep some tensors in it.
// ggml's dot partner is Q8_1, which qtensor does not have: no dot product.
//
// Block layout, 20 bytes:
//   [0..1]   d       fp16 scale
//   [2..3]   m       fp16 block minimum
//   [4..19]  qs[16]  byte j: low nibble = code of element j,
//                            high nibble = code of element j + 16
// Dequantize: w[j] = code[j] * d + m, codes 0..15, the product rounded to
// float before the addition.
//
// Reference quantizer (ggml's quantize_row_q4_1_ref), per block:
//   min, max = the block's extremes (strict comparisons from +-FLT_MAX);
//   d    = (max - min) / 15,  id = d ? 1/d : 0 (fp32, unrounded);
//   code = min(15, trunc((x - min) * id + 0.5))   (x - min >= 0: round half up);
//   stored: fp16(d) and fp16(min); the codes use the unrounded fp32 d and min.
// min maps to code 0 exactly and max to 15. (max - min) * id is 15 up to three
// roundings, so the clamp cannot fire for finite input; `saturated` reports
// it all the same. A constant block has d = 0: every code 0, w = fp16(min).
//
// Input: NaN/Inf, and blocks whose d or min round to fp16 inf (d >= 65520,
// |min| >= 65520), throw qtensor::error. ggml stores the inf and the block
// dequantizes to +-inf; the golden test checks that exactly those rows throw.
#pragma once

#include <algorithm>
#include <array>
#include <cfloat>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "qtensor/core/error.hpp"
#include "qtensor/core/float_bits.hpp"
#include "qtensor/core/half.hpp"
#include "qtensor/scheme/q8_0.hpp"
#include "qtensor/scheme/scheme.hpp"

QTENSOR_BEGIN_NAMESPACE

struct block_q4_1 {
    fp16_t d;
    fp16_t m;
    std::array<std::uint8_t, 16> qs;
};
static_assert(sizeof(block_q4_1) == 20);

namespace detail {

// What the codes of an asymmetric block use: its minimum and id = 1/d, both
// fp32 and unrounded.
struct block_range {
    float min;
    float id;
};

// The scale and minimum of an asymmetric block (Q4_1, Q5_1) of n elements
// with codes 0..top: min and max by strict comparisons from +-FLT_MAX,
// d = (max - min) / top; stores fp16(d) and fp16(min) in y (throwing when
// either rounds to inf) and returns what the codes use.
template <class Block>
block_range store_block_range(std::string_view name, std::size_t block, const float* x, std::size_t n, float top,
                              Block& y) {
    float min = FLT_MAX;
    float max = -FLT_MAX;
    for (std::size_t j = 0; j < n; ++j) {
        if (x[j] < min) min = x[j];
        if (x[j] > max) max = x[j];
    }
    const float d = (max - min) / top;
    y.d = fp32_to_fp16(d);
    y.m = fp32_to_fp16(min);
    check_fp16_scale(name, block, d, fp16_to_fp32(y.d));
    if (!is_finite_bits(fp16_to_fp32(y.m)))
        throw error(std::string(name) + ": block " + std::to_string(block) + " has minimum " + std::to_string(min) +
                    ", past the fp16 range (magnitudes of 65520 and above round to inf)");
    return {min, code_reciprocal(d)};
}

} // namespace detail

struct q4_1 {
    using block_type = block_q4_1;
    static constexpr std::size_t block_elems = 32;
    static constexpr std::size_t block_bytes = 20;
    static constexpr ggml_type type_id = ggml_type::q4_1;
    static constexpr std::string_view name = "q4_1";

    // x[n] -> y[n/32]. Throws qtensor::error on NaN/Inf input or a d or min
    // past the fp16 range. saturated[i] = 1 where the code was clamped at 15.
    static void quantize_row(const float* x, block_q4_1* y, std::size_t n,
                             std::uint8_t* saturated = nullptr) {
        detail::check_finite(name, x, n);
        constexpr std::size_t half = block_elems / 2;
        for (std::size_t b = 0; b < n / block_elems; ++b, x += block_elems) {
            const auto [min, id] = detail::store_block_range(name, b, x, block_elems, 15.0f, y[b]);

            std::array<int, block_elems> code;
            for (std::size_t j = 0; j < block_elems; ++j) {
                const int unclamped = static_cast<int>(detail::fmul(x[j] - min, id) + 0.5f);
                code[j] = std::min(15, unclamped);
                if (saturated != nullptr) *saturated++ = unclamped > 15;
            }
            for (std::size_t j = 0; j < half; ++j)
                y[b].qs[j] = static_cast<std::uint8_t>(code[j] | (code[j + half] << 4));
        }
    }

    static void dequantize_row(const block_q4_1* x, float* y, std::size_t n) noexcept {
        constexpr std::size_t half = block_elems / 2;
        for (std::size_t b = 0; b < n / block_elems; ++b, y += block_elems) {
            const float d = fp16_to_fp32(x[b].d);
            const float m = fp16_to_fp32(x[b].m);
            for (std::size_t j = 0; j < half; ++j) {
                y[j] = detail::fmul(static_cast<float>(x[b].qs[j] & 0x0f), d) + m;
                y[j + half] = detail::fmul(static_cast<float>(x[b].qs[j] >> 4), d) + m;
            }
        }
    }
};

QTENSOR_END_NAMESPACE
