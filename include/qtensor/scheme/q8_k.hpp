// qtensor/scheme/q8_k.hpp: Q8_K, 8-bit symmetric super-blocks of 256 (GGUF
// type 15). The activation partner of the K-quants (Q2_K, Q4_K) in dot
// products; ggml never stores it in files in practice.
//
// Block layout, 292 bytes:
//   [0..3]     d          float32 scale (not fp16), may be negative
//   [4..259]   qs[256]    int8 codes, in element order
//   [260..291] bsums[16]  int16: bsums[g] = qs[16g] + ... + qs[16g + 15]
// Dequantize: w[j] = d * qs[j].
//
// Reference quantizer (ggml's quantize_row_q8_K_ref), per block:
//   max    = the element of largest |x|, signed, first one on ties (strict >);
//   iscale = -127 / max                 (so max itself maps to -127);
//   qs[j]  = min(127, nearest_int(iscale * x[j]))   (half to even);
//   d      = 1 / iscale                 (stored as is, so d < 0 when max > 0).
// The clamp at 127 cannot fire for finite input (|iscale * x| <= 127 up to two
// roundings, which nearest_int takes back to 127); `saturated` reports it all
// the same.
//
// Odd blocks, and where we differ from ggml:
//   - All-zero block: d = +0 and qs = 0. ggml leaves bsums untouched (whatever
//     the buffer held); we write zeros, which are also the correct sums.
//   - 0 < |max| < 127 / FLT_MAX (about 3.7e-37): iscale overflows to -+inf.
//     ggml then stores nearest_int(+-inf) = -2^22 or nearest_int(NaN) = 0
//     (for 0 * inf) into int8, which wraps to 0 on every compiler it supports,
//     and d = 1/iscale = -+0. We write exactly those bytes (codes 0, bsums 0,
//     d = -0.0 for a positive max) without relying on the NaN's bit pattern.
//     Such elements are not marked saturated: their outputs, 0, are within
//     3.7e-37 of x.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "qtensor/core/float_bits.hpp"
#include "qtensor/scheme/scheme.hpp"

QTENSOR_BEGIN_NAMESPACE

struct block_q8_k {
    float d;
    std::array<std::int8_t, 256> qs;
    std::array<std::int16_t, 16> bsums;
};
static_assert(sizeof(block_q8_k) == 292);

struct q8_k {
    using block_type = block_q8_k;
    static constexpr std::size_t block_elems = 256;
    static constexpr std::size_t block_bytes = 292;
    static constexpr ggml_type type_id = ggml_type::q8_k;
    static constexpr std::string_view name = "q8_k";
    // ggml has no to_float for Q8_K: an activation format, not a file format.
    static constexpr bool activation_only = true;

    // x[n] -> y[n/256]. Throws qtensor::error on NaN/Inf input. The scale is
    // fp32, so it never overflows; but with |max| near FLT_MAX the product
    // -127 * d can round past FLT_MAX, and such a block dequantizes to +-inf
    // (the same bytes and values as ggml). saturated[i] = 1 where the code was
    // clamped at 127 (never, for finite input; see above).
    static void quantize_row(const float* x, block_q8_k* y, std::size_t n,
                             std::uint8_t* saturated = nullptr) {
        detail::check_finite(name, x, n);
        for (std::size_t b = 0; b < n / block_elems; ++b, x += block_elems) {
            const float max = detail::signed_absmax(x, block_elems);
            const float iscale = max != 0.0f ? -127.0f / max : 0.0f;
            for (std::size_t j = 0; j < block_elems; ++j) {
                int code = 0;
                if (detail::is_finite_bits(iscale)) code = detail::nearest_int(detail::fmul(iscale, x[j]));
                y[b].qs[j] = static_cast<std::int8_t>(std::min(127, code));
                if (saturated != nullptr) *saturated++ = code > 127 ? 1 : 0;
            }
            for (std::size_t g = 0; g < block_elems / 16; ++g) {
                int sum = 0;
                for (std::size_t j = 0; j < 16; ++j) sum += y[b].qs[16 * g + j];
                y[b].bsums[g] = static_cast<std::int16_t>(sum);
            }
            y[b].d = max != 0.0f ? 1.0f / iscale : 0.0f;
        }
    }

    static void dequantize_row(const block_q8_k* x, float* y, std::size_t n) noexcept {
        for (std::size_t b = 0; b < n / block_elems; ++b)
            for (std::size_t j = 0; j < block_elems; ++j) *y++ = x[b].d * static_cast<float>(x[b].qs[j]);
    }
};

QTENSOR_END_NAMESPACE
