// qtensor/scheme/q2_k.hpp: Q2_K, 2-bit asymmetric super-blocks of 256
// (GGUF type 10), 2.625 bits per weight. Dot partner: Q8_K.
//
// Block layout, 84 bytes:
//   [0..15]   scales[16]  byte j: low nibble = scale s_j, high nibble = min m_j
//                         of sub-block j (elements 16j .. 16j+15)
//   [16..79]  qs[64]      2-bit codes, two halves of 128 elements:
//                         element e = 128h + 32s + l (h 0..1, s 0..3, l 0..31)
//                         sits in qs[32h + l] at bits 2s..2s+1
//   [80..81]  d           fp16 super-scale of the s_j
//   [82..83]  dmin        fp16 super-scale of the m_j
//
//     qs[32h + l] = | e+96 | e+64 | e+32 | e |   with e = 128h + l
//                    bit 7 ............... 0
//
// Dequantize: w[e] = (d * s_j) * q[e] - (dmin * m_j), q in 0..3, each product
// rounded to float before the subtraction.
//
// Reference quantizer (ggml's quantize_row_q2_K_ref), per super-block:
//   1. Fit each sub-block with make_qkx2_quants (k_quant.hpp), weights
//      |x|, nmax 3: scale_j, min_j >= 0 (x ~ scale_j * L - min_j) and codes L.
//   2. Quantize the fits to 4 bits against the largest ones:
//        s_j = nearest_int(15 / max_scale * scale_j),  d    = fp16(max_scale / 15)
//        m_j = nearest_int(15 / max_min * min_j),      dmin = fp16(max_min / 15)
//      (all s_j = 0 and d = 0 if max_scale is 0; likewise the mins). Each
//      nearest_int is stored into its byte modulo 256, as ggml's C does: a
//      negative scale_j wraps into the high nibble, then the min is OR-ed in.
//   3. Requantize against the stored values: D = fp32(d) * s_j,
//      L = clamp(nearest_int((x + fp32(dmin) * m_j) / D), 0, 3) with a true
//      division. If D == 0 the sub-block keeps the search's codes from step 1
//      (which need not be 0; its output is -dmin * m_j whatever they are).
//   4. Pack the codes as drawn above.
// nearest_int is half to even; beyond 2^22 it returns ggml's (well-defined)
// garbage, which the clamp in step 3 then folds into 0..3 exactly as ggml does.
//
// saturated[i] = 1 (the straight-through clip mask) when, with the
// super-block's scales held fixed, x[i]'s output does not follow small
// changes of x[i]: its step-3 code was clamped into 0..3, or its sub-block was
// skipped (D == 0). An all-zero super-block has d = 0 and is skipped whole.
//
// Input: NaN/Inf and blocks whose d or dmin would round to fp16 inf
// (max_scale or max_min >= 15 * 65520) throw qtensor::error. There is no
// float-to-int conversion anywhere (nearest_int is bit manipulation), so no
// finite input reaches undefined behaviour.
//
// The code below, in order: the block struct, the readers of its fields,
// dequantize_row, quantize_row with its steps 1 to 4, then dot_row. Step 1's
// search (make_qkx2_quants) and step 3's requantize_sub_block are plain
// functions in k_quant.hpp, shared with Q4_K; the 2-bit planes of step 4
// (two_bit_code, pack_two_bit_codes) are shared with Q3_K there too.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "qtensor/core/float_bits.hpp"
#include "qtensor/core/half.hpp"
#include "qtensor/scheme/k_quant.hpp"
#include "qtensor/scheme/q8_k.hpp"
#include "qtensor/scheme/scheme.hpp"

QTENSOR_BEGIN_NAMESPACE

struct block_q2_k {
    std::array<std::uint8_t, 16> scales;
    std::array<std::uint8_t, 64> qs;
    fp16_t d;
    fp16_t dmin;
};
static_assert(sizeof(block_q2_k) == 84);

struct q2_k {
    using block_type = block_q2_k;
    using dot_partner = q8_k;
    static constexpr std::size_t block_elems = 256;
    static constexpr std::size_t block_bytes = 84;
    static constexpr ggml_type type_id = ggml_type::q2_k;
    static constexpr std::string_view name = "q2_k";

    static constexpr std::size_t sub_elems = 16;
    static constexpr std::size_t sub_blocks = block_elems / sub_elems;
    static constexpr int code_max = 3; // codes are 0..code_max

    // 4-bit scale s_j and min m_j of sub-block j, and the 2-bit code of element e.
    static int scale_of(const block_q2_k& b, std::size_t j) noexcept { return b.scales[j] & 0x0f; }
    static int min_of(const block_q2_k& b, std::size_t j) noexcept { return b.scales[j] >> 4; }
    static int code_at(const block_q2_k& b, std::size_t e) noexcept { return detail::two_bit_code(b.qs, e); }

    // w = (d * s_j) * q - dmin * m_j, both products rounded before the subtraction.
    static void dequantize_row(const block_q2_k* x, float* y, std::size_t n) noexcept {
        for (std::size_t b = 0; b < n / block_elems; ++b) {
            const float d = fp16_to_fp32(x[b].d);
            const float dmin = fp16_to_fp32(x[b].dmin);
            for (std::size_t j = 0; j < sub_blocks; ++j) {
                const float dl = d * static_cast<float>(scale_of(x[b], j));
                const float ml = detail::fmul(dmin, static_cast<float>(min_of(x[b], j)));
                for (std::size_t e = sub_elems * j; e < sub_elems * (j + 1); ++e)
                    *y++ = detail::fmul(dl, static_cast<float>(code_at(x[b], e))) - ml;
            }
        }
    }

