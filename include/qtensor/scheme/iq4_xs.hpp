// qtensor/scheme/iq4_xs.hpp: IQ4_XS, IQ4_NL's grid in super-blocks of 256
// with 6-bit sub-block scales (GGUF type 23), 4.25 bits per weight. Dot
// partner: Q8_K. llama-quantize's IQ4_XS mix stores most weights in it.
//
// Block layout, 136 bytes:
//   [0..1]    d            fp16 super-scale (either sign)
//   [2..3]    scales_h     little-endian uint16: bits 2s..2s+1 are bits 5..4 of ls_s
//   [4..7]    scales_l[4]  bits 3..0 of ls_s: low nibble of byte s/2 for even s,
//                          high nibble for odd s
//   [8..135]  qs[128]      sub-block s (elements 32s .. 32s+31) in qs[16s .. 16s+15],
//                          IQ4_NL's order: byte j low nibble = element 32s + j,
//                          high nibble = element 32s + 16 + j
// Dequantize: w[e] = (d * (ls_s - 32)) * grid[code[e]], ls_s in 0..63, the
// grid of iq4_nl.hpp. Both products are exact in float.
//
// Quantizer (ggml's quantize_iq4_xs without importance matrix, which is also
// its quantize_row_iq4_xs_ref), per super-block:
//   1. scale_s = detail::iq4_block_scale of each sub-block (iq4_nl.hpp);
//      max_scale = the scale_s of largest |scale_s|, first on ties (0 if all 0);
//   2. D = -max_scale / 32 (fp32), stored d = fp16(D);
//      l_s = clamp(nearest_int((1 / D) * scale_s), -32, 31)   (1/D taken as 0 if D = 0);
//      ls_s = l_s + 32;
//   3. codes = nearest grid value to x * (1 / (D * l_s)) (0 if D * l_s = 0),
//      against the fp32 D, not the stored one.
// An all-zero super-block: max_scale = +0, D = -0.0 (d = 0x8000), every ls 32,
// every code 8; a sub-block whose l_s is 0 gets codes 8 and dequantizes to +-0.
//
// saturated[i] = 1 where x[i] * (1 / (D * l_s)) lies beyond the grid's ends,
// or the stored step fp16(D) * l_s is 0 (the output is 0 whatever x is).
//
// Input: NaN/Inf, and super-blocks whose d rounds to fp16 inf or whose scale
// search overflows float, throw qtensor::error.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "qtensor/core/float_bits.hpp"
#include "qtensor/core/half.hpp"
#include "qtensor/scheme/iq4_nl.hpp"
#include "qtensor/scheme/q8_k.hpp"
#include "qtensor/scheme/scheme.hpp"

QTENSOR_BEGIN_NAMESPACE

struct block_iq4_xs {
    fp16_t d;
    std::array<std::uint8_t, 2> scales_h; // a uint16 in ggml; bytes here, so no alignment and no byte order
    std::array<std::uint8_t, 4> scales_l;
    std::array<std::uint8_t, 128> qs;
};
static_assert(sizeof(block_iq4_xs) == 136);

struct iq4_xs {
    using block_type = block_iq4_xs;
    using dot_partner = q8_k;
    static constexpr std::size_t block_elems = 256;
    static constexpr std::size_t block_bytes = 136;
    static constexpr ggml_type type_id = ggml_type::iq4_xs;
    static constexpr std::string_view name = "iq4_xs";

    static constexpr std::size_t sub_elems = 32; // 8 sub-blocks of 32

    // ls_s (0..63) of sub-block s, and the 4-bit code of element e.
    static int scale_of(const block_iq4_xs& b, std::size_t s) noexcept {
        const unsigned h = static_cast<unsigned>(b.scales_h[0]) | static_cast<unsigned>(b.scales_h[1]) << 8;
        const int low = (b.scales_l[s / 2] >> (4 * (s % 2))) & 0x0f;
        return low | static_cast<int>((h >> (2 * s)) & 3) << 4;
    }
    static int code_at(const block_iq4_xs& b, std::size_t e) noexcept { return detail::iq4_nibble(b.qs.data(), e); }

