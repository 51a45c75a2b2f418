// Conformance of the float-op kernels (kernels/float_ops.hpp) with their scalar
// references (kernels/reference/float_ops.hpp), on every target compiled in
// and supported by this CPU, forced one by one, within the budgets stated in
// float_ops.hpp. The sums are also checked against exact double sums, and the
// dot budget against an input where the reference reaches its own worst case.
// Each test reports its worst error as a fraction of the budget.
#include <doctest/doctest.h>

#include "test_util.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "qtensor/kernels/kernels.hpp"
#include "qtensor/kernels/reference/float_ops.hpp"

using namespace qtensor;
namespace ref = qtensor::kernels::reference;

namespace {

constexpr double u = 0x1p-24; // float's unit roundoff
constexpr float inf = std::numeric_limits<float>::infinity();
constexpr float qnan = std::numeric_limits<float>::quiet_NaN();

// Higham's bound on k roundings in a row.
double gamma_k(double k) { return k * u / (1.0 - k * u); }

// Roundings per term of the kernels' blocked sums (float_ops.hpp): the
// reference's n on the scalar backend, which runs the reference.
double sum_depth(std::size_t n, [[maybe_unused]] kernels::target t) {
#if defined(QTENSOR_KERNELS_BACKEND_HIGHWAY)
    return static_cast<double>(n / 4 + 7);
#elif defined(QTENSOR_KERNELS_BACKEND_XSIMD)
    return static_cast<double>(t.simd() ? n / 4 + 7 : n); // xsimd's scalar target is the reference
#else
    return static_cast<double>(n);
#endif
}

constexpr std::size_t lengths[] = {1, 3, 17, 255, 4099};

// Gaussian values times 10^e, e uniform in [lo, hi] per element.
std::vector<float> spread(std::size_t n, std::mt19937& rng, float lo = -2.0f, float hi = 2.0f) {
    std::normal_distribution<float> gauss(0.0f, 1.0f);
    std::uniform_real_distribution<float> e(lo, hi);
    std::vector<float> x(n);
    for (auto& v : x) v = gauss(rng) * std::pow(10.0f, e(rng));
    return x;
}

// The largest |got - want| / budget over the elements of one comparison, and
// where. NaN matches NaN and equal infinities match; any other NaN, or a
// nonzero error against a zero budget, is an infinite ratio.
struct worst_error {
    double ratio = 0.0;
    std::size_t at = 0;
    double got = 0.0, want = 0.0;

    void add(std::size_t i, double g, double w, double budget) {
        if ((std::isnan(g) && std::isnan(w)) || g == w) return;
        const double r = std::fabs(static_cast<double>(g) - w) / budget;
        if (!(r <= ratio)) {
            ratio = std::isnan(r) ? std::numeric_limits<double>::infinity() : r;
            at = i, got = g, want = w;
        }
    }
};

// The worst ratio of a whole test case, reported once.
struct report {
    std::string what;
    double worst = 0.0;
    void check(const worst_error& e, const std::string& where) {
        INFO(what << " " << where << " at " << e.at << ": got " << e.got << ", want " << e.want);
        CHECK(e.ratio <= 1.0);
        worst = std::max(worst, e.ratio);
    }
    ~report() { MESSAGE(what << ": worst error = " << worst << " of the budget"); }
};

std::string where(kernels::target t, std::size_t n) { return t.name() + " n=" + std::to_string(n); }

// A norm's input: x scaled, and eps.
struct norm_input {
    float scale;
    float eps;
};

} // namespace

TEST_CASE("float ops: dot within gamma_(5n/4+7) sum|x y| of the reference, gamma_(n/4+7) of the exact sum") {
    std::mt19937 rng(11);
    report vs_ref{"dot vs reference"}, vs_exact{"dot vs exact"};
    for (std::size_t n : lengths) {
        for (int rep = 0; rep < 3; ++rep) {
            const auto x = spread(n, rng), y = spread(n, rng);
            const auto [exact, magnitude] = qtensor_test::exact_dot_of(x, y); // float products are exact in double
            const float want = ref::dot(x.data(), y.data(), n);
            CHECK(std::fabs(want - exact) <= gamma_k(static_cast<double>(n)) * magnitude);
            for (const auto t : kernels::compiled_targets()) {
                const float got = kernels::dot(x, y, t);
                worst_error r, e;
                r.add(0, got, want, gamma_k(1.25 * static_cast<double>(n) + 7) * magnitude);
                e.add(0, got, exact, gamma_k(sum_depth(n, t)) * magnitude);
                vs_ref.check(r, where(t, n));
                vs_exact.check(e, where(t, n));
            }
        }
    }
    for (const auto t : kernels::compiled_targets()) CHECK(kernels::dot({}, {}, t) == 0.0f);
}

