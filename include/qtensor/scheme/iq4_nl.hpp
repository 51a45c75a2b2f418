// qtensor/scheme/iq4_nl.hpp: IQ4_NL, 4-bit codes on a non-linear grid in
// blocks of 32 (GGUF type 20), 4.5 bits per weight. Dot partner: Q8_0.
//
// Block layout, 18 bytes, Q4_0's:
//   [0..1]   d       fp16 scale (either sign)
//   [2..17]  qs[16]  byte j: low nibble = code of element j,
//                            high nibble = code of element j + 16
// Dequantize: w[j] = d * grid[code[j]], where grid is ggml's kvalues_iq4nl,
//   -127 -104 -83 -65 -49 -35 -22 -10 1 13 25 38 53 69 89 113,
// denser near zero, where most weights are. The product is exact in float.
//
// Quantizer (ggml's quantize_iq4_nl without importance matrix, as
// llama-quantize runs it), per block:
//   1. scale = iq4_block_scale(x) below: a least-squares fit of the grid to x
//      with weights x^2, over 16 candidate steps;
//   2. d = fp16(scale); codes = nearest grid value to x * (1 / scale), the
//      fp32 scale, not the stored one (ties go up the grid).
// A block with max |x| < 1e-15 gets scale 0: d = 0, every code 8 (grid 1).
// (ggml's quantize_row_iq4_nl_ref, used by its CPU copy into IQ4_NL, makes a
// single fit, with id = -127 / max, and keeps its codes: other bytes.)
//
// saturated[i] = 1 where x[i] * (1 / scale) lies beyond the grid's ends
// (clamped to -127 or 113), or the stored d is 0 (the output is 0 whatever x
// is: a scale of 0, or one below the fp16 range).
//
// Input: NaN/Inf and blocks whose scale rounds to fp16 inf throw qtensor::error.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "qtensor/core/float_bits.hpp"
#include "qtensor/core/half.hpp"
#include "qtensor/scheme/q8_0.hpp"
#include "qtensor/scheme/scheme.hpp"

QTENSOR_BEGIN_NAMESPACE

struct block_iq4_nl {
    fp16_t d;
    std::array<std::uint8_t, 16> qs;
};
static_assert(sizeof(block_iq4_nl) == 18);

namespace detail {

// ggml's kvalues_iq4nl: the value of each 4-bit code, before the scale.
inline constexpr std::array<std::int8_t, 16> iq4_grid{-127, -104, -83, -65, -49, -35, -22, -10,
                                                      1,    13,   25,  38,  53,  69,  89,  113};

// The code whose grid value is nearest to v (ggml's best_index_int8): the
// ends take everything beyond them, and a tie between two neighbours goes to
// the upper one. The differences are float subtractions, as in ggml.
inline int iq4_code(float v) noexcept {
    if (v <= static_cast<float>(iq4_grid[0])) return 0;
    if (v >= static_cast<float>(iq4_grid[15])) return 15;
    std::size_t lo = 0, hi = 15;
    while (hi - lo > 1) {
        const std::size_t mid = (lo + hi) / 2;
        if (v < static_cast<float>(iq4_grid[mid])) hi = mid;
        else lo = mid;
    }
    const bool lower = v - static_cast<float>(iq4_grid[hi - 1]) < static_cast<float>(iq4_grid[hi]) - v;
    return static_cast<int>(lower ? hi - 1 : hi);
}

// Beyond the grid's ends: the code is clamped.
inline bool iq4_clamped(float v) noexcept {
    return v < static_cast<float>(iq4_grid[0]) || v > static_cast<float>(iq4_grid[15]);
}

// The scale of one block of 32 (ggml's quantize_row_iq4_nl_impl, ntry 7, no
// importance matrix), in float with every product rounded (fmul: none may
// fuse with the sums, nor with the subtractions inside iq4_code):
//   max  = the element of largest |x|, signed, first on ties; 0 if |max| < 1e-15;
//   w    = x^2 per element;
//   fit(id): codes l = iq4_code(id * x), then sumqx = sum w*g*x, sumq2 = sum w*g^2
//            (g = grid[l], products left to right, sums in element order);
//   first  id = 1 / (-max / -127):  scale = sumqx / sumq2, best = scale * sumqx;
//   then   id = (t - 127) / max for t = -7..7 (the other sign): a fit replaces
//          the best when sumqx^2 > best * sumq2 (strictly, so ties keep the
//          earlier), with scale = sumqx / sumq2.
// The caller refuses a non-finite result (sums past FLT_MAX).
inline float iq4_block_scale(const float* x) noexcept {
    constexpr std::size_t n = 32;
    const float max = signed_absmax(x, n);
    if (std::fabs(max) < group_max_eps) return 0.0f;

    const float first_grid = static_cast<float>(iq4_grid[0]);
    const auto fit = [&](float id, float& sumqx, float& sumq2) {
        sumqx = 0.0f;
        sumq2 = 0.0f;
        for (std::size_t j = 0; j < n; ++j) {
            const float g = static_cast<float>(iq4_grid[static_cast<std::size_t>(iq4_code(fmul(id, x[j])))]);
            const float wg = fmul(fmul(x[j], x[j]), g);
            sumqx += fmul(wg, x[j]);
            sumq2 += fmul(wg, g);
        }
    };
    float sumqx = 0.0f, sumq2 = 0.0f;
    fit(1.0f / (-max / first_grid), sumqx, sumq2);
    float scale = sumq2 > 0.0f ? sumqx / sumq2 : 0.0f;
    float best = fmul(scale, sumqx);
    for (int t = -7; t <= 7; ++t) {
        fit(static_cast<float>(t + iq4_grid[0]) / max, sumqx, sumq2);
        if (sumq2 > 0.0f && fmul(sumqx, sumqx) > fmul(best, sumq2)) {
            scale = sumqx / sumq2;
            best = fmul(scale, sumqx);
        }
    }
    return scale;
}

// A non-finite scale means the sums overflowed (|x| from about 4e11 on),
// far past what an fp16 scale can hold. `where`: "block 3", "block 3, sub-block 5".
inline void check_iq4_scale(std::string_view name, const std::string& where, float scale) {
    if (!is_finite_bits(scale))
        throw error(std::string(name) + ": " + where +
                    ": the scale search overflows float; its scale would be far past the fp16 range");
}

// codes of element j and j + 16 share byte j of each 16-byte group (Q4_0's order).
inline int iq4_nibble(const std::uint8_t* qs, std::size_t j) noexcept {
    return j % 32 < 16 ? qs[16 * (j / 32) + j % 32] & 0x0f : qs[16 * (j / 32) + j % 32 - 16] >> 4;
}

// The codes of x[32] against id = 1/scale, packed into qs[16]. saturated[32]:
// 1 where the code was clamped, or everywhere when the stored step is 0.
inline void iq4_pack_codes(const float* x, float id, bool zero_step, std::uint8_t* qs,
                           std::uint8_t* saturated) noexcept {
    for (std::size_t j = 0; j < 16; ++j) {
        const float lo = fmul(id, x[j]), hi = fmul(id, x[j + 16]);
        qs[j] = static_cast<std::uint8_t>(iq4_code(lo) | (iq4_code(hi) << 4));
        if (saturated != nullptr) {
            saturated[j] = zero_step || iq4_clamped(lo);
            saturated[j + 16] = zero_step || iq4_clamped(hi);
        }
    }
}

} // namespace detail

