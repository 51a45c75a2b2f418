// qtensor/scheme/q6_k.hpp: Q6_K, 6-bit symmetric super-blocks of 256
// (GGUF type 14), 6.5625 bits per weight. Dot partner: Q8_K. Published
// "Q4_0" GGUF files keep some tensors in it.
//
// Block layout, 210 bytes:
//   [0..127]    ql[128]     low 4 bits of the codes
//   [128..191]  qh[64]      high 2 bits of the codes
//   [192..207]  scales[16]  int8 scale s_j of sub-block j (elements 16j .. 16j+15)
//   [208..209]  d           fp16 super-scale of the s_j
// Element e = 128h + 32s + l (h 0..1, s 0..3, l 0..31) has a 6-bit code
// c = lo | hi << 4 with
//   lo in ql[64h + 32(s % 2) + l], bits 4(s / 2) .. 4(s / 2) + 3
//   hi in qh[32h + l],             bits 2s .. 2s + 1
//
//     ql[64h + l]      = | e+64 lo | e    lo |     with e = 128h + l
//     ql[64h + 32 + l] = | e+96 lo | e+32 lo |
//     qh[32h + l]      = | e+96 hi | e+64 hi | e+32 hi | e hi |
//
// Dequantize: w[e] = (d * s_j) * (c - 32), c - 32 in -32..31, each product
// rounded to float.
//
// Reference quantizer (ggml's quantize_row_q6_K_ref), per super-block:
//   1. Fit each sub-block with make_qx_quants (below), nmax 32, weights x^2:
//      a signed scale_j and codes L in 0..63.
//   2. max_scale = the scale_j of largest |scale_j| (strict >, first wins).
//      If |max_scale| < 1e-15 the block is all zero bytes (d = +0). Otherwise
//        iscale = -128 / max_scale,   d = fp16(1 / iscale),
//        s_j = min(127, nearest_int(iscale * scale_j))   (so max_scale -> -128).
//   3. Requantize against the stored values: D = fp32(d) * s_j,
//      L = clamp(nearest_int(x / D), -32, 31) + 32 with a true division. If
//      D == 0 the sub-block keeps the search's codes from step 1 (its output
//      is +-0 whatever they are).
//   4. Pack the codes as drawn above.
// nearest_int is half to even (core/float_bits.hpp). Every product that feeds
// a sum (or nearest_int's hidden add) goes through detail::fmul, w*x*l is
// (w*x)*l and w*l*l is (w*l)*l, and the sums run in element order: with FMA
// contraction, ggml's own code changes 290 bytes of the golden Q6_K file.
//
// saturated[i] = 1 (the straight-through clip mask) when, with the
// super-block's scales held fixed, x[i]'s output does not follow small
// changes of x[i]: its step-3 code was clamped into -32..31, or its sub-block
// was skipped (D == 0; the whole block when it is all zero).
//
// Input: NaN/Inf, blocks whose d rounds to fp16 inf (|max_scale| >= 128 *
// 65520, about |x| >= 2.7e8), and blocks whose scale search overflows float
// (|x| of about 1e12 and more, where 32 * x^3 does) throw qtensor::error. The
// last ones need a scale far past the fp16 range as well; ggml can then skip
// a sub-block's NaN scale and store a finite but meaningless block.
#pragma once

#include <algorithm>
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

struct block_q6_k {
    std::array<std::uint8_t, 128> ql;
    std::array<std::uint8_t, 64> qh;
    std::array<std::int8_t, 16> scales;
    fp16_t d;
};
static_assert(sizeof(block_q6_k) == 210);