TEST_CASE("float ops: the dot budget is tight: 1 + (n-1) 2^-24 makes the reference lose (n-1) 2^-24") {
    // Each 1 + 2^-24 is a tie that rounds back to 1, so the reference's
    // sequential sum stays at 1 and reaches its gamma_n bound; the vs-reference
    // budget cannot be much smaller than n u sum|x y|.
    for (std::size_t n : {std::size_t{255}, std::size_t{4099}}) {
        std::vector<float> x(n, 0x1p-24f), ones(n, 1.0f);
        x[0] = 1.0f;
        const double exact = 1.0 + static_cast<double>(n - 1) * u;
        const float want = ref::dot(x.data(), ones.data(), n);
        CHECK(want == 1.0f);
        CHECK(exact - want >= 0.99 * static_cast<double>(n - 1) * u * exact);
        for (const auto t : kernels::compiled_targets()) {
            const float got = kernels::dot(x, ones, t);
            INFO(where(t, n) << " got " << got);
            CHECK(std::fabs(got - want) <= gamma_k(1.25 * static_cast<double>(n) + 7) * exact);
            CHECK(std::fabs(got - exact) <= gamma_k(sum_depth(n, t)) * exact);
        }
    }
}

TEST_CASE("float ops: rmsnorm within gamma_(5n/8+14) |ref| of the reference, with and without weight, in place") {
    std::mt19937 rng(12);
    report vs_ref{"rmsnorm vs reference"}, vs_exact{"rmsnorm vs exact"};
    // Typical; eps = 0; x so small that eps dominates (x^2 underflows to
    // subnormals); x so small that x^2 underflows to 0.
    const norm_input inputs[] = {{1.0f, 1e-6f}, {1.0f, 0.0f}, {1e-19f, 1e-6f}, {1e-30f, 1e-6f}};
    for (std::size_t n : lengths) {
        for (const auto [scale, eps] : inputs) {
            auto x = spread(n, rng, -1.0f, 1.0f);
            for (auto& v : x) v *= scale;
            const auto w = spread(n, rng, -1.0f, 1.0f);
            double ss = 0.0;
            for (float v : x) ss += static_cast<double>(v) * v;
            const double r = 1.0 / std::sqrt(ss / static_cast<double>(n) + eps);
            for (const float* wp : {w.data(), static_cast<const float*>(nullptr)}) {
                std::vector<float> want(n);
                ref::rmsnorm(x.data(), wp, want.data(), n, eps);
                const double budget = gamma_k(0.625 * static_cast<double>(n) + 14);
                for (const auto t : kernels::compiled_targets()) {
                    std::vector<float> got(n), in_place = x;
                    const std::span<const float> ws = wp ? std::span<const float>(w) : std::span<const float>();
                    kernels::rmsnorm(x, ws, got, eps, t);
                    kernels::rmsnorm(in_place, ws, in_place, eps, t);
                    CHECK(in_place == got);
                    worst_error er, ee;
                    for (std::size_t i = 0; i < n; ++i) {
                        const double exact = x[i] * r * (wp ? wp[i] : 1.0f);
                        er.add(i, got[i], want[i], budget * std::fabs(want[i]));
                        ee.add(i, got[i], exact, gamma_k(sum_depth(n, t) / 2 + 5) * std::fabs(exact));
                    }
                    const std::string at = where(t, n) + " scale=" + std::to_string(scale) +
                                           " eps=" + std::to_string(eps) + (wp ? " weighted" : "");
                    vs_ref.check(er, at);
                    vs_exact.check(ee, at);
                }
            }
        }
    }
    std::vector<float> zeros(17, 0.0f), y(17, 1.0f);
    for (const auto t : kernels::compiled_targets()) {
        kernels::rmsnorm(zeros, {}, y, 1e-6f, t);
        CHECK(std::all_of(y.begin(), y.end(), [](float v) { return v == 0.0f; }));
    }
}

