// qtensor/kernels/attention.hpp: causal, optionally sliding-window attention
// with grouped KV heads over one whole sequence, forward and backward, in
// float32 on the kernels: the functions of reference/attention.hpp (shapes,
// masks and formulas there), written as matrix products.
//
// Per query head h reading KV head g, with q_h [T, d] a strided view of q:
//   forward   s = scale q_h k_g^T [T, T], masked, softmax by rows -> p;  out_h = p v_g
//   backward  dv_g += p^T dout_h;  dp = dout_h v_g^T;  ds = p (dp - rowsum(p dp))
//             dq_h = scale ds k_g;  dk_g += scale ds^T q_h
// Each product is kernels::sgemm on one thread; the KV heads are tasks of
// the executor (the query heads of a group add into the same dk_g, dv_g, so
// a group is one task), which keeps results independent of the threads. The
// probabilities are recomputed in the backward, as the reference does: T^2
// floats per task instead of T^2 per head kept from the forward.
#pragma once

#include <cstddef>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/kernels/executor.hpp"
#include "qtensor/kernels/float_ops.hpp"
#include "qtensor/kernels/reference/attention.hpp"
#include "qtensor/kernels/sgemm.hpp"

QTENSOR_KERNELS_BEGIN_NAMESPACE

using reference::attention_shape;

namespace detail {

// Query head h as [T, d] inside x[T, heads, d], and KV head g likewise.
template <class F>
matrix_ref<F> head_of(F* x, std::size_t heads, std::size_t h, const attention_shape& a) {
    return {{x + h * a.d, (a.tokens - 1) * heads * a.d + a.d}, a.tokens, a.d, heads * a.d};
}

inline void check_attention(const attention_shape& a) {
    if (a.tokens == 0 || a.d == 0 || a.kv_heads == 0 || a.heads % a.kv_heads != 0)
        throw error("kernels::attention: " + std::to_string(a.heads) + " query heads over " +
                    std::to_string(a.kv_heads) + " KV heads of " + std::to_string(a.d) + " for " +
                    std::to_string(a.tokens) + " tokens");
}

// p[T, T] = softmax by rows of scale q_h k_g^T over the keys each query sees; 0 elsewhere.
inline void attention_probabilities(const float* q, const float* k, std::size_t h, std::size_t g,
                                    const attention_shape& a, float scale, std::vector<float>& p, target t) {
    const std::size_t n = a.tokens;
    p.resize(n * n);
    sgemm(scale, head_of(q, a.heads, h, a), transposed(head_of(k, a.kv_heads, g, a)), 0.0f, {{p}, n, n}, {}, t);
    for (std::size_t i = 0; i < n; ++i) {
        float* row = p.data() + i * n;
        const std::size_t lo = a.first_key(i);
        for (std::size_t u = 0; u < lo; ++u) row[u] = 0.0f;
        unchecked::softmax(row + lo, i + 1 - lo, t);
        for (std::size_t u = i + 1; u < n; ++u) row[u] = 0.0f;
    }
}

} // namespace detail

// q[T, H, d], k[T, K, d], v[T, K, d] -> out[T, H, d].
inline void attention(const float* q, const float* k, const float* v, float* out, const attention_shape& a,
                      float scale, const executor& ex = {}, target t = target::best()) {
    detail::check_attention(a);
    ex.run(a.kv_heads, [&](std::size_t g) {
        std::vector<float> p;
        for (std::size_t h = g * a.group(); h < (g + 1) * a.group(); ++h) {
            detail::attention_probabilities(q, k, h, g, a, scale, p, t);
            sgemm(1.0f, {{p}, a.tokens, a.tokens}, detail::head_of(v, a.kv_heads, g, a), 0.0f,
                  detail::head_of(out, a.heads, h, a), {}, t);
        }
    });
}

// d_out[T, H, d] -> dq[T, H, d] (written), dk[T, K, d] and dv[T, K, d] (added to).
inline void attention_backward(const float* q, const float* k, const float* v, const float* d_out, float* dq,
                               float* dk, float* dv, const attention_shape& a, float scale, const executor& ex = {},
                               target t = target::best()) {
    detail::check_attention(a);
    const std::size_t n = a.tokens;
    ex.run(a.kv_heads, [&](std::size_t g) {
        std::vector<float> p, dp(n * n);
        for (std::size_t h = g * a.group(); h < (g + 1) * a.group(); ++h) {
            detail::attention_probabilities(q, k, h, g, a, scale, p, t);
            const auto dout_h = detail::head_of(d_out, a.heads, h, a);
            sgemm(1.0f, transposed(matrix_ref<const float>{{p}, n, n}), dout_h, 1.0f,
                  detail::head_of(dv, a.kv_heads, g, a), {}, t);
            sgemm(1.0f, dout_h, transposed(detail::head_of(v, a.kv_heads, g, a)), 0.0f, {{dp}, n, n}, {}, t);
            for (std::size_t i = 0; i < n; ++i) { // dp becomes ds, row by row over the keys seen
                const std::size_t lo = a.first_key(i);
                float* ds = dp.data() + i * n;
                reference::softmax_backward(p.data() + i * n + lo, ds + lo, ds + lo, i + 1 - lo);
                for (std::size_t u = 0; u < lo; ++u) ds[u] = 0.0f;
                for (std::size_t u = i + 1; u < n; ++u) ds[u] = 0.0f;
            }
            const matrix_ref<const float> ds{{dp}, n, n};
            sgemm(scale, ds, detail::head_of(k, a.kv_heads, g, a), 0.0f, detail::head_of(dq, a.heads, h, a), {}, t);
            sgemm(scale, transposed(ds), detail::head_of(q, a.heads, h, a), 1.0f,
                  detail::head_of(dk, a.kv_heads, g, a), {}, t);
        }
    });
}

QTENSOR_KERNELS_END_NAMESPACE
