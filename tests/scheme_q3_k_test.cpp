// Q3_K layout, reference quantizer and dot product, by hand from ggml's
// block_q3_K layout and quantize_row_q3_K_ref (as restated in q3_k.hpp's
// banner and docs/schemes.md section 12). The round-trip bound it shares with
// Q6_K is in scheme_q6_k_test; byte-exactness against ggml is
// scheme_golden_test's job.
//
// The grid case uses sub-blocks that lie exactly on a grid, x = k * u with
// integer k in -3..3 and one element at k = -4 (or +4): make_q3_quants'
// first codes are then l = k (l = -k for +4), every float sum in it is exact,
// so its scale is u (-u) exactly, and its refinement passes find nothing to
// change (x * sl2 / slx is k again).
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "qtensor/scheme/q3_k.hpp"
#include "qtensor/scheme/q8_k.hpp"
#include "test_util.hpp"

using namespace qtensor;

static_assert(scheme<q3_k> && quantized_scheme<q3_k> && has_dot_partner<q3_k>);
static_assert(std::is_same_v<q3_k::dot_partner, q8_k>);
static_assert(q3_k::block_elems == 256 && q3_k::block_bytes == 110);
static_assert(q3_k::type_id == ggml_type::q3_k && static_cast<int>(q3_k::type_id) == 11);
static_assert(offsetof(block_q3_k, hmask) == 0 && offsetof(block_q3_k, qs) == 32 &&
              offsetof(block_q3_k, scales) == 96 && offsetof(block_q3_k, d) == 108);

namespace {

struct quantized {
    block_q3_k block;
    std::array<std::uint8_t, 256> saturated;
    std::array<float, 256> y;
};

quantized run(const std::vector<float>& x) {
    REQUIRE(x.size() == 256);
    quantized r{};
    q3_k::quantize_row(x.data(), &r.block, 256, r.saturated.data());
    q3_k::dequantize_row(&r.block, r.y.data(), 256);
    return r;
}

// The grid of sub-block j, element i: k = -4 at i = 0 (+4 in sub-block 1),
// else a value in -3..3 that varies with i.
int grid_k(std::size_t j, std::size_t i) {
    if (i == 0) return j == 1 ? 4 : -4;
    return static_cast<int>((5 * i + j) % 7) - 3;
}

// u_j of each sub-block; sub-block 6 is all zero.
const std::array<float, 16> grid_u{1.0f,  1.0f,  0.5f,  0x1p-6f, 3 * 0x1p-7f, 5 * 0x1p-6f, 0.0f,  0.25f,
                                   0.25f, 0.25f, 0.25f, 0.25f,   0.25f,       0.25f,       0.25f, 0.25f};

} // namespace

TEST_CASE("q3_k: an all-zero super-block is all zero bytes and decodes to +0") {
    const auto r = run(std::vector<float>(256, 0.0f));
    // Every sub-block is below the all-zero threshold: codes 0 (not 4), scale 0;
    // max_scale 0 leaves the scale bytes and d at 0, so s_j = 0 - 32 and
    // D = 0 * -32 = -0: every sub-block is skipped and keeps the codes 0.
    for (auto q : r.block.hmask) CHECK(q == 0);
    for (auto q : r.block.qs) CHECK(q == 0);
    for (auto s : r.block.scales) CHECK(s == 0);
    CHECK(r.block.d.bits == 0x0000);
    for (std::size_t j = 0; j < 16; ++j) CHECK(q3_k::scale_of(r.block, j) == -32);
    for (auto s : r.saturated) CHECK(s == 1);
    // (0 * -32) * (0 - 4) = -0 * -4 = +0.
    for (auto v : r.y) {
        CHECK(v == 0.0f);
        CHECK(!std::signbit(v));
    }
}