TEST_CASE("float ops: rmsnorm_backward within its budget of the double reference, dx over dy") {
    std::mt19937 rng(16);
    report dx_report{"rmsnorm_backward dx vs exact"}, dw_report{"rmsnorm_backward dw vs exact"};
    // As for rmsnorm, and a row whose r^3 would overflow a float (r = 1e15 with eps = 0).
    const norm_input inputs[] = {{1.0f, 1e-6f}, {1.0f, 0.0f}, {1e-19f, 1e-6f}, {1e3f, 1e-6f}, {1e-15f, 0.0f}};
    for (std::size_t n : lengths) {
        for (const auto [scale, eps] : inputs) {
            auto x = spread(n, rng, -1.0f, 1.0f);
            for (auto& v : x) v *= scale;
            const auto w = spread(n, rng, -1.0f, 1.0f), dy = spread(n, rng, -2.0f, 2.0f);
            const auto dw0 = spread(n, rng, -1.0f, 1.0f);
            const std::vector<double> xd(x.begin(), x.end()), wd(w.begin(), w.end()), dyd(dy.begin(), dy.end());
            double ss = 0.0;
            for (double v : xd) ss += v * v;
            const double nd = static_cast<double>(n), r = 1.0 / std::sqrt(ss / nd + eps);
            for (const bool weighted : {true, false}) {
                std::vector<double> want(n), want_dw(dw0.begin(), dw0.end());
                ref::rmsnorm_backward(xd.data(), weighted ? wd.data() : nullptr, dyd.data(), want.data(),
                                      want_dw.data(), n, static_cast<double>(eps));
                double sum_gx = 0.0; // sum |g_j x_j|
                for (std::size_t j = 0; j < n; ++j) sum_gx += std::fabs(dyd[j] * (weighted ? wd[j] : 1.0) * xd[j]);
                for (const auto t : kernels::compiled_targets()) {
                    const double k = sum_depth(n, t);
                    const std::span<const float> ws = weighted ? std::span<const float>(w) : std::span<const float>();
                    std::vector<float> dx = dy, dw = dw0, apart(n), dw_apart = dw0; // dx written over dy, and not
                    kernels::rmsnorm_backward(x, ws, dx, dx, weighted ? std::span<float>(dw) : std::span<float>(), eps,
                                              t);
                    kernels::rmsnorm_backward(x, ws, dy, apart, weighted ? std::span<float>(dw_apart)
                                                                         : std::span<float>(), eps, t);
                    CHECK(apart == dx);
                    CHECK(dw_apart == dw);
                    worst_error ex, ew;
                    for (std::size_t i = 0; i < n; ++i) {
                        const double g = dyd[i] * (weighted ? wd[i] : 1.0);
                        const double terms = r * std::fabs(g) + r * r * r * std::fabs(xd[i]) * sum_gx / nd;
                        ex.add(i, dx[i], want[i], gamma_k(2.5 * k + 17) * terms);
                        ew.add(i, dw[i], want_dw[i],
                               gamma_k(k / 2 + 6) * std::fabs(dyd[i] * xd[i] * r) + u * std::fabs(want_dw[i]));
                    }
                    const std::string at = where(t, n) + " scale=" + std::to_string(scale) +
                                           " eps=" + std::to_string(eps) + (weighted ? " weighted" : "");
                    dx_report.check(ex, at);
                    if (weighted) dw_report.check(ew, at);
                }
            }
        }
    }
    std::vector<float> three(3), two(2);
    CHECK_THROWS_WITH(kernels::rmsnorm_backward(three, three, two, three, three, 1e-6f), doctest::Contains("dy"));
    CHECK_THROWS_WITH(kernels::rmsnorm_backward(three, three, three, three, two, 1e-6f), doctest::Contains("dw"));
    CHECK_THROWS_WITH(kernels::rmsnorm_backward(three, {}, three, three, {}, -1.0f), doctest::Contains("eps"));
}