    // x[n] -> y[n/256], the banner's three steps per super-block.
    static void quantize_row(const float* x, block_iq4_xs* y, std::size_t n, std::uint8_t* saturated = nullptr) {
        detail::check_finite(name, x, n);
        for (std::size_t b = 0; b < n / block_elems; ++b, x += block_elems) {
            std::array<float, 8> scales;
            float max_scale = 0.0f, amax_scale = 0.0f;
            for (std::size_t s = 0; s < 8; ++s) {
                scales[s] = detail::iq4_block_scale(x + sub_elems * s);
                detail::check_iq4_scale(name, "block " + std::to_string(b) + ", sub-block " + std::to_string(s),
                                        scales[s]);
                if (std::fabs(scales[s]) > amax_scale) {
                    amax_scale = std::fabs(scales[s]);
                    max_scale = scales[s];
                }
            }
            const float D = -max_scale / 32.0f;
            y[b].d = fp32_to_fp16(D);
            detail::check_fp16_scale(name, b, D, fp16_to_fp32(y[b].d));
            const float inv_d = D != 0.0f ? 1.0f / D : 0.0f;

            unsigned scales_h = 0;
            y[b].scales_l.fill(0);
            for (std::size_t s = 0; s < 8; ++s) {
                const int l = std::clamp(detail::nearest_int(detail::fmul(inv_d, scales[s])), -32, 31);
                const float dl = D * static_cast<float>(l);
                const bool zero_step = fp16_to_fp32(y[b].d) == 0.0f || l == 0;
                detail::iq4_pack_codes(x + sub_elems * s, dl != 0.0f ? 1.0f / dl : 0.0f, zero_step,
                                       y[b].qs.data() + 16 * s, saturated);
                if (saturated != nullptr) saturated += sub_elems;
                const unsigned ls = static_cast<unsigned>(l + 32);
                y[b].scales_l[s / 2] = static_cast<std::uint8_t>(y[b].scales_l[s / 2] | (ls & 0x0f) << (4 * (s % 2)));
                scales_h |= (ls >> 4) << (2 * s);
            }
            y[b].scales_h = {static_cast<std::uint8_t>(scales_h & 0xff), static_cast<std::uint8_t>(scales_h >> 8)};
        }
    }

    static void dequantize_row(const block_iq4_xs* x, float* y, std::size_t n) noexcept {
        for (std::size_t b = 0; b < n / block_elems; ++b) {
            const float d = fp16_to_fp32(x[b].d);
            for (std::size_t s = 0; s < 8; ++s) {
                const float dl = d * static_cast<float>(scale_of(x[b], s) - 32);
                for (std::size_t e = sub_elems * s; e < sub_elems * (s + 1); ++e)
                    *y++ = dl * static_cast<float>(detail::iq4_grid[static_cast<std::size_t>(code_at(x[b], e))]);
            }
        }
    }

    // Scalar reference against a Q8_K activation row (ggml's
    // ggml_vec_dot_iq4_xs_q8_K), per super-block with dy = a.d:
    //   sum_s ((dy * d) * (ls_s - 32)) * sum_{e in s} grid[code_e] * qa[e],
    // added sub-block by sub-block. The integer sums are exact (|sum| <=
    // 32 * 127 * 128 < 2^24, so also as float). Each term takes 3 roundings,
    // the n/32 terms n/32 - 1 more as they are added, a's dequantized values
    // (a.d * qa) one, and second-order terms one: with S = sum_i |w_i * a_i|,
    //   |dot - exact| <= (n/32 + 4) * 2^-24 * S.
    static float dot_row(const block_iq4_xs* w, const block_q8_k* a, std::size_t n) noexcept {
        float sum = 0.0f;
        for (std::size_t b = 0; b < n / block_elems; ++b) {
            const float dd = fp16_to_fp32(w[b].d) * a[b].d;
            for (std::size_t s = 0; s < 8; ++s) {
                std::int32_t sumi = 0;
                for (std::size_t e = sub_elems * s; e < sub_elems * (s + 1); ++e)
                    sumi += detail::iq4_grid[static_cast<std::size_t>(code_at(w[b], e))] * a[b].qs[e];
                const float dl = dd * static_cast<float>(scale_of(w[b], s) - 32);
                sum += detail::fmul(dl, static_cast<float>(sumi));
            }
        }
        return sum;
    }
};

QTENSOR_END_NAMESPACE
