// Q2_K layout, reference quantizer and dot product, from docs/schemes.md
// sections 11 and 17, by hand; and the round-trip properties the K-quants with a min (Q2_K, Q4_K, Q5_K)
// owe to their requantization rule.
//
// The hand cases use sub-blocks that lie exactly on a grid,
// x = code * 2^-p - c: the search's first (min-max) fit then has error 0,
// which no trial can beat (strict <), so scale = 2^-p, min = c and the codes
// are known without running the search in one's head.
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <type_traits>
#include <vector>

#include "qtensor/scheme/q2_k.hpp"
#include "qtensor/scheme/q4_k.hpp"
#include "qtensor/scheme/q5_k.hpp"

using namespace qtensor;

static_assert(scheme<q2_k> && quantized_scheme<q2_k> && has_dot_partner<q2_k>);
static_assert(std::is_same_v<q2_k::dot_partner, q8_k>);
static_assert(q2_k::block_elems == 256 && q2_k::block_bytes == 84);
static_assert(q2_k::type_id == ggml_type::q2_k && static_cast<int>(q2_k::type_id) == 10);
static_assert(offsetof(block_q2_k, qs) == 16 && offsetof(block_q2_k, d) == 80 &&
              offsetof(block_q2_k, dmin) == 82);

namespace {

struct quantized {
    block_q2_k block;
    std::array<std::uint8_t, 256> saturated;
    std::array<float, 256> y;
};

quantized run(const std::vector<float>& x) {
    quantized r{};
    q2_k::quantize_row(x.data(), &r.block, 256, r.saturated.data());
    q2_k::dequantize_row(&r.block, r.y.data(), 256);
    return r;
}

} // namespace

TEST_CASE("q2_k: an all-zero super-block is all zero bytes, skipped whole") {
    const auto r = run(std::vector<float>(256, 0.0f));
    for (auto s : r.block.scales) CHECK(s == 0);
    for (auto q : r.block.qs) CHECK(q == 0);
    CHECK(r.block.d.bits == 0x0000);
    CHECK(r.block.dmin.bits == 0x0000);
    for (auto s : r.saturated) CHECK(s == 1); // d = 0: every sub-block skipped
    for (auto v : r.y) CHECK(v == 0.0f);
}

TEST_CASE("q2_k: a constant negative sub-block takes the mx == mn path") {
    // Sub-block 0 = -2: fit scale 0, min 2. The rest is 0: scale 0, min -0.
    // max_scale = 0 -> s_j = 0, d = 0. max_min = 2 -> m_0 = nearest_int(7.5 * 2) = 15,
    // dmin = fp16(2/15 = 0.1333..) = 2^-3 * (1 + 68/1024) = 0x3044.
    std::vector<float> x(256, 0.0f);
    for (std::size_t i = 0; i < 16; ++i) x[i] = -2.0f;
    const auto r = run(x);
    CHECK(r.block.scales[0] == 0xF0);
    for (std::size_t j = 1; j < 16; ++j) CHECK(r.block.scales[j] == 0);
    CHECK(r.block.d.bits == 0x0000);
    CHECK(r.block.dmin.bits == 0x3044);
    for (auto q : r.block.qs) CHECK(q == 0);
    for (std::size_t i = 0; i < 16; ++i) CHECK(r.y[i] == -0.13330078125f * 15.0f); // exact
    for (std::size_t i = 16; i < 256; ++i) CHECK(r.y[i] == 0.0f);
}

namespace {

// Sub-block j of the grid case: scale 2^-p[j], min c[j], codes pattern(j, i).
constexpr std::array<int, 16> grid_p{0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5, 6, 0, 3, 1};
constexpr std::array<int, 16> grid_c{15, 0, 7, 3, 12, 9, 1, 4, 15, 8, 2, 11, 6, 5, 10, 13};

// Covers 0..3 in every sub-block (so mx - mn = 3 * 2^-p), differently per sub-block.
int pattern(std::size_t j, std::size_t i) {
    return static_cast<int>(((j % 2 ? 3 : 1) * i + j / 3) % 4);
}

} // namespace

