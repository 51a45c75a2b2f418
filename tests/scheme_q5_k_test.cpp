// Q5_K layout, reference quantizer and dot product, from docs/schemes.md
// section 14, by hand, and the input checks it shares with Q4_K. (Its round
// trip is checked with Q2_K's and Q4_K's in scheme_q2_k_test.cpp, its dot
// error budget in scheme_q8_k_test.cpp, its bytes against ggml's in
// scheme_golden_test.cpp.)
//
// As for Q4_K, the grid case uses sub-blocks on an exact grid,
// x = code * 2^-p - c with every code 0..31 present, whose min-max fit has
// error 0: the search keeps it, so scale = 2^-p and min = c.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "qtensor/scheme/q4_k.hpp"
#include "qtensor/scheme/q5_k.hpp"

using namespace qtensor;

static_assert(scheme<q5_k> && quantized_scheme<q5_k> && has_dot_partner<q5_k>);
static_assert(std::is_same_v<q5_k::dot_partner, q8_k>);
static_assert(q5_k::block_elems == 256 && q5_k::block_bytes == 176);
static_assert(q5_k::type_id == ggml_type::q5_k && static_cast<int>(q5_k::type_id) == 13);
static_assert(offsetof(block_q5_k, dmin) == 2 && offsetof(block_q5_k, scales) == 4 &&
              offsetof(block_q5_k, qh) == 16 && offsetof(block_q5_k, qs) == 48);

namespace {

struct quantized {
    block_q5_k block;
    std::array<std::uint8_t, 256> saturated;
    std::array<float, 256> y;
};

quantized run(const std::vector<float>& x) {
    quantized r{};
    q5_k::quantize_row(x.data(), &r.block, 256, r.saturated.data());
    q5_k::dequantize_row(&r.block, r.y.data(), 256);
    return r;
}

// Sub-block j of the grid case: scale 2^-p[j], min c[j], codes pattern(j, l).
constexpr std::array<int, 8> grid_p{3, 7, 6, 4, 0, 1, 2, 5};
constexpr std::array<int, 8> grid_c{5, 63, 40, 17, 33, 50, 21, 46};

// Covers 0..31 in every sub-block (7 is odd), and differs between the two
// sub-blocks that share a byte.
int pattern(std::size_t j, std::size_t l) { return static_cast<int>((7 * l + j) % 32); }

} // namespace

TEST_CASE("q5_k: an all-zero super-block is all zero bytes, skipped whole") {
    const auto r = run(std::vector<float>(256, 0.0f));
    CHECK(r.block.d.bits == 0x0000);
    CHECK(r.block.dmin.bits == 0x0000);
    for (auto s : r.block.scales) CHECK(s == 0);
    for (auto q : r.block.qh) CHECK(q == 0);
    for (auto q : r.block.qs) CHECK(q == 0);
    for (auto s : r.saturated) CHECK(s == 1);
    for (auto v : r.y) CHECK(v == 0.0f);
}