struct iq4_nl {
    using block_type = block_iq4_nl;
    using dot_partner = q8_0;
    static constexpr std::size_t block_elems = 32;
    static constexpr std::size_t block_bytes = 18;
    static constexpr ggml_type type_id = ggml_type::iq4_nl;
    static constexpr std::string_view name = "iq4_nl";

    static int code_at(const block_iq4_nl& b, std::size_t j) noexcept { return detail::iq4_nibble(b.qs.data(), j); }
    // Element j of block b is multiple_at(b, j) * d.
    static std::int8_t multiple_at(const block_iq4_nl& b, std::size_t j) noexcept {
        return detail::iq4_grid[static_cast<std::size_t>(code_at(b, j))];
    }

    // x[n] -> y[n/32], the banner's two steps per block.
    static void quantize_row(const float* x, block_iq4_nl* y, std::size_t n, std::uint8_t* saturated = nullptr) {
        detail::check_finite(name, x, n);
        for (std::size_t b = 0; b < n / block_elems; ++b, x += block_elems) {
            const float scale = detail::iq4_block_scale(x);
            detail::check_iq4_scale(name, "block " + std::to_string(b), scale);
            y[b].d = fp32_to_fp16(scale);
            const float stored = fp16_to_fp32(y[b].d);
            detail::check_fp16_scale(name, b, scale, stored);
            detail::iq4_pack_codes(x, scale != 0.0f ? 1.0f / scale : 0.0f, stored == 0.0f, y[b].qs.data(),
                                   saturated);
            if (saturated != nullptr) saturated += block_elems;
        }
    }

    static void dequantize_row(const block_iq4_nl* x, float* y, std::size_t n) noexcept {
        for (std::size_t b = 0; b < n / block_elems; ++b) {
            const float d = fp16_to_fp32(x[b].d);
            for (std::size_t j = 0; j < block_elems; ++j)
                *y++ = d * static_cast<float>(multiple_at(x[b], j));
        }
    }

    // Scalar reference against a Q8_0 activation row (ggml's
    // ggml_vec_dot_iq4_nl_q8_0): per block (dw * da) * sum_j grid[code_j] * qa[j];
    // one rounding per block, and Q4_0's budget.
    static float dot_row(const block_iq4_nl* w, const block_q8_0* a, std::size_t n) noexcept {
        return detail::dot_multiples_q8_0<iq4_nl>(w, a, n);
    }
};

QTENSOR_END_NAMESPACE
