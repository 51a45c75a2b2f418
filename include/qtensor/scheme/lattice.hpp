// qtensor/scheme/lattice.hpp: does a block of weights sit on a Q4_0 grid, and
// which one? (docs/qat.md, "Lattice alignment").
//
// A Q4_0 block stores x = d * (code - 8), codes 0..15, d an fp16 scale. So the
// values of a block packed and unpacked lie on a grid x = s * k: a step s > 0
// and whole k in -8..7 (d > 0) or -7..8 (d < 0). ggml's quantizer picks
// s = max|x| / 8; a QAT recipe with another rule (a symmetric amax / 7 grid)
// leaves blocks on grids whose largest code is 7, which ggml's rule re-rounds.
//
// fit_q4_0 finds the coarsest grid a block lies on: for K = 1..8 the step
// s = max|x| / K, every x within `tolerance` of a multiple of s. The tolerance
// covers the rounding of the values as stored: with u the unit roundoff of the
// source format (2^-8 bf16, 2^-11 f16, 2^-24 f32), |x - s k| <= 3 u max|x|.
// pack_on_grid then writes the block with that grid's step as its scale, so
// unpacking gives the trained values back up to the fp16 rounding of the step.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "qtensor/core/config.hpp"
#include "qtensor/core/half.hpp"
#include "qtensor/scheme/q4_0.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace lattice {

// The unit roundoff of a stored float format: half its spacing at 1.
inline constexpr float unit_roundoff_bf16 = 0x1p-8f;
inline constexpr float unit_roundoff_f16 = 0x1p-11f;
inline constexpr float unit_roundoff_f32 = 0x1p-24f;

struct grid_fit {
    bool on_grid = false; // every element within tolerance of step * k, k in -8..7 or -7..8
    int code_max = 0;     // K: the largest |k|, 1..8 (0: an all-zero block); 8 when off every grid
    float step = 0;       // s, refined by least squares over the 32 elements (off every grid: max|x| / 8)
    float residual = 0;   // max |x - s k| / s (off every grid: to ggml's step, at most 1/2)
};

namespace detail {

// The grid with largest code K: codes k = round(x / s), s = max|x| / K; with
// `refine`, s then becomes sum(x k) / sum(k k) (the trained step, better than
// the one rounded element that s came from).
inline grid_fit try_grid(const float* x, float amax, int K, float tolerance, bool refine) {
    constexpr std::size_t n = q4_0::block_elems;
    const float s0 = amax / static_cast<float>(K);
    std::array<int, n> k{};
    double xk = 0, kk = 0;
    bool low = false, high = false; // a code -8 / +8: both cannot be packed
    for (std::size_t i = 0; i < n; ++i) {
        k[i] = static_cast<int>(std::nearbyint(x[i] / s0));
        low = low || k[i] <= -8;
        high = high || k[i] >= 8;
        xk += static_cast<double>(x[i]) * k[i];
        kk += static_cast<double>(k[i]) * k[i];
    }
    grid_fit f;
    f.code_max = K;
    f.step = refine ? static_cast<float>(xk / kk) : s0;
    float worst = 0;
    for (std::size_t i = 0; i < n; ++i) worst = std::fmax(worst, std::fabs(x[i] - f.step * static_cast<float>(k[i])));
    f.residual = worst / f.step;
    f.on_grid = !(low && high) && worst <= tolerance;
    return f;
}

} // namespace detail

// x[32], one block; precision: the source format's unit roundoff. A block
// with a NaN or Inf, or whose step is past the fp16 range, is on no grid.
inline grid_fit fit_q4_0(const float* x, float precision) {
    float amax = 0;
    for (std::size_t i = 0; i < q4_0::block_elems; ++i) {
        if (!std::isfinite(x[i])) return {.on_grid = false, .code_max = 8, .step = 0, .residual = std::numeric_limits<float>::infinity()};
        amax = std::fmax(amax, std::fabs(x[i]));
    }
    if (amax == 0) return {.on_grid = true, .code_max = 0, .step = 0, .residual = 0};
    const float tolerance = 3 * precision * amax;
    for (int K = 1; K <= 8; ++K) {
        grid_fit f = detail::try_grid(x, amax, K, tolerance, true);
        f.on_grid = f.on_grid && std::isfinite(fp16_to_fp32(fp32_to_fp16(f.step)));
        if (f.on_grid) return f;
    }
    return detail::try_grid(x, amax, 8, -1, false); // off every grid: how far from ggml's step
}