namespace detail {

// ggml's make_qx_quants for N elements with rmse_type 1 and no importance
// weights (the only call Q6_K's reference makes): x[N] -> codes L[N] in
// 0..2*nmax-1 (the signed code l plus nmax) and the returned scale, x ~ scale * l.
//   1. max = the element of largest |x| (strict >, first wins); |max| < 1e-15:
//      all L = 0, scale 0.
//   2. iscale = -nmax / max; l = clamp(nearest_int(iscale * x), -nmax, nmax - 1);
//      with weights w = x^2, scale = sum w*x*l / sum w*l*l (0 if the latter is
//      0) and best = scale * sum w*x*l.
//   3. For is = -9..9 (not 0), iscale = -(nmax + 0.1 * is) / max: the trial's
//      codes replace L (and scale, best) when sum w*l*l > 0 and
//      (sum w*x*l)^2 > best * sum w*l*l, which is the weighted error of its
//      least-squares fit being strictly smaller. Overflowing products stay inf
//      and compare as ggml's do.
template <std::size_t N>
float make_qx_quants(const float* x, int nmax, std::uint8_t* L) noexcept {
    const float max = signed_absmax(x, N);
    if (std::fabs(max) < group_max_eps) {
        std::fill(L, L + N, std::uint8_t{0});
        return 0.0f;
    }

    // Signed codes of a trial iscale, and its sums sum w*x*l, sum w*l*l.
    struct trial {
        std::array<int, N> l;
        float sumlx = 0.0f;
        float suml2 = 0.0f;
    };
    const auto run = [&](float iscale) {
        trial t;
        for (std::size_t i = 0; i < N; ++i) {
            t.l[i] = std::clamp(nearest_int(fmul(iscale, x[i])), -nmax, nmax - 1);
            const float l = static_cast<float>(t.l[i]);
            const float w = x[i] * x[i];
            t.sumlx += fmul(fmul(w, x[i]), l);
            t.suml2 += fmul(fmul(w, l), l);
        }
        return t;
    };
    const auto keep = [&](const trial& t) {
        for (std::size_t i = 0; i < N; ++i) L[i] = static_cast<std::uint8_t>(t.l[i] + nmax);
    };

    const float fnmax = static_cast<float>(nmax);
    const trial first = run(-fnmax / max);
    keep(first);
    float scale = first.suml2 != 0.0f ? first.sumlx / first.suml2 : 0.0f;
    float best = scale * first.sumlx;
    for (int is = -9; is <= 9; ++is) {
        if (is == 0) continue;
        const trial t = run(-(fnmax + fmul(0.1f, static_cast<float>(is))) / max);
        if (t.suml2 > 0.0f && t.sumlx * t.sumlx > best * t.suml2) {
            keep(t);
            scale = t.sumlx / t.suml2;
            best = scale * t.sumlx;
        }
    }
    return scale;
}

} // namespace detail

struct q6_k {
    using block_type = block_q6_k;
    using dot_partner = q8_k;
    static constexpr std::size_t block_elems = 256;
    static constexpr std::size_t block_bytes = 210;
    static constexpr ggml_type type_id = ggml_type::q6_k;
    static constexpr std::string_view name = "q6_k";

    static constexpr std::size_t sub_elems = 16;
    static constexpr std::size_t sub_blocks = block_elems / sub_elems;
    static constexpr int code_offset = 32; // code c stands for c - 32

    // The int8 scale s_j of sub-block j, and the 6-bit code c (0..63) of element e.
    static int scale_of(const block_q6_k& b, std::size_t j) noexcept { return b.scales[j]; }
    static int code_at(const block_q6_k& b, std::size_t e) noexcept {
        const std::size_t h = e / 128, s = (e % 128) / 32, l = e % 32;
        const int lo = (b.ql[64 * h + 32 * (s % 2) + l] >> (4 * (s / 2))) & 15;
        const int hi = (b.qh[32 * h + l] >> (2 * s)) & 3;
        return lo | (hi << 4);
    }

    // w = (d * s_j) * (c - 32).
    static void dequantize_row(const block_q6_k* x, float* y, std::size_t n) noexcept {
        for (std::size_t b = 0; b < n / block_elems; ++b) {
            const float d = fp16_to_fp32(x[b].d);
            for (std::size_t e = 0; e < block_elems; ++e) {
                const float dl = d * static_cast<float>(scale_of(x[b], e / sub_elems));
                *y++ = dl * static_cast<float>(code_at(x[b], e) - code_offset);
            }
        }
    }

