// The inference ops against the training references computed in double:
// nn::attention (keys and values read from kv_rows, here the rows of the call
// itself in f32) against kernels/reference/attention.hpp, and nn::moe_route +
// nn::moe_forward against kernels/reference/moe.hpp. Each pair implements the
// same function, and the references' backward passes are checked against
// finite differences of these very forwards (reference_backward_test.cpp).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <random>
#include <span>
#include <vector>

#include "qtensor/kernels/reference/attention.hpp"
#include "qtensor/kernels/reference/moe.hpp"
#include "qtensor/nn/attention.hpp"
#include "qtensor/nn/moe.hpp"
#include "qtensor/scheme/float.hpp"

using namespace qtensor;

TEST_CASE("nn::attention agrees with the training reference: causal and sliding window, grouped KV heads") {
    std::mt19937 rng(31);
    std::uniform_real_distribution<float> u(-2.0f, 2.0f);
    for (const std::size_t window : {std::size_t{0}, std::size_t{3}}) {
        const kernels::reference::attention_shape a{.tokens = 9, .heads = 6, .kv_heads = 2, .d = 8, .window = window};
        const float scale = 0.35f;
        std::vector<float> q(a.tokens * a.heads * a.d), k(a.tokens * a.kv_heads * a.d), v(k.size());
        for (auto* x : {&q, &k, &v})
            for (float& e : *x) e = u(rng);

        std::vector<std::size_t> pos(a.tokens);
        for (std::size_t t = 0; t < a.tokens; ++t) pos[t] = t;
        const extents<3> shape{a.tokens, a.kv_heads, a.d};
        const nn::kv_rows<f32> rows{
            .k = {std::as_bytes(std::span<const float>(k)), shape},
            .v = {std::as_bytes(std::span<const float>(v)), shape},
            .begin = 0, .end = a.tokens, .base = 0};
        std::vector<float> out(q.size());
        nn::attention<f32>(q, pos, a.heads, std::span(&rows, 1), window, scale, out);

        const std::vector<double> qd(q.begin(), q.end()), kd(k.begin(), k.end()), vd(v.begin(), v.end());
        std::vector<double> want(q.size());
        kernels::reference::attention(qd.data(), kd.data(), vd.data(), want.data(), a, double{scale});
        double worst = 0.0;
        for (std::size_t i = 0; i < out.size(); ++i) worst = std::max(worst, std::fabs(out[i] - want[i]));
        INFO("window " << window << ": max |nn::attention - reference| = " << worst);
        CHECK(worst <= 2e-6); // float32 against double; measured 2.6e-7 (values below 2)
    }
}

TEST_CASE("nn::moe_route and nn::moe_forward agree with the training reference") {
    std::mt19937 rng(32);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    const kernels::reference::moe_shape s{.dim = 32, .experts = 6, .top_k = 2, .inner = 32};
    const std::size_t D = s.dim, E = s.experts, I = s.inner, tokens = 4;
    std::vector<float> proj(E * D), scale(D), pes(E), gate_up(E * 2 * I * D), down(E * D * I), h(tokens * D),
        x(tokens * D);
    for (auto* v : {&proj, &scale, &pes, &gate_up, &down, &h, &x})
        for (float& e : *v) e = u(rng);
    const nn::moe_router router{.proj = {std::as_bytes(std::span<const float>(proj)), extents<2>{E, D}},
                                .scale = scale, .per_expert_scale = pes, .top_k = s.top_k, .eps = 1e-6f};
    const nn::moe_experts<f32> experts{
        .gate_up = {std::as_bytes(std::span<const float>(gate_up)), extents<2>{E * 2 * I, D}},
        .down = {std::as_bytes(std::span<const float>(down)), extents<2>{E * D, I}}};
    std::vector<std::size_t> chosen(tokens * s.top_k);
    std::vector<float> weights(tokens * s.top_k), y(tokens * D);
    nn::moe_route(router, h, chosen, weights);
    nn::moe_forward(experts, x, chosen, weights, y);

    const auto wide = [](const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); };
    const auto proj_d = wide(proj), scale_d = wide(scale), pes_d = wide(pes), gu_d = wide(gate_up),
               down_d = wide(down), h_d = wide(h), x_d = wide(x);
    const kernels::reference::moe_weights<double> w{proj_d.data(), scale_d.data(), pes_d.data(), gu_d.data(),
                                                    down_d.data()};
    double worst = 0.0, largest = 0.0;
    for (std::size_t t = 0; t < tokens; ++t) {
        std::vector<double> want(D);
        const auto m = kernels::reference::moe_forward(w, s, h_d.data() + t * D, x_d.data() + t * D, want.data());
        for (std::size_t j = 0; j < s.top_k; ++j) CHECK(chosen[t * s.top_k + j] == m.chosen[j]);
        for (std::size_t i = 0; i < D; ++i) {
            worst = std::max(worst, std::fabs(y[t * D + i] - want[i]));
            largest = std::max(largest, std::fabs(want[i]));
        }
    }
    INFO("max |nn::moe - reference| = " << worst << " for outputs up to " << largest);
    CHECK(worst <= 1e-6 * largest); // float32 against double; measured 1.6e-7 of the largest
}
