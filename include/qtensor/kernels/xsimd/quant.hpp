// qtensor/kernels/xsimd/quant.hpp: the quantize and dequantize kernels of the
// xsimd backend. Each gives the same bits as its scalar twin in scheme/, and
// the quantizers throw the same qtensor::error for the same input (any
// non-finite element or fp16 scale overflow hands the row to the reference,
// which throws it). Included by backend.hpp.
#pragma once

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "qtensor/core/float_bits.hpp"
#include "qtensor/core/half.hpp"
#include "qtensor/kernels/xsimd/ops.hpp"
#include "qtensor/scheme/float.hpp"
#include "qtensor/scheme/q2_k.hpp"
#include "qtensor/scheme/q4_0.hpp"
#include "qtensor/scheme/q8_0.hpp"
#include "qtensor/scheme/q8_k.hpp"

QTENSOR_KERNELS_BEGIN_NAMESPACE
namespace detail::xsimd_quant {

using namespace xsimd_ops;

constexpr std::uint32_t nonfinite_bits = 0x7f800000u;

// Per block of `count` floats at x: the largest |x| as bits (>= nonfinite_bits
// exactly when the block holds Inf or NaN: for finite x the bits of |x| order
// as |x| does), and the references' signed max: the first element of that
// magnitude, +0 for an all-zero block.
struct block_max {
    std::uint32_t amax_bits;
    float max;
};

template <std::size_t count, class A>
block_max max_of_block(const float* x) {
    using VF = vec<float, A>;
    using VI = vec<std::int32_t, A>;
    constexpr std::size_t N = VF::size;
    static_assert(count % N == 0);
    VI a(0);
    for (std::size_t j = 0; j < count; j += N)
        a = xsimd::max(a, bits<std::int32_t>(VF::load_unaligned(x + j)) & VI(0x7fffffff));
    const auto amax_bits = static_cast<std::uint32_t>(hmax(a));
    if (amax_bits == 0 || amax_bits >= nonfinite_bits) return {amax_bits, 0.0f};
    const VF amax(std::bit_cast<float>(amax_bits));
    for (std::size_t j = 0;; j += N) {
        const int i = first_true(xsimd::abs(VF::load_unaligned(x + j)) == amax);
        if (i >= 0) return {amax_bits, x[j + static_cast<std::size_t>(i)]};
    }
}

// x[n] -> y[n / 32], as q4_0::quantize_row: per block the signed max, d =
// max / -8 and id = 1/d in scalar code, then code = min(15, trunc(x * id +
// 8.5)) on N lanes, the product rounded before the add, and the nibbles packed.
template <class A>
void quantize_q4_0(const float* x, block_q4_0* y, std::size_t n) {
    if constexpr (!can_round) return q4_0::quantize_row(x, y, n); // see rounded()
    using VF = vec<float, A>;
    using VI = vec<std::int32_t, A>;
    constexpr std::size_t N = VF::size;
    static_assert(16 % N == 0);
    for (std::size_t b = 0; b < n / 32; ++b) {
        const float* xb = x + 32 * b;
        const block_max m = max_of_block<32, A>(xb);
        if (m.amax_bits >= nonfinite_bits) return q4_0::quantize_row(x, y, n);
        const float d = m.max / -8.0f;
        y[b].d = fp32_to_fp16(d);
        if (!qtensor::detail::is_finite_bits(fp16_to_fp32(y[b].d))) return q4_0::quantize_row(x, y, n);
        const VF id(qtensor::detail::code_reciprocal(d));
        for (std::size_t j = 0; j < 16; j += N) {
            const VI lo = xsimd::batch_cast<std::int32_t>(rounded(VF::load_unaligned(xb + j) * id) + VF(8.5f));
            const VI hi = xsimd::batch_cast<std::int32_t>(rounded(VF::load_unaligned(xb + 16 + j) * id) + VF(8.5f));
            store_low_bytes(xsimd::min(lo, VI(15)) | (xsimd::min(hi, VI(15)) << 4), y[b].qs.data() + j);
        }
    }
}

// x[n] -> y[n / 32], as q8_0::quantize_row: code = round(x * id), half away
// from zero, as truncation plus or minus one where the (exact) remainder is
// at least 0.5 in magnitude, in float (every value is a small integer).
template <class A>
void quantize_q8_0(const float* x, block_q8_0* y, std::size_t n) {
    if constexpr (!can_round) return q8_0::quantize_row(x, y, n); // see rounded()
    using VF = vec<float, A>;
    constexpr std::size_t N = VF::size;
    static_assert(32 % N == 0);
    const VF half(0.5f), one(1.0f), zero(0.0f);
    for (std::size_t b = 0; b < n / 32; ++b) {
        const float* xb = x + 32 * b;
        const std::uint32_t amax_bits = max_of_block<32, A>(xb).amax_bits;
        if (amax_bits >= nonfinite_bits) return q8_0::quantize_row(x, y, n);
        const float d = std::bit_cast<float>(amax_bits) / 127.0f;
        y[b].d = fp32_to_fp16(d);
        if (!qtensor::detail::is_finite_bits(fp16_to_fp32(y[b].d))) return q8_0::quantize_row(x, y, n);
        const VF id(qtensor::detail::code_reciprocal(d));
        for (std::size_t j = 0; j < 32; j += N) {
            const VF p = rounded(VF::load_unaligned(xb + j) * id);
            const VF t = xsimd::batch_cast<float>(xsimd::batch_cast<std::int32_t>(p));
            const VF frac = p - t;
            const VF code = t + xsimd::select(frac >= half, one, zero) - xsimd::select(frac <= -half, one, zero);
            store_low_bytes(xsimd::batch_cast<std::int32_t>(code), y[b].qs.data() + j);
        }
    }
}

// x[n] -> y[n / 256], as q8_k::quantize_row: code = min(127, nearest_int(iscale * x))
// with nearest_int's own "+ 1.5 * 2^23" bit trick, and the 16 bsums from the
// int32 codes before they are narrowed.
template <class A>
void quantize_q8_k(const float* x, block_q8_k* y, std::size_t n) {
    if constexpr (!can_round) return q8_k::quantize_row(x, y, n); // see rounded()
    using VF = vec<float, A>;
    using VI = vec<std::int32_t, A>;
    constexpr std::size_t N = VF::size;
    static_assert(16 % N == 0);
    const VF magic(12582912.0f);
    for (std::size_t b = 0; b < n / 256; ++b) {
        const float* xb = x + 256 * b;
        const block_max m = max_of_block<256, A>(xb);
        if (m.amax_bits >= nonfinite_bits) return q8_k::quantize_row(x, y, n);
        const float iscale = m.max != 0.0f ? -127.0f / m.max : 0.0f;
        if (!qtensor::detail::is_finite_bits(iscale)) {
            // |max| < 127 / FLT_MAX: the reference's zero codes.
            y[b].qs.fill(0);
            y[b].bsums.fill(0);
        } else {
            const VF scale(iscale);
            for (std::size_t g = 0; g < 16; ++g) {
                VI sum(0);
                for (std::size_t j = 16 * g; j < 16 * (g + 1); j += N) {
                    const VF biased = rounded(scale * VF::load_unaligned(xb + j)) + magic;
                    const VI code = xsimd::min((bits<std::int32_t>(biased) & VI(0x007fffff)) - VI(0x00400000), VI(127));
                    sum += code;
                    store_low_bytes(code, y[b].qs.data() + j);
                }
                y[b].bsums[g] = static_cast<std::int16_t>(hsum(sum));
            }
        }
        y[b].d = m.max != 0.0f ? 1.0f / iscale : 0.0f;
    }
}

// x[n / 32] -> y[n]: y[j] = (code[j] - 8) * d.
template <class A>
void dequantize_q4_0(const block_q4_0* x, float* y, std::size_t n) {
    using VF = vec<float, A>;
    using VI = vec<std::int32_t, A>;
    constexpr std::size_t N = VF::size;
    static_assert(16 % N == 0);
    for (std::size_t b = 0; b < n / 32; ++b, y += 32) {
        const VF d(fp16_to_fp32(x[b].d));
        for (std::size_t j = 0; j < 16; j += N) {
            const VI bytes = load_u8_i32<A>(x[b].qs.data() + j);
            (xsimd::batch_cast<float>((bytes & VI(0x0f)) - VI(8)) * d).store_unaligned(y + j);
            (xsimd::batch_cast<float>((bytes >> 4) - VI(8)) * d).store_unaligned(y + 16 + j);
        }
    }
}

// x[n / 32] -> y[n]: y[j] = qs[j] * d.
template <class A>
void dequantize_q8_0(const block_q8_0* x, float* y, std::size_t n) {
    using VF = vec<float, A>;
    constexpr std::size_t N = VF::size;
    static_assert(32 % N == 0);
    for (std::size_t b = 0; b < n / 32; ++b, y += 32) {
        const VF d(fp16_to_fp32(x[b].d));
        for (std::size_t j = 0; j < 32; j += N)
            (xsimd::batch_cast<float>(load_i8_i32<A>(x[b].qs.data() + j)) * d).store_unaligned(y + j);
    }
}

// x[n / 256] -> y[n], as q2_k::dequantize_row: per sub-block j of 16,
// y = (d * s_j) * q - dmin * m_j. Both products are exact (11-bit fp16 times
// 4-bit s_j times 2-bit q), so an FMA would give the same bits. The 2-bit
// plane at shift 2s of bytes qs[32h .. 32h + 31] holds elements
// 128h + 32s + l, l = 0..31: sub-blocks 8h + 2s and 8h + 2s + 1.
template <class A>
void dequantize_q2_k(const block_q2_k* x, float* y, std::size_t n) {
    using VF = vec<float, A>;
    using VI = vec<std::int32_t, A>;
    constexpr std::size_t N = VF::size;
    static_assert(16 % N == 0);
    for (std::size_t b = 0; b < n / 256; ++b) {
        const float d = fp16_to_fp32(x[b].d);
        const float dmin = fp16_to_fp32(x[b].dmin);
        for (std::size_t h = 0; h < 2; ++h) {
            for (int s = 0; s < 4; ++s) {
                for (std::size_t l = 0; l < 32; l += 16, y += 16) {
                    const std::size_t j = 8 * h + 2 * static_cast<std::size_t>(s) + l / 16;
                    const VF dl(d * static_cast<float>(q2_k::scale_of(x[b], j)));
                    const VF ml(dmin * static_cast<float>(q2_k::min_of(x[b], j)));
                    for (std::size_t i = 0; i < 16; i += N) {
                        const VI q = (load_u8_i32<A>(x[b].qs.data() + 32 * h + l + i) >> (2 * s)) & VI(3);
                        (dl * xsimd::batch_cast<float>(q) - ml).store_unaligned(y + i);
                    }
                }
            }
        }
    }
}

// x[n] -> y[n], exact (load_f16).
template <class A>
void dequantize_f16(const fp16_t* x, float* y, std::size_t n) {
    constexpr std::size_t N = vec<float, A>::size;
    std::size_t i = 0;
    for (; i + N <= n; i += N) load_f16<A>(x + i).store_unaligned(y + i);
    for (; i < n; ++i) y[i] = fp16_to_fp32(x[i]);
}

// x[n] -> y[n]: bf16 is the top half of a float.
template <class A>
void dequantize_bf16(const bf16_t* x, float* y, std::size_t n) {
    constexpr std::size_t N = vec<float, A>::size;
    const auto* h = reinterpret_cast<const std::uint16_t*>(x);
    std::size_t i = 0;
    for (; i + N <= n; i += N) bits<float>(load_u16_u32<A>(h + i) << 16).store_unaligned(y + i);
    for (; i < n; ++i) y[i] = bf16_to_fp32(x[i]);
}

} // namespace detail::xsimd_quant

