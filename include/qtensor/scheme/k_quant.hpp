// qtensor/scheme/k_quant.hpp: what Q2_K and Q4_K share: ggml's
// make_qkx2_quants grid search, which fits one sub-block's (scale, min), the
// requantization of a sub-block against the stored (fp16, 4/6-bit) scales,
// and the row functions built from the per-format steps (k_quant_rows).
//
// Everything here must give ggml's bytes under any compile flags, so every
// product that feeds a sum (or nearest_int's hidden "+ 1.5 * 2^23") goes
// through detail::fmul, w*l*l is (w*l)*l, and the sums run in element order.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "qtensor/core/config.hpp"
#include "qtensor/core/float_bits.hpp"
#include "qtensor/core/half.hpp"
#include "qtensor/scheme/q8_k.hpp"
#include "qtensor/scheme/scheme.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace detail {

// Every K-quant super-block holds 256 elements.
inline constexpr std::size_t k_block_elems = 256;

// The arguments ggml passes to make_qkx2_quants.
//   Q2_K: {nmax 3,  rmin -0.5, rdelta 0.1, nstep 15, use_mad true}
//   Q4_K: {nmax 15, rmin -1.0, rdelta 0.1, nstep 20, use_mad false}
struct qkx2_grid {
    int nmax;     // largest code; codes are 0..nmax
    float rmin;   // trial `is` spreads the range over nmax + rmin + rdelta*is steps
    float rdelta;
    int nstep;    // trials is = 0..nstep
    bool use_mad; // error per element: w*|diff| (true) or w*diff^2 (false)
};

// The fitted model of one sub-block: x ~ scale * L - min. `min` is the
// positive offset ggml returns (the negated fitted minimum), possibly -0.0.
struct qkx2_fit {
    float scale;
    float min;
};

// L[i] = clamp(nearest_int(iscale * (x[i] - mn)), 0, nmax).
inline void grid_codes(const float* x, std::size_t n, float iscale, float mn, int nmax,
                       std::uint8_t* L) noexcept {
    for (std::size_t i = 0; i < n; ++i) {
        const int l = nearest_int(fmul(iscale, x[i] - mn));
        L[i] = static_cast<std::uint8_t>(std::clamp(l, 0, nmax));
    }
}

// sum_i w[i] * err_i with diff_i = (scale * L[i] + mn) - x[i] and err = |diff|
// or diff^2, accumulated in element order.
inline float fit_error(const float* x, const float* w, const std::uint8_t* L, std::size_t n,
                       float scale, float mn, bool use_mad) noexcept {
    float error = 0.0f;
    for (std::size_t i = 0; i < n; ++i) {
        const float diff = (fmul(scale, static_cast<float>(L[i])) + mn) - x[i];
        const float err = use_mad ? std::fabs(diff) : diff * diff;
        error += fmul(w[i], err);
    }
    return error;
}

