// qtensor/kernels/highway/quant-inl.hpp: SIMD bodies of the quantize and
// dequantize kernels, compiled once per Highway target (re-included by
// foreach_target.h through highway/all-inl.hpp; do not include it yourself).
// Each gives the same bits as its scalar twin in scheme/, and the quantizers
// throw the same qtensor::error for the same input.
//
// Written for any lane count N (1 on HWY_SCALAR, 4 to 16 floats elsewhere).

// Per-target include guard (Highway's toggle idiom).
#if defined(QTENSOR_KERNELS_HIGHWAY_QUANT_INL_HPP_) == defined(HWY_TARGET_TOGGLE)
#ifdef QTENSOR_KERNELS_HIGHWAY_QUANT_INL_HPP_
#undef QTENSOR_KERNELS_HIGHWAY_QUANT_INL_HPP_
#else
#define QTENSOR_KERNELS_HIGHWAY_QUANT_INL_HPP_
#endif

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "hwy/highway.h"
#include "qtensor/core/float_bits.hpp"
#include "qtensor/core/half.hpp"
#include "qtensor/kernels/abi.hpp"
#include "qtensor/scheme/q2_k.hpp"
#include "qtensor/scheme/q4_0.hpp"
#include "qtensor/scheme/q8_0.hpp"
#include "qtensor/scheme/q8_k.hpp"

// Targets on which rounded() below works, so the quantizers, which must round
// every product before the add that follows, run as SIMD. Elsewhere (HWY_SCALAR,
// EMU128, other architectures) those kernels are the scalar references.
#undef QTENSOR_HWY_CAN_ROUND
#if (HWY_ARCH_X86 && HWY_TARGET != HWY_SCALAR && HWY_TARGET != HWY_EMU128) || \
    (HWY_ARCH_ARM_A64 && HWY_TARGET == HWY_NEON)
#define QTENSOR_HWY_CAN_ROUND 1
#else
#define QTENSOR_HWY_CAN_ROUND 0
#endif

