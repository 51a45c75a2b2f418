// qtensor/scheme/k_quant.hpp: the maths the K-quants share, as plain
// functions their files call. Q2_K, Q4_K and Q5_K: ggml's make_qkx2_quants
// grid search, which fits one sub-block's (scale, min), the largest fit of a
// super-block, and the requantization of a sub-block against the stored
// (fp16, 4/6-bit) scales. Q4_K and Q5_K: their common super-block (eight
// 6-bit scales and mins in 12 bytes) with steps 1 to 3 of its quantizer, its
// dequantization and its dot product; they differ only in the codes. Q3_K
// and Q6_K: the all-zero threshold of their symmetric searches, the check
// that a search did not overflow, and their requantization. Q2_K and Q3_K:
// the 2-bit code planes.
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
#include "qtensor/core/half.hpp"
#include "qtensor/scheme/q8_k.hpp"
#include "qtensor/scheme/scheme.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace detail {

// The arguments ggml passes to make_qkx2_quants.
//   Q2_K: {nmax 3,  rmin -0.5, rdelta 0.1, nstep 15, use_mad true}
//   Q4_K: {nmax 15, rmin -1.0, rdelta 0.1, nstep 20, use_mad false}
//   Q5_K: {nmax 31, rmin -0.5, rdelta 0.1, nstep 15, use_mad false}
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
//      bytes need it; docs/schemes.md section 17, traced in section 11's example).
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

// Step 3 of Q2_K, Q4_K and Q5_K, one sub-block of n elements: codes against the
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

// ---- Q4_K and Q5_K: 8 sub-blocks of 32, 6-bit scales and mins -----------------
// "k4" names Q4_K's super-block, which Q5_K shares: both blocks begin
// {fp16 d; fp16 dmin; uint8 scales[12]}, and both keep bits 3..0 of their
// codes in the same qs[128]. The helpers take any such Block; the scheme S
// of the row functions supplies its name, block_type, block_elems, code_max,
// code_at(block, e), and, for quantizing, its search grid and pack_codes.

inline constexpr std::size_t k4_sub_elems = 32;
inline constexpr std::size_t k4_sub_blocks = 8;