TEST_CASE("float ops: softmax within gamma_(5n/4+19) ref of the reference; -inf gives 0; NaN spreads") {
    std::mt19937 rng(13);
    report vs_ref{"softmax vs reference"}, vs_exact{"softmax vs exact"};
    std::normal_distribution<float> gauss(0.0f, 1.0f);
    // Logits of spread 10 (typical), and of spread 60 (exp underflows, also to
    // subnormals and to 0), each with every 7th entry masked out.
    for (std::size_t n : lengths) {
        for (float spread_of : {10.0f, 60.0f}) {
            std::vector<float> x(n);
            for (std::size_t i = 0; i < n; ++i) x[i] = i % 7 == 3 ? -inf : spread_of * gauss(rng);
            auto want = x;
            ref::softmax(want.data(), n);
            // The exact softmax of the float differences x_i - max, which both
            // the kernels and the reference round the same way first (an error
            // of up to |x_i - max| u in exp's argument that no kernel can avoid).
            const float mx = *std::max_element(x.begin(), x.end());
            double sum = 0.0;
            for (float v : x) sum += std::exp(static_cast<double>(v - mx));
            for (const auto t : kernels::compiled_targets()) {
                auto got = x;
                kernels::softmax(got, t);
                worst_error er, ee;
                for (std::size_t i = 0; i < n; ++i) {
                    if (x[i] == -inf) CHECK(got[i] == 0.0f);
                    const double p = std::exp(static_cast<double>(x[i] - mx)) / sum;
                    er.add(i, got[i], want[i], gamma_k(1.25 * static_cast<double>(n) + 19) * want[i] + 0x1p-148);
                    ee.add(i, got[i], p, gamma_k(sum_depth(n, t) + 6) * p + 0x1p-148);
                }
                const std::string at = where(t, n) + " spread=" + std::to_string(spread_of);
                vs_ref.check(er, at);
                vs_exact.check(ee, at);
            }
        }
    }
    for (const auto t : kernels::compiled_targets()) {
        INFO(t.name());
        float one[] = {-3.5f};
        kernels::softmax(one, t);
        CHECK(one[0] == 1.0f);
        std::vector<float> x = {1.0f, -inf, 2.0f, qnan, 0.5f};
        kernels::softmax(x, t);
        CHECK(std::all_of(x.begin(), x.end(), [](float v) { return std::isnan(v); }));
    }
}

namespace {

// Typical activations plus the saturated and the tiny ends (and signed zeros).
std::vector<float> activations(std::size_t n, std::mt19937& rng) {
    auto x = spread(n, rng, -1.0f, 1.0f);
    const float extremes[] = {1e30f, -1e30f, 1e6f, -1e6f, 100.0f, -100.0f, 20.0f, -20.0f,
                              9.0f,  -9.0f,  5.0f, -5.0f, 0.0f,   -0.0f,   1e-30f, -1e-30f};
    for (std::size_t i = 0; i < n && i < std::size(extremes); ++i) x[(i * 37) % n] = extremes[i];
    return x;
}

} // namespace

TEST_CASE("float ops: geglu_backward within its budget of the double reference, outputs over dy") {
    std::mt19937 rng(15);
    report gate_report{"geglu_backward d_gate vs reference"}, up_report{"geglu_backward d_up vs reference"};
    for (std::size_t n : lengths) {
        const auto z = activations(n, rng);
        const auto up = spread(n, rng, -1.0f, 1.0f), dy = spread(n, rng, -2.0f, 2.0f);
        std::vector<double> want_gate(n), want_up(n);
        const std::vector<double> zd(z.begin(), z.end()), upd(up.begin(), up.end()), dyd(dy.begin(), dy.end());
        ref::geglu_backward(zd.data(), upd.data(), dyd.data(), want_gate.data(), want_up.data(), n);
        for (const auto t : kernels::compiled_targets()) {
            std::vector<float> d_gate(n), d_up = dy; // d_up written over dy
            kernels::geglu_backward(z, up, d_up, d_gate, d_up, t);
            worst_error eg, eu;
            for (std::size_t i = 0; i < n; ++i) {
                const double zi = z[i], dv = 0.7978845608028654 * (1 + 3 * 0.044715 * zi * zi);
                eg.add(i, d_gate[i], want_gate[i], 16 * u * std::fabs(dyd[i] * upd[i]) * (1 + std::fabs(zi) * dv));
                eu.add(i, d_up[i], want_up[i], 10 * u * std::fabs(dyd[i] * zi));
            }
            gate_report.check(eg, where(t, n));
            up_report.check(eu, where(t, n));
        }
    }
    std::vector<float> three(3), two(2);
    CHECK_THROWS_WITH(kernels::geglu_backward(three, three, two, three, three), doctest::Contains("dy"));
}

