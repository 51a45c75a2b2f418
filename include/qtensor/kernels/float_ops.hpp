// qtensor/kernels/float_ops.hpp: the float ops a transformer block needs, on
// float32 vectors, each within a stated budget of its scalar reference in
// reference/float_ops.hpp.
//
// Budgets hold on every target of every backend: each op is one body
// (detail/generic/float_ops-inl.hpp) on N = 1 to 16 lanes. Notation:
// u = 2^-24 (float's unit roundoff; 1 ulp of a float v is at most 2u |v|), gamma_k = k u / (1 - k u) (Higham's bound for k
// roundings in a row), ref_i the reference's output. Where a budget counts
// the reference's own error it uses glibc's documented maxima (expf, sinf,
// cosf 1 ulp; tanhf 2 ulp) and Highway 1.0.3's (Exp 1 ulp, Tanh 4 ulp; xsimd's
// are within those).
// Except for softmax, budgets assume no underflow: results below 2^-126 may
// differ by a few 2^-149 more.
//
// Each op below is in kernels::unchecked on raw pointers and n, with its
// budget; kernels::<op> takes spans, checks their sizes and calls it
// (checks.hpp says why both).
//
// Sums (dot, rmsnorm, softmax) use four vector accumulators of N lanes and a
// tree over the lanes: each term goes through at most
// k = floor(n / 4N) + 3 + log2(N) <= n/4 + 7 roundings, against n for the
// reference's loop.
#pragma once

#include <cmath>
#include <cstddef>
#include <span>
#include <sstream>
#include <string>

#include "qtensor/core/error.hpp"
#include "qtensor/kernels/backend.hpp"
#include "qtensor/kernels/checks.hpp"

QTENSOR_KERNELS_BEGIN_NAMESPACE

namespace detail {

// A float for an error message, at full precision ("1e-06", not "0.000001").
inline std::string float_ops_text(float v) {
    std::ostringstream s;
    s.precision(9);
    s << v;
    return s.str();
}

} // namespace detail

