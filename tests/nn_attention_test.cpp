// nn::attention, the inference op (keys and values read from kv_rows, here
// the rows of the call itself in f32), against the training reference
// (kernels/reference/attention.hpp) computed in double: both implement the
// same causal, sliding-window, grouped-query attention, and the reference's
// backward is checked against finite differences of that very forward
// (reference_backward_test.cpp).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <random>
#include <span>
#include <vector>

#include "qtensor/kernels/reference/attention.hpp"
#include "qtensor/nn/attention.hpp"
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
