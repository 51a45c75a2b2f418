// qtensor/scheme/q3_k.hpp: Q3_K, 3-bit symmetric super-blocks of 256
// (GGUF type 11), 3.4375 bits per weight. Dot partner: Q8_K. llama.cpp's
// Q2_K files keep some tensors in it.
//
// Block layout, 110 bytes:
//   [0..31]    hmask[32]   bit 2 of every code: element e's in hmask[e % 32],
//                          bit e / 32
//   [32..95]   qs[64]      bits 0..1 of every code, Q2_K's planes: element
//                          e = 128h + 32s + l (h 0..1, s 0..3, l 0..31) in
//                          qs[32h + l] at bits 2s..2s+1
//   [96..107]  scales[12]  u_j = s_j + 32 (0..63), the 6-bit scale of
//                          sub-block j (elements 16j .. 16j+15), packed as
//                            byte j = 0..7:    bits 3..0 = u_j & 15, bits 7..4 = u_{j+8} & 15
//                            byte 8 + k, k = 0..3: bits 2t+1..2t = u_{k+4t} >> 4 (t = 0..3)
//   [108..109] d           fp16 super-scale of the s_j
//
//     hmask[l]    = | e+224 | e+192 | ... | e+32 | e |   bit 2 of each code, e = l
//     qs[32h + l] = | e+96 | e+64 | e+32 | e |           bits 1..0, e = 128h + l
//
// A code c (0..7) stands for c - 4. Dequantize: w[e] = (d * s_j) * (c - 4),
// s_j in -32..31, each product rounded to float.
//
// Reference quantizer (ggml's quantize_row_q3_K_ref), per super-block:
//   1. Fit each sub-block with make_q3_quants (below): a signed scale_j and
//      codes in 0..7 (0 for a sub-block below the all-zero threshold).
//   2. max_scale = the scale_j of largest |scale_j| (strict >, first wins).
//      If it is 0, the scale bytes and d are 0. Otherwise
//        iscale = -32 / max_scale,   d = fp16(1 / iscale),
//        s_j = clamp(nearest_int(iscale * scale_j), -32, 31)
//      (max_scale -> -32, and a scale of the opposite sign as large -> 31).
//      |iscale * scale_j| <= 32 up to two roundings, so ggml's int8 store
//      before the clamp never wraps.
//   3. Requantize against the stored values: D = fp32(d) * s_j,
//      c = clamp(nearest_int(x / D), -4, 3) + 4 with a true division. If
//      D == 0 the sub-block keeps the search's codes from step 1 (its output
//      is +-0 whatever they are). With max_scale = 0 every s_j is -32 and
//      d = 0: the whole block is skipped.
//   4. Pack the codes as drawn above.
// nearest_int is half to even (core/float_bits.hpp). Every product that feeds
// a sum (or nearest_int's hidden add) goes through detail::fmul, w*x*l is
// (w*x)*l and w*l*l is (w*l)*l, and the sums run in element order.
//
// saturated[i] = 1 (the straight-through clip mask) when, with the
// super-block's scales held fixed, x[i]'s output does not follow small
// changes of x[i]: its step-3 code was clamped into -4..3, or its sub-block
// was skipped (D == 0).
//
// Input: NaN/Inf, blocks whose d rounds to fp16 inf (|max_scale| >= 32 *
// 65520; a constant sub-block c has scale -c/4, so |c| >= 128 * 65520), and
// blocks whose scale search overflows float (|x| of 1e12 to 1e13 and more,
// where sumlx, a sum of x^3 * l, does) throw qtensor::error, as for Q6_K.
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

struct block_q3_k {
    std::array<std::uint8_t, 32> hmask;
    std::array<std::uint8_t, 64> qs;
    std::array<std::uint8_t, 12> scales;
    fp16_t d;
};
static_assert(sizeof(block_q3_k) == 110);