// ggml's make_qkx2_quants for a sub-block of N elements: x[N] with weights
// w[N] -> codes L[N] in 0..nmax, and the fit. All arithmetic is float:
//   1. mn/mx = running min/max from x[0]; sum_w = sum w, sum_x = sum w*x.
//      mn is raised to 0 if positive. mx == mn: all L = 0, scale 0.
//   2. Start from the min-max fit: iscale = nmax/(mx-mn), scale = 1/iscale.
//   3. For each trial iscale = (rmin + rdelta*is + nmax)/(mx-mn): take its
//      codes L = clamp(nearest_int(iscale*(x-mn)), 0, nmax), solve weighted
//      least squares for (scale, min) with those codes (min forced to <= 0),
//      and keep the trial if its error is strictly smaller than the best so
//      far. Adopting a trial also replaces mn by its min, and the trials
//      after it use that mn (ggml reuses one variable, and ggml's bytes need
//      it; docs/schemes.md section 12, traced in section 9's example).
template <std::size_t N>
qkx2_fit make_qkx2_quants(const float* x, const float* w, const qkx2_grid& g,
                          std::uint8_t* L) noexcept {
    static_assert(N > 0);
    float mn = x[0];
    float mx = x[0];
    float sum_w = w[0];
    float sum_x = fmul(sum_w, x[0]);
    for (std::size_t i = 1; i < N; ++i) {
        if (x[i] < mn) mn = x[i];
        if (x[i] > mx) mx = x[i];
        sum_w += w[i];
        sum_x += fmul(w[i], x[i]);
    }
    if (mn > 0.0f) mn = 0.0f;
    if (mx == mn) {
        std::fill(L, L + N, std::uint8_t{0});
        return {0.0f, -mn};
    }

    float iscale = static_cast<float>(g.nmax) / (mx - mn);
    float scale = 1.0f / iscale;
    grid_codes(x, N, iscale, mn, g.nmax, L);
    float best_error = fit_error(x, w, L, N, scale, mn, g.use_mad);

    std::array<std::uint8_t, N> laux;
    for (int is = 0; is <= g.nstep; ++is) {
        // mn is the best fit's min so far, not the data minimum: once a trial
        // is adopted, later trials span [this_min, mx] and offset x by it.
        iscale = (g.rmin + fmul(g.rdelta, static_cast<float>(is)) + static_cast<float>(g.nmax)) / (mx - mn);
        grid_codes(x, N, iscale, mn, g.nmax, laux.data());

        // Weighted least squares of x ~ this_scale * l + this_min.
        float sum_l = 0.0f, sum_l2 = 0.0f, sum_xl = 0.0f;
        for (std::size_t i = 0; i < N; ++i) {
            const float l = static_cast<float>(laux[i]);
            const float wl = fmul(w[i], l);
            sum_l += wl;
            sum_l2 += fmul(wl, l);
            sum_xl += fmul(wl, x[i]);
        }
        const float det = fmul(sum_w, sum_l2) - fmul(sum_l, sum_l);
        if (!(det > 0.0f)) continue;
        float this_scale = (fmul(sum_w, sum_xl) - fmul(sum_x, sum_l)) / det;
        float this_min = (fmul(sum_l2, sum_x) - fmul(sum_l, sum_xl)) / det;
        if (this_min > 0.0f) {
            // The model only subtracts: refit the scale with min pinned at 0.
            this_min = 0.0f;
            this_scale = sum_xl / sum_l2;
        }

        const float error = fit_error(x, w, laux.data(), N, this_scale, this_min, g.use_mad);
        if (error < best_error) {
            std::copy(laux.begin(), laux.end(), L);
            best_error = error;
            scale = this_scale;
            mn = this_min;
        }
    }
    return {scale, -mn};
}

// The largest scale and the largest min over a super-block's fits, each
// starting at 0 and updated on strict >, so negative values never count.
template <std::size_t M>
qkx2_fit largest_fit(const std::array<qkx2_fit, M>& fits) noexcept {
    qkx2_fit largest{0.0f, 0.0f};
    for (const auto& f : fits) {
        if (f.scale > largest.scale) largest.scale = f.scale;
        if (f.min > largest.min) largest.min = f.min;
    }
    return largest;
}

// Step 3 of Q2_K and Q4_K, one sub-block of n elements: codes against the
// stored scales, D = fp32(d) * s and dm = fp32(dmin) * m (computed by the
// caller from the packed bytes):
//   L[i] = clamp(nearest_int((x[i] + dm) / D), 0, nmax)   (a true division).
// D == 0 skips the sub-block: L keeps the codes of the search. saturated[i]
// (if given) = 1 where the code was clamped, or everywhere when skipped (the
// sub-block's output, -dm, then ignores x).
inline void requantize_sub_block(const float* x, std::size_t n, float D, float dm, int nmax,
                                 std::uint8_t* L, std::uint8_t* saturated) noexcept {
    if (D == 0.0f) {
        if (saturated != nullptr) std::fill(saturated, saturated + n, std::uint8_t{1});
        return;
    }
    for (std::size_t i = 0; i < n; ++i) {
        const int l = nearest_int((x[i] + dm) / D);
        L[i] = static_cast<std::uint8_t>(std::clamp(l, 0, nmax));
        if (saturated != nullptr) saturated[i] = (l < 0 || l > nmax) ? 1 : 0;
    }
}

// The row functions of a K-quant S with block type B, written once over the
// steps S supplies (CRTP): fit_sub_blocks (step 1, the search), quantize_scales
// (step 2, S's scale packing), pack_codes (step 4), and the readers scale_of,
// min_of, code_at. Step 3, requantization, is the same for both formats.
// Sub-blocks are sub_elems long and line up with Q8_K's 16-element bsums.
template <class S, class B>
struct k_quant_rows {
    // x[n] -> y[n/256]. Throws qtensor::error on NaN/Inf input or a super-scale
    // past the fp16 range. saturated[n]: see the format's banner.
    static void quantize_row(const float* x, B* y, std::size_t n, std::uint8_t* saturated = nullptr) {
        check_finite(S::name, x, n);
        for (std::size_t b = 0; b < n / S::block_elems; ++b, x += S::block_elems) {
            std::array<std::uint8_t, k_block_elems> codes;
            const auto fits = S::fit_sub_blocks(x, codes);
            S::quantize_scales(fits, y[b], b);
            requantize(x, y[b], codes, saturated);
            S::pack_codes(codes, y[b]);
            if (saturated != nullptr) saturated += S::block_elems;
        }
    }

