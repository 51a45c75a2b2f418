// Q8_K layout and reference rounding, from docs/schemes.md section 10, by hand;
// round-trip error against a bound derived from the rule; and the error
// budget of the dot products Q8_K is the partner of (q2_k, q4_k, q5_k).
#include <doctest/doctest.h>

#include "test_util.hpp"

#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "qtensor/scheme/q2_k.hpp"
#include "qtensor/scheme/q4_k.hpp"
#include "qtensor/scheme/q5_k.hpp"
#include "qtensor/scheme/q8_k.hpp"

using namespace qtensor;

static_assert(scheme<q8_k> && quantized_scheme<q8_k>);
static_assert(q8_k::block_elems == 256 && q8_k::block_bytes == 292);
static_assert(q8_k::type_id == ggml_type::q8_k && static_cast<int>(q8_k::type_id) == 15);
static_assert(offsetof(block_q8_k, qs) == 4 && offsetof(block_q8_k, bsums) == 260);

TEST_CASE("q8_k: a positive max maps to -127 and d is negative") {
    // max = 2 (first of +-2): iscale = -127/2 = -63.5, exact.
    std::vector<float> x(256, 0.0f);
    x[3] = 2.0f;    // -127
    x[7] = -2.0f;   // same magnitude, later: not the max; +127
    x[8] = 1.0f;    // -63.5 -> -64 (tie to even)
    x[9] = 0.5f;    // -31.75 -> -32
    x[20] = -0.25f; // 15.875 -> 16
    std::array<std::uint8_t, 256> sat{};
    block_q8_k b{};
    q8_k::quantize_row(x.data(), &b, 256, sat.data());
    CHECK(b.d == 1.0f / -63.5f);
    CHECK(b.d < 0.0f);
    CHECK(b.qs[3] == -127);
    CHECK(b.qs[7] == 127);
    CHECK(b.qs[8] == -64);
    CHECK(b.qs[9] == -32);
    CHECK(b.qs[20] == 16);
    CHECK(b.qs[0] == 0);
    // bsums[0] = -127 + 127 - 64 - 32 = -96; bsums[1] = 16 (element 20); rest 0.
    CHECK(b.bsums[0] == -96);
    CHECK(b.bsums[1] == 16);
    for (std::size_t g = 2; g < 16; ++g) CHECK(b.bsums[g] == 0);
    for (auto s : sat) CHECK(s == 0);
}

TEST_CASE("q8_k: nearest_int rounds half to even in both directions") {
    // max = -127/128 at element 100: iscale = 128 exactly, d = +1/128.
    std::vector<float> x(256, 0.0f);
    x[100] = -127.0f / 128.0f; // -127
    x[0] = 1.5f / 128.0f;      // 1.5 -> 2
    x[1] = 2.5f / 128.0f;      // 2.5 -> 2
    x[2] = -0.5f / 128.0f;     // -0.5 -> 0
    x[3] = -1.5f / 128.0f;     // -1.5 -> -2
    x[255] = 3.5f / 128.0f;    // 3.5 -> 4
    const auto b = quantize<q8_k>(x);
    CHECK(b[0].d == 1.0f / 128.0f);
    CHECK(b[0].qs[100] == -127);
    CHECK(b[0].qs[0] == 2);
    CHECK(b[0].qs[1] == 2);
    CHECK(b[0].qs[2] == 0);
    CHECK(b[0].qs[3] == -2);
    CHECK(b[0].qs[255] == 4);
    CHECK(b[0].bsums[0] == 2);
    CHECK(b[0].bsums[6] == -127); // element 100 is in group 6
    CHECK(b[0].bsums[15] == 4);
}

TEST_CASE("q8_k: an all-zero block stores d = +0, zero codes and zero bsums") {
    block_q8_k b{};
    b.d = 5.0f;
    b.qs.fill(9);
    b.bsums.fill(1234); // ggml would leave these; we write the true sums
    const std::vector<float> x(256, 0.0f);
    q8_k::quantize_row(x.data(), &b, 256);
    CHECK(std::bit_cast<std::uint32_t>(b.d) == 0u);
    for (auto q : b.qs) CHECK(q == 0);
    for (auto s : b.bsums) CHECK(s == 0);
}

TEST_CASE("q8_k: |max| below 127/FLT_MAX gives ggml's bytes: zero codes, d = -+0") {
    // -127 / 2e-37 overflows to -inf; d = 1/-inf = -0.0.
    std::vector<float> x(256, 0.0f);
    x[5] = 2e-37f;
    x[6] = -1e-37f;
    std::array<std::uint8_t, 256> sat{};
    block_q8_k b{};
    b.bsums.fill(7);
    q8_k::quantize_row(x.data(), &b, 256, sat.data());
    CHECK(std::bit_cast<std::uint32_t>(b.d) == 0x80000000u);
    for (auto q : b.qs) CHECK(q == 0);
    for (auto s : b.bsums) CHECK(s == 0);
    for (auto s : sat) CHECK(s == 0);
    x[5] = -2e-37f; // negative max: iscale = +inf, d = +0
    q8_k::quantize_row(x.data(), &b, 256);
    CHECK(std::bit_cast<std::uint32_t>(b.d) == 0u);
}

TEST_CASE("q8_k: dequantize is d * q in element order") {
    block_q8_k b{};
    b.d = -0.25f;
    for (std::size_t j = 0; j < 256; ++j) b.qs[j] = static_cast<std::int8_t>(static_cast<int>(j) - 128);
    std::vector<float> y(256);
    q8_k::dequantize_row(&b, y.data(), 256);
    for (std::size_t j = 0; j < 256; ++j) CHECK(y[j] == -0.25f * static_cast<float>(static_cast<int>(j) - 128));
}