namespace detail {

// ggml's make_q3_quants with nmax 4 and do_rmse (the only call Q3_K's
// reference makes): x[N] -> codes L[N] in 0..7 (the signed code l plus 4) and
// the returned scale, x ~ scale * l. Weights are w = x^2.
//   1. max = the element of largest |x| (strict >, first wins); |max| < 1e-15:
//      all L = 0 (not 4: ggml skips the offset there), scale 0.
//   2. l = clamp(nearest_int(-4 / max * x), -4, 3), with the sums
//      sumlx = sum w*x*l and suml2 = sum w*l*l.
//   3. Up to 5 passes over the elements, in order, until one changes nothing:
//      for element i, with slx and sl2 the sums without it, if slx > 0 try
//      new_l = clamp(nearest_int(x * sl2 / slx), -4, 3); if it differs, add
//      its terms, and keep it (updating the sums at once) when sl2 > 0 and
//      slx^2 * suml2 > sumlx^2 * sl2: the least-squares fit got strictly
//      better. (Every term of sumlx is 0 or of the sign of -max, so the passes
//      change nothing in a sub-block whose max is positive. Products that
//      overflow to inf compare as they do in ggml: inf > inf is false.)
//   4. scale = sumlx / suml2, or 0 if suml2 is 0.
template <std::size_t N>
float make_q3_quants(const float* x, std::uint8_t* L) noexcept {
    constexpr int nmax = 4;
    const float max = signed_absmax(x, N);
    if (std::fabs(max) < group_max_eps) {
        std::fill(L, L + N, std::uint8_t{0});
        return 0.0f;
    }
    const float iscale = -static_cast<float>(nmax) / max;
    std::array<int, N> l;
    float sumlx = 0.0f;
    float suml2 = 0.0f;
    for (std::size_t i = 0; i < N; ++i) {
        l[i] = std::clamp(nearest_int(fmul(iscale, x[i])), -nmax, nmax - 1);
        const float li = static_cast<float>(l[i]);
        const float w = x[i] * x[i];
        sumlx += fmul(fmul(w, x[i]), li);
        suml2 += fmul(fmul(w, li), li);
    }
    for (int pass = 0; pass < 5; ++pass) {
        bool changed = false;
        for (std::size_t i = 0; i < N; ++i) {
            const float w = x[i] * x[i];
            const float li = static_cast<float>(l[i]);
            float slx = sumlx - fmul(fmul(w, x[i]), li);
            if (!(slx > 0.0f)) continue;
            float sl2 = suml2 - fmul(fmul(w, li), li);
            const int new_l = std::clamp(nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
            if (new_l == l[i]) continue;
            const float nl = static_cast<float>(new_l);
            slx += fmul(fmul(w, x[i]), nl);
            sl2 += fmul(fmul(w, nl), nl);
            if (sl2 > 0.0f && slx * slx * suml2 > sumlx * sumlx * sl2) {
                l[i] = new_l;
                sumlx = slx;
                suml2 = sl2;
                changed = true;
            }
        }
        if (!changed) break;
    }
    for (std::size_t i = 0; i < N; ++i) L[i] = static_cast<std::uint8_t>(l[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

} // namespace detail

struct q3_k {
    using block_type = block_q3_k;
    using dot_partner = q8_k;
    static constexpr std::size_t block_elems = 256;
    static constexpr std::size_t block_bytes = 110;
    static constexpr ggml_type type_id = ggml_type::q3_k;
    static constexpr std::string_view name = "q3_k";

    static constexpr std::size_t sub_elems = 16;
    static constexpr std::size_t sub_blocks = block_elems / sub_elems;
    static constexpr int code_offset = 4; // code c stands for c - 4

    // The signed 6-bit scale s_j (-32..31) of sub-block j, and the 3-bit code
    // c (0..7) of element e.
    static int scale_of(const block_q3_k& b, std::size_t j) noexcept {
        const int low = (b.scales[j % 8] >> (4 * (j / 8))) & 15;
        const int high = (b.scales[8 + j % 4] >> (2 * (j / 4))) & 3;
        return (low | (high << 4)) - 32;
    }
    static int code_at(const block_q3_k& b, std::size_t e) noexcept {
        const int high = (b.hmask[e % 32] >> (e / 32)) & 1;
        return detail::two_bit_code(b.qs, e) | (high << 2);
    }

    // w = (d * s_j) * (c - 4).
    static void dequantize_row(const block_q3_k* x, float* y, std::size_t n) noexcept {
        for (std::size_t b = 0; b < n / block_elems; ++b) {
            const float d = fp16_to_fp32(x[b].d);
            for (std::size_t j = 0; j < sub_blocks; ++j) {
                const float dl = d * static_cast<float>(scale_of(x[b], j));
                for (std::size_t e = sub_elems * j; e < sub_elems * (j + 1); ++e)
                    *y++ = dl * static_cast<float>(code_at(x[b], e) - code_offset);
            }
        }
    }

    // x[n] -> y[n/256], steps 1 to 4 of the banner per super-block. Throws
    // qtensor::error on NaN/Inf input, a super-scale past the fp16 range, or a
    // scale search that overflows. saturated[n]: see the banner.
    static void quantize_row(const float* x, block_q3_k* y, std::size_t n, std::uint8_t* saturated = nullptr) {
        detail::check_finite(name, x, n);
        for (std::size_t b = 0; b < n / block_elems; ++b, x += block_elems) {
            std::array<std::uint8_t, block_elems> codes;
            std::array<float, sub_blocks> scales;
            for (std::size_t j = 0; j < sub_blocks; ++j) {
                scales[j] = detail::make_q3_quants<sub_elems>(x + sub_elems * j, codes.data() + sub_elems * j);
                detail::check_search(name, x + sub_elems * j, sub_elems, scales[j], b, j);
            }
            quantize_scales(scales, y[b], b);
            requantize(x, y[b], codes, saturated);
            pack_codes(codes, y[b]);
            if (saturated != nullptr) saturated += block_elems;
        }
    }

private:
    // Step 2: the fits -> the 12 packed scale bytes and d.
    static void quantize_scales(const std::array<float, sub_blocks>& scales, block_q3_k& y, std::size_t block) {
        const float max_scale = detail::signed_absmax(scales.data(), sub_blocks);
        y.scales.fill(0);
        float d = 0.0f;
        if (max_scale != 0.0f) {
            const float iscale = -32.0f / max_scale;
            for (std::size_t j = 0; j < sub_blocks; ++j) {
                const int s = std::clamp(detail::nearest_int(detail::fmul(iscale, scales[j])), -32, 31) + 32;
                y.scales[j % 8] = static_cast<std::uint8_t>(y.scales[j % 8] | ((s & 15) << (4 * (j / 8))));
                y.scales[8 + j % 4] = static_cast<std::uint8_t>(y.scales[8 + j % 4] | ((s >> 4) << (2 * (j / 4))));
            }
            d = 1.0f / iscale;
        }
        y.d = fp32_to_fp16(d);
        detail::check_fp16_scale(name, block, d, fp16_to_fp32(y.d));
    }

    // Step 3: codes against the stored d * s_j.
    static void requantize(const float* x, const block_q3_k& y, std::array<std::uint8_t, block_elems>& codes,
                           std::uint8_t* saturated) noexcept {
        const float d = fp16_to_fp32(y.d);
        for (std::size_t j = 0; j < sub_blocks; ++j) {
            const float D = d * static_cast<float>(scale_of(y, j));
            const std::size_t first = sub_elems * j;
            detail::requantize_symmetric_sub_block(x + first, sub_elems, D, 4, codes.data() + first,
                                                   saturated != nullptr ? saturated + first : nullptr);
        }
    }

    // Step 4: codes[256] -> hmask[32] (bit 2), qs[64] (bits 1..0).
    static void pack_codes(const std::array<std::uint8_t, block_elems>& codes, block_q3_k& y) noexcept {
        y.hmask.fill(0);
        for (std::size_t e = 0; e < block_elems; ++e)
            y.hmask[e % 32] = static_cast<std::uint8_t>(y.hmask[e % 32] | ((codes[e] >> 2) << (e / 32)));
        detail::pack_two_bit_codes(codes, y.qs);
    }

public:
    // Scalar reference against a Q8_K activation row, per super-block with
    // dy = a.d:
    //   (fp32(d) * dy) * sum_j s_j * (sum_{e in j} (c[e] - 4) * qa[e]).
    // The integer sum is exact: |sum| <= 16 * 32 * 16 * 4 * 128 = 2^22, so it
    // is exact as a float too, and each block term is 2 roundings; the terms
    // are summed in float. (ggml's generic C spreads the sum over 8 float
    // lanes: a different order, within the same budget.) With
    // S = sum_i |w_i * a_i| over dequantized w_i and a_i, the result is
    // within (n/256 + 5) * 2^-24 * S of the exact sum of the products
    // w_i * a_i (for n < 2^28): 2 roundings per block term, n/256 - 1 for the
    // float sum, 3 inside dequantized w and a, one more for second-order terms.
    static float dot_row(const block_q3_k* w, const block_q8_k* a, std::size_t n) noexcept {
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
};

QTENSOR_END_NAMESPACE
