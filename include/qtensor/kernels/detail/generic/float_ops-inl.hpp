// qtensor/kernels/detail/generic/float_ops-inl.hpp: the float ops, written once over
// the vector vocabulary `ops` (scalar/ops.hpp defines every op on one lane).
// Each matches its scalar twin in reference/float_ops.hpp within the budget
// stated in float_ops.hpp, whatever the lane count N = ops::lanes.
//
// Lengths that are not a multiple of N end with one padded vector through a
// stack buffer, so no load or store leaves the caller's arrays.
//
// No include guard and no namespace on purpose: a backend includes this file
// once per instruction set, inside that set's namespace, where `ops` is that
// set's vocabulary (generic/kernels-inl.hpp; do not include it yourself).

namespace float_ops_impl {

// Sums step.full(acc, i) over the full vectors at i = 0, N, 2N, ... and
// step.partial(acc, i, count) over the last count < N elements (padded lanes
// must add 0). Four accumulators, full vectors dealt round robin, the extra
// ones (at most three full, one partial) one per accumulator: each lane sums
// at most floor(n / 4N) + 1 terms, then 2 adds join the accumulators and
// log2(N) the lanes. That depth, floor(n / 4N) + 3 + log2(N) <= n/4 + 7, is
// the summation budget in float_ops.hpp.
template <class Step>
QTENSOR_OPS_INLINE float sum4(std::size_t n, const Step& step) {
    constexpr std::size_t N = ops::lanes;
    auto s0 = ops::set_f(0.0f), s1 = s0, s2 = s0, s3 = s0;
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
    return ops::reduce_sum((s0 + s1) + (s2 + s3));
}

// y[i] = op(x[i]) for i < n; y may alias x.
template <class Op>
QTENSOR_OPS_INLINE void map1(const float* x, float* y, std::size_t n, const Op& op) {
    constexpr std::size_t N = ops::lanes;
    std::size_t i = 0;
    for (; i + N <= n; i += N) ops::store(op(ops::load(x + i)), y + i);
    if (i < n) ops::store_partial(op(ops::load_partial(x + i, n - i, 0.0f)), y + i, n - i);
}

// y[i] = op(a[i], b[i]) for i < n; y may alias a or b.
template <class Op>
QTENSOR_OPS_INLINE void map2(const float* a, const float* b, float* y, std::size_t n, const Op& op) {
    constexpr std::size_t N = ops::lanes;
    std::size_t i = 0;
    for (; i + N <= n; i += N) ops::store(op(ops::load(a + i), ops::load(b + i)), y + i);
    if (i < n) {
        const std::size_t rest = n - i;
        ops::store_partial(op(ops::load_partial(a + i, rest, 0.0f), ops::load_partial(b + i, rest, 0.0f)), y + i,
                           rest);
    }
}

struct dot_step {
    const float* x;
    const float* y;
    QTENSOR_OPS_INLINE ops::vf full(ops::vf acc, std::size_t i) const {
        return ops::mul_add(ops::load(x + i), ops::load(y + i), acc);
    }
    QTENSOR_OPS_INLINE ops::vf partial(ops::vf acc, std::size_t i, std::size_t count) const {
        return ops::mul_add(ops::load_partial(x + i, count, 0.0f), ops::load_partial(y + i, count, 0.0f), acc);
    }
};

// (a[i] b[i]) c[i]: a dot product with a weight, as g . x in rmsnorm's backward.
struct weighted_dot_step {
    const float* a;
    const float* b;
    const float* c;
    QTENSOR_OPS_INLINE ops::vf full(ops::vf acc, std::size_t i) const {
        return ops::mul_add(ops::load(a + i) * ops::load(b + i), ops::load(c + i), acc);
    }
    QTENSOR_OPS_INLINE ops::vf partial(ops::vf acc, std::size_t i, std::size_t count) const {
        return ops::mul_add(ops::load_partial(a + i, count, 0.0f) * ops::load_partial(b + i, count, 0.0f),
                            ops::load_partial(c + i, count, 0.0f), acc);
    }
};

// x[i] <- exp(x[i] - max), summed. Padded lanes are -inf: exp gives 0.
struct softmax_exp_step {
    float* x;
    float max;
    QTENSOR_OPS_INLINE ops::vf full(ops::vf acc, std::size_t i) const {
        const auto e = ops::exp(ops::load(x + i) - ops::set_f(max));
        ops::store(e, x + i);
        return acc + e;
    }
    QTENSOR_OPS_INLINE ops::vf partial(ops::vf acc, std::size_t i, std::size_t count) const {
        const float minus_inf = -std::numeric_limits<float>::infinity();
        const auto e = ops::exp(ops::load_partial(x + i, count, minus_inf) - ops::set_f(max));
        ops::store_partial(e, x + i, count);
        return acc + e;
    }
};

// 0.5 z (1 + tanh v) with v = sqrt(2/pi) (z + 0.044715 z^3), computed as the
// equal z / (1 + exp(-2v)): for negative z, 1 + tanh v would cancel to a few
// correct bits, the quotient stays accurate to a few ulps. exp's argument is
// clamped to 88.75, past which exp is +inf (and z / inf the -0 the reference gives).
QTENSOR_OPS_INLINE ops::vf gelu_tanh(ops::vf z) {
    const auto inner = ops::set_f(0.7978845608028654f) * ops::mul_add(ops::set_f(0.044715f), z * (z * z), z);
    const auto e = ops::exp(ops::min(ops::set_f(-2.0f) * inner, ops::set_f(88.75f)));
    return z / (ops::set_f(1.0f) + e);
}

// Rotates the pairs (x0[j], x1[j]), j < ND = ops::lanes_d, by the angles
// a = pos * freq[j], rounded to float exactly as the reference does. All in
// double: a = q pi/2 + r with q = round(a 2/pi) and |r| <= pi/4 (pi/2 in three
// parts, the first two short enough that q times them is exact for
// |a| < 2^30), sin r and cos r from polynomials in r^2 (our Chebyshev fits of
// (sin r - r) / r^3 and (cos r - 1 + r^2/2) / r^4 on [0, (pi/4)^2], both
// within 2^-36), the quadrant q mod 4 swapping and negating them; then
// x0 c - x1 s in double, rounded to float once. So each output is within
// 0.5 ulp + 2^-35 (|x0| + |x1|) of the exact rotation, and a zero angle
// (c = 1, s = 0 exactly) keeps the pair.
QTENSOR_OPS_INLINE void rope_lanes(float* x0, float* x1, const float* freq, float pos) {
    float angle[ops::lanes_d];
    for (std::size_t j = 0; j < ops::lanes_d; ++j) angle[j] = pos * freq[j];
    const auto a = ops::load_f64(angle);
    const auto q = ops::round(a * ops::set_d(0.6366197723675814)); // 2 / pi
    auto r = ops::neg_mul_add(q, ops::set_d(0x1.921fb4p+0), a);     // 23 bits
    r = ops::neg_mul_add(q, ops::set_d(0x1.4442dp-24), r);          // 21 bits
    r = ops::neg_mul_add(q, ops::set_d(0x1.8469898cc517p-48), r);
    const auto y = r * r;
    auto ps = ops::mul_add(ops::set_d(2.724992580305979e-06), y, ops::set_d(-0.00019840086735384846));
    ps = ops::mul_add(ps, y, ops::set_d(0.008333331874710208));
    ps = ops::mul_add(ps, y, ops::set_d(-0.1666666666385529));
    auto pc = ops::mul_add(ops::set_d(-2.730095920390147e-07), y, ops::set_d(2.480060037715673e-05));
    pc = ops::mul_add(pc, y, ops::set_d(-0.001388888767201679));
    pc = ops::mul_add(pc, y, ops::set_d(0.0416666666643212));
    const auto sin_r = ops::mul_add(y * r, ps, r);
    const auto cos_r = ops::mul_add(y * y, pc, ops::neg_mul_add(y, ops::set_d(0.5), ops::set_d(1.0)));
    // sin(q pi/2 + r) = sin r, cos r, -sin r, -cos r and cos(q pi/2 + r) =
    // cos r, -sin r, -cos r, sin r for q mod 4 = 0, 1, 2, 3. q is an integer
    // below 2^30 in magnitude: q mod 4 from q - 4 floor(q / 4), exactly.
    const auto m = q - ops::set_d(4.0) * ops::floor(q * ops::set_d(0.25));
    const auto one = ops::set_d(1.0), two = ops::set_d(2.0), three = ops::set_d(3.0);
    const auto odd = ops::mask_or(m == one, m == three);
    const auto s0 = ops::select(odd, cos_r, sin_r);
    const auto c0 = ops::select(odd, sin_r, cos_r);
    const auto s = ops::select(m >= two, ops::neg(s0), s0);
    const auto c = ops::select(ops::mask_or(m == one, m == two), ops::neg(c0), c0);
    const auto v0 = ops::load_f64(x0);
    const auto v1 = ops::load_f64(x1);
    ops::store_f32(v0 * c - v1 * s, x0);
    ops::store_f32(v1 * c + v0 * s, x1);
}

} // namespace float_ops_impl