// 6-bit scale sc_j and min m_j of sub-block j (ggml's get_scale_min_k4).
inline int k4_scale(const std::array<std::uint8_t, 12>& s, std::size_t j) noexcept {
    if (j < 4) return s[j] & 63;
    return (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
}
inline int k4_min(const std::array<std::uint8_t, 12>& s, std::size_t j) noexcept {
    if (j < 4) return s[j + 4] & 63;
    return (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
}

// Bits 3..0 of element e's code: 4 chunks of 64 elements, chunk c in
// qs[32c .. 32c+31], element 64c + l in the low nibble of qs[32c + l] and
// 64c + 32 + l in the high one.
inline int k4_nibble(const std::array<std::uint8_t, 128>& qs, std::size_t e) noexcept {
    const std::uint8_t byte = qs[32 * (e / 64) + e % 32];
    return (e % 64) < 32 ? (byte & 15) : (byte >> 4);
}

// codes[256] -> qs[128], bits 3..0 of each code, laid out as k4_nibble reads them.
inline void pack_k4_nibbles(const std::array<std::uint8_t, 256>& codes, std::array<std::uint8_t, 128>& qs) noexcept {
    for (std::size_t chunk = 0; chunk < 4; ++chunk)
        for (std::size_t l = 0; l < 32; ++l) {
            const std::size_t e = 64 * chunk + l;
            qs[32 * chunk + l] = static_cast<std::uint8_t>((codes[e] & 15) | ((codes[e + 32] & 15) << 4));
        }
}

// Step 1: x[256] -> one fit per sub-block (make_qkx2_quants with weights
// av + |x|, av = sqrt(sum x^2 / 32) summed in element order), and codes[256]
// from the search.
inline std::array<qkx2_fit, k4_sub_blocks> fit_k4_sub_blocks(const float* x, const qkx2_grid& grid,
                                                              std::uint8_t* codes) noexcept {
    std::array<qkx2_fit, k4_sub_blocks> fits;
    for (std::size_t j = 0; j < k4_sub_blocks; ++j) {
        const float* xs = x + k4_sub_elems * j;
        float sum_x2 = 0.0f;
        for (std::size_t i = 0; i < k4_sub_elems; ++i) sum_x2 += fmul(xs[i], xs[i]);
        const float av = std::sqrt(sum_x2 / static_cast<float>(k4_sub_elems));
        std::array<float, k4_sub_elems> weights;
        for (std::size_t i = 0; i < k4_sub_elems; ++i) weights[i] = av + std::fabs(xs[i]);
        fits[j] = make_qkx2_quants<k4_sub_elems>(xs, weights.data(), grid, codes + k4_sub_elems * j);
    }
    return fits;
}

// ggml: uint8_t l = nearest_int(...); l = MIN(63, l). Wrap first, then clamp.
inline std::uint8_t six_bits(int l) noexcept { return std::min<std::uint8_t>(63, static_cast<std::uint8_t>(l)); }

// Step 2: the fits -> the 12 packed scale bytes, d and dmin, against the
// largest scale and min. Throws if d or dmin overflows fp16.
template <class Block>
void quantize_k4_scales(std::string_view name, const std::array<qkx2_fit, k4_sub_blocks>& fits, Block& y,
                        std::size_t block) {
    const qkx2_fit largest = largest_fit(fits);
    const float inv_scale = largest.scale > 0.0f ? 63.0f / largest.scale : 0.0f;
    const float inv_min = largest.min > 0.0f ? 63.0f / largest.min : 0.0f;
    std::array<std::uint8_t, k4_sub_blocks> sc, m;
    for (std::size_t j = 0; j < k4_sub_blocks; ++j) {
        sc[j] = six_bits(nearest_int(fmul(inv_scale, fits[j].scale)));
        m[j] = six_bits(nearest_int(fmul(inv_min, fits[j].min)));
    }
    for (std::size_t j = 0; j < 4; ++j) {
        y.scales[j] = static_cast<std::uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
        y.scales[j + 4] = static_cast<std::uint8_t>(m[j] | ((m[j + 4] >> 4) << 6));
        y.scales[j + 8] = static_cast<std::uint8_t>((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
    }
    y.d = fp32_to_fp16(largest.scale / 63.0f);
    y.dmin = fp32_to_fp16(largest.min / 63.0f);
    check_fp16_scale(name, block, largest.scale / 63.0f, fp16_to_fp32(y.d));
    check_fp16_scale(name, block, largest.min / 63.0f, fp16_to_fp32(y.dmin));
}

// Step 3: codes[256] against the stored d * sc_j and dmin * m_j, 0..nmax.
template <class Block>
void requantize_k4(const float* x, const Block& y, int nmax, std::uint8_t* codes, std::uint8_t* saturated) noexcept {
    const float d = fp16_to_fp32(y.d);
    const float dmin = fp16_to_fp32(y.dmin);
    for (std::size_t j = 0; j < k4_sub_blocks; ++j) {
        const float D = d * static_cast<float>(k4_scale(y.scales, j));
        const float dm = fmul(dmin, static_cast<float>(k4_min(y.scales, j)));
        const std::size_t first = k4_sub_elems * j;
        requantize_sub_block(x + first, k4_sub_elems, D, dm, nmax, codes + first,
                             saturated != nullptr ? saturated + first : nullptr);
    }
}

// x[n] -> y[n/256]: steps 1 to 3 above, then S's step 4, S::pack_codes.
// Throws qtensor::error on NaN/Inf input or a super-scale past the fp16 range.
template <class S>
void quantize_k4_row(const float* x, typename S::block_type* y, std::size_t n, std::uint8_t* saturated) {
    check_finite(S::name, x, n);
    for (std::size_t b = 0; b < n / S::block_elems; ++b, x += S::block_elems) {
        std::array<std::uint8_t, S::block_elems> codes;
        const auto fits = fit_k4_sub_blocks(x, S::grid, codes.data());
        quantize_k4_scales(S::name, fits, y[b], b);
        requantize_k4(x, y[b], S::code_max, codes.data(), saturated);
        S::pack_codes(codes, y[b]);
        if (saturated != nullptr) saturated += S::block_elems;
    }
}

// w = (d * sc_j) * q - dmin * m_j, both products rounded before the subtraction.
template <class S>
void dequantize_k4_row(const typename S::block_type* x, float* y, std::size_t n) noexcept {
    for (std::size_t b = 0; b < n / S::block_elems; ++b) {
        const float d = fp16_to_fp32(x[b].d);
        const float dmin = fp16_to_fp32(x[b].dmin);
        for (std::size_t j = 0; j < k4_sub_blocks; ++j) {
            const float dl = d * static_cast<float>(k4_scale(x[b].scales, j));
            const float ml = fmul(dmin, static_cast<float>(k4_min(x[b].scales, j)));
            for (std::size_t e = k4_sub_elems * j; e < k4_sub_elems * (j + 1); ++e)
                *y++ = fmul(dl, static_cast<float>(S::code_at(x[b], e))) - ml;
        }
    }
}

// The scalar dot product against a Q8_K row (docs/schemes.md section 18), per
// super-block with dy = a.d:
//   (dy * d) * sum_j sc_j * (sum_{e in j} q[e] * qa[e])
//     - (dy * dmin) * sum_j m_j * (bsums[2j] + bsums[2j + 1])
// (a sub-block of 32 is two Q8_K bsums). The integer sums are exact in int32
// (codes up to 31: |first sum| <= 8 * 63 * 32 * 31 * 128 < 2^31); the first
// may exceed 2^24 and round once when converted to float. Each block term is
// then at most 4 roundings, and the terms are summed in float. (ggml's
// generic C spreads the first term over 8 float lanes: a different order,
// within the same budget.) With S = sum_i (|d sc_j q_i a_i| + |dmin m_j a_i|)
// over dequantized a_i, the result is within (n/256 + 6) * 2^-24 * S of the
// exact sum of the dequantized products w_i * a_i (for n < 2^28): 4 roundings
// per block term, n/256 - 1 for the float sum, 2 for the roundings inside
// dequantized w and a, one more for second-order terms.
template <class S>
float dot_k4_row(const typename S::block_type* w, const block_q8_k* a, std::size_t n) noexcept {
    float sum = 0.0f;
    for (std::size_t b = 0; b < n / S::block_elems; ++b) {
        std::int32_t isum = 0;
        std::int32_t summs = 0;
        for (std::size_t j = 0; j < k4_sub_blocks; ++j) {
            std::int32_t sub = 0;
            for (std::size_t e = k4_sub_elems * j; e < k4_sub_elems * (j + 1); ++e)
                sub += S::code_at(w[b], e) * a[b].qs[e];
            isum += k4_scale(w[b].scales, j) * sub;
            summs += k4_min(w[b].scales, j) * (a[b].bsums[2 * j] + a[b].bsums[2 * j + 1]);
        }
        const float dall = a[b].d * fp16_to_fp32(w[b].d);
        const float dmin = a[b].d * fp16_to_fp32(w[b].dmin);
        sum += fmul(dall, static_cast<float>(isum)) - fmul(dmin, static_cast<float>(summs));
    }
    return sum;
}

// ---- Q3_K and Q6_K: symmetric sub-blocks ---------------------------------------

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
