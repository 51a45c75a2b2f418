// qtensor/kernels/xsimd/float_ops.hpp: the float ops of the xsimd backend.
// Each matches its scalar twin in reference/float_ops.hpp within the budget
// stated in float_ops.hpp. Lengths that are not a multiple of the lane count N
// end with one padded vector through a stack buffer, so no load or store
// leaves the caller's arrays. Included by backend.hpp.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

#include "qtensor/kernels/reference/float_ops.hpp"
#include "qtensor/kernels/xsimd/ops.hpp"

QTENSOR_KERNELS_BEGIN_NAMESPACE
namespace detail::xsimd_float_ops {

using namespace xsimd_ops;

// xsimd's exp and tanh may not carry NaN through: feed them 0 there and give
// the NaN back, so NaN propagates as in the reference. xsimd's exp also
// flushes results below 2^-126 to 0: there exp(x) = exp(x / 2)^2 (x / 2 is
// exact and exp(x / 2) normal; the square is rounded once, to a subnormal).
template <class A>
vec<float, A> exp_keep_nan(const vec<float, A>& x) {
    using V = vec<float, A>;
    const auto nan = xsimd::isnan(x);
    const auto tiny = x < V(-87.0f);
    const V e = xsimd::exp(xsimd::select(nan, V(0.0f), xsimd::select(tiny, x * V(0.5f), x)));
    return xsimd::select(nan, x, xsimd::select(tiny, e * e, e));
}

template <class A>
vec<float, A> tanh_keep_nan(const vec<float, A>& x) {
    const auto nan = xsimd::isnan(x);
    return xsimd::select(nan, x, xsimd::tanh(xsimd::select(nan, vec<float, A>(0.0f), x)));
}

// Sums step.full(acc, i) over the full vectors at i = 0, N, 2N, ... and
// step.partial(acc, i, count) over the last count < N elements (padded lanes
// must add 0). Four accumulators, full vectors dealt round robin, the extra
// ones (at most three full, one partial) one per accumulator: each lane sums
// at most floor(n / 4N) + 1 terms, then 2 adds join the accumulators and
// log2(N) the lanes: the summation budget in float_ops.hpp.
template <class A, class Step>
float sum4(std::size_t n, const Step& step) {
    using V = vec<float, A>;
    constexpr std::size_t N = V::size;
    V s0(0.0f), s1(0.0f), s2(0.0f), s3(0.0f);
    std::size_t i = 0;
    for (; i + 4 * N <= n; i += 4 * N) {
        s0 = step.full(s0, i);
        s1 = step.full(s1, i + N);
        s2 = step.full(s2, i + 2 * N);
        s3 = step.full(s3, i + 3 * N);
    }
    if (i + N <= n) s0 = step.full(s0, i), i += N;
    if (i + N <= n) s1 = step.full(s1, i), i += N;
    if (i + N <= n) s2 = step.full(s2, i), i += N;
    if (i < n) s3 = step.partial(s3, i, n - i);
    return hsum((s0 + s1) + (s2 + s3));
}

// y[i] = op(x[i]) for i < n; y may alias x.
template <class A, class Op>
void map1(const float* x, float* y, std::size_t n, const Op& op) {
    using V = vec<float, A>;
    constexpr std::size_t N = V::size;
    std::size_t i = 0;
    for (; i + N <= n; i += N) op(V::load_unaligned(x + i)).store_unaligned(y + i);
    if (i < n) store_partial(op(load_partial<A>(x + i, n - i, 0.0f)), y + i, n - i);
}

// y[i] = op(a[i], b[i]) for i < n; y may alias a or b.
template <class A, class Op>
void map2(const float* a, const float* b, float* y, std::size_t n, const Op& op) {
    using V = vec<float, A>;
    constexpr std::size_t N = V::size;
    std::size_t i = 0;
    for (; i + N <= n; i += N) op(V::load_unaligned(a + i), V::load_unaligned(b + i)).store_unaligned(y + i);
    if (i < n) {
        const std::size_t rest = n - i;
        store_partial(op(load_partial<A>(a + i, rest, 0.0f), load_partial<A>(b + i, rest, 0.0f)), y + i, rest);
    }
}

template <class A>
struct dot_step {
    using V = vec<float, A>;
    const float* x;
    const float* y;
    V full(const V& acc, std::size_t i) const {
        return xsimd::fma(V::load_unaligned(x + i), V::load_unaligned(y + i), acc);
    }
    V partial(const V& acc, std::size_t i, std::size_t count) const {
        return xsimd::fma(load_partial<A>(x + i, count, 0.0f), load_partial<A>(y + i, count, 0.0f), acc);
    }
};

// x[i] <- exp(x[i] - max), summed. Padded lanes are -inf: exp gives 0.
template <class A>
struct softmax_exp_step {
    using V = vec<float, A>;
    float* x;
    float max;
    V full(const V& acc, std::size_t i) const {
        const V e = exp_keep_nan(V::load_unaligned(x + i) - V(max));
        e.store_unaligned(x + i);
        return acc + e;
    }
    V partial(const V& acc, std::size_t i, std::size_t count) const {
        const V e = exp_keep_nan(load_partial<A>(x + i, count, -std::numeric_limits<float>::infinity()) - V(max));
        store_partial(e, x + i, count);
        return acc + e;
    }
};

// 0.5 z (1 + tanh v) with v = sqrt(2/pi) (z + 0.044715 z^3), computed as the
// equal z / (1 + exp(-2v)): for negative z, 1 + tanh v would cancel to a few
// correct bits, the quotient stays accurate to a few ulps. exp's argument is
// clamped to 88.75, past which exp is +inf (and z / inf the -0 the reference gives).
template <class A>
vec<float, A> gelu_tanh(const vec<float, A>& z) {
    using V = vec<float, A>;
    const V inner = V(0.7978845608028654f) * xsimd::fma(V(0.044715f), z * (z * z), z);
    const V e = exp_keep_nan(xsimd::min(V(-2.0f) * inner, V(88.75f)));
    return z / (V(1.0f) + e);
}

// Rotates the pairs (x0[j], x1[j]), j < N (N doubles), by the angles
// a = pos * freq[j], rounded to float exactly as the reference does. All in
// double: a = q pi/2 + r with q = round(a 2/pi) and |r| <= pi/4 (pi/2 in three
// parts, the first two short enough that q times them is exact for
// |a| < 2^30), sin r and cos r from polynomials in r^2 (the same Chebyshev
// fits as the Highway backend, within 2^-36), the quadrant q mod 4 swapping
// and negating them; then x0 c - x1 s in double, rounded to float once. So
// each output is within 0.5 ulp + 2^-35 (|x0| + |x1|) of the exact rotation,
// and a zero angle (c = 1, s = 0 exactly) keeps the pair.
template <class A>
void rope_lanes(float* x0, float* x1, const float* freq, float pos) {
    using VD = vec<double, A>;
    // The angles in float, as the reference rounds them, then widened.
    float angle[VD::size];
    for (std::size_t j = 0; j < VD::size; ++j) angle[j] = pos * freq[j];
    const VD a = load_f32_f64<A>(angle);
    const VD q = xsimd::nearbyint(a * VD(0.6366197723675814)); // 2 / pi
    VD r = xsimd::fnma(q, VD(0x1.921fb4p+0), a);                // 23 bits
    r = xsimd::fnma(q, VD(0x1.4442dp-24), r);                   // 21 bits
    r = xsimd::fnma(q, VD(0x1.8469898cc517p-48), r);
    const VD y = r * r;
    VD ps = xsimd::fma(VD(2.724992580305979e-06), y, VD(-0.00019840086735384846));
    ps = xsimd::fma(ps, y, VD(0.008333331874710208));
    ps = xsimd::fma(ps, y, VD(-0.1666666666385529));
    VD pc = xsimd::fma(VD(-2.730095920390147e-07), y, VD(2.480060037715673e-05));
    pc = xsimd::fma(pc, y, VD(-0.001388888767201679));
    pc = xsimd::fma(pc, y, VD(0.0416666666643212));
    const VD sin_r = xsimd::fma(y * r, ps, r);
    const VD cos_r = xsimd::fma(y * y, pc, xsimd::fnma(y, VD(0.5), VD(1.0)));
    // sin(q pi/2 + r) = sin r, cos r, -sin r, -cos r and cos(q pi/2 + r) =
    // cos r, -sin r, -cos r, sin r for q mod 4 = 0, 1, 2, 3. q is an integer
    // below 2^30 in magnitude: q mod 4 from q - 4 floor(q / 4), exactly.
    const VD m = q - VD(4.0) * xsimd::floor(q * VD(0.25));
    const auto odd = (m == VD(1.0)) || (m == VD(3.0));
    const VD s0 = xsimd::select(odd, cos_r, sin_r);
    const VD c0 = xsimd::select(odd, sin_r, cos_r);
    const VD s = xsimd::select(m >= VD(2.0), -s0, s0);
    const VD c = xsimd::select((m == VD(1.0)) || (m == VD(2.0)), -c0, c0);
    const VD v0 = load_f32_f64<A>(x0);
    const VD v1 = load_f32_f64<A>(x1);
    store_f64_f32<A>(v0 * c - v1 * s, x0);
    store_f64_f32<A>(v1 * c + v0 * s, x1);
}

// x[n] . y[n].
template <class A>
float dot(const float* x, const float* y, std::size_t n) {
    return sum4<A>(n, dot_step<A>{x, y});
}

// x[n], w[n] or nullptr -> y[n]; r from the sum of squares as in the reference.
template <class A>
void rmsnorm(const float* x, const float* w, float* y, std::size_t n, float eps) {
    using V = vec<float, A>;
    const float mean = sum4<A>(n, dot_step<A>{x, x}) / static_cast<float>(n);
    const V r(1.0f / std::sqrt(mean + eps));
    if (w)
        map2<A>(x, w, y, n, [&](const V& xv, const V& wv) { return (xv * r) * wv; });
    else
        map1<A>(x, y, n, [&](const V& xv) { return xv * r; });
}

// x[n] in place; n >= 1.
template <class A>
void softmax(float* x, std::size_t n) {
    using V = vec<float, A>;
    constexpr std::size_t N = V::size;
    const float minus_inf = -std::numeric_limits<float>::infinity();
    V m(minus_inf);
    std::size_t i = 0;
    for (; i + N <= n; i += N) m = xsimd::max(m, V::load_unaligned(x + i));
    if (i < n) m = xsimd::max(m, load_partial<A>(x + i, n - i, minus_inf));
    const float sum = sum4<A>(n, softmax_exp_step<A>{x, hmax(m)});
    const V inv(1.0f / sum);
    map1<A>(x, x, n, [&](const V& v) { return v * inv; });
}

// x[d] in place, freq[d / 2]; d even.
template <class A>
void rope(float* x, const float* freq, std::size_t d, float pos) {
    constexpr std::size_t N = vec<double, A>::size;
    const std::size_t half = d / 2;
    std::size_t i = 0;
    for (; i + N <= half; i += N) rope_lanes<A>(x + i, x + half + i, freq + i, pos);
    if (i < half) {
        const std::size_t rest = half - i;
        alignas(64) float x0[N] = {}, x1[N] = {}, f[N] = {};
        std::memcpy(x0, x + i, rest * sizeof(float));
        std::memcpy(x1, x + half + i, rest * sizeof(float));
        std::memcpy(f, freq + i, rest * sizeof(float));
        rope_lanes<A>(x0, x1, f, pos);
        std::memcpy(x + i, x0, rest * sizeof(float));
        std::memcpy(x + half + i, x1, rest * sizeof(float));
    }
}

} // namespace detail::xsimd_float_ops