namespace detail::backend {

inline void quantize_q4_0(target t, const float* x, block_q4_0* y, std::size_t n) {
    run_on(t, [&](auto a) { xsimd_quant::quantize_q4_0<decltype(a)>(x, y, n); },
           [&] { q4_0::quantize_row(x, y, n); });
}
inline void quantize_q8_0(target t, const float* x, block_q8_0* y, std::size_t n) {
    run_on(t, [&](auto a) { xsimd_quant::quantize_q8_0<decltype(a)>(x, y, n); },
           [&] { q8_0::quantize_row(x, y, n); });
}
inline void quantize_q8_k(target t, const float* x, block_q8_k* y, std::size_t n) {
    run_on(t, [&](auto a) { xsimd_quant::quantize_q8_k<decltype(a)>(x, y, n); },
           [&] { q8_k::quantize_row(x, y, n); });
}
inline void dequantize_q4_0(target t, const block_q4_0* x, float* y, std::size_t n) {
    run_on(t, [&](auto a) { xsimd_quant::dequantize_q4_0<decltype(a)>(x, y, n); },
           [&] { q4_0::dequantize_row(x, y, n); });
}
inline void dequantize_q8_0(target t, const block_q8_0* x, float* y, std::size_t n) {
    run_on(t, [&](auto a) { xsimd_quant::dequantize_q8_0<decltype(a)>(x, y, n); },
           [&] { q8_0::dequantize_row(x, y, n); });
}
inline void dequantize_q2_k(target t, const block_q2_k* x, float* y, std::size_t n) {
    run_on(t, [&](auto a) { xsimd_quant::dequantize_q2_k<decltype(a)>(x, y, n); },
           [&] { q2_k::dequantize_row(x, y, n); });
}
inline void dequantize_f16(target t, const fp16_t* x, float* y, std::size_t n) {
    run_on(t, [&](auto a) { xsimd_quant::dequantize_f16<decltype(a)>(x, y, n); },
           [&] { f16::dequantize_row(x, y, n); });
}
inline void dequantize_bf16(target t, const bf16_t* x, float* y, std::size_t n) {
    run_on(t, [&](auto a) { xsimd_quant::dequantize_bf16<decltype(a)>(x, y, n); },
           [&] { bf16::dequantize_row(x, y, n); });
}

} // namespace detail::backend
QTENSOR_KERNELS_END_NAMESPACE