// x[n] . y[n].
inline float dot(const float* x, const float* y, std::size_t n) {
    return float_ops_impl::sum4(n, float_ops_impl::dot_step{x, y});
}

// x[n], w[n] or nullptr -> y[n]; r from the sum of squares as in the reference.
inline void rmsnorm(const float* x, const float* w, float* y, std::size_t n, float eps) {
    const float mean = float_ops_impl::sum4(n, float_ops_impl::dot_step{x, x}) / static_cast<float>(n);
    const auto r = ops::set_f(1.0f / std::sqrt(mean + eps));
    if (w)
        float_ops_impl::map2(x, w, y, n, [&](ops::vf xv, ops::vf wv) QTENSOR_OPS_LAMBDA { return (xv * r) * wv; });
    else
        float_ops_impl::map1(x, y, n, [&](ops::vf xv) QTENSOR_OPS_LAMBDA { return xv * r; });
}

// x[n], w[n] or nullptr, dy[n] -> dx[n] (may alias dy), dw[n] += dy x r
// (with w): r and the sums as in rmsnorm, g = dy w (or dy),
// dx = r (g - c x) with c = r^2 (g . x) / n (r^3 alone would overflow for
// rows of RMS below 2^-42 with eps = 0, where dx is finite).
inline void rmsnorm_backward(const float* x, const float* w, const float* dy, float* dx, float* dw, std::size_t n,
                             float eps) {
    constexpr std::size_t N = ops::lanes;
    const float mean = float_ops_impl::sum4(n, float_ops_impl::dot_step{x, x}) / static_cast<float>(n);
    const float r = 1.0f / std::sqrt(mean + eps);
    const float gx = w ? float_ops_impl::sum4(n, float_ops_impl::weighted_dot_step{dy, w, x})
                       : float_ops_impl::sum4(n, float_ops_impl::dot_step{dy, x});
    const auto vr = ops::set_f(r), c = ops::set_f(r * (r * (gx / static_cast<float>(n))));
    // One element group: every load before the store of dx, which may be dy.
    const auto step = [&](ops::vf xv, ops::vf d, ops::vf wv, ops::vf dwv, ops::vf& dxv,
                          ops::vf& dw_out) QTENSOR_OPS_LAMBDA {
        dw_out = ops::mul_add(d, xv * vr, dwv);
        dxv = vr * ((w ? d * wv : d) - c * xv);
    };
    ops::vf dxv, dwv;
    const auto zero = ops::set_f(0.0f);
    std::size_t i = 0;
    for (; i + N <= n; i += N) {
        step(ops::load(x + i), ops::load(dy + i), w ? ops::load(w + i) : zero, w ? ops::load(dw + i) : zero, dxv,
             dwv);
        if (w) ops::store(dwv, dw + i);
        ops::store(dxv, dx + i);
    }
    if (i < n) {
        const std::size_t rest = n - i;
        step(ops::load_partial(x + i, rest, 0.0f), ops::load_partial(dy + i, rest, 0.0f),
             w ? ops::load_partial(w + i, rest, 0.0f) : zero, w ? ops::load_partial(dw + i, rest, 0.0f) : zero, dxv,
             dwv);
        if (w) ops::store_partial(dwv, dw + i, rest);
        ops::store_partial(dxv, dx + i, rest);
    }
}

