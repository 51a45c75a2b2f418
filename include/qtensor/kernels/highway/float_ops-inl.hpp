// qtensor/kernels/highway/float_ops-inl.hpp: SIMD bodies of the float ops,
// compiled once per Highway target (re-included by foreach_target.h through
// highway/all-inl.hpp; do not include it yourself). Each matches its scalar
// twin in reference/float_ops.hpp within the budget stated in float_ops.hpp.
//
// Written for any lane count N (1 on HWY_SCALAR, 4 to 16 floats elsewhere).
// Lengths that are not a multiple of N end with one padded vector through a
// stack buffer, so no load or store leaves the caller's arrays.

// Per-target include guard (Highway's toggle idiom).
#if defined(QTENSOR_KERNELS_HIGHWAY_FLOAT_OPS_INL_HPP_) == defined(HWY_TARGET_TOGGLE)
#ifdef QTENSOR_KERNELS_HIGHWAY_FLOAT_OPS_INL_HPP_
#undef QTENSOR_KERNELS_HIGHWAY_FLOAT_OPS_INL_HPP_
#else
#define QTENSOR_KERNELS_HIGHWAY_FLOAT_OPS_INL_HPP_
#endif

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

#include "hwy/contrib/math/math-inl.h"  // per-target too: Exp, Tanh
#include "hwy/highway.h"
#include "qtensor/core/config.hpp"
#include "qtensor/kernels/abi.hpp"