namespace unchecked {

// x[n] . y[n].
// |dot - ref| <= gamma_(5n/4 + 7) * sum_i |x_i y_i|: gamma_(n/4 + 7) for the
// blocked sum here, gamma_n for the reference's sequential one (which reaches
// about that much when one large term meets many small ones).
inline float dot(const float* x, const float* y, std::size_t n, target t = target::best()) {
    return detail::backend::dot(t, x, y, n);
}

// x[n], w[n] (nullptr: no weight) -> y[n]: y_i = x_i r w_i with
// r = 1 / sqrt(mean(x^2) + eps); y may alias x.
// |y_i - ref_i| <= gamma_(5n/8 + 14) * |ref_i|: the sum of squares has
// relative error gamma_k (k <= n/4 + 7 here, n in the reference; all terms
// >= 0); with /n and +eps it is halved under the root, and sqrt, 1/ and the
// two products follow: k/2 + 5 roundings on each side.
inline void rmsnorm(const float* x, const float* w, float* y, std::size_t n, float eps,
                    target t = target::best()) {
    if (!(eps >= 0.0f) || !std::isfinite(eps))
        throw error("kernels::rmsnorm: eps must be finite and >= 0, got " + detail::float_ops_text(eps));
    if (n == 0) return;
    detail::backend::rmsnorm(t, x, w, y, n, eps);
}

// x[n], w[n] (nullptr: no weight), dy[n] -> dx[n], dw[n] += (with w):
// rmsnorm's backward. With r as in rmsnorm, g = dy w (or dy) and
// G = sum_j |g_j x_j|: dx_i = r g_i - r^3 x_i (g . x) / n, dw_i += dy_i x_i r;
// dx may alias dy. Computed as r (g_i - c x_i), c = r^2 (g . x) / n. Against
// the exact values, k = the sums' depth (n/4 + 7):
// |dx_i - exact| <= gamma_(5k/2 + 17) (r |g_i| + r^3 |x_i| G / n): r within
// gamma_(k/2 + 3) as in rmsnorm, so r^2 within gamma_(k + 7); g . x within
// gamma_(k + 1) G; c and c x_i two roundings more; the difference (which may
// cancel: hence a bound on the terms, not on dx_i) one, the product with r
// k/2 + 4.
// |dw_i - exact| <= gamma_(k/2 + 6) |dy_i x_i r| + u |exact|.
inline void rmsnorm_backward(const float* x, const float* w, const float* dy, float* dx, float* dw, std::size_t n,
                             float eps, target t = target::best()) {
    if (!(eps >= 0.0f) || !std::isfinite(eps))
        throw error("kernels::rmsnorm_backward: eps must be finite and >= 0, got " + detail::float_ops_text(eps));
    if (n == 0) return;
    detail::backend::rmsnorm_backward(t, x, w, dy, dx, dw, n, eps);
}

// x[n] in place: softmax. Entries of -inf give 0; at least one entry must be
// finite (else NaN, as in the reference). NaN anywhere makes every output NaN.
// |y_i - ref_i| <= gamma_(5n/4 + 19) * ref_i + 2^-148: both round x_i - max
// the same way; then exp's 1 ulp (2u) on the term and on the sum's terms, the
// sum's gamma_k (n/4 + 7 here, n in the reference), 1/sum and the product:
// k + 6 roundings here, n + 6 in the reference. The 2^-148 covers outputs
// that exp rounds to subnormals or 0 (it is the one budget with an absolute term).
inline void softmax(float* x, std::size_t n, target t = target::best()) {
    if (n == 0) return;
    detail::backend::softmax(t, x, n);
}

// x[n] -> y[n]: the tanh approximation of GELU; y may alias x.
// |y_i - ref_i| <= 8u |x_i|. Here 0.5 z (1 + tanh v) is computed as
// z / (1 + exp(-2v)), exact in the maths and free of the cancellation of
// 1 + tanh v for z < 0: exp 2u, 1 + e and the quotient 2u, so 4u |y|. The
// reference's tanhf (2 ulp of |tanh| < 1, so 2u absolute) and 1 + tanh (u
// absolute) scaled by 0.5 |z|, plus its product, give 2.5u |z|; an FMA here in
// z + 0.044715 z^3 moves v by 2u |v|, which moves y by < 0.5u |z|.
inline void gelu_tanh(const float* x, float* y, std::size_t n, target t = target::best()) {
    detail::backend::gelu_tanh(t, x, y, n);
}

// gate[n], up[n] -> y[n]: y_i = gelu_tanh(gate_i) up_i; y may alias either.
// |y_i - ref_i| <= 10u |gate_i up_i|: gelu_tanh's 8u |gate_i| times |up_i|,
// plus the rounding of the product on each side.
inline void geglu(const float* gate, const float* up, float* y, std::size_t n, target t = target::best()) {
    detail::backend::geglu(t, gate, up, y, n);
}

// gate[n], up[n], dy[n] -> d_gate[n] = dy up gelu'(gate), d_up[n] = dy
// gelu(gate): GeGLU's backward; either output may alias dy. Against the
// exact values: |d_up_i - ref| <= 10u |dy_i gate_i| (as geglu), and
// |d_gate_i - ref| <= 16u |dy_i up_i| (1 + |gate_i| v'(gate_i)), v' =
// sqrt(2/pi) (1 + 0.134145 z^2): s = 1 / (1 + e) within 4u; 1 - s within 6u
// absolute, scaled by 2 |z| s v' <= 2 |z| v'; the products' roundings.
inline void geglu_backward(const float* gate, const float* up, const float* dy, float* d_gate, float* d_up,
                           std::size_t n, target t = target::best()) {
    detail::backend::geglu_backward(t, gate, up, dy, d_gate, d_up, n);
}

// x[d] in place, freq[d / 2]: rotate-half RoPE at position pos. The angle
// pos * freq_i is rounded to float as in the reference and must stay below
// 2^30 in magnitude (checked; 2^24 positions at freq up to 64), where the
// kernel's reduction modulo pi/2 is exact.
// For both outputs of pair i: |y - ref| <= 6u (|x_i| + |x_(i + d/2)|): cos and
// sin come out rounded to nearest give or take 2^-35 (0.5 ulp, <= u/2
// absolute) against glibc's 1 ulp (<= u), and x0 c - x1 s takes
// 2u (|x0| + |x1|) on each side. A zero frequency (or pos = 0) gives c = 1 and
// s = 0 exactly: the pair keeps its values.
inline void rope(float* x, const float* freq, std::size_t d, float pos, target t = target::best()) {
    if (d % 2 != 0) throw error("kernels::rope: head size d = " + std::to_string(d) + " is odd");
    bool angles_ok = true; // one branch-free pass; the loop below only names the culprit
    for (std::size_t i = 0; i < d / 2; ++i) angles_ok &= std::fabs(pos * freq[i]) < 0x1p30f;
    for (std::size_t i = 0; !angles_ok && i < d / 2; ++i) {
        if (!(std::fabs(pos * freq[i]) < 0x1p30f))
            throw error("kernels::rope: angle pos * freq[" + std::to_string(i) + "] = " +
                        detail::float_ops_text(pos) + " * " + detail::float_ops_text(freq[i]) +
                        " is not finite or beyond 2^30");
    }
    detail::backend::rope(t, x, freq, d, pos);
}

// x[n] in place: x_i = cap tanh(x_i / cap), cap > 0.
// |y_i - ref_i| <= 18u |ref_i| (17u to first order): here x * (1 / cap) (2u;
// tanh passes a relative argument error on at most 1:1), Tanh 4 ulp (8u) and
// the product (u); in the reference x / cap (u), tanhf 2 ulp (4u), the product.
inline void softcap(float* x, std::size_t n, float cap, target t = target::best()) {
    if (!(cap > 0.0f) || !std::isfinite(cap))
        throw error("kernels::softcap: cap must be finite and > 0, got " + detail::float_ops_text(cap));
    detail::backend::softcap(t, x, n, cap);
}

// x[n], y[n]: y_i += a x_i.
// |y_i - ref_i| <= gamma_2 (|a x_i| + |ref_i|): one fused rounding here where
// the target has FMA, two in the reference.
inline void axpy(float a, const float* x, float* y, std::size_t n, target t = target::best()) {
    detail::backend::axpy(t, a, x, y, n);
}

// x[n] *= a. Bit for bit the reference.
inline void scale(float a, float* x, std::size_t n, target t = target::best()) {
    detail::backend::scale(t, a, x, n);
}

// p[n], m[n], v[n] in place from g[n]: one AdamW step (reference::adamw_update
// says what k holds). Bit for bit the reference.
inline void adamw_update(float* p, float* m, float* v, const float* g, std::size_t n, const adamw_constants& k,
                         target t = target::best()) {
    detail::backend::adamw_update(t, p, m, v, g, n, k);
}

} // namespace unchecked

