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
// dequantize_row, quantize_row with its steps 1 to 4, then dot_row. Step 1's
// search (make_qkx2_quants) and step 3's requantize_sub_block are plain
// functions in k_quant.hpp, shared with Q2_K.
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

    static constexpr std::size_t sub_elems = 32;
    static constexpr std::size_t sub_blocks = block_elems / sub_elems;
    static constexpr int code_max = 15; // codes are 0..code_max

    // 6-bit scale sc_j and min m_j of sub-block j (ggml's get_scale_min_k4),
    // and the 4-bit code of element e.
    static int scale_of(const block_q4_k& b, std::size_t j) noexcept {
        if (j < 4) return b.scales[j] & 63;
        return (b.scales[j + 4] & 15) | ((b.scales[j - 4] >> 6) << 4);
    }
    static int min_of(const block_q4_k& b, std::size_t j) noexcept {
        if (j < 4) return b.scales[j + 4] & 63;
        return (b.scales[j + 4] >> 4) | ((b.scales[j] >> 6) << 4);
    }
    static int code_at(const block_q4_k& b, std::size_t e) noexcept {
        const std::size_t chunk = e / 64, l = e % 32;
        const std::uint8_t byte = b.qs[32 * chunk + l];
        return (e % 64) < 32 ? (byte & 15) : (byte >> 4);
    }

    // w = (d * sc_j) * q - dmin * m_j, both products rounded before the subtraction.
    static void dequantize_row(const block_q4_k* x, float* y, std::size_t n) noexcept {
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
    static void quantize_row(const float* x, block_q4_k* y, std::size_t n, std::uint8_t* saturated = nullptr) {
        detail::check_finite(name, x, n);
        for (std::size_t b = 0; b < n / block_elems; ++b, x += block_elems) {
            std::array<std::uint8_t, block_elems> codes;
            const auto fits = fit_sub_blocks(x, codes);
            quantize_scales(fits, y[b], b);
            requantize(x, y[b], codes, saturated);
            pack_codes(codes, y[b]);
            if (saturated != nullptr) saturated += block_elems;
        }
    }

private:
    static constexpr detail::qkx2_grid grid{code_max, -1.0f, 0.1f, 20, false};

    // Step 1: x[256] -> one fit per sub-block, codes[256] from the search.
    static std::array<detail::qkx2_fit, sub_blocks>
    fit_sub_blocks(const float* x, std::array<std::uint8_t, block_elems>& codes) noexcept {
        std::array<detail::qkx2_fit, sub_blocks> fits;
        for (std::size_t j = 0; j < sub_blocks; ++j) {
            const float* xs = x + sub_elems * j;
            float sum_x2 = 0.0f;
            for (std::size_t i = 0; i < sub_elems; ++i) sum_x2 += detail::fmul(xs[i], xs[i]);
            const float av = std::sqrt(sum_x2 / static_cast<float>(sub_elems));
            std::array<float, sub_elems> weights;
            for (std::size_t i = 0; i < sub_elems; ++i) weights[i] = av + std::fabs(xs[i]);
            fits[j] = detail::make_qkx2_quants<sub_elems>(xs, weights.data(), grid,
                                                          codes.data() + sub_elems * j);
        }
        return fits;
    }

    // Step 2: the fits -> the 12 packed scale bytes, d, dmin.
    static void quantize_scales(const std::array<detail::qkx2_fit, sub_blocks>& fits,
                                block_q4_k& y, std::size_t block) {
        const detail::qkx2_fit largest = detail::largest_fit(fits);
        const float inv_scale = largest.scale > 0.0f ? 63.0f / largest.scale : 0.0f;
        const float inv_min = largest.min > 0.0f ? 63.0f / largest.min : 0.0f;
        std::array<std::uint8_t, sub_blocks> sc, m;
        for (std::size_t j = 0; j < sub_blocks; ++j) {
            sc[j] = six_bits(detail::nearest_int(detail::fmul(inv_scale, fits[j].scale)));
            m[j] = six_bits(detail::nearest_int(detail::fmul(inv_min, fits[j].min)));
        }
        for (std::size_t j = 0; j < 4; ++j) {
            y.scales[j] = static_cast<std::uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
            y.scales[j + 4] = static_cast<std::uint8_t>(m[j] | ((m[j + 4] >> 4) << 6));
            y.scales[j + 8] = static_cast<std::uint8_t>((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
        }
        y.d = fp32_to_fp16(largest.scale / 63.0f);
        y.dmin = fp32_to_fp16(largest.min / 63.0f);
        detail::check_fp16_scale(name, block, largest.scale / 63.0f, fp16_to_fp32(y.d));
        detail::check_fp16_scale(name, block, largest.min / 63.0f, fp16_to_fp32(y.dmin));
    }

    // ggml: uint8_t l = nearest_int(...); l = MIN(63, l). Wrap first, then clamp.
    static std::uint8_t six_bits(int l) noexcept {
        return std::min<std::uint8_t>(63, static_cast<std::uint8_t>(l));
    }

    // Step 3: codes against the stored d * sc_j and dmin * m_j.
    static void requantize(const float* x, const block_q4_k& y, std::array<std::uint8_t, block_elems>& codes,
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

    // Step 4: codes[256] -> qs[128].
    static void pack_codes(const std::array<std::uint8_t, block_elems>& codes, block_q4_k& y) noexcept {
        for (std::size_t chunk = 0; chunk < 4; ++chunk)
            for (std::size_t l = 0; l < 32; ++l) {
                const std::size_t e = 64 * chunk + l;
                y.qs[32 * chunk + l] = static_cast<std::uint8_t>(codes[e] | (codes[e + 32] << 4));
            }
    }

public:
    // Scalar reference against a Q8_K activation row (docs/schemes.md section 16),
    // per super-block with dy = a.d:
    //   (dy * d) * sum_j sc_j * (sum_{e in j} q[e] * qa[e])
    //     - (dy * dmin) * sum_j m_j * (bsums[2j] + bsums[2j + 1])
    // (a sub-block of 32 is two Q8_K bsums). The integer sums are exact in
    // int32; the first may exceed 2^24 and round once when converted to float.
    // Each block term is then at most 4 roundings, and the terms are summed in
    // float. (ggml's generic C spreads the first term over 8 float lanes: a
    // different order, within the same budget.) With S = sum_i (|d sc_j q_i
    // a_i| + |dmin m_j a_i|) over dequantized a_i, the result is within
    // (n/256 + 6) * 2^-24 * S of the exact sum of the dequantized products
    // w_i * a_i (for n < 2^28): 4 roundings per block term, n/256 - 1 for the
    // float sum, 2 for the roundings inside dequantized w and a, one more for
    // second-order terms.
    static float dot_row(const block_q4_k* w, const block_q8_k* a, std::size_t n) noexcept {
        float sum = 0.0f;
        for (std::size_t b = 0; b < n / block_elems; ++b) {
            std::int32_t isum = 0;
            std::int32_t summs = 0;
            for (std::size_t j = 0; j < sub_blocks; ++j) {
                std::int32_t sub = 0;
                for (std::size_t e = sub_elems * j; e < sub_elems * (j + 1); ++e)
                    sub += code_at(w[b], e) * a[b].qs[e];
                isum += scale_of(w[b], j) * sub;
                summs += min_of(w[b], j) * (a[b].bsums[2 * j] + a[b].bsums[2 * j + 1]);
            }
            const float dall = a[b].d * fp16_to_fp32(w[b].d);
            const float dmin = a[b].d * fp16_to_fp32(w[b].dmin);
            sum += detail::fmul(dall, static_cast<float>(isum)) - detail::fmul(dmin, static_cast<float>(summs));
        }
        return sum;
    }
};

QTENSOR_END_NAMESPACE