HWY_BEFORE_NAMESPACE();
QTENSOR_KERNELS_BEGIN_NAMESPACE
namespace detail {
namespace HWY_NAMESPACE {
namespace {
namespace hn = hwy::HWY_NAMESPACE;

#if QTENSOR_HWY_CAN_ROUND
// The lanes of v, forced to exist as rounded floats: the vector twin of
// qtensor::detail::fmul's barrier. Highway's Mul and Add are plain vector
// operators to GCC, which fuses them into an FMA under its default
// -ffp-contract=fast; the references round every product first.
template <class V>
HWY_INLINE V rounded(V v) {
#if defined(__GNUC__) && HWY_ARCH_X86
    asm("" : "+v"(v.raw));
#elif defined(__GNUC__)
    asm("" : "+w"(v.raw));
#endif
    return v;
}

// float -> int32 by truncation, for values known to fit: x86's cvttps2dq
// without the fix-up Highway's ConvertTo adds for out-of-range lanes. (The
// zero-masked AVX-512 form, because GCC 12 warns about the plain one's
// undefined pass-through operand.)
template <class DI, class V>
HWY_INLINE hn::Vec<DI> truncate_in_range(DI di, V v) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
    if constexpr (hn::MaxLanes(di) == 16) return hn::Vec<DI>{_mm512_maskz_cvttps_epi32(0xffff, v.raw)};
#endif
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
    if constexpr (hn::MaxLanes(di) == 8) return hn::Vec<DI>{_mm256_cvttps_epi32(v.raw)};
#endif
    return hn::ConvertTo(di, v);
}

// The low byte of each int32 lane (every lane is known to fit in a byte).
template <class DI, class V>
HWY_INLINE auto low_bytes(DI, V v) {
    return hn::TruncateTo(hn::Rebind<std::uint8_t, DI>(), hn::BitCast(hn::RebindToUnsigned<DI>(), v));
}

// |x| as int32 bits: for finite x they order as |x| does, and they are
// >= 0x7f800000 exactly for Inf and NaN. So one integer max gives both the
// block's largest magnitude and whether the block is finite.
template <class DI, class V>
HWY_INLINE hn::Vec<DI> abs_bits(DI di, V v) {
    return hn::And(hn::BitCast(di, v), hn::Set(di, 0x7fffffff));
}

constexpr std::uint32_t nonfinite_bits = 0x7f800000u;

// x[count] (count a multiple of N) -> the largest abs_bits.
template <std::size_t count, class DF>
HWY_INLINE std::uint32_t max_abs_bits(DF df, const float* x) {
    const hn::RebindToSigned<DF> di;
    auto m = hn::Zero(di);
    for (std::size_t j = 0; j < count; j += hn::Lanes(df)) m = hn::Max(m, abs_bits(di, hn::LoadU(df, x + j)));
    return static_cast<std::uint32_t>(hn::GetLane(hn::MaxOfLanes(di, m)));
}

// Lane k of the result = op over all lanes of v[k], for k < N (v is
// clobbered). Pairwise: each level halves the vectors, and ConcatEven /
// ConcatOdd keep block k's partial results in lanes k * width .. so they end
// in lane k. About 3 instructions per vector, against about 9 for a
// horizontal reduction of each.
template <class D, class V, class Op>
HWY_INLINE V reduce_each(D d, V* v, Op op) {
#pragma GCC unroll 16
    for (std::size_t count = hn::MaxLanes(d); count > 1; count /= 2) {
#pragma GCC unroll 16
        for (std::size_t i = 0; i < count / 2; ++i)
            v[i] = op(hn::ConcatEven(d, v[2 * i + 1], v[2 * i]), hn::ConcatOdd(d, v[2 * i + 1], v[2 * i]));
    }
    return v[0];
}

constexpr auto max_op = [](auto a, auto b) { return hn::Max(a, b); };
constexpr auto min_op = [](auto a, auto b) { return hn::Min(a, b); };

// The lanes of mask m as bits, lane 0 in bit 0 (at most 16 lanes).
template <class D, class M>
HWY_INLINE std::uint64_t mask_bits(D d, M m) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
    (void)d;
    return static_cast<std::uint64_t>(m.raw); // already a bit mask register
#else
    static_assert(hn::MaxLanes(d) <= 16);
    std::uint8_t bits[8] = {};
    hn::StoreMaskBits(d, m, bits);
    return bits[0] | std::uint64_t{bits[1]} << 8;
#endif
}

// x[count] -> the references' signed max: the first element whose magnitude
// is amax (given as bits), or +0 for an all-zero block (even if it holds -0).
// Up to 64 elements, without a branch: the sign bit of the first match, from
// bit masks of the matches and of the negative elements.
template <std::size_t count, class DF>
HWY_INLINE float signed_max(DF df, const float* x, std::uint32_t amax) {
    const hn::RebindToSigned<DF> di;
    const std::size_t N = hn::Lanes(df);
    const auto want = hn::Set(di, static_cast<std::int32_t>(amax));
    if constexpr (count <= 64) {
        std::uint64_t match = 0, negative = 0;
        for (std::size_t j = 0; j < count; j += N) {
            const auto v = hn::BitCast(di, hn::LoadU(df, x + j));
            match |= mask_bits(di, hn::Eq(abs_bits(di, v), want)) << j;
            negative |= mask_bits(di, hn::Lt(v, hn::Zero(di))) << j;
        }
        const std::uint32_t sign = (negative & match & (~match + 1)) != 0 ? 0x80000000u : 0u;
        return amax == 0 ? 0.0f : std::bit_cast<float>(amax | sign);
    } else {
        if (amax == 0) return 0.0f;
        for (std::size_t j = 0;; j += N) {
            const intptr_t i = hn::FindFirstTrue(di, hn::Eq(abs_bits(di, hn::LoadU(df, x + j)), want));
            if (i >= 0) return x[j + static_cast<std::size_t>(i)];
        }
    }
}

// qtensor::detail::code_reciprocal on every lane: 1/d, or 0 where d is 0 or
// 1/d overflows.
template <class DF>
HWY_INLINE hn::Vec<DF> code_reciprocal(DF df, hn::Vec<DF> d) {
    const hn::RebindToSigned<DF> di;
    const auto zero = hn::Eq(d, hn::Zero(df));
    const auto r = hn::Div(hn::Set(df, 1.0f), hn::IfThenElse(zero, hn::Set(df, 1.0f), d));
    const auto inf = hn::Set(di, static_cast<std::int32_t>(nonfinite_bits));
    const auto overflow = hn::RebindMask(df, hn::Eq(hn::And(hn::BitCast(di, r), inf), inf));
    return hn::IfThenZeroElse(hn::Or(zero, overflow), r);
}

// fp32_to_fp16 on every lane, as int32 lanes holding the fp16 bits: the same
// rounding (to nearest, ties to even) in integer steps, except that fp16
// subnormals come from |f| + 0.5f, whose float rounding is that rounding.
template <class DF>
HWY_INLINE hn::Vec<hn::RebindToSigned<DF>> fp16_bits(DF df, hn::Vec<DF> f) {
    const hn::RebindToSigned<DF> di;
    const auto x = hn::BitCast(di, f);
    const auto sign = hn::And(hn::ShiftRight<16>(x), hn::Set(di, 0x8000));
    const auto ax = hn::And(x, hn::Set(di, 0x7fffffff));
    const auto odd = hn::And(hn::ShiftRight<13>(ax), hn::Set(di, 1));
    const auto normal = hn::ShiftRight<13>(hn::Sub(hn::Add(hn::Add(ax, hn::Set(di, 0xfff)), odd), hn::Set(di, 0x38000000)));
    const auto subnormal = hn::Sub(hn::BitCast(di, hn::Add(hn::BitCast(df, ax), hn::Set(df, 0.5f))), hn::Set(di, 0x3f000000));
    auto h = hn::IfThenElse(hn::Lt(ax, hn::Set(di, 0x38800000)), subnormal, normal);
    h = hn::IfThenElse(hn::Gt(ax, hn::Set(di, 0x477fefff)), hn::Set(di, 0x7c00), h);
    h = hn::IfThenElse(hn::Gt(ax, hn::Set(di, 0x7f800000)), hn::Set(di, 0x7e00), h);
    return hn::Or(sign, h);
}

// True if any lane of fp16 bits h is +-inf (an fp16 scale overflow).
template <class DI>
HWY_INLINE bool any_fp16_inf(DI di, hn::Vec<DI> h) {
    const auto exp = hn::Set(di, 0x7c00);
    return !hn::AllFalse(di, hn::Eq(hn::And(h, exp), exp));
}
#endif

// x[n] -> y[n / 32], as q4_0::quantize_row, N blocks at a time (one lane
// per block for the per-block values):
//   1. per block, N-lane partials of max |x| (as abs_bits), max x and min x;
//      reduce_each turns them into vectors over the N blocks;
//   2. the signed max is +amax if max x == amax, -amax if min x == -amax;
//      only blocks holding both (rare) search for the first one;
//   3. d = max / -8, its fp16 bits and id = 1/d as vectors;
//   4. per block, code = min(15, trunc(x * id + 8.5)) on N lanes, the product
//      rounded before the add, and the nibbles packed.
// Any non-finite element or fp16 scale overflow hands the whole row to the
// reference, which throws its error.
void quantize_q4_0(const float* x, block_q4_0* y, std::size_t n) {
#if !QTENSOR_HWY_CAN_ROUND
    q4_0::quantize_row(x, y, n);
#else
    const hn::CappedTag<float, 16> df;
    const hn::RebindToSigned<decltype(df)> di;
    const hn::Rebind<std::uint8_t, decltype(df)> du8;
    constexpr std::size_t N = hn::MaxLanes(df);
    const auto half_up = hn::Set(df, 8.5f);
    const auto fifteen = hn::Set(di, 15);
    const std::size_t blocks = n / 32;
    HWY_ALIGN float max[N];
    HWY_ALIGN float id[N];
    HWY_ALIGN std::int32_t d16[N];
    for (std::size_t b0 = 0; b0 < blocks; b0 += N) {
        const std::size_t group = std::min(N, blocks - b0);
        hn::Vec<decltype(di)> abs_part[N];
        hn::Vec<decltype(df)> max_part[N], min_part[N];
        for (std::size_t k = 0; k < N; ++k) {
            const float* xb = x + 32 * (b0 + k);
            auto v = k < group ? hn::LoadU(df, xb) : hn::Zero(df);
            auto a = abs_bits(di, v);
            auto hi = v, lo = v;
            for (std::size_t j = N; j < 32; j += N) {
                v = k < group ? hn::LoadU(df, xb + j) : hn::Zero(df);
                a = hn::Max(a, abs_bits(di, v));
                hi = hn::Max(hi, v);
                lo = hn::Min(lo, v);
            }
            abs_part[k] = a;
            max_part[k] = hi;
            min_part[k] = lo;
        }
        const auto amax_bits = reduce_each(di, abs_part, max_op);
        if (!hn::AllFalse(di, hn::Gt(amax_bits, hn::Set(di, nonfinite_bits - 1)))) return q4_0::quantize_row(x, y, n);
        const auto amax = hn::BitCast(df, amax_bits);
        const auto pos = hn::Eq(reduce_each(df, max_part, max_op), amax);
        const auto neg = hn::Eq(reduce_each(df, min_part, min_op), hn::Neg(amax));
        hn::Store(hn::IfThenElse(hn::AndNot(pos, neg), hn::Neg(amax), amax), df, max);
        const auto both = hn::And(hn::And(pos, neg), hn::Ne(amax, hn::Zero(df)));
        if (!hn::AllFalse(df, both)) {
            const std::uint64_t tied = mask_bits(df, both);
            for (std::size_t k = 0; k < group; ++k)
                if ((tied >> k) & 1)
                    max[k] = signed_max<32>(df, x + 32 * (b0 + k), std::bit_cast<std::uint32_t>(std::fabs(max[k])));
        }
        const auto d = hn::Div(hn::Load(df, max), hn::Set(df, -8.0f));
        const auto h = fp16_bits(df, d);
        if (any_fp16_inf(di, h)) return q4_0::quantize_row(x, y, n);
        hn::Store(h, di, d16);
        hn::Store(code_reciprocal(df, d), df, id);
        for (std::size_t k = 0; k < group; ++k) {
            const float* xb = x + 32 * (b0 + k);
            block_q4_0& out = y[b0 + k];
            out.d = fp16_t{static_cast<std::uint16_t>(d16[k])};
            const auto idk = hn::Set(df, id[k]);
            for (std::size_t j = 0; j < 16; j += N) {
                const auto lo = truncate_in_range(di, hn::Add(rounded(hn::Mul(hn::LoadU(df, xb + j), idk)), half_up));
                const auto hi = truncate_in_range(di, hn::Add(rounded(hn::Mul(hn::LoadU(df, xb + 16 + j), idk)), half_up));
                const auto packed = hn::Or(hn::Min(lo, fifteen), hn::ShiftLeft<4>(hn::Min(hi, fifteen)));
                hn::StoreU(low_bytes(di, packed), du8, out.qs.data() + j);
            }
        }
    }
#endif
}

// x[n] -> y[n / 32], as q8_0::quantize_row, N blocks at a time as above (only
// amax is needed): code = round(x * id), half away from zero, as truncation
// plus one where the (exact) remainder is >= 0.5 in magnitude.
void quantize_q8_0(const float* x, block_q8_0* y, std::size_t n) {
#if !QTENSOR_HWY_CAN_ROUND
    q8_0::quantize_row(x, y, n);
#else
    const hn::CappedTag<float, 16> df;
    const hn::RebindToSigned<decltype(df)> di;
    const hn::Rebind<std::uint8_t, decltype(df)> du8;
    constexpr std::size_t N = hn::MaxLanes(df);
    const auto half = hn::Set(df, 0.5f);
    const auto minus_half = hn::Set(df, -0.5f);
    const std::size_t blocks = n / 32;
    HWY_ALIGN float id[N];
    HWY_ALIGN std::int32_t d16[N];
    for (std::size_t b0 = 0; b0 < blocks; b0 += N) {
        const std::size_t group = std::min(N, blocks - b0);
        hn::Vec<decltype(di)> abs_part[N];
        for (std::size_t k = 0; k < N; ++k) {
            const float* xb = x + 32 * (b0 + k);
            auto a = hn::Zero(di);
            for (std::size_t j = 0; j < 32; j += N)
                a = hn::Max(a, abs_bits(di, k < group ? hn::LoadU(df, xb + j) : hn::Zero(df)));
            abs_part[k] = a;
        }
        const auto amax_bits = reduce_each(di, abs_part, max_op);
        if (!hn::AllFalse(di, hn::Gt(amax_bits, hn::Set(di, nonfinite_bits - 1)))) return q8_0::quantize_row(x, y, n);
        const auto d = hn::Div(hn::BitCast(df, amax_bits), hn::Set(df, 127.0f));
        const auto h = fp16_bits(df, d);
        if (any_fp16_inf(di, h)) return q8_0::quantize_row(x, y, n);
        hn::Store(h, di, d16);
        hn::Store(code_reciprocal(df, d), df, id);
        for (std::size_t k = 0; k < group; ++k) {
            const float* xb = x + 32 * (b0 + k);
            block_q8_0& out = y[b0 + k];
            out.d = fp16_t{static_cast<std::uint16_t>(d16[k])};
            const auto idk = hn::Set(df, id[k]);
            for (std::size_t j = 0; j < 32; j += N) {
                const auto p = rounded(hn::Mul(hn::LoadU(df, xb + j), idk));
                const auto t = truncate_in_range(di, p);
                const auto frac = hn::Sub(p, hn::ConvertTo(df, t)); // exact: p's bits below the integer part
                // A true mask is -1 as an integer: t - (-1) rounds up, t + (-1) down.
                const auto up = hn::VecFromMask(di, hn::RebindMask(di, hn::Ge(frac, half)));
                const auto down = hn::VecFromMask(di, hn::RebindMask(di, hn::Le(frac, minus_half)));
                hn::StoreU(low_bytes(di, hn::Add(hn::Sub(t, up), down)), du8,
                           reinterpret_cast<std::uint8_t*>(out.qs.data()) + j);
            }
        }
    }
#endif
}

// x[n] -> y[n / 256], as q8_k::quantize_row: code = min(127, nearest_int(iscale * x))
// with nearest_int's own "+ 1.5 * 2^23" bit trick, and the 16 bsums from the
// int32 codes before they are narrowed.
void quantize_q8_k(const float* x, block_q8_k* y, std::size_t n) {
#if !QTENSOR_HWY_CAN_ROUND
    q8_k::quantize_row(x, y, n);
#else
    const hn::CappedTag<float, 16> df;
    const hn::RebindToSigned<decltype(df)> di;
    const hn::Rebind<std::uint8_t, decltype(df)> du8;
    const std::size_t N = hn::Lanes(df);
    const auto magic = hn::Set(df, 12582912.0f);
    const auto mantissa = hn::Set(di, 0x007fffff);
    const auto bias = hn::Set(di, 0x00400000);
    const auto code_max = hn::Set(di, 127);
    const float* const row = x;
    for (std::size_t b = 0; b < n / 256; ++b, x += 256) {
        const std::uint32_t amax = max_abs_bits<256>(df, x);
        if (amax >= nonfinite_bits) return q8_k::quantize_row(row, y, n);
        const float max = signed_max<256>(df, x, amax);
        const float iscale = max != 0.0f ? -127.0f / max : 0.0f;
        if (!qtensor::detail::is_finite_bits(iscale)) {
            // |max| < 127 / FLT_MAX: the reference's zero codes.
            y[b].qs.fill(0);
            y[b].bsums.fill(0);
        } else {
            const auto vscale = hn::Set(df, iscale);
            auto* qs = reinterpret_cast<std::uint8_t*>(y[b].qs.data());
            for (std::size_t g = 0; g < 16; ++g) {
                auto sum = hn::Zero(di);
                for (std::size_t j = 16 * g; j < 16 * (g + 1); j += N) {
                    const auto biased = hn::Add(rounded(hn::Mul(vscale, hn::LoadU(df, x + j))), magic);
                    const auto code = hn::Min(hn::Sub(hn::And(hn::BitCast(di, biased), mantissa), bias), code_max);
                    sum = hn::Add(sum, code);
                    hn::StoreU(low_bytes(di, code), du8, qs + j);
                }
                y[b].bsums[g] = static_cast<std::int16_t>(hn::GetLane(hn::SumOfLanes(di, sum)));
            }
        }
        y[b].d = max != 0.0f ? 1.0f / iscale : 0.0f;
    }
#endif
}

// x[n / 32] -> y[n]: y[j] = (code[j] - 8) * d, as q4_0::dequantize_row.
void dequantize_q4_0(const block_q4_0* x, float* y, std::size_t n) {
    const hn::CappedTag<float, 16> df;
    const hn::Rebind<std::int32_t, decltype(df)> di;
    const hn::Rebind<std::uint8_t, decltype(df)> du8;
    const std::size_t N = hn::Lanes(df);
    for (std::size_t b = 0; b < n / 32; ++b, y += 32) {
        const auto d = hn::Set(df, fp16_to_fp32(x[b].d));
        const auto eight = hn::Set(di, 8);
        for (std::size_t j = 0; j < 16; j += N) {
            const auto bytes = hn::LoadU(du8, x[b].qs.data() + j);
            const auto lo = hn::PromoteTo(di, hn::And(bytes, hn::Set(du8, std::uint8_t{0x0f})));
            const auto hi = hn::PromoteTo(di, hn::ShiftRight<4>(bytes));
            hn::StoreU(hn::Mul(hn::ConvertTo(df, hn::Sub(lo, eight)), d), df, y + j);
            hn::StoreU(hn::Mul(hn::ConvertTo(df, hn::Sub(hi, eight)), d), df, y + 16 + j);
        }
    }
}

// x[n / 32] -> y[n]: y[j] = qs[j] * d, as q8_0::dequantize_row.
void dequantize_q8_0(const block_q8_0* x, float* y, std::size_t n) {
    const hn::CappedTag<float, 32> df;
    const hn::RebindToSigned<decltype(df)> di;
    const hn::Rebind<std::int8_t, decltype(df)> di8;
    const std::size_t N = hn::Lanes(df);
    for (std::size_t b = 0; b < n / 32; ++b, y += 32) {
        const auto d = hn::Set(df, fp16_to_fp32(x[b].d));
        for (std::size_t j = 0; j < 32; j += N)
            hn::StoreU(hn::Mul(hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(di8, x[b].qs.data() + j))), d), df,
                       y + j);
    }
}

