// Q4_1 byte layout, reference rounding and round-trip error, from docs/schemes.md
// section 7 by hand; the round-trip bound is Q5_1's too (its own hand cases
// are in scheme_q5_1_test). Byte-exactness against ggml is scheme_golden_test's job.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <type_traits>
#include <vector>

#include "qtensor/scheme/q4_1.hpp"
#include "qtensor/scheme/q5_1.hpp"
#include "test_util.hpp"

using namespace qtensor;

static_assert(scheme<q4_1> && quantized_scheme<q4_1> && !has_dot_partner<q4_1>);
static_assert(q4_1::block_elems == 32 && q4_1::block_bytes == 20);
static_assert(q4_1::type_id == ggml_type::q4_1 && static_cast<int>(q4_1::type_id) == 3);
static_assert(offsetof(block_q4_1, d) == 0 && offsetof(block_q4_1, m) == 2 &&
              offsetof(block_q4_1, qs) == 4);

namespace {

struct quantized {
    block_q4_1 block;
    std::array<std::uint8_t, 32> saturated;
    std::array<float, 32> y;
};

quantized run(const std::vector<float>& x) {
    REQUIRE(x.size() == 32);
    quantized r{};
    q4_1::quantize_row(x.data(), &r.block, 32, r.saturated.data());
    q4_1::dequantize_row(&r.block, r.y.data(), 32);
    return r;
}

} // namespace

TEST_CASE("q4_1: min -1, max 14 gives d = 1, m = -1; codes round half up; nibble order") {
    // d = (14 - -1) / 15 = 1, id = 1, code = trunc(x + 1 + 0.5).
    // Low half: x = j - 1 -> code j. High half (element 16 + j), x -> x + 1.5 -> code:
    //   14 -> 15.5 -> 15      13.5 -> 15.0 -> 15    12 -> 13.5 -> 13    11.5 -> 13.0 -> 13
    //   10 -> 11.5 -> 11      9.25 -> 10.75 -> 10   8.75 -> 10.25 -> 10 7 -> 8.5 -> 8
    //   6.5 -> 8.0 -> 8       5 -> 6.5 -> 6         4.49 -> 5.99 -> 5   3.51 -> 5.01 -> 5
    //   2 -> 3.5 -> 3         1.5 -> 3.0 -> 3       0 -> 1.5 -> 1       -0.5 -> 1.0 -> 1
    std::vector<float> x(32);
    for (std::size_t j = 0; j < 16; ++j) x[j] = static_cast<float>(j) - 1.0f;
    const std::array<float, 16> high{14, 13.5f, 12, 11.5f, 10, 9.25f, 8.75f, 7,
                                     6.5f, 5, 4.49f, 3.51f, 2, 1.5f, 0, -0.5f};
    const std::array<int, 16> high_code{15, 15, 13, 13, 11, 10, 10, 8, 8, 6, 5, 5, 3, 3, 1, 1};
    for (std::size_t j = 0; j < 16; ++j) x[16 + j] = high[j];
    const auto r = run(x);
    CHECK(r.block.d.bits == 0x3C00); // fp16(1.0)
    CHECK(r.block.m.bits == 0xBC00); // fp16(-1.0)
    for (std::size_t j = 0; j < 16; ++j) {
        CHECK(r.block.qs[j] == (static_cast<int>(j) | (high_code[j] << 4)));
        // w = code * 1 + -1, exact.
        CHECK(r.y[j] == x[j]);
        CHECK(r.y[16 + j] == static_cast<float>(high_code[j] - 1));
    }
    for (auto s : r.saturated) CHECK(s == 0);
}

TEST_CASE("q4_1: the codes use the fp32 d and min; only the stored ones are rounded") {
    // min 0, max 3: d = 3 / 15 = 0.2f, id = 1 / 0.2f = 5 (rounded), so x = 0.6 -> 3.5 -> 3
    // (0.6f * 5 = 3.0000000298 rounds to 3.0f) and 3 -> 15.5 -> 15. Stored
    // d = fp16(0.2) = 0x3266 = 1638 / 8192; w = code * 1638 / 8192, exact.
    std::vector<float> x(32, 0.0f);
    x[1] = 3.0f;
    x[2] = 0.6f;
    x[17] = 1.5f; // 7.5 + 0.5 = 8.0 -> 8 (half up)
    const auto r = run(x);
    CHECK(r.block.d.bits == 0x3266);
    CHECK(r.block.m.bits == 0x0000);
    CHECK(r.block.qs[0] == 0x00);
    CHECK(r.block.qs[1] == (15 | (8 << 4)));
    CHECK(r.block.qs[2] == 3);
    CHECK(r.y[1] == 15.0f * 1638.0f / 8192.0f);
    CHECK(r.y[2] == 3.0f * 1638.0f / 8192.0f);
    CHECK(r.y[17] == 8.0f * 1638.0f / 8192.0f);
}

// The code of element j, and the largest code, of the two asymmetric schemes.
template <class S>
int code_of(const block_of<S>& b, std::size_t j) {
    if constexpr (std::is_same_v<S, q5_1>) return detail::five_bit_code(b.qs, b.qh, j);
    else return j < 16 ? (b.qs[j] & 15) : (b.qs[j - 16] >> 4);
}
template <class S>
constexpr int top_code = std::is_same_v<S, q5_1> ? 31 : 15;