// ---- the checked forms ------------------------------------------------------------

// x[n] . y[n].
inline float dot(std::span<const float> x, std::span<const float> y, target t = target::best()) {
    detail::check_size("dot", {"y", y.size()}, x.size(), {"x", x.size()});
    return unchecked::dot(x.data(), y.data(), x.size(), t);
}

// x[n], w[n] or empty (no weight) -> y[n]; y may be x.
inline void rmsnorm(std::span<const float> x, std::span<const float> w, std::span<float> y, float eps,
                    target t = target::best()) {
    if (!w.empty()) detail::check_size("rmsnorm", {"w", w.size()}, x.size(), {"x", x.size()});
    detail::check_size("rmsnorm", {"y", y.size()}, x.size(), {"x", x.size()});
    unchecked::rmsnorm(x.data(), w.empty() ? nullptr : w.data(), y.data(), x.size(), eps, t);
}

// x[n], w[n] or empty, dy[n] -> dx[n], dw[n] (w's size) +=; dx may be dy.
inline void rmsnorm_backward(std::span<const float> x, std::span<const float> w, std::span<const float> dy,
                             std::span<float> dx, std::span<float> dw, float eps, target t = target::best()) {
    for (const auto& [name, size] : {std::pair{"dy", dy.size()}, {"dx", dx.size()}})
        detail::check_size("rmsnorm_backward", {name, size}, x.size(), {"x", x.size()});
    if (!w.empty()) detail::check_size("rmsnorm_backward", {"w", w.size()}, x.size(), {"x", x.size()});
    detail::check_size("rmsnorm_backward", {"dw", dw.size()}, w.size(), {"w", w.size()});
    unchecked::rmsnorm_backward(x.data(), w.empty() ? nullptr : w.data(), dy.data(), dx.data(),
                                w.empty() ? nullptr : dw.data(), x.size(), eps, t);
}