// x[n / 256] -> y[n], as q2_k::dequantize_row: per sub-block j of 16,
// y = (d * s_j) * q - dmin * m_j. Both products are exact (11-bit fp16 times
// 4-bit s_j times 2-bit q), so an FMA would give the same bits and no
// rounding barrier is needed. The 2-bit plane at shift 2s of bytes
// qs[32h .. 32h + 31] holds elements 128h + 32s + l, l = 0..31: sub-blocks
// 8h + 2s and 8h + 2s + 1.
void dequantize_q2_k(const block_q2_k* x, float* y, std::size_t n) {
    const hn::CappedTag<float, 16> df;
    const hn::RebindToSigned<decltype(df)> di;
    const hn::Rebind<std::uint8_t, decltype(df)> du8;
    const std::size_t N = hn::Lanes(df);
    const auto three = hn::Set(di, 3);
    for (std::size_t b = 0; b < n / 256; ++b) {
        const float d = fp16_to_fp32(x[b].d);
        const float dmin = fp16_to_fp32(x[b].dmin);
        for (std::size_t h = 0; h < 2; ++h) {
            for (int s = 0; s < 4; ++s) {
                for (std::size_t l = 0; l < 32; l += 16, y += 16) {
                    const std::size_t j = 8 * h + 2 * static_cast<std::size_t>(s) + l / 16;
                    const auto dl = hn::Set(df, d * static_cast<float>(q2_k::scale_of(x[b], j)));
                    const auto ml = hn::Set(df, dmin * static_cast<float>(q2_k::min_of(x[b], j)));
                    for (std::size_t i = 0; i < 16; i += N) {
                        const auto bytes = hn::PromoteTo(di, hn::LoadU(du8, x[b].qs.data() + 32 * h + l + i));
                        const auto q = hn::ConvertTo(df, hn::And(hn::ShiftRightSame(bytes, 2 * s), three));
                        hn::StoreU(hn::Sub(hn::Mul(dl, q), ml), df, y + i);
                    }
                }
            }
        }
    }
}

