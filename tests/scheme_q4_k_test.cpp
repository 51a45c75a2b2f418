// Q4_K layout, reference quantizer and dot product, from docs/schemes.md
// sections 13 and 17, by hand. (The round-trip properties Q4_K shares with Q2_K are
// checked in scheme_q2_k_test.cpp; the dot error budget in scheme_q8_k_test.cpp;
// the input checks in scheme_q5_k_test.cpp.)
//
// As for Q2_K, the hand cases use sub-blocks on an exact grid,
// x = code * 2^-p - c, whose min-max fit has error 0: the search keeps it,
// so scale = 2^-p and min = c.
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "qtensor/scheme/q4_k.hpp"

using namespace qtensor;

static_assert(scheme<q4_k> && quantized_scheme<q4_k> && has_dot_partner<q4_k>);
static_assert(std::is_same_v<q4_k::dot_partner, q8_k>);
static_assert(q4_k::block_elems == 256 && q4_k::block_bytes == 144);
static_assert(q4_k::type_id == ggml_type::q4_k && static_cast<int>(q4_k::type_id) == 12);
static_assert(offsetof(block_q4_k, dmin) == 2 && offsetof(block_q4_k, scales) == 4 &&
              offsetof(block_q4_k, qs) == 16);

namespace {

struct quantized {
    block_q4_k block;
    std::array<std::uint8_t, 256> saturated;
    std::array<float, 256> y;
};

quantized run(const std::vector<float>& x) {
    quantized r{};
    q4_k::quantize_row(x.data(), &r.block, 256, r.saturated.data());
    q4_k::dequantize_row(&r.block, r.y.data(), 256);
    return r;
}

} // namespace

TEST_CASE("q4_k: an all-zero super-block is all zero bytes, skipped whole") {
    const auto r = run(std::vector<float>(256, 0.0f));
    CHECK(r.block.d.bits == 0x0000);
    CHECK(r.block.dmin.bits == 0x0000);
    for (auto s : r.block.scales) CHECK(s == 0);
    for (auto q : r.block.qs) CHECK(q == 0);
    for (auto s : r.saturated) CHECK(s == 1);
    for (auto v : r.y) CHECK(v == 0.0f);
}

TEST_CASE("q4_k: a constant negative sub-block takes the mx == mn path") {
    // Sub-block 0 = -3: fit scale 0, min 3; the rest 0. max_scale = 0, so
    // inv_scale = 0, sc_j = 0, d = 0. max_min = 3: m_0 = nearest_int(21 * 3) = 63,
    // dmin = fp16(3/63) = 2^-5 * (1 + 536/1024) = 0x2A18.
    std::vector<float> x(256, 0.0f);
    for (std::size_t i = 0; i < 32; ++i) x[i] = -3.0f;
    const auto r = run(x);
    CHECK(r.block.d.bits == 0x0000);
    CHECK(r.block.dmin.bits == 0x2A18);
    for (std::size_t k = 0; k < 12; ++k) CHECK(r.block.scales[k] == (k == 4 ? 63 : 0));
    for (auto q : r.block.qs) CHECK(q == 0);
    for (std::size_t i = 0; i < 32; ++i) CHECK(r.y[i] == -0.047607421875f * 63.0f); // exact
    for (std::size_t i = 32; i < 256; ++i) CHECK(r.y[i] == 0.0f);
}

namespace {

// Sub-block j of the grid case: scale 2^-p[j], min c[j], codes pattern(j, l).
constexpr std::array<int, 8> grid_p{3, 7, 6, 4, 0, 1, 2, 5};
constexpr std::array<int, 8> grid_c{5, 63, 40, 17, 33, 50, 21, 46};

// Covers 0..15 in every sub-block (so mx - mn = 15 * 2^-p), and differs
// between the two sub-blocks that share a byte.
int pattern(std::size_t j, std::size_t l) { return static_cast<int>((7 * l + j) % 16); }

} // namespace

