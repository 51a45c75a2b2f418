// The backward passes of the float ops (kernels/reference/float_ops.hpp)
// against central finite differences of their forward passes, in double
// precision: for a random upstream gradient dy, dL/dx of L(x) = dy . f(x)
// must match (L(x + h e_j) - L(x - h e_j)) / 2h at every input j.
//
// With h = 1e-5 the difference quotient is within about 1e-9 of the
// derivative for these smooth ops; a wrong term in a backward formula is off
// by the size of the gradient itself. The tolerance, 1e-7 of the largest
// gradient, lies between the two.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "doctest/doctest.h"
#include "qtensor/kernels/reference/attention.hpp"
#include "qtensor/kernels/reference/float_ops.hpp"
#include "qtensor/kernels/reference/moe.hpp"

namespace ref = qtensor::kernels::reference;
using vec = std::vector<double>;

namespace {

vec random_vec(std::size_t n, std::mt19937& rng, double lo = -2.0, double hi = 2.0) {
    std::uniform_real_distribution<double> u(lo, hi);
    vec v(n);
    for (auto& x : v) x = u(rng);
    return v;
}

double dot(const vec& a, const vec& b) {
    double s = 0.0;
    for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
    return s;
}

// d/dx_j of dy . f(x), by central differences, for every j.
vec numeric_grad(vec x, const vec& dy, const std::function<vec(const vec&)>& f) {
    vec g(x.size());
    for (std::size_t j = 0; j < x.size(); ++j) {
        const double h = 1e-5 * std::max(1.0, std::fabs(x[j]));
        const double saved = x[j];
        x[j] = saved + h;
        const double up = dot(dy, f(x));
        x[j] = saved - h;
        const double down = dot(dy, f(x));
        x[j] = saved;
        g[j] = (up - down) / (2 * h);
    }
    return g;
}

void check_grad(const vec& analytic, const vec& numeric, const std::string& what) {
    REQUIRE(analytic.size() == numeric.size());
    double scale = 0.0, worst = 0.0;
    for (std::size_t i = 0; i < numeric.size(); ++i) {
        scale = std::max(scale, std::fabs(numeric[i]));
        worst = std::max(worst, std::fabs(analytic[i] - numeric[i]));
    }
    INFO(what << ": max |analytic - numeric| = " << worst << ", max |gradient| = " << scale);
    CHECK(scale > 0.0);
    CHECK(worst <= 1e-7 * scale);
}

} // namespace

TEST_CASE("backward: rmsnorm, with and without weight, matches finite differences in x and w") {
    std::mt19937 rng(1);
    for (const std::size_t n : {1u, 7u, 64u}) {
        const double eps = n == 1 ? 0.1 : 1e-6; // one element: only eps keeps the gradient from vanishing
        const vec x = random_vec(n, rng), w = random_vec(n, rng), dy = random_vec(n, rng);
        for (const bool weighted : {true, false}) {
            const double* wp = weighted ? w.data() : nullptr;
            vec dx(n), dw(n, 0.0);
            ref::rmsnorm_backward(x.data(), wp, dy.data(), dx.data(), dw.data(), n, eps);
            const auto f_x = [&](const vec& xv) {
                vec y(n);
                ref::rmsnorm(xv.data(), wp, y.data(), n, eps);
                return y;
            };
            check_grad(dx, numeric_grad(x, dy, f_x), "rmsnorm dx, n=" + std::to_string(n));
            if (!weighted) continue;
            const auto f_w = [&](const vec& wv) {
                vec y(n);
                ref::rmsnorm(x.data(), wv.data(), y.data(), n, eps);
                return y;
            };
            check_grad(dw, numeric_grad(w, dy, f_w), "rmsnorm dw, n=" + std::to_string(n));
            // dw accumulates: a second row adds its own gradient.
            vec dw2 = dw, dx2(n);
            ref::rmsnorm_backward(x.data(), wp, dy.data(), dx2.data(), dw2.data(), n, eps);
            for (std::size_t i = 0; i < n; ++i) CHECK(dw2[i] == doctest::Approx(2 * dw[i]).epsilon(1e-12));
        }
    }
}

TEST_CASE("backward: softmax matches finite differences, masked entries included") {
    std::mt19937 rng(2);
    for (const std::size_t n : {1u, 5u, 33u}) {
        vec x = random_vec(n, rng, -4.0, 4.0);
        const vec dy = random_vec(n, rng);
        vec p = x;
        ref::softmax(p.data(), n);
        vec dx(n);
        ref::softmax_backward(p.data(), dy.data(), dx.data(), n);
        const auto f = [&](const vec& xv) {
            vec y = xv;
            ref::softmax(y.data(), n);
            return y;
        };
        if (n > 1) check_grad(dx, numeric_grad(x, dy, f), "softmax dx, n=" + std::to_string(n));
        else CHECK(dx[0] == 0.0); // one entry: p = 1 whatever x is
    }
}

