// Conformance of kernels::sgemm (kernels/sgemm.hpp) on every target compiled
// in and supported by this CPU: within sgemm.hpp's budget of the exact value
// for the four transpose combinations, odd shapes, shapes that cross the K,
// N and M blocks, alpha/beta, leading dimensions wider than the matrix and a
// transposed C; the scalar reference within its own budget; BLAS's rules for
// beta == 0 and alpha == 0; bit-identical results for every executor; and an
// error, never a crash, for every bad argument.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "qtensor/kernels/kernels.hpp"
#include "test_util.hpp"

using namespace qtensor;

namespace {

constexpr double u = 0x1p-24;
double gamma_k(double k) { return k * u / (1.0 - k * u); }

// Roundings per term (sgemm.hpp): the kernel's and the reference's.
double kernel_depth(std::size_t K) {
    const std::size_t kc = kernels::sgemm_k_block;
    return static_cast<double>(std::min(K, kc) + (K + kc - 1) / kc + 1);
}
double reference_depth(std::size_t K) { return static_cast<double>(K + 2); }

// A stored matrix [rows, cols] with row stride ld >= cols; the padding holds
// NaN so that a read past a row shows.
struct stored {
    std::size_t rows, cols, ld;
    std::vector<float> data;
    stored(std::size_t r, std::size_t c, std::size_t pad, std::mt19937& rng)
        : rows(r), cols(c), ld(c + pad), data(r * (c + pad), std::numeric_limits<float>::quiet_NaN()) {
        // Gaussian values over two decades, so sums cancel and magnitudes differ.
        std::normal_distribution<float> gauss(0.0f, 1.0f);
        std::uniform_real_distribution<float> e(-1.0f, 1.0f);
        for (std::size_t i = 0; i < r; ++i)
            for (std::size_t j = 0; j < c; ++j) data[i * ld + j] = gauss(rng) * std::pow(10.0f, e(rng));
    }
    float at(std::size_t i, std::size_t j) const { return data[i * ld + j]; }
    kernels::matrix_ref<const float> view(bool transposed) const { return {data, rows, cols, ld, transposed}; }
    kernels::matrix_ref<float> out() { return {data, rows, cols, ld, false}; }
};

// op(X)[r, c] of a stored matrix.
float op_at(const stored& x, bool transposed, std::size_t r, std::size_t c) {
    return transposed ? x.at(c, r) : x.at(r, c);
}

// One problem: C[M, N] = alpha op(A)[M, K] op(B)[K, N] + beta C.
struct problem {
    std::size_t M, N, K;
    bool ta, tb;
    float alpha, beta;
    std::size_t pad;
    stored a, b, c;
    problem(std::size_t m, std::size_t n, std::size_t k, bool ta_, bool tb_, float al, float be, std::size_t p,
            std::mt19937& rng)
        : M(m), N(n), K(k), ta(ta_), tb(tb_), alpha(al), beta(be), pad(p), a(ta ? k : m, ta ? m : k, p, rng),
          b(tb ? n : k, tb ? k : n, p, rng), c(m, n, p, rng) {}

    // The exact value and mag_ij of sgemm.hpp: products of floats are exact in
    // double, and the double sum's error (K 2^-53 mag) is far below the budget.
    void exact(std::size_t i, std::size_t j, double& value, double& mag) const {
        double s = 0.0, m = 0.0;
        for (std::size_t p = 0; p < K; ++p) {
            const double t = double(op_at(a, ta, i, p)) * double(op_at(b, tb, p, j));
            s += t;
            m += std::fabs(t);
        }
        const double cij = c.at(i, j);
        value = double(alpha) * s + (beta == 0.0f ? 0.0 : double(beta) * cij);
        mag = std::fabs(double(alpha)) * m + (beta == 0.0f ? 0.0 : std::fabs(double(beta) * cij));
    }

