// qtensor/kernels/reference/float_ops.hpp: scalar reference of the float ops
// a transformer block needs, forward and backward. They define the results
// the SIMD kernels in float_ops.hpp must reproduce (within the budgets stated
// there), and they are the teaching path: plain loops, one op after another.
//
// Each op is a template over the float type T: float is the reference (every
// product that feeds a sum written as mul(), so no compiler flag turns it
// into an FMA), double is what the finite-difference tests of the backward
// passes run in.
//
// Backward passes: for an op y = f(x), op_backward takes dy = dL/dy and
// writes dx = dL/dx; parameter gradients (dw) are added to, so that the rows
// of a batch accumulate into one. Shapes in comments; all arrays are
// row-major; outputs may alias inputs where the comment says so.
#pragma once

#include <cmath>
#include <cstddef>
#include <limits>
#include <type_traits>

#include "qtensor/core/config.hpp"
#include "qtensor/core/float_bits.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace kernels {

// One AdamW step's numbers (train::adamw derives them from its options, the
// learning rate lr and the step count t): keep = 1 - lr weight_decay (1 where
// the parameter does not decay), the moments' decays b1 and b2, step_size =
// lr / (1 - b1^t), bc2_sqrt = sqrt(1 - b2^t), and eps.
struct adamw_constants {
    float keep, b1, b2, step_size, bc2_sqrt, eps;
};

} // namespace kernels

