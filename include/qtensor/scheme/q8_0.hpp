// qtensor/scheme/q8_0.hpp: Q8_0, 8-bit symmetric blocks of 32 (GGUF type 8).
//
// Block layout, 34 bytes:
//   [0..1]   d       fp16 scale
//   [2..33]  qs[32]  int8 codes, in element order
// Dequantize: w[j] = qs[j] * d.
//
// Reference quantizer (ggml's quantize_row_q8_0_ref), per block:
//   amax = max |x|,  d = amax / 127,  id = d ? 1/d : 0,
//   qs[j] = roundf(x[j] * id)   (ties away from zero; |x * id| <= 127 so
//                                 nothing is ever clamped),
//   stored scale = fp16(d); the codes use the unrounded fp32 id.
// Q8_0 is also the activation partner of Q4_0 and Q8_0 in dot products.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "qtensor/core/float_bits.hpp"
#include "qtensor/core/half.hpp"
#include "qtensor/scheme/scheme.hpp"

QTENSOR_BEGIN_NAMESPACE

struct block_q8_0 {
    fp16_t d;
    std::array<std::int8_t, 32> qs;
};
static_assert(sizeof(block_q8_0) == 34);

namespace detail {
// 1/d for the codes. When d is so small (|d| < 2^-128) that 1/d overflows, the
// fp16 scale is 0 anyway and the codes carry nothing; ggml's float-to-int
// conversion of inf would be undefined, so such blocks get zero codes.
inline float code_reciprocal(float d) noexcept {
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    return is_finite_bits(id) ? id : 0.0f;
}

// The symmetric rule of block b of `scheme` (Q8_0, q4_0_symmetric): the scale
// d = amax / levels over x[n], stored as fp16 in *stored (throws past the fp16
// range); returns 1/d for the codes round(x * (1/d)), which then lie in
// -levels..levels.
inline float symmetric_scale(std::string_view scheme, std::size_t b, const float* x, std::size_t n, float levels,
                             fp16_t* stored) {
    float amax = 0.0f;
    for (std::size_t j = 0; j < n; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / levels;
    *stored = fp32_to_fp16(d);
    check_fp16_scale(scheme, b, d, fp16_to_fp32(*stored));
    return code_reciprocal(d);
}

// The scalar dot of a row of S, whose weights are S::multiple_at(b, j) * d per
// 32-element block (Q5_0, IQ4_NL), with a Q8_0 row: per block
// (dw * da) * sum_j multiple_j * qa[j]. The integer sum (at most
// 32 * 127 * 128) and dw * da (two fp16 values) are exact: one rounding per
// block, and Q4_0's budget, |dot - exact| <= (n/32 + 1) * 2^-24 * sum_i |w_i * a_i|.
template <class S, class Block>
float dot_multiples_q8_0(const Block* w, const block_q8_0* a, std::size_t n) noexcept {
    float sum = 0.0f;
    for (std::size_t b = 0; b < n / 32; ++b) {
        std::int32_t sumi = 0;
        for (std::size_t j = 0; j < 32; ++j) sumi += S::multiple_at(w[b], j) * a[b].qs[j];
        const float dd = fp16_to_fp32(w[b].d) * fp16_to_fp32(a[b].d);
        sum += fmul(static_cast<float>(sumi), dd);
    }
    return sum;
}
} // namespace detail

struct q8_0 {
    using block_type = block_q8_0;
    using dot_partner = q8_0;
    static constexpr std::size_t block_elems = 32;
    static constexpr std::size_t block_bytes = 34;
    static constexpr ggml_type type_id = ggml_type::q8_0;
    static constexpr std::string_view name = "q8_0";

    // x[n] -> y[n/32]. Throws qtensor::error on NaN/Inf input or a scale past
    // the fp16 range (d = amax / 127 rounds to fp16 inf: d >= 65520). `saturated`, if given, is all zeros:
    // Q8_0 never clamps a code.
    static void quantize_row(const float* x, block_q8_0* y, std::size_t n,
                             std::uint8_t* saturated = nullptr) {
        detail::check_finite(name, x, n);
        for (std::size_t b = 0; b < n / block_elems; ++b, x += block_elems) {
            const float id = detail::symmetric_scale(name, b, x, block_elems, 127.0f, &y[b].d);
            for (std::size_t j = 0; j < block_elems; ++j)
                y[b].qs[j] = static_cast<std::int8_t>(std::round(detail::fmul(x[j], id)));
            if (saturated != nullptr)
                for (std::size_t j = 0; j < block_elems; ++j) *saturated++ = 0;
        }
    }

    static void dequantize_row(const block_q8_0* x, float* y, std::size_t n) noexcept {
        for (std::size_t b = 0; b < n / block_elems; ++b) {
            const float d = fp16_to_fp32(x[b].d);
            for (std::size_t j = 0; j < block_elems; ++j) *y++ = static_cast<float>(x[b].qs[j]) * d;
        }
    }

    // Scalar reference: sum over blocks of (dw * da) * sum_j qw[j] * qa[j].
    // The integer sum is exact and dw * da (two fp16 values) is exact in fp32,
    // so each block term is rounded once, then the terms are summed in float.
    // Error budget against the exact sum of the dequantized products:
    //   |dot - exact| <= (n/32 + 1) * 2^-24 * sum_i |w_i * a_i|.
    static float dot_row(const block_q8_0* w, const block_q8_0* a, std::size_t n) noexcept {
        float sum = 0.0f;
        for (std::size_t b = 0; b < n / block_elems; ++b) {
            std::int32_t sumi = 0;
            for (std::size_t j = 0; j < block_elems; ++j) sumi += w[b].qs[j] * a[b].qs[j];
            const float dd = fp16_to_fp32(w[b].d) * fp16_to_fp32(a[b].d);
            sum += detail::fmul(static_cast<float>(sumi), dd);
        }
        return sum;
    }
};

QTENSOR_END_NAMESPACE
