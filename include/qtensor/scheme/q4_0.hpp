// qtensor/scheme/q4_0.hpp: Q4_0, 4-bit symmetric blocks of 32 (GGUF type 2).
// The format Gemma 4's QAT checkpoints were trained for.
//
// Block layout, 18 bytes:
//   [0..1]   d       fp16 scale
//   [2..17]  qs[16]  byte j: low nibble = code of element j,
//                            high nibble = code of element j + 16
// Dequantize: w[j] = (code[j] - 8) * d, codes 0..15.
//
// Reference quantizer (ggml's quantize_row_q4_0_ref), per block:
//   max = the element of largest |x|, signed, first one on ties (strict <);
//   d   = max / -8, so max maps to code 0 (-8 * d = max) exactly;
//   id  = d ? 1/d : 0 (fp32, unrounded; the fp16 d is only stored);
//   code = min(15, trunc(x * id + 8.5))   (round half up, then + 8);
//   an element equal to -max would need code 16 and is clamped to 15.
// An all-zero block has max = +0, so d = 0 / -8 = -0.0: stored as 0x8000,
// every byte 0x88.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "qtensor/core/float_bits.hpp"
#include "qtensor/core/half.hpp"
#include "qtensor/scheme/q8_0.hpp"
#include "qtensor/scheme/scheme.hpp"

QTENSOR_BEGIN_NAMESPACE

struct block_q4_0 {
    fp16_t d;
    std::array<std::uint8_t, 16> qs;
};
static_assert(sizeof(block_q4_0) == 18);

struct q4_0 {
    using block_type = block_q4_0;
    using dot_partner = q8_0;
    static constexpr std::size_t block_elems = 32;
    static constexpr std::size_t block_bytes = 18;
    static constexpr ggml_type type_id = ggml_type::q4_0;
    static constexpr std::string_view name = "q4_0";

    // x[n] -> y[n/32]. Throws qtensor::error on NaN/Inf input or a scale past
    // the fp16 range (d = max / -8 rounds to fp16 inf: |d| >= 65520).
    // saturated[i] = 1 where the code was clamped from 16 to 15.
    static void quantize_row(const float* x, block_q4_0* y, std::size_t n,
                             std::uint8_t* saturated = nullptr) {
        detail::check_finite(name, x, n);
        constexpr std::size_t half = block_elems / 2;
        for (std::size_t b = 0; b < n / block_elems; ++b, x += block_elems) {
            const float d = detail::signed_absmax(x, block_elems) / -8.0f;
            const float id = detail::code_reciprocal(d);
            y[b].d = fp32_to_fp16(d);
            detail::check_fp16_scale(name, b, d, fp16_to_fp32(y[b].d));

            std::array<int, block_elems> code;
            for (std::size_t j = 0; j < block_elems; ++j) {
                // x * id is in [-8, 8], so + 8.5 is positive and truncation is floor.
                const int unclamped = static_cast<int>(detail::fmul(x[j], id) + 8.5f);
                code[j] = std::min(15, unclamped);
                if (saturated != nullptr) *saturated++ = unclamped > 15;
            }
            for (std::size_t j = 0; j < half; ++j)
                y[b].qs[j] = static_cast<std::uint8_t>(code[j] | (code[j + half] << 4));
        }
    }

    static void dequantize_row(const block_q4_0* x, float* y, std::size_t n) noexcept {
        constexpr std::size_t half = block_elems / 2;
        for (std::size_t b = 0; b < n / block_elems; ++b, y += block_elems) {
            const float d = fp16_to_fp32(x[b].d);
            for (std::size_t j = 0; j < half; ++j) {
                y[j] = static_cast<float>((x[b].qs[j] & 0x0f) - 8) * d;
                y[j + half] = static_cast<float>((x[b].qs[j] >> 4) - 8) * d;
            }
        }
    }

    // Scalar reference against a Q8_0 activation row: per block
    // (dw * da) * sum_j (code[j] - 8) * qa[j], with code j paired with qa[j]
    // (low nibbles with qa[0..15], high nibbles with qa[16..31]).
    // Error budget as for q8_0::dot_row:
    //   |dot - exact| <= (n/32 + 1) * 2^-24 * sum_i |w_i * a_i|.
    static float dot_row(const block_q4_0* w, const block_q8_0* a, std::size_t n) noexcept {
        constexpr std::size_t half = block_elems / 2;
        float sum = 0.0f;
        for (std::size_t b = 0; b < n / block_elems; ++b) {
            std::int32_t sumi = 0;
            for (std::size_t j = 0; j < half; ++j) {
                sumi += ((w[b].qs[j] & 0x0f) - 8) * a[b].qs[j];
                sumi += ((w[b].qs[j] >> 4) - 8) * a[b].qs[j + half];
            }
            const float dd = fp16_to_fp32(w[b].d) * fp16_to_fp32(a[b].d);
            sum += detail::fmul(static_cast<float>(sumi), dd);
        }
        return sum;
    }
};

QTENSOR_END_NAMESPACE
