// kernels/attention.hpp (attention as matrix products on the kernels) on
// every target compiled in, against the scalar reference in double
// (reference/attention.hpp): causal and sliding windows, grouped KV heads,
// one token to more than a kernel block, scales; bit-identical for every
// executor; bad shapes are errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <random>
#include <vector>

#include "qtensor/kernels/attention.hpp"
#include "qtensor/kernels/kernels.hpp"

using namespace qtensor;
using kernels::attention_shape;

namespace {

std::vector<float> random_floats(std::size_t n, std::mt19937& rng) {
    std::normal_distribution<float> dist;
    std::vector<float> v(n);
    for (float& x : v) x = dist(rng);
    return v;
}

// max |got - want| against a budget relative to the largest |want|: each
// value goes through a dot of d terms, a softmax over at most T, and a sum of
// at most T terms, each rounding at most once per term in float32; a factor 4
// for exp's own error and the shift by the row's maximum.
void check_close(const char* what, const std::vector<float>& got, const std::vector<double>& want,
                 const attention_shape& a) {
    double largest = 0, worst = 0;
    for (std::size_t i = 0; i < want.size(); ++i) {
        largest = std::max(largest, std::fabs(want[i]));
        worst = std::max(worst, std::fabs(got[i] - want[i]));
    }
    const double budget = 4.0 * static_cast<double>(a.d + 2 * a.tokens + 8) * 0x1p-24 * largest;
    INFO(what << ": worst " << worst << ", budget " << budget << " (T " << a.tokens << ", H " << a.heads << "/"
              << a.kv_heads << ", d " << a.d << ", window " << a.window << ")");
    CHECK(worst <= budget);
}

void check_shape(const attention_shape& a, float scale, kernels::target t, std::mt19937& rng) {
    const std::size_t nq = a.tokens * a.heads * a.d, nk = a.tokens * a.kv_heads * a.d;
    const std::vector<float> q = random_floats(nq, rng), k = random_floats(nk, rng), v = random_floats(nk, rng),
                             dout = random_floats(nq, rng), dk0 = random_floats(nk, rng);
    const auto wide = [](const std::vector<float>& x) { return std::vector<double>(x.begin(), x.end()); };
    std::vector<double> out(nq), dq(nq), dk = wide(dk0), dv(nk, 0.0);
    kernels::reference::attention(wide(q).data(), wide(k).data(), wide(v).data(), out.data(), a, double(scale));
    kernels::reference::attention_backward(wide(q).data(), wide(k).data(), wide(v).data(), wide(dout).data(),
                                           dq.data(), dk.data(), dv.data(), a, double(scale));
    std::vector<float> got(nq), gdq(nq), gdk = dk0, gdv(nk, 0.0f);
    kernels::attention(q.data(), k.data(), v.data(), got.data(), a, scale, {}, t);
    kernels::attention_backward(q.data(), k.data(), v.data(), dout.data(), gdq.data(), gdk.data(), gdv.data(), a,
                                scale, {}, t);
    check_close("out", got, out, a);
    check_close("dq", gdq, dq, a);
    check_close("dk (added to)", gdk, dk, a);
    check_close("dv", gdv, dv, a);
}

} // namespace

TEST_CASE("kernels::attention: forward and backward against the double reference, every target") {
    std::mt19937 rng(11);
    for (const auto t : kernels::compiled_targets()) {
        INFO(t.name());
        for (const attention_shape a : {attention_shape{1, 2, 1, 8}, attention_shape{5, 4, 2, 16},
                                        attention_shape{37, 4, 2, 32, 5}, attention_shape{70, 6, 3, 64},
                                        attention_shape{70, 2, 2, 128, 16}, attention_shape{9, 3, 3, 8, 20}})
            for (const float scale : {1.0f, 0.125f}) check_shape(a, scale, t, rng);
    }
}

TEST_CASE("kernels::attention: bit-identical for every executor") {
    std::mt19937 rng(12);
    const attention_shape a{40, 8, 4, 32, 7};
    const std::size_t nq = a.tokens * a.heads * a.d, nk = a.tokens * a.kv_heads * a.d;
    const std::vector<float> q = random_floats(nq, rng), k = random_floats(nk, rng), v = random_floats(nk, rng);
    const auto run = [&](const kernels::executor& ex) {
        std::vector<float> out(nq), dq(nq), dk(nk, 0.0f), dv(nk, 0.0f);
        kernels::attention(q.data(), k.data(), v.data(), out.data(), a, 1.0f, ex);
        kernels::attention_backward(q.data(), k.data(), v.data(), out.data(), dq.data(), dk.data(), dv.data(), a,
                                    1.0f, ex);
        out.insert(out.end(), dq.begin(), dq.end());
        out.insert(out.end(), dk.begin(), dk.end());
        out.insert(out.end(), dv.begin(), dv.end());
        return out;
    };
    kernels::thread_pool pool(3);
    CHECK(run({}) == run(pool.get_executor()));
}

TEST_CASE("kernels::attention: bad shapes are errors") {
    std::vector<float> x(64);
    CHECK_THROWS_WITH(kernels::attention(x.data(), x.data(), x.data(), x.data(), {2, 3, 2, 4}, 1.0f),
                      doctest::Contains("3 query heads over 2 KV heads"));
    CHECK_THROWS_WITH(kernels::attention(x.data(), x.data(), x.data(), x.data(), {0, 2, 2, 4}, 1.0f),
                      doctest::Contains("for 0 tokens"));
}