// x[n] in place.
inline void softmax(std::span<float> x, target t = target::best()) { unchecked::softmax(x.data(), x.size(), t); }

// x[n] -> y[n]; y may be x.
inline void gelu_tanh(std::span<const float> x, std::span<float> y, target t = target::best()) {
    detail::check_size("gelu_tanh", {"y", y.size()}, x.size(), {"x", x.size()});
    unchecked::gelu_tanh(x.data(), y.data(), x.size(), t);
}

// gate[n], up[n] -> y[n]; y may be either.
inline void geglu(std::span<const float> gate, std::span<const float> up, std::span<float> y,
                  target t = target::best()) {
    detail::check_size("geglu", {"up", up.size()}, gate.size(), {"gate", gate.size()});
    detail::check_size("geglu", {"y", y.size()}, gate.size(), {"gate", gate.size()});
    unchecked::geglu(gate.data(), up.data(), y.data(), gate.size(), t);
}

// gate[n], up[n], dy[n] -> d_gate[n], d_up[n]; the outputs may be dy.
inline void geglu_backward(std::span<const float> gate, std::span<const float> up, std::span<const float> dy,
                           std::span<float> d_gate, std::span<float> d_up, target t = target::best()) {
    for (const auto& [name, size] : {std::pair{"up", up.size()}, {"dy", dy.size()}, {"d_gate", d_gate.size()},
                                     {"d_up", d_up.size()}})
        detail::check_size("geglu_backward", {name, size}, gate.size(), {"gate", gate.size()});
    unchecked::geglu_backward(gate.data(), up.data(), dy.data(), d_gate.data(), d_up.data(), gate.size(), t);
}

// x[d] in place, freq[d / 2]: one head at position pos.
inline void rope(std::span<float> x, std::span<const float> freq, float pos, target t = target::best()) {
    if (x.size() % 2 == 0) detail::check_size("rope", {"freq", freq.size()}, x.size() / 2, {"x", x.size()});
    unchecked::rope(x.data(), freq.data(), x.size(), pos, t);
}

// x[n] in place.
inline void softcap(std::span<float> x, float cap, target t = target::best()) {
    unchecked::softcap(x.data(), x.size(), cap, t);
}

// x[n], y[n]: y += a x.
inline void axpy(float a, std::span<const float> x, std::span<float> y, target t = target::best()) {
    detail::check_size("axpy", {"y", y.size()}, x.size(), {"x", x.size()});
    unchecked::axpy(a, x.data(), y.data(), x.size(), t);
}

// x[n] *= a.
inline void scale(float a, std::span<float> x, target t = target::best()) {
    unchecked::scale(a, x.data(), x.size(), t);
}

// p[n], m[n], v[n] in place from g[n].
inline void adamw_update(std::span<float> p, std::span<float> m, std::span<float> v, std::span<const float> g,
                         const adamw_constants& k, target t = target::best()) {
    for (const auto& [name, size] : {std::pair{"m", m.size()}, {"v", v.size()}, {"g", g.size()}})
        detail::check_size("adamw_update", {name, size}, p.size(), {"p", p.size()});
    unchecked::adamw_update(p.data(), m.data(), v.data(), g.data(), p.size(), k, t);
}

QTENSOR_KERNELS_END_NAMESPACE
