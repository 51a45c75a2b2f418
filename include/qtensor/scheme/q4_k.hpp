// qtensor/scheme/q4_k.hpp: Q4_K, 4-bit asymmetric super-blocks of 256
// (GGUF type 12), 4.5 bits per weight. Dot partner: Q8_K.
//
// Block layout, 144 bytes:
//   [0..1]    d           fp16 super-scale of the sc_j
//   [2..3]    dmin        fp16 super-scale of the m_j
//   [4..15]   scales[12]  8 six-bit scales sc_j and mins m_j (sub-block j =
//                         elements 32j .. 32j+31), packed as
//                           byte    bits 7..6        bits 5..0
//                           0..3    sc_{j+4} >> 4    sc_j        (j = 0..3)
//                           4..7    m_{j+4} >> 4     m_j
//                           byte    bits 7..4        bits 3..0
//                           8..11   m_{j+4} & 15     sc_{j+4} & 15
//   [16..143] qs[128]     4-bit codes in 4 chunks of 64 elements: chunk c
//                         uses qs[32c .. 32c+31]; element 64c + l is the low
//                         nibble of qs[32c + l], element 64c + 32 + l the high
//                         nibble (sub-block 2c low, 2c+1 high)
// Dequantize: w[e] = (d * sc_j) * q[e] - (dmin * m_j), q in 0..15, each
// product rounded to float before the subtraction.
//
// Reference quantizer (ggml's quantize_row_q4_K_ref), per super-block:
//   1. Fit each sub-block with make_qkx2_quants (k_quant.hpp), nmax 15,
//      weights av + |x| where av = sqrt(sum x^2 / 32) (float sum in element
//      order): scale_j, min_j >= 0 (x ~ scale_j * L - min_j) and codes L.
//   2. Quantize the fits to 6 bits against the largest ones:
//        sc_j = min(63, uint8(nearest_int(63 / max_scale * scale_j)))
//        m_j  = min(63, uint8(nearest_int(63 / max_min * min_j)))
//      (63 / 0 is taken as 0). The uint8 cast comes before the min, as in
//      ggml: a negative value wraps and then clamps to 63.
//      d = fp16(max_scale / 63), dmin = fp16(max_min / 63), always written.
//   3. Requantize against the stored values: D = fp32(d) * sc_j,
//      L = clamp(nearest_int((x + fp32(dmin) * m_j) / D), 0, 15) with a true
//      division. If D == 0 the sub-block keeps the search's codes from step 1.
//   4. Pack the codes as drawn above.
//
// saturated[i] = 1 (the straight-through clip mask) when, with the
// super-block's scales held fixed, x[i]'s output does not follow small
// changes of x[i]: its step-3 code was clamped into 0..15, or its sub-block
// was skipped (D == 0).
//
// Input: NaN/Inf and blocks whose d or dmin would round to fp16 inf
// (max_scale or max_min >= 63 * 65520) throw qtensor::error. There is no
// float-to-int conversion (nearest_int is bit manipulation), so no finite
// input reaches undefined behaviour.
//
// The code below, in order: the block struct, the readers of its fields,
// dequantize_row, quantize_row, dot_row, and step 4. Steps 1 to 3, the
// dequantization and the dot product are the ones Q5_K shares, in
// k_quant.hpp (the search, make_qkx2_quants, is shared with Q2_K too).
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

struct block_q4_k {
    fp16_t d;
    fp16_t dmin;
    std::array<std::uint8_t, 12> scales;
    std::array<std::uint8_t, 128> qs;
};
static_assert(sizeof(block_q4_k) == 144);

struct q4_k {
    using block_type = block_q4_k;
    using dot_partner = q8_k;
    static constexpr std::size_t block_elems = 256;
    static constexpr std::size_t block_bytes = 144;
    static constexpr ggml_type type_id = ggml_type::q4_k;
    static constexpr std::string_view name = "q4_k";

    static constexpr std::size_t sub_elems = detail::k4_sub_elems; // 8 sub-blocks of 32
    static constexpr int code_max = 15; // codes are 0..code_max

    // 6-bit scale sc_j and min m_j of sub-block j, and the 4-bit code of element e.
    static int scale_of(const block_q4_k& b, std::size_t j) noexcept { return detail::k4_scale(b.scales, j); }
    static int min_of(const block_q4_k& b, std::size_t j) noexcept { return detail::k4_min(b.scales, j); }
    static int code_at(const block_q4_k& b, std::size_t e) noexcept { return detail::k4_nibble(b.qs, e); }

    // w = (d * sc_j) * q - dmin * m_j, both products rounded before the subtraction.
    static void dequantize_row(const block_q4_k* x, float* y, std::size_t n) noexcept {
        detail::dequantize_k4_row<q4_k>(x, y, n);
    }

    // x[n] -> y[n/256], steps 1 to 4 of the banner per super-block. Throws
    // qtensor::error on NaN/Inf input or a super-scale past the fp16 range.
    // saturated[n]: see the banner.
    static void quantize_row(const float* x, block_q4_k* y, std::size_t n, std::uint8_t* saturated = nullptr) {
        detail::quantize_k4_row<q4_k>(x, y, n, saturated);
    }

    // Scalar reference against a Q8_K activation row: detail::dot_k4_row, whose
    // comment gives the sums and the error budget, (n/256 + 6) * 2^-24 * S.
    static float dot_row(const block_q4_k* w, const block_q8_k* a, std::size_t n) noexcept {
        return detail::dot_k4_row<q4_k>(w, a, n);
    }

    // Step 1's search, and step 4: codes[256] -> qs[128]. Public for
    // detail::quantize_k4_row.
    static constexpr detail::qkx2_grid grid{code_max, -1.0f, 0.1f, 20, false};
    static void pack_codes(const std::array<std::uint8_t, block_elems>& codes, block_q4_k& y) noexcept {
        detail::pack_k4_nibbles(codes, y.qs);
    }
};

QTENSOR_END_NAMESPACE