TEST_CASE("backward: GELU (tanh) derivative and GeGLU match finite differences") {
    std::mt19937 rng(3);
    const std::size_t n = 41;
    const vec gate = random_vec(n, rng, -5.0, 5.0), up = random_vec(n, rng), dy = random_vec(n, rng);
    vec d_gelu(n);
    for (std::size_t i = 0; i < n; ++i) d_gelu[i] = dy[i] * ref::gelu_tanh_derivative(gate[i]);
    const auto f_gelu = [&](const vec& g) {
        vec y(n);
        ref::gelu_tanh(g.data(), y.data(), n);
        return y;
    };
    check_grad(d_gelu, numeric_grad(gate, dy, f_gelu), "gelu_tanh");

    vec d_gate(n), d_up(n);
    ref::geglu_backward(gate.data(), up.data(), dy.data(), d_gate.data(), d_up.data(), n);
    const auto f_gate = [&](const vec& g) {
        vec y(n);
        ref::geglu(g.data(), up.data(), y.data(), n);
        return y;
    };
    const auto f_up = [&](const vec& u) {
        vec y(n);
        ref::geglu(gate.data(), u.data(), y.data(), n);
        return y;
    };
    check_grad(d_gate, numeric_grad(gate, dy, f_gate), "geglu d_gate");
    check_grad(d_up, numeric_grad(up, dy, f_up), "geglu d_up");
}

TEST_CASE("backward: RoPE matches finite differences, zero frequencies (partial rotary) included") {
    std::mt19937 rng(4);
    const std::size_t d = 16;
    vec freq = random_vec(d / 2, rng, 0.0, 1.0);
    freq[5] = freq[6] = freq[7] = 0.0; // proportional RoPE: the last pairs do not rotate
    for (const double pos : {0.0, 3.0, 1000.0}) {
        const vec x = random_vec(d, rng), dy = random_vec(d, rng);
        vec dx = dy;
        ref::rope_backward(dx.data(), freq.data(), d, pos);
        const auto f = [&](const vec& xv) {
            vec y = xv;
            ref::rope(y.data(), freq.data(), d, pos);
            return y;
        };
        check_grad(dx, numeric_grad(x, dy, f), "rope at pos " + std::to_string(pos));
    }
}

TEST_CASE("backward: softcap matches finite differences") {
    std::mt19937 rng(5);
    const std::size_t n = 29;
    const double cap = 3.0;
    const vec x = random_vec(n, rng, -10.0, 10.0), dy = random_vec(n, rng);
    vec y = x;
    ref::softcap(y.data(), n, cap);
    vec dx = dy;
    ref::softcap_backward(y.data(), dx.data(), n, cap);
    const auto f = [&](const vec& xv) {
        vec out = xv;
        ref::softcap(out.data(), n, cap);
        return out;
    };
    check_grad(dx, numeric_grad(x, dy, f), "softcap");
}

TEST_CASE("backward: cross-entropy matches finite differences and -log p of the target") {
    std::mt19937 rng(6);
    const std::size_t n = 37;
    const vec logits = random_vec(n, rng, -6.0, 6.0);
    for (const std::size_t target : {std::size_t{0}, std::size_t{17}, n - 1}) {
        const double scale = 0.25; // a mean over 4 tokens
        vec d(n);
        ref::cross_entropy_backward(logits.data(), n, target, scale, d.data());
        // One output, L = scale * CE: dy = [1].
        const auto f = [&](const vec& l) { return vec{scale * ref::cross_entropy(l.data(), n, target)}; };
        check_grad(d, numeric_grad(logits, vec{1.0}, f), "cross_entropy, target " + std::to_string(target));
        vec p = logits;
        ref::softmax(p.data(), n);
        CHECK(ref::cross_entropy(logits.data(), n, target) == doctest::Approx(-std::log(p[target])).epsilon(1e-12));
    }
}

TEST_CASE("backward: linear matches finite differences in x and w, and dw accumulates over tokens") {
    std::mt19937 rng(7);
    const std::size_t tokens = 3, out = 5, in = 7;
    const vec x = random_vec(tokens * in, rng), w = random_vec(out * in, rng), dy = random_vec(tokens * out, rng);
    vec dx(tokens * in), dw(out * in, 0.0);
    ref::linear_backward_input(dy.data(), w.data(), dx.data(), tokens, out, in);
    ref::linear_backward_weight(dy.data(), x.data(), dw.data(), tokens, out, in);
    const auto f_x = [&](const vec& xv) {
        vec y(tokens * out);
        ref::linear(xv.data(), w.data(), y.data(), tokens, out, in);
        return y;
    };
    const auto f_w = [&](const vec& wv) {
        vec y(tokens * out);
        ref::linear(x.data(), wv.data(), y.data(), tokens, out, in);
        return y;
    };
    check_grad(dx, numeric_grad(x, dy, f_x), "linear dx");
    check_grad(dw, numeric_grad(w, dy, f_w), "linear dw");
}