TEST_CASE("q2_k: 4-bit scales, skipped sub-blocks and the 2-bit packing on a grid block") {
    std::vector<float> x(256);
    for (std::size_t j = 0; j < 16; ++j)
        for (std::size_t i = 0; i < 16; ++i)
            x[16 * j + i] = static_cast<float>(pattern(j, i)) * std::ldexp(1.0f, -grid_p[j]) -
                            static_cast<float>(grid_c[j]);
    const auto r = run(x);

    // max_scale = 1, so s_j = nearest_int(15 * 2^-p): p = 0..6 -> 15, 7.5 -> 8,
    // 3.75 -> 4, 1.875 -> 2, 0.9375 -> 1, 0.47 -> 0, 0.23 -> 0.
    // max_min = 15, so m_j = c_j. Byte = s | m << 4.
    const std::array<std::uint8_t, 16> want_scales{0xFF, 0x08, 0x74, 0x32, 0xC1, 0x90, 0x1F, 0x48,
                                                   0xF4, 0x82, 0x21, 0xB0, 0x60, 0x5F, 0xA2, 0xD8};
    for (std::size_t j = 0; j < 16; ++j) CHECK(r.block.scales[j] == want_scales[j]);
    CHECK(r.block.d.bits == 0x2C44);    // fp16(1/15) = 2^-4 * (1 + 68/1024)
    CHECK(r.block.dmin.bits == 0x3C00); // fp16(15/15)

    // Requantizing, (x + c) / (d * s) = code * 2^-p / (d * s) is code * 1.00024
    // (s = 15) or code * 0.9377 (s = 8, 4, 2, 1): it rounds back to the code.
    // Sub-blocks 5, 11, 12 (s = 0) keep the search's codes, the same pattern.
    // Element e = 128h + 32s + l sits in qs[32h + l] at bits 2s.
    for (std::size_t h = 0; h < 2; ++h)
        for (std::size_t l = 0; l < 32; ++l) {
            int want = 0;
            for (std::size_t s = 0; s < 4; ++s) {
                const std::size_t e = 128 * h + 32 * s + l;
                want |= pattern(e / 16, e % 16) << (2 * s);
            }
            CHECK(r.block.qs[32 * h + l] == want);
        }
    // Two bytes by hand: qs[0] = elements 0, 32, 64, 96 = codes 0, 0, 1, 2;
    // qs[49] = elements 145, 177, 209, 241 = codes 2, 2, 3, 0.
    CHECK(r.block.qs[0] == 0x90);
    CHECK(r.block.qs[49] == 0x3A);

    for (std::size_t e = 0; e < 256; ++e) {
        const std::size_t j = e / 16;
        const bool skipped = j == 5 || j == 11 || j == 12;
        CHECK(r.saturated[e] == (skipped ? 1 : 0));
        // (d * s) * code - c, exact in float (at most 18 significant bits).
        const int s = want_scales[j] & 15;
        const double want = 0.066650390625 * s * pattern(j, e % 16) - grid_c[j];
        CHECK(r.y[e] == static_cast<float>(want));
    }
}