HWY_BEFORE_NAMESPACE();
QTENSOR_KERNELS_BEGIN_NAMESPACE
namespace detail {
namespace HWY_NAMESPACE {
namespace {
namespace hn = hwy::HWY_NAMESPACE;

namespace float_ops_impl {

// p[0, count) in the first lanes, `fill` in the others; count < N.
template <class D>
HWY_INLINE hn::Vec<D> load_partial(D d, const hn::TFromD<D>* p, std::size_t count, hn::TFromD<D> fill) {
    HWY_ALIGN hn::TFromD<D> buf[hn::MaxLanes(D())];
    for (std::size_t j = 0; j < hn::Lanes(d); ++j) buf[j] = fill;
    std::memcpy(buf, p, count * sizeof(buf[0]));
    return hn::Load(d, buf);
}

// The first `count` lanes of v to p[0, count); count < N.
template <class D>
HWY_INLINE void store_partial(D d, hn::Vec<D> v, hn::TFromD<D>* p, std::size_t count) {
    HWY_ALIGN hn::TFromD<D> buf[hn::MaxLanes(D())];
    hn::Store(v, d, buf);
    std::memcpy(p, buf, count * sizeof(buf[0]));
}

// Highway's Exp and Tanh map NaN to 0 or garbage (and on HWY_SCALAR cast it to
// int, which is undefined): feed them 0 there and give the NaN back, so NaN
// propagates as in the reference.
template <class D, class V>
HWY_INLINE V exp_keep_nan(D d, V x) {
    const auto nan = hn::IsNaN(x);
    return hn::IfThenElse(nan, x, hn::Exp(d, hn::IfThenZeroElse(nan, x)));
}

template <class D, class V>
HWY_INLINE V tanh_keep_nan(D d, V x) {
    const auto nan = hn::IsNaN(x);
    return hn::IfThenElse(nan, x, hn::Tanh(d, hn::IfThenZeroElse(nan, x)));
}

// Sums step.full(d, acc, i) over the full vectors at i = 0, N, 2N, ... and
// step.partial(d, acc, i, count) over the last count < N elements (padded
// lanes must add 0). Four accumulators, full vectors dealt round robin, the
// extra ones (at most three full, one partial) one per accumulator: each lane
// sums at most floor(n / 4N) + 1 terms, then 2 adds join the accumulators and
// log2(N) the lanes. That depth, floor(n / 4N) + 3 + log2(N) <= n/4 + 7, is
// the summation budget in float_ops.hpp.
template <class D, class Step>
HWY_INLINE float sum4(D d, std::size_t n, const Step& step) {
    const std::size_t N = hn::Lanes(d);
    auto s0 = hn::Zero(d), s1 = hn::Zero(d), s2 = hn::Zero(d), s3 = hn::Zero(d);
    std::size_t i = 0;
    for (; i + 4 * N <= n; i += 4 * N) {
        s0 = step.full(d, s0, i);
        s1 = step.full(d, s1, i + N);
        s2 = step.full(d, s2, i + 2 * N);
        s3 = step.full(d, s3, i + 3 * N);
    }
    if (i + N <= n) {
        s0 = step.full(d, s0, i);
        i += N;
    }
    if (i + N <= n) {
        s1 = step.full(d, s1, i);
        i += N;
    }
    if (i + N <= n) {
        s2 = step.full(d, s2, i);
        i += N;
    }
    if (i < n) s3 = step.partial(d, s3, i, n - i);
    return hn::GetLane(hn::SumOfLanes(d, hn::Add(hn::Add(s0, s1), hn::Add(s2, s3))));
}

// y[i] = op(d, x[i]) for i < n; y may alias x.
template <class D, class Op>
HWY_INLINE void map1(D d, const float* x, float* y, std::size_t n, const Op& op) {
    const std::size_t N = hn::Lanes(d);
    std::size_t i = 0;
    for (; i + N <= n; i += N) hn::StoreU(op(d, hn::LoadU(d, x + i)), d, y + i);
    if (i < n) store_partial(d, op(d, load_partial(d, x + i, n - i, 0.0f)), y + i, n - i);
}

// y[i] = op(d, a[i], b[i]) for i < n; y may alias a or b.
template <class D, class Op>
HWY_INLINE void map2(D d, const float* a, const float* b, float* y, std::size_t n, const Op& op) {
    const std::size_t N = hn::Lanes(d);
    std::size_t i = 0;
    for (; i + N <= n; i += N) hn::StoreU(op(d, hn::LoadU(d, a + i), hn::LoadU(d, b + i)), d, y + i);
    if (i < n) {
        const std::size_t rest = n - i;
        store_partial(d, op(d, load_partial(d, a + i, rest, 0.0f), load_partial(d, b + i, rest, 0.0f)), y + i, rest);
    }
}

struct dot_step {
    const float* x;
    const float* y;
    template <class D>
    HWY_INLINE hn::Vec<D> full(D d, hn::Vec<D> acc, std::size_t i) const {
        return hn::MulAdd(hn::LoadU(d, x + i), hn::LoadU(d, y + i), acc);
    }
    template <class D>
    HWY_INLINE hn::Vec<D> partial(D d, hn::Vec<D> acc, std::size_t i, std::size_t count) const {
        return hn::MulAdd(load_partial(d, x + i, count, 0.0f), load_partial(d, y + i, count, 0.0f), acc);
    }
};

// x[i] <- exp(x[i] - max), summed. Padded lanes are -inf: exp gives 0.
struct softmax_exp_step {
    float* x;
    float max;
    template <class D>
    HWY_INLINE hn::Vec<D> full(D d, hn::Vec<D> acc, std::size_t i) const {
        const auto e = exp_keep_nan(d, hn::Sub(hn::LoadU(d, x + i), hn::Set(d, max)));
        hn::StoreU(e, d, x + i);
        return hn::Add(acc, e);
    }
    template <class D>
    HWY_INLINE hn::Vec<D> partial(D d, hn::Vec<D> acc, std::size_t i, std::size_t count) const {
        const float minus_inf = -std::numeric_limits<float>::infinity();
        const auto e = exp_keep_nan(d, hn::Sub(load_partial(d, x + i, count, minus_inf), hn::Set(d, max)));
        store_partial(d, e, x + i, count);
        return hn::Add(acc, e);
    }
};

// 0.5 z (1 + tanh v) with v = sqrt(2/pi) (z + 0.044715 z^3), computed as the
// equal z / (1 + exp(-2v)): for negative z, 1 + tanh v would cancel to a few
// correct bits, the quotient stays accurate to a few ulps. exp's argument is
// clamped to 104, the end of Highway's valid range, where it is already +inf
// (and z / inf the -0 the reference gives).
template <class D, class V>
HWY_INLINE V gelu_tanh_vec(D d, V z) {
    const auto inner = hn::Mul(hn::Set(d, 0.7978845608028654f),
                               hn::MulAdd(hn::Set(d, 0.044715f), hn::Mul(z, hn::Mul(z, z)), z));
    const auto e = exp_keep_nan(d, hn::Min(hn::Mul(hn::Set(d, -2.0f), inner), hn::Set(d, 104.0f)));
    return hn::Div(z, hn::Add(hn::Set(d, 1.0f), e));
}

struct gelu_op {
    template <class D, class V>
    HWY_INLINE V operator()(D d, V z) const { return gelu_tanh_vec(d, z); }
};

struct geglu_op {
    template <class D, class V>
    HWY_INLINE V operator()(D d, V gate, V up) const { return hn::Mul(gelu_tanh_vec(d, gate), up); }
};

struct softcap_op {
    float cap;
    float inv_cap;
    template <class D, class V>
    HWY_INLINE V operator()(D d, V x) const {
        return hn::Mul(hn::Set(d, cap), tanh_keep_nan(d, hn::Mul(x, hn::Set(d, inv_cap))));
    }
};

struct axpy_op {
    float a;
    template <class D, class V>
    HWY_INLINE V operator()(D d, V x, V y) const { return hn::MulAdd(hn::Set(d, a), x, y); }
};

struct scale_op {
    float a;
    template <class D, class V>
    HWY_INLINE V operator()(D d, V x) const { return hn::Mul(x, hn::Set(d, a)); }
};

struct rmsnorm_op {
    float r;
    template <class D, class V>
    HWY_INLINE V operator()(D d, V x) const { return hn::Mul(x, hn::Set(d, r)); }
    template <class D, class V>
    HWY_INLINE V operator()(D d, V x, V w) const { return hn::Mul(hn::Mul(x, hn::Set(d, r)), w); }
};

// Rotates the pairs (x0[j], x1[j]), j < N, by the angles a = pos * freq[j],
// rounded to float exactly as the reference does. cos a and sin a come from
// one reduction in double: a = q pi/2 + r with q = round(a 2/pi) and
// |r| <= pi/4 (pi/2 in three parts, the first two short enough that q times
// them is exact for |a| < 2^30), then polynomials in r^2 (our Chebyshev fits
// of (sin r - r) / r^3 and (cos r - 1 + r^2/2) / r^4 on [0, (pi/4)^2]; both
// within 2^-36 of sin and cos), rounded to float once: within 0.5 ulp + 2^-35
// of the exact values. The quadrant q mod 4 then swaps and negates them.
// Highway's own float Sin/Cos would stop at |a| <= 39000 and reduce twice.
template <class DD, class DF>
HWY_INLINE void rope_lanes(DD dd, DF df, float* x0, float* x1, const float* freq, float pos) {
    const hn::Rebind<std::int32_t, DF> di;
    const auto a = hn::PromoteTo(dd, hn::Mul(hn::Set(df, pos), hn::LoadU(df, freq)));
    const auto q = hn::Round(hn::Mul(a, hn::Set(dd, 0.6366197723675814)));  // 2 / pi
    auto r = hn::NegMulAdd(q, hn::Set(dd, 0x1.921fb4p+0), a);                // 23 bits
    r = hn::NegMulAdd(q, hn::Set(dd, 0x1.4442dp-24), r);                     // 21 bits
    r = hn::NegMulAdd(q, hn::Set(dd, 0x1.8469898cc517p-48), r);
    const auto y = hn::Mul(r, r);
    auto ps = hn::MulAdd(hn::Set(dd, 2.724992580305979e-06), y, hn::Set(dd, -0.00019840086735384846));
    ps = hn::MulAdd(ps, y, hn::Set(dd, 0.008333331874710208));
    ps = hn::MulAdd(ps, y, hn::Set(dd, -0.1666666666385529));
    auto pc = hn::MulAdd(hn::Set(dd, -2.730095920390147e-07), y, hn::Set(dd, 2.480060037715673e-05));
    pc = hn::MulAdd(pc, y, hn::Set(dd, -0.001388888767201679));
    pc = hn::MulAdd(pc, y, hn::Set(dd, 0.0416666666643212));
    const auto sin_r = hn::DemoteTo(df, hn::MulAdd(hn::Mul(y, r), ps, r));
    const auto one_minus_half_y = hn::NegMulAdd(y, hn::Set(dd, 0.5), hn::Set(dd, 1.0));
    const auto cos_r = hn::DemoteTo(df, hn::MulAdd(hn::Mul(y, y), pc, one_minus_half_y));
    // sin(q pi/2 + r) = sin r, cos r, -sin r, -cos r and cos(q pi/2 + r) =
    // cos r, -sin r, -cos r, sin r for q mod 4 = 0, 1, 2, 3 (two's complement
    // keeps q mod 4 in the low bits for q < 0 too).
    const auto qi = hn::DemoteTo(di, q);
    const auto odd = hn::RebindMask(df, hn::Eq(hn::And(qi, hn::Set(di, 1)), hn::Set(di, 1)));
    const auto two = hn::Set(di, 2);
    const auto s = hn::Xor(hn::IfThenElse(odd, cos_r, sin_r), hn::BitCast(df, hn::ShiftLeft<30>(hn::And(qi, two))));
    const auto c = hn::Xor(hn::IfThenElse(odd, sin_r, cos_r),
                           hn::BitCast(df, hn::ShiftLeft<30>(hn::And(hn::Add(qi, hn::Set(di, 1)), two))));
    const auto v0 = hn::LoadU(df, x0);
    const auto v1 = hn::LoadU(df, x1);
    hn::StoreU(hn::Sub(hn::Mul(v0, c), hn::Mul(v1, s)), df, x0);
    hn::StoreU(hn::Add(hn::Mul(v1, c), hn::Mul(v0, s)), df, x1);
}

} // namespace float_ops_impl

// x[n] . y[n].
float dot(const float* x, const float* y, std::size_t n) {
    return float_ops_impl::sum4(hn::ScalableTag<float>(), n, float_ops_impl::dot_step{x, y});
}

// x[n], w[n] or nullptr -> y[n]; r from the sum of squares as in the reference.
void rmsnorm(const float* x, const float* w, float* y, std::size_t n, float eps) {
    const hn::ScalableTag<float> d;
    const float mean = float_ops_impl::sum4(d, n, float_ops_impl::dot_step{x, x}) / static_cast<float>(n);
    const float r = 1.0f / std::sqrt(mean + eps);
    if (w)
        float_ops_impl::map2(d, x, w, y, n, float_ops_impl::rmsnorm_op{r});
    else
        float_ops_impl::map1(d, x, y, n, float_ops_impl::rmsnorm_op{r});
}

// x[n] in place; n >= 1.
void softmax(float* x, std::size_t n) {
    const hn::ScalableTag<float> d;
    const std::size_t N = hn::Lanes(d);
    const float minus_inf = -std::numeric_limits<float>::infinity();
    auto m = hn::Set(d, minus_inf);
    std::size_t i = 0;
    for (; i + N <= n; i += N) m = hn::Max(m, hn::LoadU(d, x + i));
    if (i < n) m = hn::Max(m, float_ops_impl::load_partial(d, x + i, n - i, minus_inf));
    const float max = hn::GetLane(hn::MaxOfLanes(d, m));
    const float sum = float_ops_impl::sum4(d, n, float_ops_impl::softmax_exp_step{x, max});
    float_ops_impl::map1(d, x, x, n, float_ops_impl::scale_op{1.0f / sum});
}

// x[n] -> y[n].
void gelu_tanh(const float* x, float* y, std::size_t n) {
    float_ops_impl::map1(hn::ScalableTag<float>(), x, y, n, float_ops_impl::gelu_op{});
}

// gate[n], up[n] -> y[n].
void geglu(const float* gate, const float* up, float* y, std::size_t n) {
    float_ops_impl::map2(hn::ScalableTag<float>(), gate, up, y, n, float_ops_impl::geglu_op{});
}

// x[d] in place, freq[d / 2]; d even.
void rope(float* x, const float* freq, std::size_t d, float pos) {
    const hn::ScalableTag<double> dd;
    const hn::Rebind<float, decltype(dd)> df;
    const std::size_t N = hn::Lanes(dd);
    const std::size_t half = d / 2;
    std::size_t i = 0;
    for (; i + N <= half; i += N) float_ops_impl::rope_lanes(dd, df, x + i, x + half + i, freq + i, pos);
    if (i < half) {
        const std::size_t rest = half - i;
        HWY_ALIGN float x0[hn::MaxLanes(decltype(df)())] = {};
        HWY_ALIGN float x1[hn::MaxLanes(decltype(df)())] = {};
        HWY_ALIGN float f[hn::MaxLanes(decltype(df)())] = {};
        std::memcpy(x0, x + i, rest * sizeof(float));
        std::memcpy(x1, x + half + i, rest * sizeof(float));
        std::memcpy(f, freq + i, rest * sizeof(float));
        float_ops_impl::rope_lanes(dd, df, x0, x1, f, pos);
        std::memcpy(x + i, x0, rest * sizeof(float));
        std::memcpy(x + half + i, x1, rest * sizeof(float));
    }
}

// x[n] in place; cap > 0.
void softcap(float* x, std::size_t n, float cap) {
    float_ops_impl::map1(hn::ScalableTag<float>(), x, x, n, float_ops_impl::softcap_op{cap, 1.0f / cap});
}

// x[n], y[n]: y += a x.
void axpy(float a, const float* x, float* y, std::size_t n) {
    float_ops_impl::map2(hn::ScalableTag<float>(), x, y, y, n, float_ops_impl::axpy_op{a});
}

// x[n] *= a.
void scale(float a, float* x, std::size_t n) {
    float_ops_impl::map1(hn::ScalableTag<float>(), x, x, n, float_ops_impl::scale_op{a});
}

} // namespace
} // namespace HWY_NAMESPACE
} // namespace detail
QTENSOR_KERNELS_END_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif // per-target include guard