// x[n] in place; n >= 1.
inline void softmax(float* x, std::size_t n) {
    constexpr std::size_t N = ops::lanes;
    const float minus_inf = -std::numeric_limits<float>::infinity();
    auto m = ops::set_f(minus_inf);
    std::size_t i = 0;
    for (; i + N <= n; i += N) m = ops::max(m, ops::load(x + i));
    if (i < n) m = ops::max(m, ops::load_partial(x + i, n - i, minus_inf));
    const float sum = float_ops_impl::sum4(n, float_ops_impl::softmax_exp_step{x, ops::reduce_max(m)});
    const auto inv = ops::set_f(1.0f / sum);
    float_ops_impl::map1(x, x, n, [&](ops::vf v) QTENSOR_OPS_LAMBDA { return v * inv; });
}

// x[n] -> y[n].
inline void gelu_tanh(const float* x, float* y, std::size_t n) {
    float_ops_impl::map1(x, y, n, [](ops::vf z) QTENSOR_OPS_LAMBDA { return float_ops_impl::gelu_tanh(z); });
}

// gate[n], up[n] -> y[n].
inline void geglu(const float* gate, const float* up, float* y, std::size_t n) {
    float_ops_impl::map2(gate, up, y, n,
                         [](ops::vf g, ops::vf u) QTENSOR_OPS_LAMBDA { return float_ops_impl::gelu_tanh(g) * u; });
}