TEST_CASE("q3_k: scales, ties, skipped and clamped sub-blocks, and the packing on a grid block") {
    std::vector<float> x(256);
    for (std::size_t j = 0; j < 16; ++j)
        for (std::size_t i = 0; i < 16; ++i) x[16 * j + i] = static_cast<float>(grid_k(j, i)) * grid_u[j];
    const auto r = run(x);

    // Fits: scale_j = u_j, but sub-block 1 (max +4) has -1, and sub-block 6 0.
    // |scale_0| = |scale_1| = 1: the first wins, max_scale = +1, iscale = -32,
    // d = fp16(-1/32) = 0xA800. s_j = clamp(nearest_int(-32 * scale_j), -32, 31):
    //   u = 1 -> -32; scale -1 -> 32, clamped to 31; 1/2 -> -16; 2^-6 -> -0.5,
    //   half to even -> 0; 3 * 2^-7 -> -0.75 -> -1; 5 * 2^-6 -> -2.5 -> -2; 0 -> 0;
    //   1/4 -> -8.
    const std::array<int, 16> want_scales{-32, 31, -16, 0, -1, -2, 0, -8, -8, -8, -8, -8, -8, -8, -8, -8};
    CHECK(r.block.d.bits == 0xA800);
    for (std::size_t j = 0; j < 16; ++j) CHECK(q3_k::scale_of(r.block, j) == want_scales[j]);
    // u_j = s_j + 32: 0 63 16 32 31 30 32 24, then 24 for j = 8..15.
    //   bytes 0..7: (u_j & 15) | (u_{j+8} & 15) << 4, e.g. byte 1 = 15 | 8 << 4;
    //   byte 8 + k: the top bits u_{k+4t} >> 4 at bits 2t: byte 8 = 0 | 1 << 2 | 1 << 4 | 1 << 6,
    //   byte 9 = 3 | 1 << 2 | 1 << 4 | 1 << 6, byte 10 = 1 | 2 << 2 | ..., byte 11 = 2 | 1 << 2 | ...
    const std::array<std::uint8_t, 12> want_bytes{0x80, 0x8F, 0x80, 0x80, 0x8F, 0x8E, 0x80, 0x88,
                                                  0x54, 0x57, 0x59, 0x56};
    CHECK(r.block.scales == want_bytes);

    // Requantized, D = -2^-5 * s_j: codes k + 4 (x / D = k) except
    //   sub-block 1: D = -31/32, x / D = -1.032 k -> -k: code 4 - k, y = 0.96875 k;
    //   sub-block 4: D = 2^-5, x / D = 0.75 k: -4 -> -3, -3 -> -2.25 -> -2,
    //     -2 -> -1.5 -> -2 (half to even), -1 -> -1, 1 -> 1, 2 -> 1.5 -> 2 (even), 3 -> 2;
    //   sub-block 5: D = 2^-4, x / D = 1.25 k: -4 -> -5, clamped to -4 (saturated),
    //     -3 -> -3.75 -> -4, -2 -> -2.5 -> -2, -1 -> -1, 1 -> 1, 2 -> 2, 3 -> 3.75 -> 4,
    //     clamped to 3 (saturated);
    //   sub-blocks 3 and 6 (s = 0) are skipped and keep the search's codes, k + 4
    //     and 0, which decode to +-0 whatever they are.
    const auto requantized = [](std::size_t j, int k) {
        switch (j) {
        case 1: return -k;
        case 4: return k == -4 ? -3 : k == -3 ? -2 : k == 3 ? 2 : k;
        case 5: return k == -4 || k == -3 ? -4 : k == 3 ? 3 : k;
        case 6: return -4;
        default: return k;
        }
    };
    for (std::size_t e = 0; e < 256; ++e) {
        const std::size_t j = e / 16, i = e % 16;
        const int k = grid_k(j, i);
        INFO("element " << e << " k " << k);
        const int l = requantized(j, k);
        CHECK(q3_k::code_at(r.block, e) == l + 4);
        float y = x[e];
        if (j == 1) y = 0.96875f * static_cast<float>(k);
        else if (j == 3 || j == 6) y = 0.0f;
        else if (j == 4) y = static_cast<float>(l) * 0x1p-5f;
        else if (j == 5) y = static_cast<float>(l) * 0x1p-4f;
        CHECK(r.y[e] == y);
        const bool clamped = j == 5 && (k == -4 || k == 3);
        CHECK(r.saturated[e] == ((j == 3 || j == 6 || clamped) ? 1 : 0));
    }

    // Bytes by hand. qs[1] holds bits 1..0 of elements 1, 33, 65, 97 (sub-blocks
    // 0, 2, 4, 6, i = 1): k = 2, -3, -1 and the skipped zero, codes 6, 1, 3, 0:
    //   qs[1] = 2 | 1 << 2 | 3 << 4 | 0 << 6.
    // hmask[1] holds bit 2 of elements 1 + 32t: codes 6, 1, 3, 0 and, in
    // sub-blocks 8, 10, 12, 14 (k = 3, -2, 0, 2), 7, 2, 4, 6: bits 0, 4, 6, 7.
    CHECK(r.block.qs[1] == 0x36);
    CHECK(r.block.hmask[1] == 0xD1);
    // qs[20]: elements 20, 52, 84, 116 (sub-blocks 1, 3, 5, 7, i = 4), k = -3,
    // -1, 1, 3: codes 7, 3, 5, 7 -> 3 | 3 << 2 | 1 << 4 | 3 << 6.
    // hmask[20]: those and elements 148, 180, 212, 244 (k = -2, 0, 2, -3: codes
    // 2, 4, 6, 1): bits 0, 2, 3, 5, 6.
    CHECK(r.block.qs[20] == 0xDF);
    CHECK(r.block.hmask[20] == 0x6D);
}