TEST_CASE("q2_k: a rounded-down min clamps codes at 0 and marks them saturated") {
    // Sub-block 0: -8 + code (scale 1, min 8). Sub-block 1: -5 + code/8
    // (scale 1/8, min 5). The rest 0 (skipped: s = 0).
    // s_0 = 15, s_1 = nearest_int(1.875) = 2; d = fp16(1/15) = 0.066650390625.
    // m_0 = nearest_int(1.875 * 8) = 15, m_1 = nearest_int(9.375) = 9;
    // dmin = fp16(8/15) = 0.533203125 (0x3844).
    // Sub-block 1: dm = 4.798828125, D = 0.13330078125, (x + dm) / D for
    // code 0, 1, 2, 3 = -1.51, -0.57, 0.37, 1.30 -> -2, -1, 0, 1 -> 0*, 0*, 0, 1.
    // Sub-block 0: dm = 7.998046875, D = 0.999755859375: code - 0.002 -> code.
    std::vector<float> x(256, 0.0f);
    for (std::size_t i = 0; i < 16; ++i) {
        x[i] = static_cast<float>(pattern(0, i)) - 8.0f;
        x[16 + i] = static_cast<float>(pattern(1, i)) / 8.0f - 5.0f;
    }
    const auto r = run(x);
    CHECK(r.block.scales[0] == 0xFF);
    CHECK(r.block.scales[1] == 0x92);
    CHECK(r.block.d.bits == 0x2C44);
    CHECK(r.block.dmin.bits == 0x3844);
    const std::array<int, 4> requantized{0, 0, 0, 1};
    const std::array<int, 4> clamped{1, 1, 0, 0};
    for (std::size_t i = 0; i < 16; ++i) {
        CHECK(q2_k::code_at(r.block, i) == pattern(0, i));
        CHECK(r.saturated[i] == 0);
        const auto c = static_cast<std::size_t>(pattern(1, i));
        CHECK(q2_k::code_at(r.block, 16 + i) == requantized[c]);
        CHECK(r.saturated[16 + i] == clamped[c]);
        CHECK(r.y[16 + i] == (requantized[c] ? 0.13330078125f - 4.798828125f : -4.798828125f));
    }
    for (std::size_t e = 32; e < 256; ++e) CHECK(r.saturated[e] == 1);
}

TEST_CASE("q2_k: rejects NaN, infinity, and super-scales past the fp16 range") {
    std::vector<float> x(256, 1.0f);
    x[77] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_AS(quantize<q2_k>(x), qtensor::error);
    x[77] = std::numeric_limits<float>::infinity();
    CHECK_THROWS_AS(quantize<q2_k>(x), qtensor::error);
    // A constant 4e6 sub-block fits scale 4e6/3: d = 88889 > 65504.
    std::fill(x.begin(), x.end(), 0.0f);
    for (std::size_t i = 0; i < 16; ++i) x[i] = 4.0e6f;
    CHECK_THROWS_AS(quantize<q2_k>(x), qtensor::error);
    // A constant -2e7 sub-block has min 2e7: dmin = 1.3e6 > 65504. -9e5 fits (60000).
    for (std::size_t i = 0; i < 16; ++i) x[i] = -2.0e7f;
    CHECK_THROWS_AS(quantize<q2_k>(x), qtensor::error);
    for (std::size_t i = 0; i < 16; ++i) x[i] = -9.0e5f;
    CHECK_NOTHROW(quantize<q2_k>(x));
}

TEST_CASE("q2_k . q8_k: codes pair with activations element by element, mins use bsums") {
    // Uniform: d = 1, dmin = 0.5, s = 3, m = 1, every code 1; a.d = 0.25, qa = 2.
    // w = 3 - 0.5 = 2.5, a = 0.5: 256 * 1.25 = 320.
    block_q2_k w{};
    w.d = fp32_to_fp16(1.0f);
    w.dmin = fp32_to_fp16(0.5f);
    w.scales.fill(0x13);
    w.qs.fill(0x55);
    block_q8_k a{};
    a.d = 0.25f;
    a.qs.fill(2);
    a.bsums.fill(32);
    CHECK(q2_k::dot_row(&w, &a, 256) == 320.0f);

    // One-hot: element 37 (h 0, s 1, l 5: qs[5] bits 2..3) has code 2 in
    // sub-block 2 (s = 5, m = 3); element 200 (h 1, s 2, l 8: qs[40] bits 4..5)
    // code 3 in sub-block 12 (s = 4, m = 2). qa[37] = 7, qa[200] = -3, a.d = 1.
    // isum = 5 * 2 * 7 + 4 * 3 * -3 = 34; summs = 3 * 7 + 2 * -3 = 15;
    // dot = 34 - 0.5 * 15 = 26.5.
    w.scales.fill(0);
    w.qs.fill(0);
    w.scales[2] = 0x35;
    w.scales[12] = 0x24;
    w.qs[5] = 2 << 2;
    w.qs[40] = 3 << 4;
    a.d = 1.0f;
    a.qs.fill(0);
    a.bsums.fill(0);
    a.qs[37] = 7;
    a.qs[200] = -3;
    a.bsums[2] = 7;
    a.bsums[12] = -3;
    CHECK(q2_k::code_at(w, 37) == 2);
    CHECK(q2_k::code_at(w, 200) == 3);
    CHECK(q2_k::dot_row(&w, &a, 256) == 26.5f);
}