    // w = (d * s_j) * q - dmin * m_j, both products rounded before the subtraction.
    static void dequantize_row(const B* x, float* y, std::size_t n) noexcept {
        for (std::size_t b = 0; b < n / S::block_elems; ++b) {
            const float d = fp16_to_fp32(x[b].d);
            const float dmin = fp16_to_fp32(x[b].dmin);
            for (std::size_t j = 0; j < S::sub_blocks; ++j) {
                const float dl = d * static_cast<float>(S::scale_of(x[b], j));
                const float ml = fmul(dmin, static_cast<float>(S::min_of(x[b], j)));
                for (std::size_t e = S::sub_elems * j; e < S::sub_elems * (j + 1); ++e)
                    *y++ = fmul(dl, static_cast<float>(S::code_at(x[b], e))) - ml;
            }
        }
    }

    // Scalar reference against a Q8_K activation row (docs/schemes.md section 13),
    // per super-block with dy = a.d:
    //   (dy * d) * sum_j s_j * (sum_{e in j} q[e] * qa[e])
    //     - (dy * dmin) * sum_j m_j * (sum of the bsums covering sub-block j)
    // The integer sums are exact in int32; the first may exceed 2^24 (Q4_K)
    // and round once when converted to float. Each block term is then at most
    // 4 roundings, and the terms are summed in float. (ggml's generic C for
    // Q4_K spreads the first term over 8 float lanes: a different order,
    // within the same budget.) With S = sum_i (|d s_j q_i a_i| + |dmin m_j a_i|)
    // over dequantized a_i, the result is within (n/256 + 6) * 2^-24 * S of the
    // exact sum of the dequantized products w_i * a_i (for n < 2^28): 4
    // roundings per block term, n/256 - 1 for the float sum, 2 for the
    // roundings inside dequantized w and a, one more for second-order terms.
    static float dot_row(const B* w, const block_q8_k* a, std::size_t n) noexcept {
        constexpr std::size_t bsums_per_sub = S::sub_elems / 16;
        float sum = 0.0f;
        for (std::size_t b = 0; b < n / S::block_elems; ++b) {
            std::int32_t isum = 0;
            std::int32_t summs = 0;
            for (std::size_t j = 0; j < S::sub_blocks; ++j) {
                std::int32_t sub = 0;
                for (std::size_t e = S::sub_elems * j; e < S::sub_elems * (j + 1); ++e)
                    sub += S::code_at(w[b], e) * a[b].qs[e];
                std::int32_t bsum = 0;
                for (std::size_t g = bsums_per_sub * j; g < bsums_per_sub * (j + 1); ++g)
                    bsum += a[b].bsums[g];
                isum += S::scale_of(w[b], j) * sub;
                summs += S::min_of(w[b], j) * bsum;
            }
            const float dall = a[b].d * fp16_to_fp32(w[b].d);
            const float dmin = a[b].d * fp16_to_fp32(w[b].dmin);
            sum += fmul(dall, static_cast<float>(isum)) - fmul(dmin, static_cast<float>(summs));
        }
        return sum;
    }

private:
    // Step 3: codes against the stored d * s_j and dmin * m_j.
    static void requantize(const float* x, const B& y, std::array<std::uint8_t, k_block_elems>& codes,
                           std::uint8_t* saturated) {
        const float d = fp16_to_fp32(y.d);
        const float dmin = fp16_to_fp32(y.dmin);
        for (std::size_t j = 0; j < S::sub_blocks; ++j) {
            const float D = d * static_cast<float>(S::scale_of(y, j));
            const float dm = fmul(dmin, static_cast<float>(S::min_of(y, j)));
            const std::size_t first = S::sub_elems * j;
            requantize_sub_block(x + first, S::sub_elems, D, dm, S::code_max, codes.data() + first,
                                 saturated != nullptr ? saturated + first : nullptr);
        }
    }
};

} // namespace detail
QTENSOR_END_NAMESPACE