TEST_CASE("q8_k: rejects NaN and infinity") {
    std::vector<float> x(512, 1.0f);
    x[300] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_AS(quantize<q8_k>(x), qtensor::error);
    x[300] = -std::numeric_limits<float>::infinity();
    CHECK_THROWS_AS(quantize<q8_k>(x), qtensor::error);
    x[300] = std::numeric_limits<float>::max(); // finite: the fp32 scale holds it
    CHECK_NOTHROW(quantize<q8_k>(x));
}

// With q = nearest_int(fl(iscale * x)), |q - iscale*x| <= 1/2 + |iscale*x| u,
// and w = fl(fl(1/iscale) * q). Expanding the three roundings (u = 2^-24):
//   |w - x| <= |d|/2 * (1 + 2u) + 3u |x| + O(u^2) <= |d|/2 * (1 + 2^-20) + 2^-21 amax.
TEST_CASE("q8_k round trip: |x - y| <= |d|/2 + rounding, and |d|/2 is reached") {
    std::mt19937 rng(3);
    std::normal_distribution<float> gauss(0.0f, 1.0f);
    std::uniform_real_distribution<float> log_scale(-30.0f, 30.0f);
    constexpr std::size_t blocks = 400;
    std::vector<float> x(blocks * 256);
    for (std::size_t b = 0; b < blocks; ++b) {
        const float s = std::pow(10.0f, log_scale(rng));
        for (std::size_t j = 0; j < 256; ++j) x[b * 256 + j] = s * gauss(rng);
    }
    std::vector<block_q8_k> q(blocks);
    std::vector<std::uint8_t> sat(x.size());
    q8_k::quantize_row(x.data(), q.data(), x.size(), sat.data());
    const auto y = dequantize<q8_k>(q);
    double worst = 0.0;
    for (std::size_t b = 0; b < blocks; ++b) {
        double amax = 0.0;
        int bsum_check = 0;
        for (std::size_t j = 0; j < 256; ++j) amax = std::fmax(amax, std::fabs(x[b * 256 + j]));
        const double half_d = 0.5 * std::fabs(static_cast<double>(q[b].d));
        for (std::size_t j = 0; j < 256; ++j) {
            const std::size_t i = b * 256 + j;
            const double err = std::fabs(static_cast<double>(x[i]) - y[i]);
            REQUIRE(err <= half_d * (1.0 + std::ldexp(1.0, -20)) + std::ldexp(amax, -21));
            REQUIRE(sat[i] == 0);
            worst = std::fmax(worst, err / half_d);
            bsum_check += q[b].qs[j];
        }
        int bsum_total = 0;
        for (auto s : q[b].bsums) bsum_total += s;
        CHECK(bsum_total == bsum_check);
    }
    CHECK(worst > 0.99);
}

namespace {

// Some super-blocks with large mins (odd ones shifted by half their scale).
std::vector<float> random_row(std::size_t n, std::mt19937& rng) {
    return qtensor_test::spread_blocks(n, 256, rng, -3.0f, 3.0f, 0.5f);
}

} // namespace

// The budget stated on q2_k::dot_row and detail::dot_k4_row (q4_k, q5_k):
//   |dot - exact| <= (n/256 + 6) * 2^-24 * S,
//   S = sum_i (|d s_j q_i a_i| + |dmin m_j a_i|),
// where exact = sum_i w_i * a_i over the dequantized rows. Each w_i * a_i is
// exact in double (24 + 24 bits); the double sum adds at most n * 2^-53 * S.
TEST_CASE_TEMPLATE("k-quant . q8_k stays within (n/256 + 6) * 2^-24 * S", W, q2_k, q4_k, q5_k) {
    for (std::size_t n : {256u, 1024u, 4096u, 16384u}) {
        for (std::uint32_t seed = 1; seed <= 5; ++seed) {
            std::mt19937 rng(seed + 1000u * W::code_max);
            const auto wq = quantize<W>(random_row(n, rng));
            const auto aq = quantize<q8_k>(random_row(n, rng));
            const auto w = dequantize<W>(wq);
            const auto a = dequantize<q8_k>(aq);
            double exact = 0.0, magnitude = 0.0;
            for (std::size_t i = 0; i < n; ++i) {
                const auto& blk = wq[i / 256];
                const std::size_t e = i % 256, j = e / W::sub_elems;
                const double scaled = static_cast<double>(fp16_to_fp32(blk.d)) * W::scale_of(blk, j) *
                                      W::code_at(blk, e);
                const double offset = static_cast<double>(fp16_to_fp32(blk.dmin)) * W::min_of(blk, j);
                exact += static_cast<double>(w[i]) * a[i];
                magnitude += (std::fabs(scaled) + std::fabs(offset)) * std::fabs(static_cast<double>(a[i]));
            }
            const double budget = (static_cast<double>(n / 256 + 6) * std::ldexp(1.0, -24) +
                                   static_cast<double>(n) * std::ldexp(1.0, -53)) * magnitude;
            const float got = dot<W>(wq, aq);
            INFO("n=" << n << " seed=" << seed << " exact=" << exact << " got=" << got << " budget=" << budget);
            CHECK(std::fabs(got - exact) <= budget);
            CHECK(budget < 1e-4 * magnitude); // a real constraint
        }
    }
}

TEST_CASE("k-quant dot: mismatched row lengths throw") {
    std::vector<block_q4_k> w(2);
    std::vector<block_q8_k> a(3);
    CHECK_THROWS_AS(dot<q4_k>(w, a), qtensor::error);
}