TEST_CASE("q3_k: the refinement passes run only for a negative max") {
    // Sub-block 0 = {-4, 1.375, 0, ...}, the rest zero. max = -4: iscale = 1,
    // l = {-4, 1, 0, ...}, w = x^2 = {16, 1.890625}:
    //   sumlx = (16 * -4) * -4 + (1.890625 * 1.375) * 1 = 258.599609375
    //   suml2 = (16 * -4) * -4 + (1.890625 * 1) * 1     = 257.890625
    // Pass 1, element 0: slx = 2.599609375 > 0, sl2 = 1.890625, new_l =
    // nearest_int(-4 * 1.890625 / 2.599609375) = nearest_int(-2.909) = -3. With
    // it slx = 194.599609375, sl2 = 145.890625, and slx^2 * suml2 = 9.7661e6 >
    // sumlx^2 * sl2 = 9.7563e6: kept. Element 1 stays 1 (1.375 * 144 / 192 =
    // 1.03), zeros stay 0; pass 2 changes nothing. scale = 194.599609375 /
    // 145.890625 = 1.33387.
    // Mirrored, {4, -1.375, 0, ...}: sumlx = -258.599609375 < 0, so no slx is
    // positive: l = {-4, 1}, scale = -258.599609375 / 257.890625 = -1.00275.
    std::vector<float> x(256, 0.0f);
    x[0] = -4.0f;
    x[1] = 1.375f;
    std::array<std::uint8_t, 16> L{};
    CHECK(detail::make_q3_quants<16>(x.data(), L.data()) == 194.599609375f / 145.890625f);
    CHECK(L[0] == 1); // l = -3: the refinement moved it
    CHECK(L[1] == 5);
    for (std::size_t i = 2; i < 16; ++i) CHECK(L[i] == 4);
    // The whole block: max_scale = 1.33387, d = fp16(-1.33387 / 32) and s_0 = -32,
    // so D = fp32(d) * -32 = 1.33398: -4 / D = -2.9986 -> -3, 1.375 / D = 1.03 -> 1.
    const auto r = run(x);
    CHECK(r.block.d.bits == fp32_to_fp16(1.0f / (-32.0f / (194.599609375f / 145.890625f))).bits);
    CHECK(q3_k::scale_of(r.block, 0) == -32);
    CHECK(q3_k::code_at(r.block, 0) == 1);
    CHECK(q3_k::code_at(r.block, 1) == 5);
    const float D = fp16_to_fp32(r.block.d) * -32.0f;
    CHECK(r.y[0] == D * -3.0f);
    CHECK(r.y[1] == D);

    x[0] = 4.0f;
    x[1] = -1.375f;
    CHECK(detail::make_q3_quants<16>(x.data(), L.data()) == -258.599609375f / 257.890625f);
    CHECK(L[0] == 0); // l = -4: kept
    CHECK(L[1] == 5);
    const auto m = run(x);
    CHECK(q3_k::code_at(m.block, 0) == 0); // 4 / (fp32(d) * -32) = -3.989 -> -4
    CHECK(q3_k::code_at(m.block, 1) == 5);
}

