// qtensor/scheme/q5_k.hpp: Q5_K, 5-bit asymmetric super-blocks of 256
// (GGUF type 13), 5.5 bits per weight. Dot partner: Q8_K.
//
// Q4_K with a fifth bit per code: the same d, dmin and twelve bytes of 6-bit
// scales and mins (sub-block j = elements 32j .. 32j+31), the same four
// nibble chunks, and 32 bytes of high bits.
//
// Block layout, 176 bytes:
//   [0..1]    d           fp16 super-scale of the sc_j
//   [2..3]    dmin        fp16 super-scale of the m_j
//   [4..15]   scales[12]  sc_j and m_j, packed as in Q4_K
//   [16..47]  qh[32]      bit 4 of the codes: element 32s + l (sub-block s,
//                         l = 0..31) has it at bit s of qh[l]
//   [48..175] qs[128]     bits 3..0 of the codes, as Q4_K's qs: chunk c holds
//                         element 64c + l in the low nibble of qs[32c + l],
//                         element 64c + 32 + l in the high nibble
// Dequantize: w[e] = (d * sc_j) * q[e] - (dmin * m_j), q in 0..31, each
// product rounded to float before the subtraction.
//
// Reference quantizer (ggml's quantize_row_q5_K_ref): Q4_K's four steps
// (q4_k.hpp), with codes 0..31 and its own grid for the search of step 1,
// make_qkx2_quants with nmax 31, rmin -0.5, rdelta 0.1, nstep 15, squared
// error. Step 4 packs the low nibbles as Q4_K does and the fifth bits into qh.
//
// saturated[i] = 1 (the straight-through clip mask) as in Q4_K: x[i]'s
// step-3 code was clamped into 0..31, or its sub-block was skipped (D == 0).
//
// Input: NaN/Inf and blocks whose d or dmin would round to fp16 inf throw
// qtensor::error, as in Q4_K.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "qtensor/core/half.hpp"
#include "qtensor/scheme/k_quant.hpp"
#include "qtensor/scheme/q8_k.hpp"
#include "qtensor/scheme/scheme.hpp"

QTENSOR_BEGIN_NAMESPACE

struct block_q5_k {
    fp16_t d;
    fp16_t dmin;
    std::array<std::uint8_t, 12> scales;
    std::array<std::uint8_t, 32> qh;
    std::array<std::uint8_t, 128> qs;
};
static_assert(sizeof(block_q5_k) == 176);

struct q5_k {
    using block_type = block_q5_k;
    using dot_partner = q8_k;
    static constexpr std::size_t block_elems = 256;
    static constexpr std::size_t block_bytes = 176;
    static constexpr ggml_type type_id = ggml_type::q5_k;
    static constexpr std::string_view name = "q5_k";

    static constexpr std::size_t sub_elems = detail::k4_sub_elems; // 8 sub-blocks of 32
    static constexpr int code_max = 31;

    // 6-bit scale sc_j and min m_j of sub-block j, and the 5-bit code of element e.
    static int scale_of(const block_q5_k& b, std::size_t j) noexcept { return detail::k4_scale(b.scales, j); }
    static int min_of(const block_q5_k& b, std::size_t j) noexcept { return detail::k4_min(b.scales, j); }
    static int code_at(const block_q5_k& b, std::size_t e) noexcept {
        return detail::k4_nibble(b.qs, e) | (((b.qh[e % 32] >> (e / 32)) & 1) << 4);
    }

    // w = (d * sc_j) * q - dmin * m_j, both products rounded before the subtraction.
    static void dequantize_row(const block_q5_k* x, float* y, std::size_t n) noexcept {
        detail::dequantize_k4_row<q5_k>(x, y, n);
    }

    // x[n] -> y[n/256], Q4_K's steps with codes 0..31. Throws qtensor::error
    // on NaN/Inf input or a super-scale past the fp16 range.
    static void quantize_row(const float* x, block_q5_k* y, std::size_t n, std::uint8_t* saturated = nullptr) {
        detail::quantize_k4_row<q5_k>(x, y, n, saturated);
    }

    // Scalar reference against a Q8_K activation row: detail::dot_k4_row,
    // within (n/256 + 6) * 2^-24 * S as for Q4_K.
    static float dot_row(const block_q5_k* w, const block_q8_k* a, std::size_t n) noexcept {
        return detail::dot_k4_row<q5_k>(w, a, n);
    }

    // Step 1's search, and step 4: codes[256] -> qs[128] (bits 3..0) and
    // qh[32] (bit 4). Public for detail::quantize_k4_row.
    static constexpr detail::qkx2_grid grid{code_max, -0.5f, 0.1f, 15, false};
    static void pack_codes(const std::array<std::uint8_t, block_elems>& codes, block_q5_k& y) noexcept {
        detail::pack_k4_nibbles(codes, y.qs);
        for (std::size_t l = 0; l < 32; ++l) {
            std::uint8_t bits = 0;
            for (std::size_t s = 0; s < 8; ++s) bits = static_cast<std::uint8_t>(bits | ((codes[32 * s + l] >> 4) << s));
            y.qh[l] = bits;
        }
    }
};

QTENSOR_END_NAMESPACE
