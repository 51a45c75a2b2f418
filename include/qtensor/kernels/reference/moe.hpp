// qtensor/kernels/reference/moe.hpp: scalar reference of Gemma 4's
// mixture-of-experts block for one token, forward and backward, on float
// weights (what training computes; inference runs nn/moe.hpp).
//
// Shapes: D model dim, E experts, k chosen per token, I expert inner dim.
//   router: proj[E, D], scale[D], per_expert_scale[E]
//   experts: gate_up[E, 2I, D] (rows 0..I-1 gate, I..2I-1 up), down[E, D, I]
// Forward, router input h[D] and expert input x[D] -> y[D]:
//   z  = rmsnorm_noscale(h) * scale * D^-1/2,   p = softmax(proj z)
//   e_1..e_k = the k largest p (lower index first on ties)
//   w_j = p[e_j] / sum_i p[e_i] * per_expert_scale[e_j]
//   y  = sum_j w_j Expert_{e_j}(x),   Expert_e(x) = down_e(gelu(gate_e x) * up_e x)
// The backward treats the choice of experts as fixed (it is piecewise
// constant) and passes gradient through the routing weights into the router.
// Templates over the float type, as reference/float_ops.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <numeric>
#include <vector>

#include "qtensor/core/config.hpp"
#include "qtensor/kernels/reference/float_ops.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace kernels::reference {

struct moe_shape {
    std::size_t dim, experts, top_k, inner;
    double eps = 1e-6; // the router's RMSNorm
};

template <class T>
struct moe_weights {
    const T* proj;             // [E, D]
    const T* scale;            // [D]
    const T* per_expert_scale; // [E]
    const T* gate_up;          // [E, 2I, D]
    const T* down;             // [E, D, I]
};

// Gradients of the same shapes, added to.
template <class T>
struct moe_grads {
    T* proj;
    T* scale;
    T* per_expert_scale;
    T* gate_up;
    T* down;
};

// What the forward keeps for the backward.
template <class T>
struct moe_saved {
    std::vector<T> normed, z, p;      // [D], [D], [E]
    std::vector<std::size_t> chosen;  // [k]
    std::vector<T> weight;            // [k]: w_j
    T sum = 0;                        // sum of p over the chosen
    std::vector<T> gate_up, act, out; // per chosen expert: [k, 2I], [k, I], [k, D]
};

template <class T>
moe_saved<T> moe_forward(const moe_weights<T>& w, const moe_shape& s, const T* h, const T* x, T* y) {
    const std::size_t D = s.dim, E = s.experts, I = s.inner;
    moe_saved<T> m;
    m.normed.resize(D), m.z.resize(D), m.p.resize(E);
    rmsnorm(h, nullptr, m.normed.data(), D, static_cast<T>(s.eps));
    const T root = T(1) / std::sqrt(static_cast<T>(D));
    for (std::size_t i = 0; i < D; ++i) m.z[i] = mul(mul(m.normed[i], w.scale[i]), root);
    linear(m.z.data(), w.proj, m.p.data(), 1, E, D);
    softmax(m.p.data(), E);

    std::vector<std::size_t> order(E);
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return m.p[a] > m.p[b]; });
    m.chosen.assign(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(s.top_k));
    for (const std::size_t e : m.chosen) m.sum += m.p[e];

    m.gate_up.resize(s.top_k * 2 * I), m.act.resize(s.top_k * I), m.out.resize(s.top_k * D), m.weight.resize(s.top_k);
    for (std::size_t i = 0; i < D; ++i) y[i] = 0;
    for (std::size_t j = 0; j < s.top_k; ++j) {
        const std::size_t e = m.chosen[j];
        m.weight[j] = m.p[e] / m.sum * w.per_expert_scale[e];
        T* gu = m.gate_up.data() + j * 2 * I;
        linear(x, w.gate_up + e * 2 * I * D, gu, 1, 2 * I, D);
        geglu(gu, gu + I, m.act.data() + j * I, I);
        linear(m.act.data() + j * I, w.down + e * D * I, m.out.data() + j * D, 1, D, I);
        axpy(m.weight[j], m.out.data() + j * D, y, D);
    }
    return m;
}

