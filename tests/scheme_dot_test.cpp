// Scalar reference dot products q4_0 . q8_0, q5_0 . q8_0 and q8_0 . q8_0: the
// element pairing (docs/schemes.md section 18) by hand, and the stated error
// budget against the exact double-precision sum of the dequantized products.
#include <doctest/doctest.h>

#include "test_util.hpp"

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "qtensor/scheme/q4_0.hpp"
#include "qtensor/scheme/q5_0.hpp"
#include "qtensor/scheme/q8_0.hpp"

using namespace qtensor;

TEST_CASE("q4_0 . q8_0: low nibbles pair with a[0..15], high nibbles with a[16..31]") {
    block_q4_0 w{};
    w.d = fp32_to_fp16(0.5f);
    for (auto& q : w.qs) q = 0x79; // low nibble 9 (+1), high nibble 7 (-1)
    block_q8_0 a{};
    a.d = fp32_to_fp16(2.0f);
    for (int j = 0; j < 32; ++j) a.qs[static_cast<std::size_t>(j)] = static_cast<std::int8_t>(j + 1);
    // sum_{j<16} (+1)(j+1) + sum_{j>=16} (-1)(j+1) = 136 - 392 = -256; times 0.5 * 2.
    CHECK(q4_0::dot_row(&w, &a, 32) == -256.0f);
}

TEST_CASE("q5_0 . q8_0: code j pairs with a[j]; the fifth bit from qh makes the code") {
    block_q5_0 w{};
    w.d = fp32_to_fp16(0.5f);
    w.qs.fill(0x11);                  // bits 0..3 of every code: 1
    w.qh = {0xFF, 0xFF, 0x00, 0x00}; // bit 4 set for elements 0..15: code 17 (+1), else 1 (-15)
    block_q8_0 a{};
    a.d = fp32_to_fp16(2.0f);
    for (int j = 0; j < 32; ++j) a.qs[static_cast<std::size_t>(j)] = static_cast<std::int8_t>(j + 1);
    // sum_{j<16} (+1)(j+1) + sum_{j>=16} (-15)(j+1) = 136 - 15 * 392 = -5744; times 0.5 * 2.
    CHECK(q5_0::dot_row(&w, &a, 32) == -5744.0f);
}

TEST_CASE("q8_0 . q8_0: signed products, one scale product per block") {
    std::vector<block_q8_0> w(2), a(2);
    for (std::size_t b = 0; b < 2; ++b) {
        w[b].d = fp32_to_fp16(b == 0 ? 1.0f : 0.25f);
        a[b].d = fp32_to_fp16(-4.0f);
        for (std::size_t j = 0; j < 32; ++j) {
            w[b].qs[j] = static_cast<std::int8_t>(j % 2 ? -127 : 127);
            a[b].qs[j] = static_cast<std::int8_t>(j % 2 ? -128 : 3);
        }
    }
    // per block: 16 * (127 * 3) + 16 * (-127 * -128) = 6096 + 260096 = 266192
    // block 0: 266192 * (1 * -4); block 1: 266192 * (0.25 * -4)
    CHECK(q8_0::dot_row(w.data(), a.data(), 64) == -266192.0f * 4.0f - 266192.0f);
}

namespace {

std::vector<float> random_row(std::size_t n, std::mt19937& rng) {
    return qtensor_test::spread_blocks(n, 32, rng);
}

template <class W>
void check_budget(std::size_t n, std::uint32_t seed) {
    std::mt19937 rng(seed);
    const auto wq = quantize<W>(random_row(n, rng));
    const auto aq = quantize<q8_0>(random_row(n, rng));
    const qtensor_test::exact_dot e = qtensor_test::exact_dot_of(dequantize<W>(wq), dequantize<q8_0>(aq));
    const double exact = e.sum, magnitude = e.magnitude; // INFO captures them: no structured binding
    const double budget = static_cast<double>(n / 32 + 1) * std::ldexp(1.0, -24) * magnitude;
    const float got = dot<W>(wq, aq);
    INFO("n=" << n << " exact=" << exact << " got=" << got << " budget=" << budget);
    CHECK(std::fabs(got - exact) <= budget);
    // The budget is a real constraint, far below the size of the terms.
    CHECK(budget < 1e-3 * magnitude);
}

} // namespace

TEST_CASE("q4_0, q5_0 and q8_0 . q8_0 stay within (n/32 + 1) * 2^-24 * sum |w a|") {
    for (std::size_t n : {32u, 96u, 4096u, 16384u}) {
        for (std::uint32_t seed = 1; seed <= 5; ++seed) {
            check_budget<q4_0>(n, seed);
            check_budget<q5_0>(n, seed + 50);
            check_budget<q8_0>(n, seed + 100);
        }
    }
}

TEST_CASE("dot: mismatched row lengths throw") {
    std::vector<block_q4_0> w(4);
    std::vector<block_q8_0> a(3);
    CHECK_THROWS_AS(dot<q4_0>(w, a), qtensor::error);
}
