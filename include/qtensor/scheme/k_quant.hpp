// qtensor/scheme/k_quant.hpp: the maths the K-quants share, as plain
// functions their files call. Q2_K and Q4_K: ggml's make_qkx2_quants grid
// search, which fits one sub-block's (scale, min), the largest fit of a
// super-block, and the requantization of a sub-block against the stored
// (fp16, 4/6-bit) scales. Q3_K and Q6_K: the all-zero threshold of their
// symmetric searches, the check that a search did not overflow, and their
// requantization. Q2_K and Q3_K: the 2-bit code planes.
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
#include <string>
#include <string_view>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/core/float_bits.hpp"
#include "qtensor/scheme/scheme.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace detail {

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

// The fitted model of one sub-block: x ~ scale * L - min, with min >= 0 (the
// amount subtracted, as the formats store it; possibly -0.0).
struct qkx2_fit {
    float scale;
    float min;
};

// L[i] = clamp(nearest_int(iscale * (x[i] + min)), 0, nmax).
inline void grid_codes(const float* x, std::size_t n, float iscale, float min, int nmax,
                       std::uint8_t* L) noexcept {
    for (std::size_t i = 0; i < n; ++i) {
        const int l = nearest_int(fmul(iscale, x[i] + min));
        L[i] = static_cast<std::uint8_t>(std::clamp(l, 0, nmax));
    }
}

// sum_i w[i] * err_i with diff_i = (scale * L[i] - min) - x[i] and err = |diff|
// or diff^2, accumulated in element order.
inline float fit_error(const float* x, const float* w, const std::uint8_t* L, std::size_t n,
                       float scale, float min, bool use_mad) noexcept {
    float error = 0.0f;
    for (std::size_t i = 0; i < n; ++i) {
        const float diff = (fmul(scale, static_cast<float>(L[i])) - min) - x[i];
        const float err = use_mad ? std::fabs(diff) : diff * diff;
        error += fmul(w[i], err);
    }
    return error;
}

