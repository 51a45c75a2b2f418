// qtensor/scheme/q5_1.hpp: Q5_1, 5-bit asymmetric blocks of 32 (GGUF type 7),
// 6 bits per weight. ggml's dot partner is Q8_1, which qtensor does not have:
// no dot product.
//
// Block layout, 24 bytes:
//   [0..1]   d       fp16 scale
//   [2..3]   m       fp16 block minimum
//   [4..7]   qh[4]   bit 4 of every code, as in Q5_0: element j's in bit j of
//                    the little-endian uint32 qh
//   [8..23]  qs[16]  bits 0..3: byte j holds element j (low nibble) and
//                    element j + 16 (high nibble)
// Dequantize: w[j] = code[j] * d + m, codes 0..31, the product rounded to
// float before the addition.
//
// Reference quantizer (ggml's quantize_row_q5_1_ref), per block: Q4_1's with
// 31 for 15:
//   min, max = the block's extremes (strict comparisons from +-FLT_MAX);
//   d    = (max - min) / 31,  id = d ? 1/d : 0 (fp32, unrounded);
//   code = trunc((x - min) * id + 0.5)   (x - min >= 0: round half up);
//   stored: fp16(d) and fp16(min); the codes use the unrounded fp32 d and min.
// min maps to code 0 exactly and max to 31. ggml does not clamp: (x - min) * id
// is at most 31 up to a few roundings (id is finite only for d >= 2^-128,
// where d keeps 21 bits), so the argument stays below 32 for finite input and
// no code is ever clamped; `saturated` is all zeros. A constant block has
// d = 0: every code 0, w = fp16(min).
//
// Input: NaN/Inf, and blocks whose d or min round to fp16 inf (d >= 65520,
// |min| >= 65520), throw qtensor::error. ggml stores the inf and the block
// dequantizes to +-inf; the golden test checks that exactly those rows throw.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "qtensor/core/float_bits.hpp"
#include "qtensor/core/half.hpp"
#include "qtensor/scheme/q4_1.hpp"
#include "qtensor/scheme/q5_0.hpp"
#include "qtensor/scheme/scheme.hpp"

QTENSOR_BEGIN_NAMESPACE

struct block_q5_1 {
    fp16_t d;
    fp16_t m;
    std::array<std::uint8_t, 4> qh;
    std::array<std::uint8_t, 16> qs;
};
static_assert(sizeof(block_q5_1) == 24);

struct q5_1 {
    using block_type = block_q5_1;
    static constexpr std::size_t block_elems = 32;
    static constexpr std::size_t block_bytes = 24;
    static constexpr ggml_type type_id = ggml_type::q5_1;
    static constexpr std::string_view name = "q5_1";

    // x[n] -> y[n/32]. Throws qtensor::error on NaN/Inf input or a d or min
    // past the fp16 range. `saturated`, if given, is all zeros (see above).
    static void quantize_row(const float* x, block_q5_1* y, std::size_t n,
                             std::uint8_t* saturated = nullptr) {
        detail::check_finite(name, x, n);
        for (std::size_t b = 0; b < n / block_elems; ++b, x += block_elems) {
            const auto [min, id] = detail::store_block_range(name, b, x, block_elems, 31.0f, y[b]);

            std::array<int, block_elems> code;
            for (std::size_t j = 0; j < block_elems; ++j)
                code[j] = static_cast<int>(detail::fmul(x[j] - min, id) + 0.5f);
            detail::pack_five_bit_codes(code, y[b].qs, y[b].qh);
            if (saturated != nullptr)
                for (std::size_t j = 0; j < block_elems; ++j) *saturated++ = 0;
        }
    }

    static void dequantize_row(const block_q5_1* x, float* y, std::size_t n) noexcept {
        for (std::size_t b = 0; b < n / block_elems; ++b) {
            const float d = fp16_to_fp32(x[b].d);
            const float m = fp16_to_fp32(x[b].m);
            for (std::size_t j = 0; j < block_elems; ++j)
                *y++ = detail::fmul(static_cast<float>(detail::five_bit_code(x[b].qs, x[b].qh, j)), d) + m;
        }
    }
};

QTENSOR_END_NAMESPACE