// Round-trip properties of Q2_K, Q4_K and Q5_K that follow from the requantization
// rule (step 3), with D = fp32(d) * s_j and dm = fp32(dmin) * m_j read back
// from the block:
//   - D == 0: the sub-block is marked saturated and its output is -dm.
//   - code not clamped: |(x + dm)/D - code| <= 1/2, so
//       |y - x| <= D/2 + 2^-21 * (|x| + dm + D * code_max)
//     (the slack covers the roundings of x + dm, the division, and y).
//   - code clamped (saturated): code 0 with (x + dm)/D < -1/2, or code_max
//     with (x + dm)/D > code_max + 1/2: x lies beyond the end of the grid.
// And the error must reach about D/2 somewhere (the bound is not loose).
TEST_CASE_TEMPLATE("k-quant round trip follows the requantization rule", S, q2_k, q4_k, q5_k) {
    std::mt19937 rng(S::code_max);
    std::normal_distribution<float> gauss(0.0f, 1.0f);
    std::uniform_real_distribution<float> log_scale(-8.0f, 4.0f);
    std::uniform_real_distribution<float> shift(-1.0f, 1.0f);
    constexpr std::size_t blocks = 300;
    std::vector<float> x(blocks * 256);
    for (std::size_t b = 0; b < blocks; ++b) {
        // Some blocks shifted, so mins and all-positive sub-blocks occur.
        const float s = std::pow(10.0f, log_scale(rng));
        const float m = b % 3 == 0 ? 2.0f * shift(rng) : 0.0f;
        for (std::size_t j = 0; j < 256; ++j) x[b * 256 + j] = s * (gauss(rng) + m);
    }
    std::vector<block_of<S>> q(blocks);
    std::vector<std::uint8_t> sat(x.size());
    S::quantize_row(x.data(), q.data(), x.size(), sat.data());
    const auto y = dequantize<S>(q);

    // Without the saturated output the bytes are the same.
    std::vector<block_of<S>> q2(blocks);
    S::quantize_row(x.data(), q2.data(), x.size());
    CHECK(std::memcmp(q.data(), q2.data(), q.size() * sizeof(block_of<S>)) == 0);

    double worst = 0.0;
    std::size_t clamped = 0, skipped = 0;
    for (std::size_t b = 0; b < blocks; ++b) {
        const double d = fp16_to_fp32(q[b].d);
        const double dmin = fp16_to_fp32(q[b].dmin);
        for (std::size_t e = 0; e < 256; ++e) {
            const std::size_t i = b * 256 + e;
            const std::size_t j = e / S::sub_elems;
            const double D = d * S::scale_of(q[b], j);
            const double dm = dmin * S::min_of(q[b], j);
            const int code = S::code_at(q[b], e);
            const double xi = x[i];
            INFO("block " << b << " element " << e << " x=" << xi << " y=" << y[i] << " D=" << D
                          << " dm=" << dm << " code=" << code);
            if (D == 0.0) {
                REQUIRE(sat[i] == 1);
                REQUIRE(y[i] == static_cast<float>(-dm));
                ++skipped;
                continue;
            }
            const double v = (xi + dm) / D;
            if (sat[i] == 0) {
                REQUIRE(std::fabs(v - code) <= 0.5 + 1e-5);
                const double slack = std::ldexp(std::fabs(xi) + dm + D * S::code_max, -21);
                const double err = std::fabs(xi - y[i]);
                REQUIRE(err <= 0.5 * D + slack);
                worst = std::fmax(worst, err / (0.5 * D));
            } else {
                REQUIRE((code == 0 || code == S::code_max));
                REQUIRE((code == 0 ? v < -0.5 + 1e-5 : v > S::code_max + 0.5 - 1e-5));
                ++clamped;
            }
        }
    }
    CHECK(worst > 0.98);
    CHECK(clamped > 0); // both kinds of saturation occur in this data
    CHECK(skipped > 0);
}