// dy[D] -> dh[D] and dx[D] (written), weight gradients (added to).
template <class T>
void moe_backward(const moe_weights<T>& w, const moe_shape& s, const moe_saved<T>& m, const T* h, const T* x,
                  const T* dy, T* dh, T* dx, const moe_grads<T>& g) {
    const std::size_t D = s.dim, E = s.experts, I = s.inner;
    // Experts: y = sum_j w_j out_j.
    std::vector<T> d_weight(s.top_k), d_out(D), d_act(I), d_gu(2 * I), dx_j(D);
    for (std::size_t i = 0; i < D; ++i) dx[i] = 0;
    for (std::size_t j = 0; j < s.top_k; ++j) {
        const std::size_t e = m.chosen[j];
        d_weight[j] = dot(dy, m.out.data() + j * D, D);
        for (std::size_t i = 0; i < D; ++i) d_out[i] = mul(m.weight[j], dy[i]);
        // out = down_e act
        linear_backward_weight(d_out.data(), m.act.data() + j * I, g.down + e * D * I, 1, D, I);
        linear_backward_input(d_out.data(), w.down + e * D * I, d_act.data(), 1, D, I);
        // act = gelu(gate) * up
        const T* gu = m.gate_up.data() + j * 2 * I;
        geglu_backward(gu, gu + I, d_act.data(), d_gu.data(), d_gu.data() + I, I);
        // [gate; up] = gate_up_e x
        linear_backward_weight(d_gu.data(), x, g.gate_up + e * 2 * I * D, 1, 2 * I, D);
        linear_backward_input(d_gu.data(), w.gate_up + e * 2 * I * D, dx_j.data(), 1, 2 * I, D);
        axpy(T(1), dx_j.data(), dx, D);
    }
    // Routing weights: w_j = q_j * pes[e_j] with q_j = p[e_j] / sum. With
    // dq_j = dw_j pes[e_j]: dp[e_j] = (dq_j - sum_i dq_i q_i) / sum.
    std::vector<T> dp(E, T(0));
    T dq_q = 0;
    for (std::size_t j = 0; j < s.top_k; ++j) {
        const std::size_t e = m.chosen[j];
        const T q = m.p[e] / m.sum;
        g.per_expert_scale[e] += mul(d_weight[j], q);
        dq_q += mul(mul(d_weight[j], w.per_expert_scale[e]), q);
    }
    for (std::size_t j = 0; j < s.top_k; ++j) {
        const std::size_t e = m.chosen[j];
        dp[e] = (mul(d_weight[j], w.per_expert_scale[e]) - dq_q) / m.sum;
    }
    // p = softmax(logits), logits = proj z.
    std::vector<T> d_logits(E), dz(D), d_normed(D);
    softmax_backward(m.p.data(), dp.data(), d_logits.data(), E);
    linear_backward_weight(d_logits.data(), m.z.data(), g.proj, 1, E, D);
    linear_backward_input(d_logits.data(), w.proj, dz.data(), 1, E, D);
    // z = normed * scale * D^-1/2, normed = rmsnorm_noscale(h).
    const T root = T(1) / std::sqrt(static_cast<T>(D));
    for (std::size_t i = 0; i < D; ++i) {
        g.scale[i] += mul(mul(dz[i], m.normed[i]), root);
        d_normed[i] = mul(mul(dz[i], w.scale[i]), root);
    }
    rmsnorm_backward(h, nullptr, d_normed.data(), dh, nullptr, D, static_cast<T>(s.eps));
}

} // namespace kernels::reference
QTENSOR_END_NAMESPACE