TEST_CASE("q3_k: dequantize of hand-built bytes") {
    // d = 0.5; u_j = 4j + 3, so s_j = 4j - 29 (-29 .. 31): bytes 0..7 hold
    // (4j + 3) & 15 in both nibbles (3, 7, 11, 15, 3, 7, 11, 15), bytes 8..11 the
    // top bits t = 0, 1, 2, 3 of u_{k+4t} at bits 2t: 0 | 1 << 2 | 2 << 4 | 3 << 6.
    // Every code 0 (c - 4 = -4) except element 255 (hmask[31] bit 7, qs[63]
    // bits 7..6) code 7 and element 100 (hmask[4] bit 3, qs[4] bits 7..6) code 5.
    block_q3_k b{};
    b.d = fp16_t{0x3800};
    const std::array<std::uint8_t, 12> scales{0x33, 0x77, 0xBB, 0xFF, 0x33, 0x77, 0xBB, 0xFF,
                                              0xE4, 0xE4, 0xE4, 0xE4};
    b.scales = scales;
    b.hmask[31] = 0x80;
    b.qs[63] = 0xC0;
    b.hmask[4] = 0x08;
    b.qs[4] = 0x40;
    for (std::size_t j = 0; j < 16; ++j) CHECK(q3_k::scale_of(b, j) == 4 * static_cast<int>(j) - 29);
    std::array<float, 256> y{};
    q3_k::dequantize_row(&b, y.data(), 256);
    for (std::size_t e = 0; e < 256; ++e) {
        INFO("element " << e);
        const float dl = 0.5f * static_cast<float>(4 * static_cast<int>(e / 16) - 29);
        if (e == 255) CHECK(y[e] == 46.5f);     // (0.5 * 31) * 3
        else if (e == 100) CHECK(y[e] == -2.5f); // (0.5 * -5) * 1
        else CHECK(y[e] == dl * -4.0f);
    }
}

TEST_CASE("q3_k: rejects NaN, infinity, a super-scale past the fp16 range and an overflowing search") {
    std::vector<float> x(512, 1.0f);
    const auto quantize_x = [&] { (void)quantize<q3_k>(x); };
    x[300] = std::numeric_limits<float>::quiet_NaN();
    CHECK(qtensor_test::message_of(quantize_x) ==
          "qtensor: q3_k: element 300 is NaN; quantized schemes need finite input");
    x[300] = -std::numeric_limits<float>::infinity();
    CHECK(qtensor_test::message_of(quantize_x) ==
          "qtensor: q3_k: element 300 is infinite; quantized schemes need finite input");
    // A constant sub-block c fits scale -c/4 (every code -4, no refinement
    // moves one): iscale = 128/c, d = c/128. c = 9e6: d = 70312 > 65504; c = 8e6:
    // d = 62500 fits.
    std::fill(x.begin(), x.end(), 0.0f);
    for (std::size_t i = 0; i < 16; ++i) x[256 + 32 + i] = 9.0e6f;
    CHECK(qtensor_test::message_of(quantize_x).find("qtensor: q3_k: block 1 needs scale 7031") == 0);
    for (std::size_t i = 0; i < 16; ++i) x[256 + 32 + i] = 8.0e6f;
    CHECK(quantize<q3_k>(x)[1].d.bits == fp32_to_fp16(62500.0f).bits);
    // 1e13: w * x = x^3 overflows float, so the fit's scale is not finite.
    for (std::size_t i = 0; i < 16; ++i) x[256 + 48 + i] = 1.0e13f;
    CHECK(qtensor_test::message_of(quantize_x).find("qtensor: q3_k: block 1, sub-block 3: |x| up to 9999999827968") ==
          0);
}