// gate[n], up[n], dy[n] -> d_gate[n] = dy up gelu'(gate), d_up[n] = dy
// gelu(gate); either output may alias dy. With s = 1 / (1 + exp(-2v)) as in
// gelu_tanh (0.5 (1 + tanh v) = s, 1 - tanh^2 v = 4 s (1 - s)):
// gelu = z s and gelu' = s + 2 z s (1 - s) dv/dz. The second term uses z
// clamped to [-30, 30]: beyond, s (1 - s) < e^-48 makes it vanish, while
// dv/dz of a huge z would be inf and 0 inf a NaN.
inline void geglu_backward(const float* gate, const float* up, const float* dy, float* d_gate, float* d_up,
                           std::size_t n) {
    constexpr std::size_t N = ops::lanes;
    const auto step = [](ops::vf z, ops::vf u, ops::vf d, ops::vf& dg, ops::vf& du) QTENSOR_OPS_LAMBDA {
        const auto one = ops::set_f(1.0f), z2 = z * z;
        const auto v = ops::set_f(0.7978845608028654f) * ops::mul_add(ops::set_f(0.044715f), z * z2, z);
        const auto s = one / (one + ops::exp(ops::min(ops::set_f(-2.0f) * v, ops::set_f(88.75f))));
        const auto zc = ops::min(ops::max(z, ops::set_f(-30.0f)), ops::set_f(30.0f));
        const auto dv = ops::set_f(0.7978845608028654f) * ops::mul_add(ops::set_f(3.0f * 0.044715f), zc * zc, one);
        dg = d * u * ops::mul_add(ops::set_f(2.0f) * zc * s * (one - s), dv, s);
        du = d * z * s;
    };
    std::size_t i = 0;
    ops::vf dg, du;
    for (; i + N <= n; i += N) {
        step(ops::load(gate + i), ops::load(up + i), ops::load(dy + i), dg, du);
        ops::store(dg, d_gate + i);
        ops::store(du, d_up + i);
    }
    if (i < n) {
        const std::size_t rest = n - i;
        step(ops::load_partial(gate + i, rest, 0.0f), ops::load_partial(up + i, rest, 0.0f),
             ops::load_partial(dy + i, rest, 0.0f), dg, du);
        ops::store_partial(dg, d_gate + i, rest);
        ops::store_partial(du, d_up + i, rest);
    }
}