TEST_CASE_TEMPLATE("q4_1 and q5_1: constant blocks have d = 0 and decode to fp16(min)", S, q4_1, q5_1) {
    // A constant c: min = max = c, d = 0, id = 0, every code trunc(0 + 0.5) = 0.
    const auto check_constant = [](float c, std::uint16_t m_bits, float back) {
        const auto q = quantize<S>(std::vector<float>(32, c));
        CHECK(q[0].d.bits == 0x0000);
        CHECK(q[0].m.bits == m_bits);
        for (std::size_t j = 0; j < 32; ++j) CHECK(code_of<S>(q[0], j) == 0);
        for (const float v : dequantize<S>(q)) {
            CHECK(v == back);
            CHECK(std::signbit(v) == std::signbit(back));
        }
    };
    SUBCASE("2.5") { check_constant(2.5f, 0x4100, 2.5f); }
    SUBCASE("-0.0: m keeps the sign, w = 0 * 0 + -0 = +0") { check_constant(-0.0f, 0x8000, 0.0f); }
    SUBCASE("0.1: the fp16 min is what comes back") {
        check_constant(0.1f, 0x2E66, 0.0999755859375f); // fp16(0.1) = 0.0999755859375
    }
}

TEST_CASE("q4_1: rejects NaN, infinity, and a d or minimum past the fp16 range") {
    std::vector<float> x(64, 1.0f);
    const auto quantize_x = [&] { (void)quantize<q4_1>(x); };
    x[40] = std::numeric_limits<float>::quiet_NaN();
    CHECK(qtensor_test::message_of(quantize_x) ==
          "qtensor: q4_1: element 40 is NaN; quantized schemes need finite input");
    x[40] = -std::numeric_limits<float>::infinity();
    CHECK_THROWS_AS(quantize<q4_1>(x), qtensor::error);
    // Range 1e6 - 1 in block 1: d = 66666.6 rounds to fp16 inf.
    x[40] = 1.0e6f;
    CHECK(qtensor_test::message_of(quantize_x).find("qtensor: q4_1: block 1 needs scale") == 0);
    // Range 982799 - 1: d = 65519.9, below the rounding point 65520.
    x[40] = 982799.0f;
    CHECK_NOTHROW(quantize<q4_1>(x));
    // A block minimum of -70000 rounds to -inf; -65500 rounds to -65504.
    std::fill(x.begin(), x.end(), -70000.0f);
    CHECK(qtensor_test::message_of(quantize_x).find("qtensor: q4_1: block 0 has minimum -70000") == 0);
    std::fill(x.begin(), x.end(), -65500.0f);
    CHECK(quantize<q4_1>(x)[0].m.bits == 0xFBFF);
}

// Round-trip bound. With d and min the fp32 values the codes use, d16 and m16
// the stored fp16 ones, T the top code (15 or 31) and c = floor((x - min)/d + 1/2)
// in 0..T:
//   |x - (min + c*d)| <= d/2, so |x - y| <= d/2 + T*|d16 - d| + |m16 - min| + slack,
// where the slack, 2^-20 * ((T + 1)*d + |y|), covers the fp32 roundings of
// (x - min) * (1/d) (a few ulps of a value <= T + 0.5, times d) and of
// c * d16 + m16. The grid error alone, |x - (min + c*d)|, must come within 2%
// of d/2 somewhere: codes are rounded to nearest, not truncated.
TEST_CASE_TEMPLATE("q4_1 and q5_1: round-trip error is within half a step plus the fp16 roundings", S, q4_1,
                   q5_1) {
    constexpr double top = top_code<S>;
    std::mt19937 rng(41);
    std::normal_distribution<float> gauss(0.0f, 1.0f);
    std::uniform_real_distribution<float> log_scale(-6.0f, 3.0f);
    std::uniform_real_distribution<float> shift(-3.0f, 3.0f);
    constexpr std::size_t blocks = 2000;
    std::vector<float> x(blocks * 32);
    for (std::size_t b = 0; b < blocks; ++b) {
        const float s = std::pow(10.0f, log_scale(rng));
        const float m = b % 2 ? shift(rng) : 0.0f;
        for (std::size_t j = 0; j < 32; ++j) x[b * 32 + j] = s * (gauss(rng) + m);
    }
    std::vector<block_of<S>> q(blocks);
    std::vector<std::uint8_t> sat(x.size());
    S::quantize_row(x.data(), q.data(), x.size(), sat.data());
    const auto y = dequantize<S>(q);

    std::vector<block_of<S>> q2(blocks);
    S::quantize_row(x.data(), q2.data(), x.size());
    CHECK(std::memcmp(q.data(), q2.data(), q.size() * sizeof(block_of<S>)) == 0);

    double worst = 0.0;
    for (std::size_t b = 0; b < blocks; ++b) {
        const float* xb = x.data() + 32 * b;
        const float fmin = *std::min_element(xb, xb + 32);
        const float fmax = *std::max_element(xb, xb + 32);
        const double min = fmin;
        const double d = (fmax - fmin) / static_cast<float>(top);
        const double d16 = fp16_to_fp32(q[b].d);
        const double m16 = fp16_to_fp32(q[b].m);
        for (std::size_t j = 0; j < 32; ++j) {
            const std::size_t i = 32 * b + j;
            const int c = code_of<S>(q[b], j);
            INFO("block " << b << " element " << j << " x=" << x[i] << " y=" << y[i] << " d=" << d
                          << " code=" << c);
            REQUIRE(sat[i] == 0);
            const double grid_err = std::fabs(x[i] - (min + c * d));
            const double bound = 0.5 * d + top * std::fabs(d16 - d) + std::fabs(m16 - min) +
                                 std::ldexp((top + 1.0) * d + std::fabs(y[i]), -20);
            REQUIRE(grid_err <= 0.5 * d + std::ldexp((top + 1.0) * d, -20));
            REQUIRE(std::fabs(x[i] - y[i]) <= bound);
            worst = std::fmax(worst, grid_err / (0.5 * d));
        }
    }
    CHECK(worst > 0.98);
}
