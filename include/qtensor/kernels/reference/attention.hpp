// qtensor/kernels/reference/attention.hpp: scalar reference of causal,
// optionally sliding-window attention with grouped KV heads over a whole
// sequence, forward and backward: what a training step computes (inference
// reads a KV cache through nn/attention.hpp instead).
//
// Shapes: T tokens at positions 0 .. T-1, H query heads, K KV heads (H a
// multiple of K; query head h reads KV head h / (H / K)), head dim d.
//   q[T, H, d], k[T, K, d], v[T, K, d] -> out[T, H, d]
// Query t sees the keys u <= t, and with a window W > 0 only t - W < u <= t.
//   s[t, h, u] = scale q[t, h] . k[u, g]     p = softmax over the keys seen
//   out[t, h]  = sum_u p[t, h, u] v[u, g]
// Templates over the float type, as reference/float_ops.hpp.
#pragma once

#include <cstddef>
#include <vector>

#include "qtensor/core/config.hpp"
#include "qtensor/kernels/reference/float_ops.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace kernels::reference {

struct attention_shape {
    std::size_t tokens, heads, kv_heads, d;
    std::size_t window = 0; // 0: causal only
    // The first key query t sees.
    std::size_t first_key(std::size_t t) const noexcept { return window != 0 && t + 1 > window ? t + 1 - window : 0; }
    std::size_t group() const noexcept { return heads / kv_heads; }
};

// p[T, H, T]: the attention probabilities, 0 for keys not seen.
template <class T>
std::vector<T> attention_probabilities(const T* q, const same<T>* k, const attention_shape& a, same<T> scale) {
    const std::size_t n = a.tokens;
    std::vector<T> p(n * a.heads * n, T(0));
    for (std::size_t t = 0; t < n; ++t)
        for (std::size_t h = 0; h < a.heads; ++h) {
            const std::size_t g = h / a.group(), lo = a.first_key(t);
            T* row = p.data() + (t * a.heads + h) * n;
            for (std::size_t u = lo; u <= t; ++u)
                row[u] = mul(scale, dot(q + (t * a.heads + h) * a.d, k + (u * a.kv_heads + g) * a.d, a.d));
            softmax(row + lo, t + 1 - lo);
        }
    return p;
}

template <class T>
void attention(const T* q, const same<T>* k, const same<T>* v, same<T>* out, const attention_shape& a,
               same<T> scale) {
    const std::size_t n = a.tokens;
    const std::vector<T> p = attention_probabilities(q, k, a, scale);
    for (std::size_t t = 0; t < n; ++t)
        for (std::size_t h = 0; h < a.heads; ++h) {
            const std::size_t g = h / a.group();
            T* o = out + (t * a.heads + h) * a.d;
            for (std::size_t i = 0; i < a.d; ++i) o[i] = 0;
            for (std::size_t u = a.first_key(t); u <= t; ++u)
                axpy(p[(t * a.heads + h) * n + u], v + (u * a.kv_heads + g) * a.d, o, a.d);
        }
}

// d_out[T, H, d] -> dq[T, H, d] (written), dk[T, K, d] and dv[T, K, d] (added
// to: a KV-shared layer adds its gradient to the layer that made k and v).
//   dv[u, g] += sum_t,h p[t, h, u] d_out[t, h]
//   dp[t, h, u] = d_out[t, h] . v[u, g],   ds = softmax_backward(p, dp)
//   dq[t, h] = scale sum_u ds[t, h, u] k[u, g]
//   dk[u, g] += scale sum_t,h ds[t, h, u] q[t, h]
template <class T>
void attention_backward(const T* q, const same<T>* k, const same<T>* v, const same<T>* d_out, same<T>* dq,
                        same<T>* dk, same<T>* dv, const attention_shape& a, same<T> scale) {
    const std::size_t n = a.tokens;
    const std::vector<T> p = attention_probabilities(q, k, a, scale);
    std::vector<T> dp(n), ds(n);
    for (std::size_t t = 0; t < n; ++t)
        for (std::size_t h = 0; h < a.heads; ++h) {
            const std::size_t g = h / a.group(), lo = a.first_key(t), seen = t + 1 - lo;
            const T* pr = p.data() + (t * a.heads + h) * n + lo;
            const T* dout = d_out + (t * a.heads + h) * a.d;
            for (std::size_t u = lo; u <= t; ++u) {
                axpy(pr[u - lo], dout, dv + (u * a.kv_heads + g) * a.d, a.d);
                dp[u - lo] = dot(dout, v + (u * a.kv_heads + g) * a.d, a.d);
            }
            softmax_backward(pr, dp.data(), ds.data(), seen);
            T* dqr = dq + (t * a.heads + h) * a.d;
            for (std::size_t i = 0; i < a.d; ++i) dqr[i] = 0;
            for (std::size_t u = lo; u <= t; ++u) {
                const T w = mul(scale, ds[u - lo]);
                axpy(w, k + (u * a.kv_heads + g) * a.d, dqr, a.d);
                axpy(w, q + (t * a.heads + h) * a.d, dk + (u * a.kv_heads + g) * a.d, a.d);
            }
        }
}

} // namespace kernels::reference
QTENSOR_END_NAMESPACE