TEST_CASE("float ops: gelu_tanh within 8u |x| and geglu within 10u |gate up| of the reference, in place") {
    std::mt19937 rng(14);
    report gelu{"gelu_tanh vs reference"}, geglu{"geglu vs reference"};
    for (std::size_t n : lengths) {
        const auto x = activations(n, rng);
        const auto up = spread(n, rng, -1.0f, 1.0f);
        std::vector<float> want(n), want_geglu(n);
        ref::gelu_tanh(x.data(), want.data(), n);
        ref::geglu(x.data(), up.data(), want_geglu.data(), n);
        for (const auto t : kernels::compiled_targets()) {
            auto got = x;
            kernels::gelu_tanh(got, got, t);
            auto got_geglu = up;
            kernels::geglu(x, got_geglu, got_geglu, t);
            auto gate_alias = x;
            kernels::geglu(gate_alias, up, gate_alias, t);
            CHECK(gate_alias == got_geglu);
            worst_error e1, e2;
            for (std::size_t i = 0; i < n; ++i) {
                e1.add(i, got[i], want[i], 8 * u * std::fabs(x[i]));
                e2.add(i, got_geglu[i], want_geglu[i], 10 * u * std::fabs(static_cast<double>(x[i]) * up[i]));
            }
            gelu.check(e1, where(t, n));
            geglu.check(e2, where(t, n));
        }
    }
    for (const auto t : kernels::compiled_targets()) {
        INFO(t.name());
        float x[] = {qnan, inf, -inf, 1e30f, -1e30f};
        float y[5];
        kernels::gelu_tanh(x, y, t);
        CHECK(std::isnan(y[0]));
        CHECK(y[1] == inf);
        CHECK(std::isnan(y[2])); // -inf * 0, as in the reference
        CHECK(y[3] == 1e30f);
        CHECK(y[4] == 0.0f);
    }
}

TEST_CASE("float ops: softcap within 18u |ref| of the reference, saturating at +-cap") {
    std::mt19937 rng(15);
    report rep{"softcap vs reference"};
    for (std::size_t n : lengths) {
        for (float cap : {30.0f, 0.5f}) {
            auto x = activations(n, rng);
            for (auto& v : x) v *= 10.0f;
            auto want = x;
            ref::softcap(want.data(), n, cap);
            for (const auto t : kernels::compiled_targets()) {
                auto got = x;
                kernels::softcap(got, cap, t);
                worst_error e;
                for (std::size_t i = 0; i < n; ++i) e.add(i, got[i], want[i], 18 * u * std::fabs(want[i]));
                rep.check(e, where(t, n) + " cap=" + std::to_string(cap));
            }
        }
    }
    for (const auto t : kernels::compiled_targets()) {
        INFO(t.name());
        float x[] = {1e30f, -1e30f, 1000.0f, inf, -inf, qnan};
        kernels::softcap(x, 30.0f, t);
        CHECK(x[0] == 30.0f);
        CHECK(x[1] == -30.0f);
        CHECK(x[2] == 30.0f);
        CHECK(x[3] == 30.0f);
        CHECK(x[4] == -30.0f);
        CHECK(std::isnan(x[5]));
    }
}

TEST_CASE("float ops: rope within 6u (|x0| + |x1|) of the reference; zero frequencies pass bit for bit") {
    std::mt19937 rng(16);
    report rep{"rope vs reference"};
    // Positions up to where pos * freq nears 2^30 (freq up to 1000 at pos 1e6).
    const float positions[] = {0.0f, 1.0f, 7.0f, 1000.0f, 131071.0f, 1e6f};
    for (std::size_t half : lengths) {
        const std::size_t d = 2 * half;
        const auto x = spread(d, rng, -1.0f, 1.0f);
        for (float fmax : {1.0f, 1000.0f}) {
            // Gemma's theta^(-2i/d) (theta = 10^4) times fmax; the last quarter
            // of the pairs zero, as in proportional RoPE.
            std::vector<float> freq(half);
            for (std::size_t i = 0; i < half; ++i)
                freq[i] = i >= half - half / 4
                              ? 0.0f
                              : fmax * std::pow(1e4f, -2.0f * static_cast<float>(i) / static_cast<float>(d));
            for (float pos : positions) {
                auto want = x;
                ref::rope(want.data(), freq.data(), d, pos);
                for (const auto t : kernels::compiled_targets()) {
                    auto got = x;
                    kernels::rope(got, freq, pos, t);
                    worst_error e;
                    for (std::size_t i = 0; i < half; ++i) {
                        const double budget = 6 * u * (std::fabs(x[i]) + std::fabs(x[i + half]));
                        e.add(i, got[i], want[i], budget);
                        e.add(i + half, got[i + half], want[i + half], budget);
                        if (freq[i] == 0.0f || pos == 0.0f) {
                            INFO(where(t, d) << " pos=" << pos << " pair " << i);
                            CHECK(std::bit_cast<std::uint32_t>(got[i]) == std::bit_cast<std::uint32_t>(x[i]));
                            CHECK(std::bit_cast<std::uint32_t>(got[i + half]) ==
                                  std::bit_cast<std::uint32_t>(x[i + half]));
                        }
                    }
                    rep.check(e, where(t, d) + " pos=" + std::to_string(pos) + " fmax=" + std::to_string(fmax));
                }
            }
        }
    }
}