namespace kernels::reference {

// a * b, rounded before any add in float (core/float_bits.hpp).
template <class T>
T mul(T a, T b) noexcept {
    if constexpr (std::is_same_v<T, float>) return qtensor::detail::fmul(a, b);
    else return a * b;
}

// A parameter that takes its type from the others.
template <class T>
using same = std::type_identity_t<T>;

// sum_i x[i] * y[i], in order.
template <class T>
T dot(const T* x, const same<T>* y, std::size_t n) noexcept {
    T sum = 0;
    for (std::size_t i = 0; i < n; ++i) sum += mul(x[i], y[i]);
    return sum;
}

// ---- RMSNorm -------------------------------------------------------------------------

// x[n] -> y[n] (y may be x): y[i] = x[i] * r * w[i], r = 1 / sqrt(mean(x^2) +
// eps), eps inside the mean (Gemma's RMSNorm). w == nullptr: no weight.
template <class T>
void rmsnorm(const T* x, const same<T>* w, same<T>* y, std::size_t n, same<T> eps) noexcept {
    const T mean = dot(x, x, n) / static_cast<T>(n);
    const T r = T(1) / std::sqrt(mean + eps);
    for (std::size_t i = 0; i < n; ++i) y[i] = w ? mul(x[i], r) * w[i] : mul(x[i], r);
}

// dy[n] -> dx[n] (dx may be dy), dw[n] += (w != nullptr). With g = dy * w
// (or dy) and r as above, y = x * r * w gives
//   dx[i] = r g[i] - r^3 x[i] (g . x) / n,   dw[i] += dy[i] x[i] r.
template <class T>
void rmsnorm_backward(const T* x, const same<T>* w, const same<T>* dy, same<T>* dx, same<T>* dw, std::size_t n,
                      same<T> eps) noexcept {
    const T mean = dot(x, x, n) / static_cast<T>(n);
    const T r = T(1) / std::sqrt(mean + eps);
    T gx = 0;
    for (std::size_t i = 0; i < n; ++i) gx += mul(w ? mul(dy[i], w[i]) : dy[i], x[i]);
    const T c = mul(mul(r, mul(r, r)), gx / static_cast<T>(n));
    for (std::size_t i = 0; i < n; ++i) {
        if (w) dw[i] += mul(dy[i], mul(x[i], r));
        const T g = w ? mul(dy[i], w[i]) : dy[i];
        dx[i] = mul(r, g) - mul(c, x[i]);
    }
}

// ---- softmax -------------------------------------------------------------------------

// In place over x[n]: x[i] = exp(x[i] - max) / sum_j exp(x[j] - max). Entries
// of -inf (masked out) become 0; at least one entry must be finite.
template <class T>
void softmax(T* x, std::size_t n) noexcept {
    T max = -std::numeric_limits<T>::infinity();
    for (std::size_t i = 0; i < n; ++i) max = x[i] > max ? x[i] : max;
    T sum = 0;
    for (std::size_t i = 0; i < n; ++i) sum += (x[i] = std::exp(x[i] - max));
    const T inv = T(1) / sum;
    for (std::size_t i = 0; i < n; ++i) x[i] *= inv;
}

// p[n] = softmax(x), dp[n] -> dx[n] (dx may be dp): dx[i] = p[i] (dp[i] - p . dp).
template <class T>
void softmax_backward(const T* p, const same<T>* dp, same<T>* dx, std::size_t n) noexcept {
    const T pdp = dot(p, dp, n);
    for (std::size_t i = 0; i < n; ++i) dx[i] = mul(p[i], dp[i] - pdp);
}

// ---- GELU and GeGLU ------------------------------------------------------------------

// The tanh approximation of GELU (PyTorch's gelu(approximate="tanh")):
//   0.5 z (1 + tanh(u)),  u = sqrt(2/pi) (z + 0.044715 z^3).
template <class T>
T gelu_tanh(T z) noexcept {
    const T sqrt_2_over_pi = T(0.7978845608028654), k = T(0.044715);
    const T inner = mul(sqrt_2_over_pi, z + mul(k, mul(z, mul(z, z))));
    return mul(T(0.5), z) * (T(1) + std::tanh(inner));
}

// d gelu_tanh / dz = 0.5 (1 + tanh u) + 0.5 z (1 - tanh^2 u) sqrt(2/pi) (1 + 3 * 0.044715 z^2).
template <class T>
T gelu_tanh_derivative(T z) noexcept {
    const T sqrt_2_over_pi = T(0.7978845608028654), k = T(0.044715);
    const T t = std::tanh(mul(sqrt_2_over_pi, z + mul(k, mul(z, mul(z, z)))));
    const T du = mul(sqrt_2_over_pi, T(1) + mul(T(3) * k, mul(z, z)));
    return mul(T(0.5), T(1) + t) + mul(mul(T(0.5), z), mul(T(1) - mul(t, t), du));
}

// x[n] -> y[n] (y may be x).
template <class T>
void gelu_tanh(const T* x, same<T>* y, std::size_t n) noexcept {
    for (std::size_t i = 0; i < n; ++i) y[i] = gelu_tanh(x[i]);
}

// GeGLU: gate[n], up[n] -> y[n] (y may be either): y[i] = gelu_tanh(gate[i]) * up[i].
template <class T>
void geglu(const T* gate, const same<T>* up, same<T>* y, std::size_t n) noexcept {
    for (std::size_t i = 0; i < n; ++i) y[i] = gelu_tanh(gate[i]) * up[i];
}

// dy[n] -> d_gate[n], d_up[n] (either may alias dy):
//   d_gate = dy * up * gelu'(gate),  d_up = dy * gelu(gate).
template <class T>
void geglu_backward(const T* gate, const same<T>* up, const same<T>* dy, same<T>* d_gate, same<T>* d_up,
                    std::size_t n) noexcept {
    for (std::size_t i = 0; i < n; ++i) {
        const T g = gate[i], u = up[i], d = dy[i];
        d_gate[i] = mul(mul(d, u), gelu_tanh_derivative(g));
        d_up[i] = mul(d, gelu_tanh(g));
    }
}

// ---- RoPE ---------------------------------------------------------------------------

// Rotate-half (NeoX) RoPE of one head vector x[d] in place, at position pos,
// with per-pair frequencies freq[d / 2]: angle a_i = pos * freq[i], and
//   x[i]       <- x[i] cos a_i - x[i + d/2] sin a_i
//   x[i + d/2] <- x[i + d/2] cos a_i + x[i] sin a_i.
// A zero frequency leaves its pair unchanged (Gemma 4's proportional RoPE).
template <class T>
void rope(T* x, const same<T>* freq, std::size_t d, same<T> pos) noexcept {
    const std::size_t half = d / 2;
    for (std::size_t i = 0; i < half; ++i) {
        const T a = mul(pos, freq[i]);
        const T c = std::cos(a), s = std::sin(a);
        const T x0 = x[i], x1 = x[i + half];
        x[i] = mul(x0, c) - mul(x1, s);
        x[i + half] = mul(x1, c) + mul(x0, s);
    }
}

// dy[d] -> dx[d] in place: a rotation's gradient is the inverse rotation,
// which is RoPE at position -pos.
template <class T>
void rope_backward(T* dx, const same<T>* freq, std::size_t d, same<T> pos) noexcept {
    rope(dx, freq, d, -pos);
}

// ---- softcap, cross-entropy ----------------------------------------------------------------

// In place over x[n]: x[i] = cap * tanh(x[i] / cap) (Gemma's final logit softcap).
template <class T>
void softcap(T* x, std::size_t n, same<T> cap) noexcept {
    for (std::size_t i = 0; i < n; ++i) x[i] = cap * std::tanh(x[i] / cap);
}

// y[n] = softcap(x), in place over dy[n] -> dx: dx = dy (1 - (y / cap)^2).
template <class T>
void softcap_backward(const T* y, same<T>* dy, std::size_t n, same<T> cap) noexcept {
    for (std::size_t i = 0; i < n; ++i) {
        const T t = y[i] / cap;
        dy[i] = mul(dy[i], T(1) - mul(t, t));
    }
}

// Cross-entropy of logits[n] against class `target`: -log softmax(logits)[target]
// (log-sum-exp with the max taken out).
template <class T>
T cross_entropy(const T* logits, std::size_t n, std::size_t target) noexcept {
    T max = -std::numeric_limits<T>::infinity();
    for (std::size_t i = 0; i < n; ++i) max = logits[i] > max ? logits[i] : max;
    T sum = 0;
    for (std::size_t i = 0; i < n; ++i) sum += std::exp(logits[i] - max);
    return std::log(sum) + max - logits[target];
}

// The gradient of scale * cross_entropy(logits, target) (scale = 1 / tokens
// for a mean): d_logits[i] = scale (softmax(logits)[i] - [i == target]).
template <class T>
void cross_entropy_backward(const T* logits, std::size_t n, std::size_t target, same<T> scale,
                            same<T>* d_logits) noexcept {
    for (std::size_t i = 0; i < n; ++i) d_logits[i] = logits[i];
    softmax(d_logits, n);
    d_logits[target] -= T(1);
    for (std::size_t i = 0; i < n; ++i) d_logits[i] *= scale;
}

// ---- AdamW --------------------------------------------------------------------------------

// p[n], m[n], v[n] in place from the gradient g[n]: decoupled weight decay, then Adam,
//   p *= keep,  m = b1 m + (1 - b1) g,  v = b2 v + (1 - b2) g^2,
//   p -= step_size m / (sqrt(v) / bc2_sqrt + eps).
inline void adamw_update(float* p, float* m, float* v, const float* g, std::size_t n,
                         const adamw_constants& k) noexcept {
    for (std::size_t i = 0; i < n; ++i) {
        p[i] = mul(p[i], k.keep);
        m[i] = mul(m[i], k.b1) + mul(1.0f - k.b1, g[i]);
        v[i] = mul(v[i], k.b2) + mul(mul(1.0f - k.b2, g[i]), g[i]);
        p[i] -= mul(k.step_size, m[i] / (std::sqrt(v[i]) / k.bc2_sqrt + k.eps));
    }
}

// ---- linear and embedding -----------------------------------------------------------------

// x[tokens, in], w[out, in] -> y[tokens, out] = x w^T: y[t, o] = w[o] . x[t]
// (as the float GEMM kernels compute it, without bias).
template <class T>
void linear(const T* x, const same<T>* w, same<T>* y, std::size_t tokens, std::size_t out, std::size_t in) noexcept {
    for (std::size_t t = 0; t < tokens; ++t)
        for (std::size_t o = 0; o < out; ++o) y[t * out + o] = dot(w + o * in, x + t * in, in);
}

// dy[tokens, out] -> dx[tokens, in] = dy w: dx[t, i] = sum_o dy[t, o] w[o, i].
template <class T>
void linear_backward_input(const T* dy, const same<T>* w, same<T>* dx, std::size_t tokens, std::size_t out,
                           std::size_t in) noexcept {
    for (std::size_t t = 0; t < tokens; ++t) {
        T* row = dx + t * in;
        for (std::size_t i = 0; i < in; ++i) row[i] = 0;
        for (std::size_t o = 0; o < out; ++o)
            for (std::size_t i = 0; i < in; ++i) row[i] += mul(dy[t * out + o], w[o * in + i]);
    }
}

// dw[out, in] += dy^T x: dw[o, i] += sum_t dy[t, o] x[t, i].
template <class T>
void linear_backward_weight(const T* dy, const same<T>* x, same<T>* dw, std::size_t tokens, std::size_t out,
                            std::size_t in) noexcept {
    for (std::size_t t = 0; t < tokens; ++t)
        for (std::size_t o = 0; o < out; ++o)
            for (std::size_t i = 0; i < in; ++i) dw[o * in + i] += mul(dy[t * out + o], x[t * in + i]);
}

// Rows of table[vocab, dim] -> y[tokens, dim]: y[t] = table[ids[t]] (ids < vocab).
template <class T>
void embedding(const T* table, const std::size_t* ids, same<T>* y, std::size_t tokens, std::size_t dim) noexcept {
    for (std::size_t t = 0; t < tokens; ++t)
        for (std::size_t i = 0; i < dim; ++i) y[t * dim + i] = table[ids[t] * dim + i];
}

// d_table[vocab, dim] += scatter of dy[tokens, dim]: d_table[ids[t]] += dy[t]
// (a token seen twice adds twice).
template <class T>
void embedding_backward(const T* dy, const std::size_t* ids, same<T>* d_table, std::size_t tokens,
                        std::size_t dim) noexcept {
    for (std::size_t t = 0; t < tokens; ++t)
        for (std::size_t i = 0; i < dim; ++i) d_table[ids[t] * dim + i] += dy[t * dim + i];
}

// ---- vector updates -----------------------------------------------------------------------

// y[i] += a * x[i].
template <class T>
void axpy(same<T> a, const T* x, same<T>* y, std::size_t n) noexcept {
    for (std::size_t i = 0; i < n; ++i) y[i] += mul(a, x[i]);
}

// x[i] *= a.
template <class T>
void scale(same<T> a, T* x, std::size_t n) noexcept {
    for (std::size_t i = 0; i < n; ++i) x[i] *= a;
}

} // namespace kernels::reference
QTENSOR_END_NAMESPACE