TEST_CASE("q4_k: 6-bit scale packing, a skipped sub-block and the nibble order on a grid block") {
    std::vector<float> x(256);
    for (std::size_t j = 0; j < 8; ++j)
        for (std::size_t l = 0; l < 32; ++l)
            x[32 * j + l] = static_cast<float>(pattern(j, l)) * std::ldexp(1.0f, -grid_p[j]) -
                            static_cast<float>(grid_c[j]);
    const auto r = run(x);

    // max_scale = 1: sc_j = nearest_int(63 * 2^-p) = 8, 0 (0.49), 1, 4, 63,
    // 32 (31.5, to even), 16, 2. max_min = 63: m_j = c_j.
    //   bytes 0..3:  sc_j | (sc_{j+4} >> 4) << 6 = 8|3<<6, 0|2<<6, 1|1<<6, 4|0
    //   bytes 4..7:  m_j  | (m_{j+4} >> 4) << 6  = 5|2<<6, 63|3<<6, 40|1<<6, 17|2<<6
    //   bytes 8..11: (sc_{j+4} & 15) | (m_{j+4} & 15) << 4 = 15|1<<4, 0|2<<4, 0|5<<4, 2|14<<4
    const std::array<std::uint8_t, 12> want_scales{0xC8, 0x80, 0x41, 0x04, 0x85, 0xFF,
                                                   0x68, 0x91, 0x1F, 0x20, 0x50, 0xE2};
    for (std::size_t k = 0; k < 12; ++k) CHECK(r.block.scales[k] == want_scales[k]);
    const std::array<int, 8> want_sc{8, 0, 1, 4, 63, 32, 16, 2};
    for (std::size_t j = 0; j < 8; ++j) {
        CHECK(q4_k::scale_of(r.block, j) == want_sc[j]);
        CHECK(q4_k::min_of(r.block, j) == grid_c[j]);
    }
    CHECK(r.block.d.bits == 0x2410);    // fp16(1/63) = 2^-6 * (1 + 16/1024)
    CHECK(r.block.dmin.bits == 0x3C00); // fp16(63/63)

    // Requantizing, (x + c) / (d * sc) = code * 1.00024 (sc = 63) or
    // code * 0.9846 (the others): it rounds back to the code. Sub-block 1
    // (sc = 0) keeps the search's codes, the same pattern.
    // Element 64c + l: low nibble of qs[32c + l]; 64c + 32 + l: high nibble.
    for (std::size_t c = 0; c < 4; ++c)
        for (std::size_t l = 0; l < 32; ++l)
            CHECK(r.block.qs[32 * c + l] == (pattern(2 * c, l) | (pattern(2 * c + 1, l) << 4)));
    // By hand: qs[0] = codes of elements 0 and 32 = 0 | 1 << 4;
    // qs[37] = elements 69 (sub-block 2, l 5) and 101 (sub-block 3, l 5) = 5 | 6 << 4.
    CHECK(r.block.qs[0] == 0x10);
    CHECK(r.block.qs[37] == 0x65);

    for (std::size_t e = 0; e < 256; ++e) {
        const std::size_t j = e / 32;
        CHECK(r.saturated[e] == (j == 1 ? 1 : 0));
        // (d * sc) * code - c, exact in float.
        const double want = 0.015869140625 * want_sc[j] * pattern(j, e % 32) - grid_c[j];
        CHECK(r.y[e] == static_cast<float>(want));
    }
}

TEST_CASE("q4_k . q8_k: codes pair with activations element by element, mins use bsum pairs") {
    // Uniform: d = 1, dmin = 0.5, sc = 3, m = 1, every code 1; a.d = 0.25, qa = 2.
    // w = 3 - 0.5 = 2.5, a = 0.5: 256 * 1.25 = 320.
    block_q4_k w{};
    w.d = fp32_to_fp16(1.0f);
    w.dmin = fp32_to_fp16(0.5f);
    w.scales = {3, 3, 3, 3, 1, 1, 1, 1, 0x13, 0x13, 0x13, 0x13};
    w.qs.fill(0x11);
    block_q8_k a{};
    a.d = 0.25f;
    a.qs.fill(2);
    a.bsums.fill(32);
    CHECK(q4_k::dot_row(&w, &a, 256) == 320.0f);

    // One-hot elements:
    //   e = 5:   chunk 0, low nibble of qs[5],   sub-block 0 (sc 40, m 10), code 9,  qa 3
    //   e = 100: chunk 1, high nibble of qs[36], sub-block 3 (sc 7,  m 50), code 13, qa -2
    //   e = 230: chunk 3, high nibble of qs[102], sub-block 7 (sc 33, m 20), code 6, qa 5
    // Scale bytes: [0] = 40, [3] = 7 | (33 >> 4) << 6, [4] = 10, [7] = 50 | (20 >> 4) << 6,
    // [11] = (33 & 15) | (20 & 15) << 4.
    // isum = 40*9*3 + 7*13*-2 + 33*6*5 = 1888; bsums: group 0 = 3, 6 = -2, 14 = 5;
    // summs = 10*3 + 50*-2 + 20*5 = 30; dot = 1888 - 0.5 * 30 = 1873.
    w.scales = {40, 0, 0, 7 | 2 << 6, 10, 0, 0, 50 | 1 << 6, 0, 0, 0, 1 | 4 << 4};
    w.qs.fill(0);
    w.qs[5] = 9;
    w.qs[36] = 13 << 4;
    w.qs[102] = 6 << 4;
    CHECK(q4_k::scale_of(w, 7) == 33);
    CHECK(q4_k::min_of(w, 7) == 20);
    CHECK(q4_k::code_at(w, 100) == 13);
    CHECK(q4_k::code_at(w, 230) == 6);
    a.d = 1.0f;
    a.qs.fill(0);
    a.bsums.fill(0);
    a.qs[5] = 3;
    a.qs[100] = -2;
    a.qs[230] = 5;
    a.bsums[0] = 3;
    a.bsums[6] = -2;
    a.bsums[14] = 5;
    CHECK(q4_k::dot_row(&w, &a, 256) == 1873.0f);
}