    // x[n] -> y[n/256], steps 1 to 4 of the banner per super-block. Throws
    // qtensor::error on NaN/Inf input or a super-scale past the fp16 range.
    // saturated[n]: see the banner.
    static void quantize_row(const float* x, block_q2_k* y, std::size_t n, std::uint8_t* saturated = nullptr) {
        detail::check_finite(name, x, n);
        for (std::size_t b = 0; b < n / block_elems; ++b, x += block_elems) {
            std::array<std::uint8_t, block_elems> codes;
            const auto fits = fit_sub_blocks(x, codes);
            quantize_scales(fits, y[b], b);
            requantize(x, y[b], codes, saturated);
            detail::pack_two_bit_codes(codes, y[b].qs);
            if (saturated != nullptr) saturated += block_elems;
        }
    }

private:
    static constexpr detail::qkx2_grid grid{code_max, -0.5f, 0.1f, 15, true};

    // Step 1: x[256] -> one fit per sub-block, codes[256] from the search.
    static std::array<detail::qkx2_fit, sub_blocks>
    fit_sub_blocks(const float* x, std::array<std::uint8_t, block_elems>& codes) noexcept {
        std::array<detail::qkx2_fit, sub_blocks> fits;
        for (std::size_t j = 0; j < sub_blocks; ++j) {
            const float* xs = x + sub_elems * j;
            std::array<float, sub_elems> weights;
            for (std::size_t i = 0; i < sub_elems; ++i) weights[i] = std::fabs(xs[i]);
            fits[j] = detail::make_qkx2_quants<sub_elems>(xs, weights.data(), grid,
                                                          codes.data() + sub_elems * j);
        }
        return fits;
    }

    // Step 2: the fits -> scales[16], d, dmin.
    static void quantize_scales(const std::array<detail::qkx2_fit, sub_blocks>& fits,
                                block_q2_k& y, std::size_t block) {
        const detail::qkx2_fit largest = detail::largest_fit(fits);
        y.scales.fill(0);
        y.d = fp32_to_fp16(0.0f);
        y.dmin = fp32_to_fp16(0.0f);
        if (largest.scale > 0.0f) {
            const float iscale = 15.0f / largest.scale;
            for (std::size_t j = 0; j < sub_blocks; ++j)
                y.scales[j] = static_cast<std::uint8_t>(
                    detail::nearest_int(detail::fmul(iscale, fits[j].scale)));
            y.d = fp32_to_fp16(largest.scale / 15.0f);
        }
        if (largest.min > 0.0f) {
            const float iscale = 15.0f / largest.min;
            for (std::size_t j = 0; j < sub_blocks; ++j) {
                const int m = detail::nearest_int(detail::fmul(iscale, fits[j].min));
                y.scales[j] = static_cast<std::uint8_t>(y.scales[j] | (static_cast<unsigned>(m) << 4));
            }
            y.dmin = fp32_to_fp16(largest.min / 15.0f);
        }
        detail::check_fp16_scale(name, block, largest.scale / 15.0f, fp16_to_fp32(y.d));
        detail::check_fp16_scale(name, block, largest.min / 15.0f, fp16_to_fp32(y.dmin));
    }

    // Step 3: codes against the stored d * s_j and dmin * m_j.
    static void requantize(const float* x, const block_q2_k& y, std::array<std::uint8_t, block_elems>& codes,
                           std::uint8_t* saturated) noexcept {
        const float d = fp16_to_fp32(y.d);
        const float dmin = fp16_to_fp32(y.dmin);
        for (std::size_t j = 0; j < sub_blocks; ++j) {
            const float D = d * static_cast<float>(scale_of(y, j));
            const float dm = detail::fmul(dmin, static_cast<float>(min_of(y, j)));
            const std::size_t first = sub_elems * j;
            detail::requantize_sub_block(x + first, sub_elems, D, dm, code_max, codes.data() + first,
                                         saturated != nullptr ? saturated + first : nullptr);
        }
    }

public:
    // Scalar reference against a Q8_K activation row (docs/schemes.md section 18),
    // per super-block with dy = a.d:
    //   (dy * d) * sum_j s_j * (sum_{e in j} q[e] * qa[e])
    //     - (dy * dmin) * sum_j m_j * bsums[j]
    // (a sub-block of 16 is one Q8_K bsum). The integer sums are exact in int32
    // and below 2^24, so exact as floats; each block term is then at most 4
    // roundings, and the terms are summed in float. With S = sum_i (|d s_j q_i
    // a_i| + |dmin m_j a_i|) over dequantized a_i, the result is within
    // (n/256 + 6) * 2^-24 * S of the exact sum of the dequantized products
    // w_i * a_i (for n < 2^28): 4 roundings per block term, n/256 - 1 for the
    // float sum, 2 for the roundings inside dequantized w and a, one more for
    // second-order terms.
    static float dot_row(const block_q2_k* w, const block_q8_k* a, std::size_t n) noexcept {
        float sum = 0.0f;
        for (std::size_t b = 0; b < n / block_elems; ++b) {
            std::int32_t isum = 0;
            std::int32_t summs = 0;
            for (std::size_t j = 0; j < sub_blocks; ++j) {
                std::int32_t sub = 0;
                for (std::size_t e = sub_elems * j; e < sub_elems * (j + 1); ++e)
                    sub += code_at(w[b], e) * a[b].qs[e];
                isum += scale_of(w[b], j) * sub;
                summs += min_of(w[b], j) * a[b].bsums[j];
            }
            const float dall = a[b].d * fp16_to_fp32(w[b].d);
            const float dmin = a[b].d * fp16_to_fp32(w[b].dmin);
            sum += detail::fmul(dall, static_cast<float>(isum)) - detail::fmul(dmin, static_cast<float>(summs));
        }
        return sum;
    }
};

QTENSOR_END_NAMESPACE