// The block packed on its grid: d = +-fp16(step), code = 8 + k or 8 - k,
// whichever keeps every code in 0..15. Requires f.on_grid.
inline block_q4_0 pack_on_grid(const float* x, const grid_fit& f) {
    block_q4_0 out{};
    constexpr std::size_t half = q4_0::block_elems / 2;
    std::array<int, q4_0::block_elems> code{};
    code.fill(8);
    if (f.code_max == 0) { // all zero: as ggml writes it
        out.d = fp32_to_fp16(-0.0f);
    } else {
        bool high = false;
        for (std::size_t i = 0; i < q4_0::block_elems; ++i) {
            code[i] = static_cast<int>(std::nearbyint(x[i] / f.step));
            high = high || code[i] >= 8;
        }
        const int sign = high ? -1 : 1; // a +8 needs d < 0: x = -s * (8 - code')
        out.d = fp32_to_fp16(static_cast<float>(sign) * f.step);
        for (int& c : code) c = 8 + sign * c;
    }
    for (std::size_t j = 0; j < half; ++j)
        out.qs[j] = static_cast<std::uint8_t>(code[j] | (code[j + half] << 4));
    return out;
}

// x[n] -> y[n / 32]: blocks on a grid packed on it, the others by ggml's
// rule (q4_0::quantize_row, which throws on NaN/Inf or an fp16 overflow).
inline void quantize_row_aligned(const float* x, block_q4_0* y, std::size_t n, float precision) {
    for (std::size_t b = 0; b < n / q4_0::block_elems; ++b, x += q4_0::block_elems) {
        const grid_fit f = fit_q4_0(x, precision);
        if (f.on_grid) y[b] = pack_on_grid(x, f);
        else q4_0::quantize_row(x, &y[b], q4_0::block_elems);
    }
}

// What packing a tensor does to it, block by block: how many blocks lie on a
// grid (and on which), how many ggml's rule moves, and the error of ggml's
// packing and of the aligned one (quantize_row_aligned) against the values.
struct report {
    std::size_t blocks = 0, on_grid = 0;
    std::size_t moved = 0;                   // blocks ggml's rule changes by more than the tolerance
    std::array<std::size_t, 9> by_code_max{}; // on-grid blocks by their largest code (0: all zero)
    double sum_sq = 0;                       // sum of x^2
    double ggml_sq = 0, aligned_sq = 0;      // sums of squared errors
    double ggml_max = 0, aligned_max = 0;    // largest error of one element

    // One block of 32 finite values.
    void add(const float* x, float precision) {
        const grid_fit f = fit_q4_0(x, precision);
        constexpr std::size_t n = q4_0::block_elems;
        block_q4_0 ggml{}, aligned{};
        q4_0::quantize_row(x, &ggml, n);
        aligned = f.on_grid ? pack_on_grid(x, f) : ggml;
        std::array<float, n> yg{}, ya{};
        q4_0::dequantize_row(&ggml, yg.data(), n);
        q4_0::dequantize_row(&aligned, ya.data(), n);
        float amax = 0;
        for (std::size_t i = 0; i < n; ++i) amax = std::fmax(amax, std::fabs(x[i]));
        bool moves = false;
        for (std::size_t i = 0; i < n; ++i) {
            const double eg = std::fabs(static_cast<double>(yg[i]) - x[i]);
            const double ea = std::fabs(static_cast<double>(ya[i]) - x[i]);
            sum_sq += static_cast<double>(x[i]) * x[i];
            ggml_sq += eg * eg;
            aligned_sq += ea * ea;
            ggml_max = std::fmax(ggml_max, eg);
            aligned_max = std::fmax(aligned_max, ea);
            moves = moves || eg > 3.0 * precision * amax;
        }
        ++blocks;
        moved += moves;
        if (f.on_grid) {
            ++on_grid;
            ++by_code_max[static_cast<std::size_t>(f.code_max)];
        }
    }

    void merge(const report& o) {
        blocks += o.blocks;
        on_grid += o.on_grid;
        moved += o.moved;
        for (std::size_t k = 0; k < by_code_max.size(); ++k) by_code_max[k] += o.by_code_max[k];
        sum_sq += o.sum_sq;
        ggml_sq += o.ggml_sq;
        aligned_sq += o.aligned_sq;
        ggml_max = std::fmax(ggml_max, o.ggml_max);
        aligned_max = std::fmax(aligned_max, o.aligned_max);
    }
};

} // namespace lattice
QTENSOR_END_NAMESPACE