    // x[n] -> y[n/256]. Throws qtensor::error on NaN/Inf input, a super-scale
    // past the fp16 range, or a scale search that overflows. saturated[n]: see
    // the banner.
    static void quantize_row(const float* x, block_q6_k* y, std::size_t n,
                             std::uint8_t* saturated = nullptr) {
        detail::check_finite(name, x, n);
        for (std::size_t b = 0; b < n / block_elems; ++b, x += block_elems) {
            std::array<std::uint8_t, block_elems> codes;
            std::array<float, sub_blocks> scales;
            for (std::size_t j = 0; j < sub_blocks; ++j) {
                scales[j] = detail::make_qx_quants<sub_elems>(x + sub_elems * j, 32,
                                                              codes.data() + sub_elems * j);
                detail::check_search(name, x + sub_elems * j, sub_elems, scales[j], b, j);
            }
            const float max_scale = detail::signed_absmax(scales.data(), sub_blocks);

            y[b] = block_q6_k{};
            if (std::fabs(max_scale) < detail::group_max_eps) {
                if (saturated != nullptr) saturated = std::fill_n(saturated, block_elems, std::uint8_t{1});
                continue;
            }
            const float iscale = -128.0f / max_scale;
            y[b].d = fp32_to_fp16(1.0f / iscale);
            detail::check_fp16_scale(name, b, 1.0f / iscale, fp16_to_fp32(y[b].d));
            for (std::size_t j = 0; j < sub_blocks; ++j)
                y[b].scales[j] = static_cast<std::int8_t>(
                    std::min(127, detail::nearest_int(detail::fmul(iscale, scales[j]))));

            requantize(x, y[b], codes, saturated);
            pack_codes(codes, y[b]);
            if (saturated != nullptr) saturated += block_elems;
        }
    }

    // Scalar reference against a Q8_K activation row, per super-block with
    // dy = a.d:
    //   (fp32(d) * dy) * sum_j s_j * (sum_{e in j} (c[e] - 32) * qa[e]).
    // The integer sum is exact in int32 (|sum| <= 16 * 128 * 16 * 32 * 127)
    // and may exceed 2^24, rounding once when converted to float; each block
    // term is then at most 3 roundings, and the terms are summed in float.
    // (ggml's generic C spreads the sum over 8 float lanes: a different order,
    // within the same budget.) With S = sum_i |w_i * a_i| over dequantized
    // w_i and a_i, the result is within (n/256 + 6) * 2^-24 * S of the exact
    // sum of the products w_i * a_i (for n < 2^28): 3 roundings per block
    // term, n/256 - 1 for the float sum, 3 inside dequantized w and a, one
    // more for second-order terms.
    static float dot_row(const block_q6_k* w, const block_q8_k* a, std::size_t n) noexcept {
        float sum = 0.0f;
        for (std::size_t b = 0; b < n / block_elems; ++b) {
            std::int32_t isum = 0;
            for (std::size_t j = 0; j < sub_blocks; ++j) {
                std::int32_t sub = 0;
                for (std::size_t e = sub_elems * j; e < sub_elems * (j + 1); ++e)
                    sub += (code_at(w[b], e) - code_offset) * a[b].qs[e];
                isum += scale_of(w[b], j) * sub;
            }
            const float d = fp16_to_fp32(w[b].d) * a[b].d;
            sum += detail::fmul(d, static_cast<float>(isum));
        }
        return sum;
    }

private:
    // Step 3: codes against the stored d * s_j.
    static void requantize(const float* x, const block_q6_k& y,
                           std::array<std::uint8_t, block_elems>& codes, std::uint8_t* saturated) noexcept {
        const float d = fp16_to_fp32(y.d);
        for (std::size_t j = 0; j < sub_blocks; ++j) {
            const float D = d * static_cast<float>(y.scales[j]);
            const std::size_t first = sub_elems * j;
            detail::requantize_symmetric_sub_block(x + first, sub_elems, D, 32, codes.data() + first,
                                                   saturated != nullptr ? saturated + first : nullptr);
        }
    }

    // Step 4: codes[256] -> ql[128], qh[64].
    static void pack_codes(const std::array<std::uint8_t, block_elems>& codes, block_q6_k& y) noexcept {
        for (std::size_t h = 0; h < 2; ++h)
            for (std::size_t l = 0; l < 32; ++l) {
                const std::size_t e = 128 * h + l;
                y.ql[64 * h + l] = static_cast<std::uint8_t>((codes[e] & 15) | ((codes[e + 64] & 15) << 4));
                y.ql[64 * h + 32 + l] =
                    static_cast<std::uint8_t>((codes[e + 32] & 15) | ((codes[e + 96] & 15) << 4));
                y.qh[32 * h + l] = static_cast<std::uint8_t>(
                    (codes[e] >> 4) | ((codes[e + 32] >> 4) << 2) | ((codes[e + 64] >> 4) << 4) |
                    ((codes[e + 96] >> 4) << 6));
            }
    }
};

QTENSOR_END_NAMESPACE