// x[n] -> y[n], as fp16_to_fp32 (exact; NaN keeps sign and payload and comes
// out quiet). With F16C this is vcvtph2ps; otherwise integer bit moves, with
// fp16 subnormals as m * 2^-24 (an exact convert and multiply).
void dequantize_f16(const fp16_t* x, float* y, std::size_t n) {
    const hn::ScalableTag<float> df;
    const std::size_t N = hn::Lanes(df);
    std::size_t i = 0;
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2 && !defined(HWY_DISABLE_F16C)
    const hn::Rebind<hwy::float16_t, decltype(df)> dh;
    const auto* h = reinterpret_cast<const hwy::float16_t*>(x);
    for (; i + N <= n; i += N) hn::StoreU(hn::PromoteTo(df, hn::LoadU(dh, h + i)), df, y + i);
#else
    const hn::RebindToUnsigned<decltype(df)> du;
    const hn::RebindToSigned<decltype(df)> di;
    const hn::Rebind<std::uint16_t, decltype(df)> du16;
    const auto* h = reinterpret_cast<const std::uint16_t*>(x);
    const auto exp_field = hn::Set(du, 0x1f);
    const auto mant_field = hn::Set(du, 0x3ff);
    for (; i + N <= n; i += N) {
        const auto bits = hn::PromoteTo(du, hn::LoadU(du16, h + i));
        const auto sign = hn::ShiftLeft<16>(hn::And(bits, hn::Set(du, 0x8000)));
        const auto exp = hn::And(hn::ShiftRight<10>(bits), exp_field);
        const auto mant = hn::And(bits, mant_field);
        const auto normal = hn::Or(hn::ShiftLeft<23>(hn::Add(exp, hn::Set(du, 112))), hn::ShiftLeft<13>(mant));
        const auto subnormal = hn::BitCast(
            du, hn::Mul(hn::ConvertTo(df, hn::BitCast(di, mant)), hn::Set(df, 1.0f / 16777216.0f)));
        const auto quiet = hn::IfThenElseZero(hn::Ne(mant, hn::Zero(du)), hn::Set(du, 0x00400000));
        const auto special = hn::Or(hn::Or(hn::Set(du, 0x7f800000), hn::ShiftLeft<13>(mant)), quiet);
        const auto magnitude = hn::IfThenElse(hn::Eq(exp, hn::Zero(du)), subnormal,
                                              hn::IfThenElse(hn::Eq(exp, exp_field), special, normal));
        hn::StoreU(hn::BitCast(df, hn::Or(sign, magnitude)), df, y + i);
    }
#endif
    for (; i < n; ++i) y[i] = fp16_to_fp32(x[i]);
}

// x[n] -> y[n]: bf16 is the top half of a float.
void dequantize_bf16(const bf16_t* x, float* y, std::size_t n) {
    const hn::ScalableTag<float> df;
    const hn::RebindToUnsigned<decltype(df)> du;
    const hn::Rebind<std::uint16_t, decltype(df)> du16;
    const std::size_t N = hn::Lanes(df);
    const auto* h = reinterpret_cast<const std::uint16_t*>(x);
    std::size_t i = 0;
    for (; i + N <= n; i += N)
        hn::StoreU(hn::BitCast(df, hn::ShiftLeft<16>(hn::PromoteTo(du, hn::LoadU(du16, h + i)))), df, y + i);
    for (; i < n; ++i) y[i] = bf16_to_fp32(x[i]);
}

} // namespace
} // namespace HWY_NAMESPACE
} // namespace detail
QTENSOR_KERNELS_END_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif // per-target include guard