// x[d] in place, freq[d / 2]; d even.
inline void rope(float* x, const float* freq, std::size_t d, float pos) {
    constexpr std::size_t N = ops::lanes_d;
    const std::size_t half = d / 2;
    std::size_t i = 0;
    for (; i + N <= half; i += N) float_ops_impl::rope_lanes(x + i, x + half + i, freq + i, pos);
    if (i < half) {
        const std::size_t rest = half - i;
        float x0[N] = {}, x1[N] = {}, f[N] = {};
        std::memcpy(x0, x + i, rest * sizeof(float));
        std::memcpy(x1, x + half + i, rest * sizeof(float));
        std::memcpy(f, freq + i, rest * sizeof(float));
        float_ops_impl::rope_lanes(x0, x1, f, pos);
        std::memcpy(x + i, x0, rest * sizeof(float));
        std::memcpy(x + half + i, x1, rest * sizeof(float));
    }
}

// x[n] in place; cap > 0.
inline void softcap(float* x, std::size_t n, float cap) {
    const auto c = ops::set_f(cap), inv = ops::set_f(1.0f / cap);
    float_ops_impl::map1(x, x, n, [&](ops::vf v) QTENSOR_OPS_LAMBDA { return c * ops::tanh(v * inv); });
}

// x[n], y[n]: y += a x.
inline void axpy(float a, const float* x, float* y, std::size_t n) {
    const auto va = ops::set_f(a);
    float_ops_impl::map2(x, y, y, n,
                         [&](ops::vf xv, ops::vf yv) QTENSOR_OPS_LAMBDA { return ops::mul_add(va, xv, yv); });
}

// p[n], m[n], v[n] from g[n], as reference::adamw_update bit for bit: the same
// correctly rounded operations in the same order, every product rounded
// before the add or subtract after it (the reference itself where ops cannot
// keep a product from fusing).
inline void adamw_update(float* p, float* m, float* v, const float* g, std::size_t n, const adamw_constants& k) {
    if constexpr (!ops::can_round) return reference::adamw_update(p, m, v, g, n, k);
    constexpr std::size_t N = ops::lanes;
    const auto keep = ops::set_f(k.keep), b1 = ops::set_f(k.b1), b2 = ops::set_f(k.b2);
    const auto c1 = ops::set_f(1.0f - k.b1), c2 = ops::set_f(1.0f - k.b2);
    const auto step = ops::set_f(k.step_size), bc2 = ops::set_f(k.bc2_sqrt), eps = ops::set_f(k.eps);
    const auto update = [&](float* pi, float* mi, float* vi, const float* gi, std::size_t count) QTENSOR_OPS_LAMBDA {
        const auto load = [&](const float* x) QTENSOR_OPS_LAMBDA {
            return count == N ? ops::load(x) : ops::load_partial(x, count, 0.0f);
        };
        const auto store = [&](ops::vf x, float* to) QTENSOR_OPS_LAMBDA {
            if (count == N) ops::store(x, to);
            else ops::store_partial(x, to, count);
        };
        const auto gv = load(gi);
        const auto mv = ops::rounded(load(mi) * b1) + ops::rounded(c1 * gv);
        const auto vv = ops::rounded(load(vi) * b2) + ops::rounded(ops::rounded(c2 * gv) * gv);
        const auto pv = ops::rounded(load(pi) * keep) - ops::rounded(step * (mv / (ops::sqrt(vv) / bc2 + eps)));
        store(mv, mi);
        store(vv, vi);
        store(pv, pi);
    };
    std::size_t i = 0;
    for (; i + N <= n; i += N) update(p + i, m + i, v + i, g + i, N);
    if (i < n) update(p + i, m + i, v + i, g + i, n - i);
}

// x[n] *= a.
inline void scale(float a, float* x, std::size_t n) {
    const auto va = ops::set_f(a);
    float_ops_impl::map1(x, x, n, [&](ops::vf v) QTENSOR_OPS_LAMBDA { return v * va; });
}