    std::string name() const {
        return std::string(ta ? "T" : "N") + (tb ? "T" : "N") + " M=" + std::to_string(M) + " N=" + std::to_string(N) +
               " K=" + std::to_string(K) + " alpha=" + std::to_string(alpha) + " beta=" + std::to_string(beta) +
               " pad=" + std::to_string(pad);
    }
};

// The largest |got - exact| / (gamma_depth mag) over C; padding must stay NaN.
double worst_ratio(const problem& p, const stored& got, double depth) {
    double worst = 0.0;
    for (std::size_t i = 0; i < p.M; ++i) {
        for (std::size_t j = 0; j < p.N; ++j) {
            double value, mag;
            p.exact(i, j, value, mag);
            const double err = std::fabs(double(got.at(i, j)) - value), budget = gamma_k(depth) * mag;
            worst = std::max(worst, err == 0.0 ? 0.0 : budget == 0.0 ? HUGE_VAL : err / budget);
        }
        for (std::size_t j = p.N; j < got.ld; ++j) CHECK(std::isnan(got.at(i, j)));
    }
    return worst;
}

struct report {
    explicit report(std::string w) : what(std::move(w)) {}
    std::string what, at;
    double worst = 0.0;
    void check(double ratio, const std::string& where) {
        INFO(what << " " << where << ": " << ratio << " of the budget");
        CHECK(ratio <= 1.0);
        if (ratio >= worst) worst = ratio, at = where;
    }
    ~report() { MESSAGE(what << ": worst error = " << worst << " of the budget, at " << at); }
};

// Runs p on every target and checks the kernel and the reference.
void check_problem(const problem& p, report& kernel, report& reference) {
    stored want = p.c;
    kernels::reference::sgemm({p.M, p.N, p.K, p.alpha, {p.a.data.data(), p.a.ld, p.ta}, {p.b.data.data(), p.b.ld, p.tb},
                               p.beta, want.data.data(), want.ld});
    reference.check(worst_ratio(p, want, reference_depth(p.K)), p.name());
    for (const auto t : kernels::compiled_targets()) {
        stored got = p.c;
        kernels::sgemm(p.alpha, p.a.view(p.ta), p.b.view(p.tb), p.beta, got.out(), {}, t);
        kernel.check(worst_ratio(p, got, kernel_depth(p.K)), t.name() + " " + p.name());
    }
}

constexpr std::size_t odd[] = {1, 3, 17, 63, 129};

} // namespace

TEST_CASE("sgemm: odd shapes, four transposes, alpha and beta, wide ld, within budget of the exact value") {
    std::mt19937 rng(7);
    report kernel{"sgemm vs exact"}, reference{"reference vs exact"};
    const float scalars[][2] = {{1.0f, 0.0f}, {-0.75f, 1.0f}, {1.5f, -0.5f}};
    std::size_t n_case = 0;
    for (const std::size_t M : odd)
        for (const std::size_t N : odd)
            for (const std::size_t K : odd)
                for (int tr = 0; tr < 4; ++tr, ++n_case) {
                    const auto& s = scalars[n_case % 3];
                    check_problem(problem(M, N, K, tr & 1, tr & 2, s[0], s[1], n_case % 2 == 0 ? 0 : 5, rng), kernel,
                                  reference);
                }
}

TEST_CASE("sgemm: shapes across the K, N and M blocks") {
    std::mt19937 rng(8);
    report kernel{"sgemm vs exact, blocked"}, reference{"reference vs exact, blocked"};
    // K = 900: three K blocks; N = 700: three N blocks; M = 1600 and 1000: four and three M blocks, A
    // transposed (panels [kc, MR]) and not (panels of rows).
    check_problem(problem(37, 700, 900, false, false, 1.0f, 1.0f, 3, rng), kernel, reference);
    check_problem(problem(130, 65, 900, true, true, -2.0f, 0.5f, 0, rng), kernel, reference);
    check_problem(problem(1600, 40, 20, true, false, 1.0f, 0.0f, 1, rng), kernel, reference);
    check_problem(problem(1000, 50, 420, false, true, 1.0f, 0.0f, 2, rng), kernel, reference);
    check_problem(problem(64, 333, 385, false, true, 0.5f, 1.0f, 0, rng), kernel, reference);
}

TEST_CASE("sgemm: a transposed C is the transpose of the product") {
    std::mt19937 rng(9);
    const problem p(29, 70, 33, false, true, 1.0f, 0.0f, 2, rng);
    stored want = p.c;
    kernels::sgemm(1.0f, p.a.view(false), p.b.view(true), 0.0f, want.out());
    // C^T [N, M] stored, written as a transposed operand.
    stored ct(p.N, p.M, 1, rng);
    kernels::sgemm(1.0f, p.a.view(false), p.b.view(true), 0.0f, transposed(ct.out()));
    for (std::size_t i = 0; i < p.M; ++i)
        for (std::size_t j = 0; j < p.N; ++j) {
            double value, mag;
            p.exact(i, j, value, mag);
            CHECK(std::fabs(ct.at(j, i) - value) <= gamma_k(kernel_depth(p.K)) * mag);
        }
}