TEST_CASE("q5_k: scale packing, a skipped sub-block, nibbles and fifth bits on a grid block") {
    std::vector<float> x(256);
    for (std::size_t j = 0; j < 8; ++j)
        for (std::size_t l = 0; l < 32; ++l)
            x[32 * j + l] = static_cast<float>(pattern(j, l)) * std::ldexp(1.0f, -grid_p[j]) -
                            static_cast<float>(grid_c[j]);
    const auto r = run(x);

    // max_scale = 1 and max_min = 63, so the 6-bit values are those of the
    // Q4_K grid case: sc_j = nearest_int(63 * 2^-p) = 8, 0 (0.49), 1, 4, 63,
    // 32 (31.5, to even), 16, 2; m_j = c_j. The same twelve bytes.
    const std::array<std::uint8_t, 12> want_scales{0xC8, 0x80, 0x41, 0x04, 0x85, 0xFF,
                                                   0x68, 0x91, 0x1F, 0x20, 0x50, 0xE2};
    for (std::size_t k = 0; k < 12; ++k) CHECK(r.block.scales[k] == want_scales[k]);
    const std::array<int, 8> want_sc{8, 0, 1, 4, 63, 32, 16, 2};
    for (std::size_t j = 0; j < 8; ++j) {
        CHECK(q5_k::scale_of(r.block, j) == want_sc[j]);
        CHECK(q5_k::min_of(r.block, j) == grid_c[j]);
    }
    CHECK(r.block.d.bits == 0x2410);    // fp16(1/63) = 2^-6 * (1 + 16/1024)
    CHECK(r.block.dmin.bits == 0x3C00); // fp16(63/63)

    // Requantizing, (x + c) / (d * sc) = code * 1.00024 (sc = 63) or
    // code * 0.98462 (the others): at most 30.52 for code 31, so every code
    // rounds back. Sub-block 1 (sc = 0) keeps the search's codes, the same.
    for (std::size_t c = 0; c < 4; ++c)
        for (std::size_t l = 0; l < 32; ++l)
            CHECK(r.block.qs[32 * c + l] == ((pattern(2 * c, l) & 15) | ((pattern(2 * c + 1, l) & 15) << 4)));
    for (std::size_t l = 0; l < 32; ++l) {
        int bits = 0;
        for (std::size_t s = 0; s < 8; ++s) bits |= (pattern(s, l) >> 4) << s;
        CHECK(r.block.qh[l] == bits);
    }
    // By hand: qs[0] = elements 0 and 32, codes 0 and 1: 0x10. qs[37] =
    // elements 69 (sub-block 2, l 5: code 37 % 32 = 5) and 101 (sub-block 3,
    // code 6): 0x65. qh[2]: codes 14 + s of sub-blocks s = 0..7, of which
    // s = 2..7 reach 16: bits 2..7, 0xFC. qh[0]: codes s, none: 0.
    CHECK(r.block.qs[0] == 0x10);
    CHECK(r.block.qs[37] == 0x65);
    CHECK(r.block.qh[2] == 0xFC);
    CHECK(r.block.qh[0] == 0x00);

    for (std::size_t e = 0; e < 256; ++e) {
        const std::size_t j = e / 32;
        CHECK(r.saturated[e] == (j == 1 ? 1 : 0));
        CHECK(q5_k::code_at(r.block, e) == pattern(j, e % 32));
        // (d * sc) * code - c, exact in float (22 significant bits at most).
        const double want = 0.015869140625 * want_sc[j] * pattern(j, e % 32) - grid_c[j];
        CHECK(r.y[e] == static_cast<float>(want));
    }
}

TEST_CASE("q5_k: a sub-scale rounded down pushes the top code past 31: clamped and saturated") {
    // Sub-block 0 is 0..31 (scale 1, min 0); sub-block 1 is code * 6.0287
    // and holds the largest scale. So sc_0 = nearest_int(63 / 6.0287) =
    // nearest_int(10.45) = 10 and d = fp16(6.0287 / 63) = 0.095703125: the
    // stored step D = 0.95703 is 4% short. x = 31 gives 32.39 and clamps to
    // 31; x = 30 gives 31.35 and rounds to 31 within half a step.
    std::vector<float> x(256, 0.0f);
    for (std::size_t l = 0; l < 32; ++l) {
        x[l] = static_cast<float>(l);
        x[32 + l] = static_cast<float>(l) * 6.0287f;
    }
    const auto r = run(x);
    REQUIRE(r.block.d.bits == 0x2E20); // 2^-4 * (1 + 544/1024)
    REQUIRE(q5_k::scale_of(r.block, 0) == 10);
    CHECK(q5_k::min_of(r.block, 0) == 0);
    for (std::size_t l = 0; l < 32; ++l) {
        INFO("l=" << l);
        CHECK(r.saturated[l] == (l == 31 ? 1 : 0));
        const int want = static_cast<int>(std::lround(static_cast<double>(l) / 0.95703125));
        CHECK(q5_k::code_at(r.block, l) == std::min(want, 31));
    }
}

