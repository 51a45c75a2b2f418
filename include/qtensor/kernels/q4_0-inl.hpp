// qtensor/kernels/q4_0-inl.hpp: SIMD bodies of the Q4_0 kernels, compiled once
// per Highway target (re-included by foreach_target.h from dispatch.hpp; do
// not include it yourself). Each matches its scalar twin in scheme/q4_0.hpp:
// dequantize bit for bit, dot within q4_0::dot_row's error budget.
//
// Written for any lane count N (1 on HWY_SCALAR, 4 to 16 floats elsewhere):
// N codes at a time are widened u8 -> i32 -> f32.

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
            const auto lo = hn::PromoteTo(di, hn::And(bytes, hn::Set(du8, 0x0f)));
            const auto hi = hn::PromoteTo(di, hn::ShiftRight<4>(bytes));
            hn::StoreU(hn::Mul(hn::ConvertTo(df, hn::Sub(lo, eight)), d), df, y + j);
            hn::StoreU(hn::Mul(hn::ConvertTo(df, hn::Sub(hi, eight)), d), df, y + 16 + j);
        }
    }
}

// Row w[n / 32] . row a[n / 32]. Per block, the integer sum is formed exactly
// in float lanes (|partial sums| <= 32 * 8 * 128 < 2^24), then one FMA per
// block adds it, times dw * da, to the lane accumulator; one horizontal sum at
// the end.
float dot_q4_0_q8_0(const block_q4_0* w, const block_q8_0* a, std::size_t n) {
    const hn::ScalableTag<float> df;
    const hn::Rebind<std::int32_t, decltype(df)> di;
    const hn::Rebind<std::uint8_t, decltype(df)> du8;
    const hn::Rebind<std::int8_t, decltype(df)> di8;
    const std::size_t N = hn::Lanes(df);
    auto total = hn::Zero(df);
    for (std::size_t b = 0; b < n / 32; ++b) {
        const auto eight = hn::Set(di, 8);
        auto block = hn::Zero(df);
        for (std::size_t j = 0; j < 16; j += N) {
            const auto bytes = hn::LoadU(du8, w[b].qs.data() + j);
            const auto lo = hn::ConvertTo(df, hn::Sub(hn::PromoteTo(di, hn::And(bytes, hn::Set(du8, 0x0f))), eight));
            const auto hi = hn::ConvertTo(df, hn::Sub(hn::PromoteTo(di, hn::ShiftRight<4>(bytes)), eight));
            const auto a_lo = hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(di8, a[b].qs.data() + j)));
            const auto a_hi = hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(di8, a[b].qs.data() + 16 + j)));
            block = hn::MulAdd(lo, a_lo, block);
            block = hn::MulAdd(hi, a_hi, block);
        }
        const float dd = fp16_to_fp32(w[b].d) * fp16_to_fp32(a[b].d);
        total = hn::MulAdd(block, hn::Set(df, dd), total);
    }
    return hn::GetLane(hn::SumOfLanes(df, total));
}

} // namespace
} // namespace HWY_NAMESPACE
} // namespace kernels::detail
QTENSOR_END_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif // per-target include guard