TEST_CASE("float ops: axpy within gamma_2 (|a x| + |ref|) of the reference; scale bit for bit; in place") {
    std::mt19937 rng(17);
    report rep{"axpy vs reference"};
    for (std::size_t n : lengths) {
        const auto x = spread(n, rng), y = spread(n, rng);
        for (float a : {0.7f, -3e3f}) {
            auto want = y, want_self = y;
            ref::axpy(a, x.data(), want.data(), n);
            ref::axpy(a, want_self.data(), want_self.data(), n);
            auto want_scaled = x;
            ref::scale(a, want_scaled.data(), n);
            for (const auto t : kernels::compiled_targets()) {
                auto got = y, got_self = y;
                kernels::axpy(a, x, got, t);
                kernels::axpy(a, got_self, got_self, t);
                worst_error e, es;
                for (std::size_t i = 0; i < n; ++i) {
                    e.add(i, got[i], want[i], gamma_k(2) * (std::fabs(a * x[i]) + std::fabs(want[i])));
                    es.add(i, got_self[i], want_self[i], gamma_k(2) * (std::fabs(a * y[i]) + std::fabs(want_self[i])));
                }
                rep.check(e, where(t, n));
                rep.check(es, where(t, n) + " x == y");
                auto scaled = x;
                kernels::scale(a, scaled, t);
                INFO(where(t, n));
                CHECK(std::equal(scaled.begin(), scaled.end(), want_scaled.begin(),
                                 [](float p, float q) { return std::bit_cast<std::uint32_t>(p) ==
                                                               std::bit_cast<std::uint32_t>(q); }));
            }
        }
    }
}

// Same bits as the reference: gradients over 20 orders of magnitude and some
// zero, moments fresh (zero) and warm, the constants of a first step with
// decay and of step 1000 without, every length through the padded tail.
TEST_CASE("float ops: adamw_update bit for bit the reference, fresh and warm moments, with and without decay") {
    std::mt19937 rng(19);
    const auto same_bits = [](const std::vector<float>& a, const std::vector<float>& b) {
        return std::equal(a.begin(), a.end(), b.begin(), [](float p, float q) {
            return std::bit_cast<std::uint32_t>(p) == std::bit_cast<std::uint32_t>(q);
        });
    };
    const kernels::adamw_constants steps[] = {
        {1.0f - 1e-3f * 0.1f, 0.9f, 0.95f, 1e-3f / (1.0f - 0.9f), std::sqrt(1.0f - 0.95f), 1e-8f},
        {1.0f, 0.9f, 0.999f, 3e-4f, std::sqrt(1.0f - std::pow(0.999f, 1000.0f)), 1e-8f}};
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{16}, std::size_t{33},
                          std::size_t{4099}}) {
        auto g = spread(n, rng, -10.0f, 10.0f);
        for (std::size_t i = 0; i < n; i += 5) g[i] = 0.0f;
        const auto p = spread(n, rng);
        auto m_warm = spread(n, rng, -6.0f, 0.0f), v_warm = spread(n, rng, -12.0f, 0.0f);
        for (auto& v : v_warm) v = std::fabs(v);
        for (const auto& k : steps) {
            for (const bool warm : {false, true}) {
                const std::vector<float> m0 = warm ? m_warm : std::vector<float>(n);
                const std::vector<float> v0 = warm ? v_warm : std::vector<float>(n);
                auto want_p = p, want_m = m0, want_v = v0;
                ref::adamw_update(want_p.data(), want_m.data(), want_v.data(), g.data(), n, k);
                if (n > 1) CHECK(!same_bits(want_p, p)); // the step moves p (g[0] is 0, g[1] not)
                for (const auto t : kernels::compiled_targets()) {
                    auto got_p = p, got_m = m0, got_v = v0;
                    kernels::adamw_update(got_p, got_m, got_v, g, k, t);
                    INFO(where(t, n) << (warm ? " warm" : " fresh") << " step_size=" << k.step_size);
                    CHECK(same_bits(got_p, want_p));
                    CHECK(same_bits(got_m, want_m));
                    CHECK(same_bits(got_v, want_v));
                }
            }
        }
    }
}