TEST_CASE("backward: embedding scatter-adds, a repeated token twice") {
    std::mt19937 rng(8);
    const std::size_t vocab = 6, dim = 4;
    const std::vector<std::size_t> ids{2, 0, 2, 5};
    const vec table = random_vec(vocab * dim, rng), dy = random_vec(ids.size() * dim, rng);
    vec d_table(vocab * dim, 0.0);
    ref::embedding_backward(dy.data(), ids.data(), d_table.data(), ids.size(), dim);
    const auto f = [&](const vec& tv) {
        vec y(ids.size() * dim);
        ref::embedding(tv.data(), ids.data(), y.data(), ids.size(), dim);
        return y;
    };
    check_grad(d_table, numeric_grad(table, dy, f), "embedding d_table");
    for (std::size_t i = 0; i < dim; ++i) {
        CHECK(d_table[2 * dim + i] == dy[0 * dim + i] + dy[2 * dim + i]);
        CHECK(d_table[1 * dim + i] == 0.0); // never seen
    }
}

TEST_CASE("backward: attention (causal and sliding window, grouped KV heads) matches finite differences") {
    std::mt19937 rng(9);
    for (const std::size_t window : {std::size_t{0}, std::size_t{2}}) {
        const ref::attention_shape a{.tokens = 5, .heads = 4, .kv_heads = 2, .d = 3, .window = window};
        const double scale = 0.7;
        const std::size_t nq = a.tokens * a.heads * a.d, nk = a.tokens * a.kv_heads * a.d;
        const vec q = random_vec(nq, rng), k = random_vec(nk, rng), v = random_vec(nk, rng), dy = random_vec(nq, rng);
        vec dq(nq), dk(nk, 0.0), dv(nk, 0.0);
        ref::attention_backward(q.data(), k.data(), v.data(), dy.data(), dq.data(), dk.data(), dv.data(), a, scale);
        const auto out = [&](const vec& qv, const vec& kv, const vec& vv) {
            vec o(nq);
            ref::attention(qv.data(), kv.data(), vv.data(), o.data(), a, scale);
            return o;
        };
        const std::string w = "window " + std::to_string(window);
        check_grad(dq, numeric_grad(q, dy, [&](const vec& x) { return out(x, k, v); }), "attention dq, " + w);
        check_grad(dk, numeric_grad(k, dy, [&](const vec& x) { return out(q, x, v); }), "attention dk, " + w);
        check_grad(dv, numeric_grad(v, dy, [&](const vec& x) { return out(q, k, x); }), "attention dv, " + w);
    }
}

TEST_CASE("backward: MoE (router through the routing weights, experts) matches finite differences") {
    std::mt19937 rng(10);
    const ref::moe_shape s{.dim = 6, .experts = 5, .top_k = 2, .inner = 3};
    const std::size_t D = s.dim, E = s.experts, I = s.inner;
    // The parameters, then the two inputs, each a vector the test perturbs.
    std::vector<vec> v{random_vec(E * D, rng), random_vec(D, rng), random_vec(E, rng, 0.5, 1.5),
                       random_vec(E * 2 * I * D, rng), random_vec(E * D * I, rng), random_vec(D, rng),
                       random_vec(D, rng)};
    enum { proj, scale, pes, gate_up, down, h, x };
    const auto weights = [](const std::vector<vec>& p) {
        return ref::moe_weights<double>{p[proj].data(), p[scale].data(), p[pes].data(), p[gate_up].data(),
                                        p[down].data()};
    };
    const vec dy = random_vec(D, rng);
    vec y(D);
    const auto saved = ref::moe_forward(weights(v), s, v[h].data(), v[x].data(), y.data());
    std::vector<vec> grad;
    for (const vec& p : v) grad.emplace_back(p.size(), 0.0);
    ref::moe_backward(weights(v), s, saved, v[h].data(), v[x].data(), dy.data(), grad[h].data(), grad[x].data(),
                      {grad[proj].data(), grad[scale].data(), grad[pes].data(), grad[gate_up].data(), grad[down].data()});
    const char* names[] = {"proj", "scale", "per_expert_scale", "gate_up", "down", "h", "x"};
    for (std::size_t which = 0; which < v.size(); ++which) {
        const auto f = [&](const vec& changed) {
            std::vector<vec> p = v;
            p[which] = changed;
            vec out(D);
            const auto m = ref::moe_forward(weights(p), s, p[h].data(), p[x].data(), out.data());
            REQUIRE(m.chosen == saved.chosen); // the step must not change the choice
            return out;
        };
        check_grad(grad[which], numeric_grad(v[which], dy, f), std::string("moe d") + names[which]);
    }
}
