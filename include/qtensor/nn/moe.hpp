// qtensor/nn/moe.hpp: a mixture-of-experts feed-forward block as Gemma 4
// (26B-A4B) has it: a softmax router picks the top k experts per token, their
// weights are renormalised to sum 1 and scaled per expert, and the chosen
// GeGLU experts' outputs are summed with those weights.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/kernels/executor.hpp"
#include "qtensor/nn/linear.hpp"
#include "qtensor/nn/mixed_weight.hpp"
#include "qtensor/nn/ops.hpp"
#include "qtensor/scheme/float.hpp"
#include "qtensor/scheme/scheme.hpp"
#include "qtensor/tensor/tensor_view.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace nn {

struct moe_router {
    tensor_view<const f32, 2> proj;          // [E, D]
    std::span<const float> scale;            // [D]
    std::span<const float> per_expert_scale; // [E]
    std::size_t top_k = 0;
    float eps = 1e-6f;
};

// h[T, D] -> experts[T, k], weights[T, k]. Router input
//   z = rmsnorm_noscale(h) * scale * D^-1/2,  p = softmax(proj z),
// the k largest p (lower index first on ties), divided by their sum, times
// per_expert_scale of their expert.
inline void moe_route(const moe_router& r, std::span<const float> h, std::span<std::size_t> experts,
                      std::span<float> weights, const kernels::executor& ex = {}) {
    const std::size_t dim = r.proj.cols(), count = r.proj.num_rows(), k = r.top_k;
    const std::size_t tokens = detail::rows_of("moe_route", h.size(), dim);
    detail::check_size("moe_route", "scale", r.scale.size(), dim);
    detail::check_size("moe_route", "per_expert_scale", r.per_expert_scale.size(), count);
    detail::check_size("moe_route", "experts", experts.size(), tokens * k);
    detail::check_size("moe_route", "weights", weights.size(), tokens * k);
    if (k == 0 || k > count)
        throw error("nn::moe_route: top_k " + std::to_string(k) + " for " + std::to_string(count) +
                    " experts");

    std::vector<float> z(h.size()); // [T, D]
    rmsnorm(h, {}, z, dim, r.eps);
    const float root = 1.0f / std::sqrt(static_cast<float>(dim));
    for (std::size_t t = 0; t < tokens; ++t) {
        const std::span<float> row = std::span<float>(z).subspan(t * dim, dim);
        mul(r.scale, row);
        scale(row, root);
    }
    std::vector<float> p(tokens * count); // [T, E]
    linear(r.proj, std::span<const float>(z), std::span<float>(p), ex);

    std::vector<std::size_t> order(count);
    for (std::size_t t = 0; t < tokens; ++t) {
        const std::span<float> pt = std::span<float>(p).subspan(t * count, count);
        softmax(pt);
        std::iota(order.begin(), order.end(), std::size_t{0});
        std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
                          [&](std::size_t a, std::size_t b) { return pt[a] > pt[b] || (pt[a] == pt[b] && a < b); });
        float sum = 0.0f;
        for (std::size_t j = 0; j < k; ++j) sum += pt[order[j]];
        for (std::size_t j = 0; j < k; ++j) {
            experts[t * k + j] = order[j];
            weights[t * k + j] = pt[order[j]] / sum * r.per_expert_scale[order[j]];
        }
    }
}

// S: a scheme, or as_stored (mixed_weight.hpp).
template <class S>
    requires scheme<S> || std::same_as<S, as_stored>
struct moe_experts {
    weight_view_t<S> gate_up; // [E * 2I, D]: expert e's gate rows e*2I + [0, I), up rows e*2I + [I, 2I)
    weight_view_t<S> down;    // [E * D, I]: expert e's rows e*D + [0, D)
};

// x[T, D], experts[T, k], weights[T, k] -> y[T, D] = sum_j weights[t, j] *
// Expert_{experts[t, j]}(x[t]), Expert_e(x) = down_e(gelu_tanh(gate_e x) * up_e x).
// Tokens are grouped by expert so each expert's weights are read once per call.
template <class S>
    requires scheme<S> || std::same_as<S, as_stored>
void moe_forward(const moe_experts<S>& w, std::span<const float> x, std::span<const std::size_t> experts,
                 std::span<const float> weights, std::span<float> y, const kernels::executor& ex = {}) {
    const std::size_t dim = w.gate_up.cols(), inner = w.down.cols();
    const std::size_t tokens = detail::rows_of("moe_forward", x.size(), dim);
    if (w.down.num_rows() % dim != 0 || w.gate_up.num_rows() != w.down.num_rows() / dim * 2 * inner)
        throw error("nn::moe_forward: expert weights gate_up [" + std::to_string(w.gate_up.num_rows()) +
                    ", " + std::to_string(dim) + "] and down [" + std::to_string(w.down.num_rows()) +
                    ", " + std::to_string(inner) + "] do not agree");
    const std::size_t count = w.down.num_rows() / dim;
    const std::size_t k = tokens == 0 ? 0 : detail::rows_of("moe_forward", experts.size(), tokens);
    detail::check_size("moe_forward", "weights", weights.size(), experts.size());
    detail::check_size("moe_forward", "y", y.size(), x.size());
    std::fill(y.begin(), y.end(), 0.0f);

    std::vector<float> xs, gu, act, out;
    for (std::size_t e = 0; e < count; ++e) {
        std::vector<std::size_t> picked; // flat indices t * k + j routed to e
        for (std::size_t i = 0; i < experts.size(); ++i)
            if (experts[i] == e) picked.push_back(i);
        if (picked.empty()) continue;
        const std::size_t n = picked.size();
        xs.resize(n * dim);
        for (std::size_t i = 0; i < n; ++i)
            std::copy_n(x.begin() + static_cast<std::ptrdiff_t>(picked[i] / k * dim), dim,
                        xs.begin() + static_cast<std::ptrdiff_t>(i * dim));
        gu.resize(n * 2 * inner); // [n, 2I]
        linear(w.gate_up.row_slice(e * 2 * inner, 2 * inner), std::span<const float>(xs),
               std::span<float>(gu), ex);
        act.resize(n * inner); // [n, I]
        for (std::size_t i = 0; i < n; ++i) {
            const std::span<const float> row = std::span<const float>(gu).subspan(i * 2 * inner, 2 * inner);
            geglu(row.first(inner), row.last(inner), std::span<float>(act).subspan(i * inner, inner));
        }
        out.resize(n * dim);
        linear(w.down.row_slice(e * dim, dim), std::span<const float>(act), std::span<float>(out), ex);
        for (std::size_t i = 0; i < n; ++i)
            axpy(weights[picked[i]], std::span<const float>(out).subspan(i * dim, dim),
                 y.subspan(picked[i] / k * dim, dim));
    }
}

} // namespace nn
QTENSOR_END_NAMESPACE