namespace detail::backend {

inline float dot(target t, const float* x, const float* y, std::size_t n) {
    return run_on(t, [&](auto a) { return xsimd_float_ops::dot<decltype(a)>(x, y, n); },
                  [&] { return reference::dot(x, y, n); });
}
inline void rmsnorm(target t, const float* x, const float* w, float* y, std::size_t n, float eps) {
    run_on(t, [&](auto a) { xsimd_float_ops::rmsnorm<decltype(a)>(x, w, y, n, eps); },
           [&] { reference::rmsnorm(x, w, y, n, eps); });
}
inline void softmax(target t, float* x, std::size_t n) {
    run_on(t, [&](auto a) { xsimd_float_ops::softmax<decltype(a)>(x, n); }, [&] { reference::softmax(x, n); });
}
inline void gelu_tanh(target t, const float* x, float* y, std::size_t n) {
    run_on(t,
           [&](auto a) {
               using A = decltype(a);
               xsimd_float_ops::map1<A>(x, y, n, [](const auto& z) { return xsimd_float_ops::gelu_tanh<A>(z); });
           },
           [&] { reference::gelu_tanh(x, y, n); });
}
inline void geglu(target t, const float* gate, const float* up, float* y, std::size_t n) {
    run_on(t,
           [&](auto a) {
               using A = decltype(a);
               xsimd_float_ops::map2<A>(gate, up, y, n, [](const auto& g, const auto& u) {
                   return xsimd_float_ops::gelu_tanh<A>(g) * u;
               });
           },
           [&] { reference::geglu(gate, up, y, n); });
}
inline void rope(target t, float* x, const float* freq, std::size_t d, float pos) {
    run_on(t, [&](auto a) { xsimd_float_ops::rope<decltype(a)>(x, freq, d, pos); },
           [&] { reference::rope(x, freq, d, pos); });
}
inline void softcap(target t, float* x, std::size_t n, float cap) {
    run_on(t,
           [&](auto a) {
               using V = xsimd_ops::vec<float, decltype(a)>;
               const V c(cap), inv(1.0f / cap);
               xsimd_float_ops::map1<decltype(a)>(x, x, n, [&](const V& v) {
                   return c * xsimd_float_ops::tanh_keep_nan(v * inv);
               });
           },
           [&] { reference::softcap(x, n, cap); });
}
inline void axpy(target t, float a, const float* x, float* y, std::size_t n) {
    run_on(t,
           [&](auto arch) {
               using V = xsimd_ops::vec<float, decltype(arch)>;
               const V va(a);
               xsimd_float_ops::map2<decltype(arch)>(x, y, y, n,
                                                     [&](const V& xv, const V& yv) { return xsimd::fma(va, xv, yv); });
           },
           [&] { reference::axpy(a, x, y, n); });
}
inline void scale(target t, float a, float* x, std::size_t n) {
    run_on(t,
           [&](auto arch) {
               using V = xsimd_ops::vec<float, decltype(arch)>;
               const V va(a);
               xsimd_float_ops::map1<decltype(arch)>(x, x, n, [&](const V& v) { return v * va; });
           },
           [&] { reference::scale(a, x, n); });
}

} // namespace detail::backend
QTENSOR_KERNELS_END_NAMESPACE