// ggml's make_qkx2_quants for a sub-block of N elements: x[N] with weights
// w[N] -> codes L[N] in 0..nmax, and the fit x ~ scale * L - min. All
// arithmetic is float. (ggml keeps -min in its variable `min`; the negation
// changes at most the sign of a zero, which no code or byte depends on.)
//   1. x_min/x_max = running min/max from x[0]; sum_w = sum w, sum_x = sum w*x.
//      min = -x_min, or 0 if x_min > 0. x_max == -min (all x equal and <= 0):
//      all L = 0, scale 0.
//   2. Start from the min-max fit: iscale = nmax/(x_max + min), scale = 1/iscale.
//   3. For each trial iscale = (rmin + rdelta*is + nmax)/(x_max + min): take
//      its codes L = clamp(nearest_int(iscale*(x + min)), 0, nmax), solve
//      weighted least squares for (scale, min) with those codes (min forced
//      to >= 0), and keep the trial if its error is strictly smaller than the
//      best so far. Adopting a trial also replaces min by its min, and the
//      trials after it use that min (ggml reuses one variable, and ggml's
//      bytes need it; docs/schemes.md section 15, traced in section 11's example).
template <std::size_t N>
qkx2_fit make_qkx2_quants(const float* x, const float* w, const qkx2_grid& g,
                          std::uint8_t* L) noexcept {
    static_assert(N > 0);
    float x_min = x[0];
    float x_max = x[0];
    float sum_w = w[0];
    float sum_x = fmul(sum_w, x[0]);
    for (std::size_t i = 1; i < N; ++i) {
        if (x[i] < x_min) x_min = x[i];
        if (x[i] > x_max) x_max = x[i];
        sum_w += w[i];
        sum_x += fmul(w[i], x[i]);
    }
    // The model only subtracts: positive data start from min 0.
    float min = x_min > 0.0f ? 0.0f : -x_min;
    if (x_max == -min) { // all x equal, and <= 0
        std::fill(L, L + N, std::uint8_t{0});
        return {0.0f, min};
    }

    float iscale = static_cast<float>(g.nmax) / (x_max + min);
    float scale = 1.0f / iscale;
    grid_codes(x, N, iscale, min, g.nmax, L);
    float best_error = fit_error(x, w, L, N, scale, min, g.use_mad);

    std::array<std::uint8_t, N> laux;
    for (int is = 0; is <= g.nstep; ++is) {
        // min is the best fit's min so far, not -x_min: once a trial is
        // adopted, later trials span [-this_min, x_max] and offset x by it.
        iscale = (g.rmin + fmul(g.rdelta, static_cast<float>(is)) + static_cast<float>(g.nmax)) / (x_max + min);
        grid_codes(x, N, iscale, min, g.nmax, laux.data());

        // Weighted least squares of x ~ this_scale * l - this_min.
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
        float this_min = (fmul(sum_l, sum_xl) - fmul(sum_l2, sum_x)) / det;
        if (this_min < 0.0f) {
            // The model only subtracts: refit the scale with min pinned at 0.
            this_min = 0.0f;
            this_scale = sum_xl / sum_l2;
        }

        const float error = fit_error(x, w, laux.data(), N, this_scale, this_min, g.use_mad);
        if (error < best_error) {
            std::copy(laux.begin(), laux.end(), L);
            best_error = error;
            scale = this_scale;
            min = this_min;
        }
    }
    return {scale, min};
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

// Below this largest magnitude, ggml's symmetric searches (make_qx_quants,
// make_q3_quants) call a group all zero.
inline constexpr float qx_group_eps = 1e-15f;

// A symmetric search returns a non-finite scale only when its weighted sums
// overflowed (|x|^3 past FLT_MAX); ggml would skip a NaN one and store a
// finite but meaningless block. Such |x| need a super-scale far past the fp16
// range anyway, so name the sub-block and refuse it.
inline void check_search(std::string_view name, const float* xs, std::size_t n, float scale, std::size_t block,
                         std::size_t sub) {
    if (is_finite_bits(scale)) return;
    float amax = 0.0f;
    for (std::size_t i = 0; i < n; ++i) amax = std::fmax(amax, std::fabs(xs[i]));
    throw error(std::string(name) + ": block " + std::to_string(block) + ", sub-block " + std::to_string(sub) +
                ": |x| up to " + std::to_string(amax) +
                " overflows the scale search; it needs a scale far past the fp16 range");
}

// Step 3 of Q3_K and Q6_K, one sub-block of n elements: signed codes against
// the stored scale D = fp32(d) * s (computed by the caller), offset by nmax:
//   L[i] = clamp(nearest_int(x[i] / D), -nmax, nmax - 1) + nmax   (a true division).
// D == 0 skips the sub-block: L keeps the codes of the search, and
// saturated[i] (if given) = 1 there (the output is +-0 whatever x is), else
// 1 where the code was clamped.
inline void requantize_symmetric_sub_block(const float* x, std::size_t n, float D, int nmax, std::uint8_t* L,
                                           std::uint8_t* saturated) noexcept {
    if (D == 0.0f) {
        if (saturated != nullptr) std::fill(saturated, saturated + n, std::uint8_t{1});
        return;
    }
    for (std::size_t i = 0; i < n; ++i) {
        const int l = nearest_int(x[i] / D);
        L[i] = static_cast<std::uint8_t>(std::clamp(l, -nmax, nmax - 1) + nmax);
        if (saturated != nullptr) saturated[i] = (l < -nmax || l > nmax - 1) ? 1 : 0;
    }
}

// The 2-bit code planes of Q2_K and Q3_K (Q3_K's low two bits): the 256
// elements are two halves of 128, and element e = 128h + 32s + l (h 0..1,
// s 0..3, l 0..31) sits in qs[32h + l] at bits 2s..2s+1.
inline int two_bit_code(const std::array<std::uint8_t, 64>& qs, std::size_t e) noexcept {
    const std::size_t half = e / 128, shift = 2 * ((e % 128) / 32), l = e % 32;
    return (qs[32 * half + l] >> shift) & 3;
}

// codes[256] -> qs[64], the low two bits of each code.
inline void pack_two_bit_codes(const std::array<std::uint8_t, 256>& codes, std::array<std::uint8_t, 64>& qs) noexcept {
    for (std::size_t half = 0; half < 2; ++half)
        for (std::size_t l = 0; l < 32; ++l) {
            const std::size_t e = 128 * half + l;
            qs[32 * half + l] = static_cast<std::uint8_t>((codes[e] & 3) | ((codes[e + 32] & 3) << 2) |
                                                          ((codes[e + 64] & 3) << 4) | ((codes[e + 96] & 3) << 6));
        }
}

} // namespace detail
QTENSOR_END_NAMESPACE