TEST_CASE_TEMPLATE("q4_k, q5_k: reject NaN, infinity, and super-scales past the fp16 range", S, q4_k, q5_k) {
    std::vector<float> x(256, 1.0f);
    x[200] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_AS(quantize<S>(x), qtensor::error);
    x[200] = -std::numeric_limits<float>::infinity();
    CHECK_THROWS_AS(quantize<S>(x), qtensor::error);
    // A sub-block alternating 0 and A needs a step near A / code_max, so
    // d near A / (63 code_max): past 65504 for A = 2 * 65504 * 63 * code_max,
    // inside for a quarter of that (Q4_K: 1.2e8 and 3.1e7; Q5_K: 2.6e8, 6.4e7).
    const float overflowing = 2.0f * 65504.0f * 63.0f * static_cast<float>(S::code_max);
    std::fill(x.begin(), x.end(), 0.0f);
    for (std::size_t i = 0; i < 32; i += 2) x[i] = overflowing;
    CHECK_THROWS_AS(quantize<S>(x), qtensor::error);
    for (std::size_t i = 0; i < 32; i += 2) x[i] = overflowing / 4.0f;
    CHECK_NOTHROW(quantize<S>(x));
    // A constant -5e6 sub-block has min 5e6: dmin = 79365 > 65504. -4e6 fits (63492).
    std::fill(x.begin(), x.end(), 0.0f);
    for (std::size_t i = 0; i < 32; ++i) x[i] = -5.0e6f;
    CHECK_THROWS_AS(quantize<S>(x), qtensor::error);
    for (std::size_t i = 0; i < 32; ++i) x[i] = -4.0e6f;
    CHECK_NOTHROW(quantize<S>(x));
}

TEST_CASE("q5_k . q8_k: five-bit codes pair with activations element by element, mins use bsum pairs") {
    // Uniform: d = 1, dmin = 0.5, sc = 3, m = 1, every code 17 (nibble 1,
    // fifth bit set); a.d = 0.25, qa = 2. w = 51 - 0.5 = 50.5, a = 0.5: 256 * 25.25 = 6464.
    block_q5_k w{};
    w.d = fp32_to_fp16(1.0f);
    w.dmin = fp32_to_fp16(0.5f);
    w.scales = {3, 3, 3, 3, 1, 1, 1, 1, 0x13, 0x13, 0x13, 0x13};
    w.qs.fill(0x11);
    w.qh.fill(0xFF);
    block_q8_k a{};
    a.d = 0.25f;
    a.qs.fill(2);
    a.bsums.fill(32);
    CHECK(q5_k::dot_row(&w, &a, 256) == 6464.0f);

    // One-hot elements, the Q4_K test's with a fifth bit:
    //   e = 5:   low nibble of qs[5] = 9,    bit 0 of qh[5]: code 25, sub-block 0 (sc 40, m 10), qa 3
    //   e = 100: high nibble of qs[36] = 13, bit 3 of qh[4]: code 29, sub-block 3 (sc 7, m 50), qa -2
    //   e = 230: high nibble of qs[102] = 6, bit 7 of qh[6]: code 22, sub-block 7 (sc 33, m 20), qa 5
    // isum = 40*25*3 + 7*29*-2 + 33*22*5 = 6224; summs = 10*3 + 50*-2 + 20*5 = 30;
    // dot = 6224 - 0.5 * 30 = 6209.
    w.scales = {40, 0, 0, 7 | 2 << 6, 10, 0, 0, 50 | 1 << 6, 0, 0, 0, 1 | 4 << 4};
    w.qs.fill(0);
    w.qh.fill(0);
    w.qs[5] = 9;
    w.qs[36] = 13 << 4;
    w.qs[102] = 6 << 4;
    w.qh[5] = 1;
    w.qh[4] = 1 << 3;
    w.qh[6] = 1 << 7;
    CHECK(q5_k::code_at(w, 5) == 25);
    CHECK(q5_k::code_at(w, 100) == 29);
    CHECK(q5_k::code_at(w, 230) == 22);
    CHECK(q5_k::code_at(w, 36) == 0); // qh[4] bit 1 (element 32 + 4), not set
    a.d = 1.0f;
    a.qs.fill(0);
    a.bsums.fill(0);
    a.qs[5] = 3;
    a.qs[100] = -2;
    a.qs[230] = 5;
    a.bsums[0] = 3;
    a.bsums[6] = -2;
    a.bsums[14] = 5;
    CHECK(q5_k::dot_row(&w, &a, 256) == 6209.0f);
}