TEST_CASE("sgemm: beta == 0 ignores NaN in C; alpha == 0 and K == 0 do not read A and B") {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (const auto t : kernels::compiled_targets()) {
        CAPTURE(t.name());
        std::vector<float> a(6 * 5, 1.0f), b(5 * 7, 2.0f), c(6 * 7, nan);
        kernels::sgemm(1.0f, {a, 6, 5}, {b, 5, 7}, 0.0f, {c, 6, 7}, {}, t);
        for (const float v : c) CHECK(v == 10.0f);
        std::fill(a.begin(), a.end(), nan);
        kernels::sgemm(0.0f, {a, 6, 5}, {b, 5, 7}, 0.5f, {c, 6, 7}, {}, t);
        for (const float v : c) CHECK(v == 5.0f);
        kernels::sgemm(0.0f, {a, 6, 5}, {b, 5, 7}, 0.0f, {c, 6, 7}, {}, t);
        for (const float v : c) CHECK(v == 0.0f);
        std::vector<float> empty, c2(6 * 7, 3.0f);
        kernels::sgemm(1.0f, {empty, 6, 0}, {empty, 0, 7}, 2.0f, {c2, 6, 7}, {}, t);
        for (const float v : c2) CHECK(v == 6.0f);
    }
}

TEST_CASE("sgemm: bit-identical for every executor and split") {
    std::mt19937 rng(10);
    kernels::thread_pool pool(2);
    const auto reversed = qtensor_test::reversed_executor;
    // M >= N splits rows, M < N columns; K = 800 has three K blocks, M = 1100 three M blocks; A
    // transposed and not.
    for (const auto& [m, n, ta] : {std::tuple<std::size_t, std::size_t, bool>{300, 90, true}, {70, 500, true},
                                   {1100, 90, false}, {70, 500, false}}) {
        const problem p(m, n, 800, ta, false, 1.0f, 1.0f, 0, rng);
        for (const auto t : kernels::compiled_targets()) {
            stored one = p.c;
            kernels::sgemm(p.alpha, p.a.view(ta), p.b.view(false), p.beta, one.out(), {}, t);
            for (const auto& ex : {pool.get_executor(), reversed(3), reversed(7), reversed(64)}) {
                stored many = p.c;
                kernels::sgemm(p.alpha, p.a.view(ta), p.b.view(false), p.beta, many.out(), ex, t);
                INFO(t.name() << " " << p.name() << " concurrency " << ex.concurrency());
                CHECK(std::memcmp(one.data.data(), many.data.data(), one.data.size() * sizeof(float)) == 0);
            }
        }
    }
}

TEST_CASE("sgemm: bad arguments throw qtensor::error") {
    std::vector<float> a(4 * 3), b(3 * 5), c(4 * 5);
    const auto fails = [](auto&& f, const char* text) {
        try {
            f();
            FAIL("no error");
        } catch (const qtensor::error& e) {
            INFO(e.what());
            CHECK(std::string(e.what()).find(text) != std::string::npos);
        }
    };
    using cref = kernels::matrix_ref<const float>;
    using mref = kernels::matrix_ref<float>;
    fails([&] { kernels::sgemm(1, cref{a, 4, 3}, cref{b, 5, 3}, 0, mref{c, 4, 5}); },
          "op(b) has 5 rows, expected 3 (op(a) has 3 columns)");
    fails([&] { kernels::sgemm(1, cref{a, 4, 3}, cref{b, 3, 5}, 0, mref{c, 5, 4}); },
          "op(c) has 5 rows, expected 4");
    fails([&] { kernels::sgemm(1, cref{a, 4, 3}, cref{b, 3, 5, 0, true}, 0, mref{c, 4, 5}); }, "op(b) has 5 rows");
    fails([&] { kernels::sgemm(1, cref{a, 4, 3}, cref{b, 3, 4}, 0, mref{c, 4, 5}); }, "op(c) has 5 columns");
    fails([&] { kernels::sgemm(1, cref{a, 4, 3, 2}, cref{b, 3, 5}, 0, mref{c, 4, 5}); }, "a has ld 2 < cols 3");
    fails([&] { kernels::sgemm(1, cref{a, 4, 3, 4}, cref{b, 3, 5}, 0, mref{c, 4, 5}); }, "needs 3 * 4 + 3 floats");
    fails([&] { kernels::sgemm(1, cref{a, 5, 3}, cref{b, 3, 5}, 0, mref{c, 5, 5}); }, "a [5, 3]");
    fails([&] { kernels::sgemm(1, cref{std::span<const float>(a).first(2), 1, 3}, cref{b, 3, 5}, 0, mref{c, 1, 5}); },
          "data has 2");
    fails([&] { kernels::sgemm(1, cref{c, 4, 1, 5}, cref{b, 1, 5}, 0, mref{c, 4, 5}); },
          "c shares memory with a or b");
}
