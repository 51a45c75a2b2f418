// qtensor/scheme/q5_0.hpp: Q5_0, 5-bit symmetric blocks of 32 (GGUF type 6),
// 5.5 bits per weight. Dot partner: Q8_0. llama.cpp's Q4_K_M files keep some
// tensors in it.
//
// Block layout, 22 bytes:
//   [0..1]   d       fp16 scale
//   [2..5]   qh[4]   bit 4 of every code: element j's in bit j of the
//                    little-endian uint32 qh (byte j / 8, bit j % 8)
//   [6..21]  qs[16]  bits 0..3 of the codes, as Q4_0's nibbles: byte j holds
//                    element j (low nibble) and element j + 16 (high nibble)
// Dequantize: w[j] = (code[j] - 16) * d, codes 0..31.
//
// Reference quantizer (ggml's quantize_row_q5_0_ref), per block: Q4_0's with
// 16 for 8:
//   max = the element of largest |x|, signed, first one on ties;
//   d   = max / -16, so max maps to code 0 (-16 * d = max) exactly;
//   id  = d ? 1/d : 0 (fp32, unrounded; the fp16 d is only stored);
//   code = min(31, trunc(x * id + 16.5))   (round half up, then + 16);
//   an element equal to -max would need code 32 and is clamped to 31.
// An all-zero block has max = +0, so d = 0 / -16 = -0.0: stored as 0x8000.
// Every code is 16 (bit 4 set, bits 0..3 clear): qh bytes 0xFF, qs bytes 0x00.
//
// Input: NaN/Inf and blocks whose d rounds to fp16 inf (|max| >= 16 * 65520)
// throw qtensor::error; ggml stores the inf.
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

struct block_q5_0 {
    fp16_t d;
    std::array<std::uint8_t, 4> qh;
    std::array<std::uint8_t, 16> qs;
};
static_assert(sizeof(block_q5_0) == 22);

namespace detail {

// The 5-bit codes of Q5_0 and Q5_1: element j (0..31) has bits 0..3 in qs
// (low nibble of qs[j] for j < 16, high nibble of qs[j - 16] otherwise) and
// bit 4 in bit j of qh, read as a little-endian uint32.
inline int five_bit_code(const std::array<std::uint8_t, 16>& qs, const std::array<std::uint8_t, 4>& qh,
                         std::size_t j) noexcept {
    const int low = j < 16 ? (qs[j] & 0x0f) : (qs[j - 16] >> 4);
    const int high = (qh[j / 8] >> (j % 8)) & 1;
    return low | (high << 4);
}

// code[32] (each 0..31) -> qs[16], qh[4].
inline void pack_five_bit_codes(const std::array<int, 32>& code, std::array<std::uint8_t, 16>& qs,
                                std::array<std::uint8_t, 4>& qh) noexcept {
    for (std::size_t j = 0; j < 16; ++j)
        qs[j] = static_cast<std::uint8_t>((code[j] & 0x0f) | ((code[j + 16] & 0x0f) << 4));
    qh.fill(0);
    for (std::size_t j = 0; j < 32; ++j)
        qh[j / 8] = static_cast<std::uint8_t>(qh[j / 8] | ((code[j] >> 4) << (j % 8)));
}

} // namespace detail

struct q5_0 {
    using block_type = block_q5_0;
    using dot_partner = q8_0;
    static constexpr std::size_t block_elems = 32;
    static constexpr std::size_t block_bytes = 22;
    static constexpr ggml_type type_id = ggml_type::q5_0;
    static constexpr std::string_view name = "q5_0";

    // x[n] -> y[n/32]. Throws qtensor::error on NaN/Inf input or a scale past
    // the fp16 range. saturated[i] = 1 where the code was clamped from 32 to 31.
    static void quantize_row(const float* x, block_q5_0* y, std::size_t n,
                             std::uint8_t* saturated = nullptr) {
        detail::check_finite(name, x, n);
        for (std::size_t b = 0; b < n / block_elems; ++b, x += block_elems) {
            const float d = detail::signed_absmax(x, block_elems) / -16.0f;
            const float id = detail::code_reciprocal(d);
            y[b].d = fp32_to_fp16(d);
            detail::check_fp16_scale(name, b, d, fp16_to_fp32(y[b].d));

            std::array<int, block_elems> code;
            for (std::size_t j = 0; j < block_elems; ++j) {
                // x * id is in [-16, 16], so + 16.5 is positive and truncation is floor.
                const int unclamped = static_cast<int>(detail::fmul(x[j], id) + 16.5f);
                code[j] = std::min(31, unclamped);
                if (saturated != nullptr) *saturated++ = unclamped > 31;
            }
            detail::pack_five_bit_codes(code, y[b].qs, y[b].qh);
        }
    }

    // Element j of block b is multiple_at(b, j) * d.
    static std::int8_t multiple_at(const block_q5_0& b, std::size_t j) noexcept {
        return static_cast<std::int8_t>(detail::five_bit_code(b.qs, b.qh, j) - 16);
    }

    static void dequantize_row(const block_q5_0* x, float* y, std::size_t n) noexcept {
        for (std::size_t b = 0; b < n / block_elems; ++b) {
            const float d = fp16_to_fp32(x[b].d);
            for (std::size_t j = 0; j < block_elems; ++j) *y++ = static_cast<float>(multiple_at(x[b], j)) * d;
        }
    }

    // Scalar reference against a Q8_0 activation row: per block
    // (dw * da) * sum_j (code[j] - 16) * qa[j], code j paired with qa[j];
    // one rounding per block, as in q4_0::dot_row, and the same budget.
    static float dot_row(const block_q5_0* w, const block_q8_0* a, std::size_t n) noexcept {
        return detail::dot_multiples_q8_0<q5_0>(w, a, n);
    }
};

QTENSOR_END_NAMESPACE
