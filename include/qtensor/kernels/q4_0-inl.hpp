// qtensor/kernels/q4_0-inl.hpp: SIMD bodies of the Q4_0 kernels, compiled once
// per Highway target (re-included by foreach_target.h from dispatch.hpp; do
// not include it yourself). Each matches its scalar twin in scheme/q4_0.hpp:
// dequantize bit for bit, dot within q4_0::dot_row's error budget.
//
// Written for any lane count N (1 on HWY_SCALAR, 4 to 16 floats elsewhere).

// Per-target include guard (Highway's toggle idiom).
#if defined(QTENSOR_KERNELS_Q4_0_INL_HPP_) == defined(HWY_TARGET_TOGGLE)
#ifdef QTENSOR_KERNELS_Q4_0_INL_HPP_
#undef QTENSOR_KERNELS_Q4_0_INL_HPP_
#else
#define QTENSOR_KERNELS_Q4_0_INL_HPP_
#endif

#include "hwy/highway.h"
#include "qtensor/scheme/q4_0.hpp"
#include "qtensor/scheme/q8_0.hpp"

HWY_BEFORE_NAMESPACE();
QTENSOR_BEGIN_NAMESPACE
namespace kernels::detail {
namespace HWY_NAMESPACE {
namespace {
namespace hn = hwy::HWY_NAMESPACE;

// x[n / 32] -> y[n]: y[j] = (code[j] - 8) * d, as q4_0::dequantize_row.
void dequantize_q4_0(const block_q4_0* x, float* y, std::size_t n) {
    const hn::ScalableTag<float> df;
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

// Row w[n / 32] . row a[n / 32]. Per block, codes - 8 and the activations are
// widened to int16 and multiplied pairwise into int32 lanes (pmaddwd), exactly;
// then one FMA per block adds the lanes, times dw * da, to a float accumulator;
// one horizontal sum at the end. HWY_SCALAR has one lane: there the scalar
// reference is the kernel.
float dot_q4_0_q8_0(const block_q4_0* w, const block_q8_0* a, std::size_t n) {
#if HWY_TARGET == HWY_SCALAR
    return q4_0::dot_row(w, a, n);
#else
    const hn::CappedTag<std::int16_t, 16> d16;       // 16 lanes (AVX2+) or 8 (SSE)
    const hn::Repartition<std::int32_t, decltype(d16)> d32;
    const hn::Rebind<float, decltype(d32)> df;
    const hn::Rebind<std::uint8_t, decltype(d16)> du8;
    const hn::Rebind<std::int8_t, decltype(d16)> di8;
    const std::size_t N = hn::Lanes(d16);
    const auto eight = hn::Set(d16, 8);
    const auto low_nibble = hn::Set(du8, std::uint8_t{0x0f});
    auto total = hn::Zero(df);
    for (std::size_t b = 0; b < n / 32; ++b) {
        auto sum0 = hn::Zero(d32);
        auto sum1 = hn::Zero(d32);
        for (std::size_t j = 0; j < 16; j += N) {
            const auto bytes = hn::LoadU(du8, w[b].qs.data() + j);
            const auto lo = hn::Sub(hn::PromoteTo(d16, hn::And(bytes, low_nibble)), eight);
            const auto hi = hn::Sub(hn::PromoteTo(d16, hn::ShiftRight<4>(bytes)), eight);
            const auto a_lo = hn::PromoteTo(d16, hn::LoadU(di8, a[b].qs.data() + j));
            const auto a_hi = hn::PromoteTo(d16, hn::LoadU(di8, a[b].qs.data() + 16 + j));
            sum0 = hn::ReorderWidenMulAccumulate(d32, lo, a_lo, sum0, sum1);
            sum0 = hn::ReorderWidenMulAccumulate(d32, hi, a_hi, sum0, sum1);
        }
        const float dd = fp16_to_fp32(w[b].d) * fp16_to_fp32(a[b].d);
        total = hn::MulAdd(hn::ConvertTo(df, hn::Add(sum0, sum1)), hn::Set(df, dd), total);
    }
    return hn::GetLane(hn::SumOfLanes(df, total));
#endif
}

} // namespace
} // namespace HWY_NAMESPACE
} // namespace kernels::detail
QTENSOR_END_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif // per-target include guard