TEST_CASE("float ops: bad arguments throw, naming the argument") {
    std::vector<float> x(8, 1.0f), freq(4, 1.0f);
    using qtensor_test::message_of;
    CHECK(message_of([&] { kernels::rope(std::span(x).first(7), freq, 1.0f); }).find("d = 7 is odd") !=
          std::string::npos);
    CHECK(message_of([&] { kernels::rope(x, freq, 2e9f); }).find("freq[0]") != std::string::npos);
    freq[2] = qnan;
    CHECK(message_of([&] { kernels::rope(x, freq, 1.0f); }).find("freq[2]") != std::string::npos);
    CHECK(message_of([&] { kernels::softcap(x, 0.0f); }).find("cap") != std::string::npos);
    CHECK_THROWS_AS(kernels::softcap(x, -30.0f), qtensor::error);
    CHECK_THROWS_AS(kernels::softcap(x, inf), qtensor::error);
    CHECK(message_of([&] { kernels::rmsnorm(x, {}, x, -1e-6f); }).find("eps") !=
          std::string::npos);
    CHECK_THROWS_AS(kernels::rmsnorm(x, {}, x, qnan), qtensor::error);
}

TEST_CASE("float ops: the checked forms refuse spans of different sizes, naming the function, argument and sizes") {
    std::vector<float> x(8, 1.0f), y(8), short_(7), freq(4, 0.5f);
    using qtensor_test::message_of;
    const std::string none = "(no qtensor::error thrown)";
    CHECK(message_of([&] { kernels::dot(x, short_); }) ==
          "qtensor: kernels::dot: y has 7 elements, expected 8 (x has 8 elements)");
    CHECK(message_of([&] { kernels::rmsnorm(x, short_, y, 1e-6f); }) ==
          "qtensor: kernels::rmsnorm: w has 7 elements, expected 8 (x has 8 elements)");
    CHECK(message_of([&] { kernels::rmsnorm(x, x, short_, 1e-6f); }) ==
          "qtensor: kernels::rmsnorm: y has 7 elements, expected 8 (x has 8 elements)");
    CHECK(message_of([&] { kernels::gelu_tanh(x, short_); }) ==
          "qtensor: kernels::gelu_tanh: y has 7 elements, expected 8 (x has 8 elements)");
    CHECK(message_of([&] { kernels::geglu(x, short_, y); }) ==
          "qtensor: kernels::geglu: up has 7 elements, expected 8 (gate has 8 elements)");
    CHECK(message_of([&] { kernels::geglu(x, y, short_); }) ==
          "qtensor: kernels::geglu: y has 7 elements, expected 8 (gate has 8 elements)");
    CHECK(message_of([&] { kernels::rope(x, std::span(freq).first(3), 1.0f); }) ==
          "qtensor: kernels::rope: freq has 3 elements, expected 4 (x has 8 elements)");
    CHECK(message_of([&] { kernels::adamw_update(x, y, short_, x, {}); }) ==
          "qtensor: kernels::adamw_update: v has 7 elements, expected 8 (p has 8 elements)");
    CHECK(message_of([&] { kernels::axpy(2.0f, x, short_); }) ==
          "qtensor: kernels::axpy: y has 7 elements, expected 8 (x has 8 elements)");
    // Right sizes pass.
    CHECK(message_of([&] {
              kernels::dot(x, y);
              kernels::rmsnorm(x, x, y, 1e-6f);
              kernels::rmsnorm(x, {}, y, 1e-6f);
              kernels::gelu_tanh(x, y);
              kernels::geglu(x, x, y);
              kernels::rope(y, freq, 1.0f);
              kernels::axpy(2.0f, x, y);
              kernels::softmax(y);
              kernels::softcap(y, 30.0f);
              kernels::scale(2.0f, y);
          }) == none);
}