TEST_CASE("q3_k . q8_k: codes pair with activations element by element") {
    // Uniform: d = 1, every u_j = 34 (s = 2: bytes 0..7 = 0x22, bytes 8..11 =
    // 2 at every 2-bit place = 0xAA), every code 5 (c - 4 = 1: hmask 0xFF, qs
    // 0x55); a.d = 0.5, qa = 3. w = 2, a = 1.5: 256 * 3 = 768.
    block_q3_k w{};
    w.d = fp16_t{0x3C00};
    w.scales = {0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0xAA, 0xAA, 0xAA, 0xAA};
    w.hmask.fill(0xFF);
    w.qs.fill(0x55);
    block_q8_k a{};
    a.d = 0.5f;
    a.qs.fill(3);
    a.bsums.fill(48);
    CHECK(q3_k::dot_row(&w, &a, 256) == 768.0f);

    // One-hot: every code 4 (c - 4 = 0: hmask 0xFF, qs 0x00) except element 37
    // (qs[5] bits 3..2, hmask[5] bit 1) code 1 (-3) in sub-block 2, and element
    // 200 (qs[40] bits 5..4, hmask[8] bit 6) code 7 (+3) in sub-block 12.
    // u_2 = 63 (s = 31), u_12 = 25 (s = -7), the others 33 (s = 1):
    //   bytes 0..7: 0x11 but byte 2 = 15 | 1 << 4 and byte 4 = 1 | 9 << 4;
    //   top bits 2 (33), 3 (63), 1 (25): byte 8 = 2 | 2 << 2 | 2 << 4 | 1 << 6,
    //   byte 10 = 3 | 2 << 2 | 2 << 4 | 2 << 6, bytes 9, 11 = 0xAA.
    // d = 0.25, a.d = 2, qa[37] = -100, qa[200] = 50:
    // isum = 31 * -3 * -100 + -7 * 3 * 50 = 9300 - 1050 = 8250; dot = 0.5 * 8250.
    w.d = fp16_t{0x3400};
    w.scales = {0x11, 0x11, 0x1F, 0x11, 0x91, 0x11, 0x11, 0x11, 0x6A, 0xAA, 0xAB, 0xAA};
    w.hmask.fill(0xFF);
    w.hmask[5] = 0xFD;
    w.qs.fill(0x00);
    w.qs[5] = 0x04;
    w.qs[40] = 0x30;
    a.d = 2.0f;
    a.qs.fill(0);
    a.qs[37] = -100;
    a.qs[200] = 50;
    CHECK(q3_k::scale_of(w, 2) == 31);
    CHECK(q3_k::scale_of(w, 12) == -7);
    CHECK(q3_k::code_at(w, 37) == 1);
    CHECK(q3_k::code_at(w, 200) == 7);
    CHECK(q3_k::dot_row(&w, &a, 256) == 4125.0f);
    std::array<float, 256> y{};
    q3_k::dequantize_row(&w, y.data(), 256);
    CHECK(y[37] == 7.75f * -3.0f);
    CHECK(y[200] == -1.75f * 3.0f);
}

TEST_CASE("q3_k . q8_k: within the stated budget of the exact dot product") {
    // Budget (q3_k.hpp): |dot - exact| <= (n/256 + 5) * 2^-24 * sum |w_i a_i|.
    // The exact sum is taken in double over the dequantized rows: each product
    // of two floats is exact in double.
    std::mt19937 rng(3);
    constexpr std::size_t n = 256 * 16;
    for (int trial = 0; trial < 20; ++trial) {
        const auto xw = qtensor_test::spread_blocks(n, 16, rng);
        const auto xa = qtensor_test::spread_blocks(n, 256, rng, -2.0f, 2.0f);
        const auto w = quantize<q3_k>(xw);
        const auto a = quantize<q8_k>(xa);
        const auto exact = qtensor_test::exact_dot_of(dequantize<q3_k>(w), dequantize<q8_k>(a));
        const float got = dot<q3_k>(w, a);
        INFO("trial " << trial << ": dot " << got << ", exact " << exact.sum);
        CHECK(std::fabs(got - exact.sum) <= (n / 256 + 5) * 0x1p-24 * exact.magnitude);
    }
}
