// qtensor/scheme/tq2_0.hpp: TQ2_0, 2-bit codes on a fixed four-level grid
// with one fp16 scale per 256 weights, 2.0625 bits per weight: the 2-bit
// layers of the mobile policy (gemma4/policy.hpp). Dot partner: Q8_K.
//
// Block layout (GGUF type 35), 66 bytes:
//   [0..63]   qs[64]  2-bit codes, element e = 128h + 32s + l (h 0..1, s 0..3,
//                     l 0..31) in qs[32h + l] at bits 2s..2s+1 (Q2_K's planes)
//   [64..65]  d       fp16 scale
// Dequantize: w[e] = (q[e] - 1) * d, q in 0..3: the levels -d, 0, d, 2d.
//
// The quantizer is qtensor's own. ggml's (quantize_row_tq2_0_ref) writes
// ternary weights, codes 0..2 with d = max|x|, for models trained ternary;
// this one also uses the fourth level, 2d, which ggml's dequantization and
// dot product read like the others, and picks d by least squared error. A
// ternary block is one of its candidates (t = 1 below), so ternary weights
// pack exactly here too. Why 2-bit layers use TQ2_0 and not Q2_K: Q2_K takes
// 2.625 bits, 27% more, and its 16 scales and mins per block are refitted on
// every requantization, so they move under a model during QAT; one scale per
// block on a fixed grid is a target QAT can learn (docs/mobile.md).
//
// Quantizer, per block of 256:
//   1. m = the element of largest magnitude, with its sign (the first of
//      equal ones); d has m's sign, so m can take the level 2d.
//   2. For each t in 1, 1.25, ..., 4 (13 steps): d_t = fp16(m / t), codes
//      q = clamp(nearest_int(x * (1 / d_t)) + 1, 0, 3) with the fp32
//      reciprocal, and the squared error sum (x - (q - 1) d_t)^2 in fp32.
//      t = 1 is the ternary grid, t = 2 puts m on 2d, larger t give up the
//      block's tail for finer steps in its bulk. The d_t of least error wins
//      (the first of equal ones).
//   3. d = that d_t, with its codes. A block whose every d_t rounds to 0 in
//      fp16 (all-zero blocks, |m| at most 2^-25) keeps d = 0, codes 1.
// saturated[i] = 1 where x[i]'s code was clamped into 0..3.
// Input: NaN/Inf and a block whose m is past the fp16 range (|m| >= 65520,
// so that d_1 rounds to inf) throw qtensor::error.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string_view>

#include "qtensor/core/float_bits.hpp"
#include "qtensor/core/half.hpp"
#include "qtensor/scheme/k_quant.hpp"
#include "qtensor/scheme/q8_0.hpp"
#include "qtensor/scheme/q8_k.hpp"
#include "qtensor/scheme/scheme.hpp"

QTENSOR_BEGIN_NAMESPACE

struct block_tq2_0 {
    std::array<std::uint8_t, 64> qs;
    fp16_t d;
};
static_assert(sizeof(block_tq2_0) == 66);

struct tq2_0 {
    using block_type = block_tq2_0;
    using dot_partner = q8_k;
    static constexpr std::size_t block_elems = 256;
    static constexpr std::size_t block_bytes = 66;
    static constexpr ggml_type type_id = ggml_type::tq2_0;
    static constexpr std::string_view name = "tq2_0";

    static constexpr int code_max = 3;    // codes are 0..code_max
    static constexpr int code_offset = 1; // the code of 0
    static constexpr int steps = 13;      // step 2's candidates t = 1 + k / 4

    static int code_at(const block_tq2_0& b, std::size_t e) noexcept { return detail::two_bit_code(b.qs, e); }

    static void dequantize_row(const block_tq2_0* x, float* y, std::size_t n) noexcept {
        for (std::size_t b = 0; b < n / block_elems; ++b) {
            const float d = fp16_to_fp32(x[b].d);
            for (std::size_t e = 0; e < block_elems; ++e)
                *y++ = static_cast<float>(code_at(x[b], e) - code_offset) * d;
        }
    }

    // x[n] -> y[n/256], steps 1 to 3 of the banner. saturated[n]: see the banner.
    static void quantize_row(const float* x, block_tq2_0* y, std::size_t n, std::uint8_t* saturated = nullptr) {
        detail::check_finite(name, x, n);
        for (std::size_t b = 0; b < n / block_elems; ++b, x += block_elems) {
            const float m = detail::signed_absmax(x, block_elems);
            detail::check_fp16_scale(name, b, m, fp16_to_fp32(fp32_to_fp16(m)));
            std::array<std::uint8_t, block_elems> codes, best_codes;
            best_codes.fill(code_offset);
            fp16_t best_d = fp32_to_fp16(0.0f);
            float best_error = std::numeric_limits<float>::infinity();
            for (int k = 0; k < steps; ++k) {
                const fp16_t d = fp32_to_fp16(m / (1.0f + 0.25f * static_cast<float>(k)));
                if (fp16_to_fp32(d) == 0.0f) continue;
                const float error = fit(x, fp16_to_fp32(d), codes);
                if (error < best_error) {
                    best_error = error;
                    best_d = d;
                    best_codes = codes;
                }
            }
            y[b].d = best_d;
            detail::pack_two_bit_codes(best_codes, y[b].qs);
            if (saturated != nullptr) {
                const float id = detail::code_reciprocal(fp16_to_fp32(best_d));
                for (std::size_t i = 0; i < block_elems; ++i)
                    *saturated++ = id != 0.0f && unclamped(x[i], id) != best_codes[i];
            }
        }
    }

    // Scalar reference against a Q8_K activation row, per block:
    //   (d * a.d) * (sum_e q[e] * qa[e] - sum_j bsums[j])
    // (the bsums add up the block's qa: the offset of 1 taken out). The
    // integer sums are exact; one rounding per block term, n/256 - 1 for the
    // float sum: within (n/256 + 2) * 2^-24 * sum_i |w_i a_i| of the exact sum
    // of the dequantized products.
    static float dot_row(const block_tq2_0* w, const block_q8_k* a, std::size_t n) noexcept {
        float sum = 0.0f;
        for (std::size_t b = 0; b < n / block_elems; ++b) {
            std::int32_t isum = 0;
            for (std::size_t e = 0; e < block_elems; ++e) isum += code_at(w[b], e) * a[b].qs[e];
            for (std::int16_t s : a[b].bsums) isum -= code_offset * s;
            sum += detail::fmul(fp16_to_fp32(w[b].d) * a[b].d, static_cast<float>(isum));
        }
        return sum;
    }

private:
    // nearest_int(x * id) + 1, before the clamp (|x * id| <= 4 and a bit here).
    static int unclamped(float x, float id) noexcept { return detail::nearest_int(detail::fmul(x, id)) + code_offset; }

    // Codes of x[256] against step d, and their squared error.
    static float fit(const float* x, float d, std::array<std::uint8_t, block_elems>& codes) noexcept {
        const float id = detail::code_reciprocal(d);
        float error = 0.0f;
        for (std::size_t i = 0; i < block_elems; ++i) {
            const int q = std::clamp(unclamped(x[i], id), 0, code_max);
            codes[i] = static_cast<std::uint8_t>(q);
            const float diff = x[i] - detail::fmul(static_cast<float>(q - code_offset), d);
            error += detail::fmul(diff, diff);
        }
        return error;
    }
};

QTENSOR_END_NAMESPACE
