// Q6_K layout, reference quantizer and dot product, by hand from ggml's
// block_q6_K layout and quantize_row_q6_K_ref (as restated in q6_k.hpp's
// banner); and the round-trip properties both symmetric K-quants (Q3_K,
// Q6_K) owe to their requantization rule. Byte-exactness against ggml is
// scheme_golden_test's job.
//
// The hand quantization case uses sub-blocks that lie exactly on a grid,
// x = k * u with integer k and the max-|x| element at k = -32 (or +32): the
// search's first fit, iscale = -32 / max, then has codes k and error 0, and
// every float sum in it is exact, so scale = u (or -u) exactly. A trial can
// only tie a zero-error fit where its codes are the same, and is not adopted
// (strict >); where its codes differ (the max element, for is <= -6) its fit
// is worse by a relative 1e-6 or more, far above the float roundings.
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "qtensor/scheme/q3_k.hpp"
#include "qtensor/scheme/q6_k.hpp"
#include "qtensor/scheme/q8_k.hpp"
#include "test_util.hpp"

using namespace qtensor;

static_assert(scheme<q6_k> && quantized_scheme<q6_k> && has_dot_partner<q6_k>);
static_assert(std::is_same_v<q6_k::dot_partner, q8_k>);
static_assert(q6_k::block_elems == 256 && q6_k::block_bytes == 210);
static_assert(q6_k::type_id == ggml_type::q6_k && static_cast<int>(q6_k::type_id) == 14);
static_assert(offsetof(block_q6_k, qh) == 128 && offsetof(block_q6_k, scales) == 192 &&
              offsetof(block_q6_k, d) == 208);

namespace {

struct quantized {
    block_q6_k block;
    std::array<std::uint8_t, 256> saturated;
    std::array<float, 256> y;
};

quantized run(const std::vector<float>& x) {
    REQUIRE(x.size() == 256);
    quantized r{};
    q6_k::quantize_row(x.data(), &r.block, 256, r.saturated.data());
    q6_k::dequantize_row(&r.block, r.y.data(), 256);
    return r;
}

// The grid of sub-block j, element i: k = -32 at i = 0 (+32 in sub-block 1),
// else a value in -4..4 that varies with i.
int grid_k(std::size_t j, std::size_t i) {
    if (i == 0) return j == 1 ? 32 : -32;
    return static_cast<int>((5 * i + j) % 9) - 4;
}

// u_j of each sub-block; sub-block 7 is all zero.
const std::array<float, 16> grid_u{1.0f, 1.0f, 0.5f, 0.125f, 0x1p-7f, 0x1p-8f, 0.75f, 0.0f,
                                   1.375f * 0x1p-7f, 0.25f, 0.25f, 0.25f, 0.25f, 0.25f, 0.25f, 0.25f};

} // namespace

TEST_CASE("q6_k: an all-zero super-block is all zero bytes and decodes to -0") {
    const auto r = run(std::vector<float>(256, 0.0f));
    for (auto q : r.block.ql) CHECK(q == 0);
    for (auto q : r.block.qh) CHECK(q == 0);
    for (auto s : r.block.scales) CHECK(s == 0);
    CHECK(r.block.d.bits == 0x0000);
    for (auto s : r.saturated) CHECK(s == 1);
    // (0 * 0) * (0 - 32) = -0.
    for (auto v : r.y) {
        CHECK(v == 0.0f);
        CHECK(std::signbit(v));
    }
}

TEST_CASE("q6_k: scales, ties, skipped and clamped sub-blocks, and the 6-bit packing on a grid block") {
    std::vector<float> x(256);
    for (std::size_t j = 0; j < 16; ++j)
        for (std::size_t i = 0; i < 16; ++i) x[16 * j + i] = static_cast<float>(grid_k(j, i)) * grid_u[j];
    const auto r = run(x);

    // Fits: scale_j = u_j, but sub-block 1 (max +32) has -1, and sub-block 7 0.
    // |scale_0| = |scale_1| = 1: the first wins, max_scale = +1, iscale = -128,
    // d = fp16(-1/128) = 0xA000. s_j = min(127, nearest_int(-128 * scale_j)):
    //   u = 1 -> -128; scale -1 -> 128, clamped to 127; 1/2 -> -64; 1/8 -> -16;
    //   2^-7 -> -1; 2^-8 -> -0.5, half to even -> 0; 0.75 -> -96; 0 -> 0;
    //   1.375 * 2^-7 -> -1.375 -> -1; 1/4 -> -32.
    const std::array<int, 16> want_scales{-128, 127, -64, -16, -1,  0,   -96, 0,
                                          -1,   -32, -32, -32, -32, -32, -32, -32};
    CHECK(r.block.d.bits == 0xA000);
    for (std::size_t j = 0; j < 16; ++j) CHECK(r.block.scales[j] == want_scales[j]);

    // Requantized, D = -2^-7 * s_j: u_j itself (x / D = k, code k + 32) except
    //   sub-block 1: D = -127/128, x / D = -1.0079 k -> -k (for |k| <= 32): code 32 - k;
    //   sub-block 8: D = 2^-7, x / D = 1.375 k: -4 -> -5.5 -> -6, -3 -> -4.125 -> -4,
    //     -2 -> -2.75 -> -3, -1 -> -1, 0, 1, 2 -> 3, 3 -> 4, 4 -> 5.5 -> 6 (half to
    //     even), and the max element -32 -> -44, clamped to -32 (saturated);
    //   sub-blocks 5 and 7 (s = 0) are skipped and keep the search's codes k + 32
    //     and 0, which decode to +-0 whatever they are.
    const auto requantized_8 = [](int k) {
        switch (k) {
        case -32: return -32;
        case -4: return -6;
        case -3: return -4;
        case -2: return -3;
        case 2: return 3;
        case 3: return 4;
        case 4: return 6;
        default: return k;
        }
    };
    for (std::size_t e = 0; e < 256; ++e) {
        const std::size_t j = e / 16, i = e % 16;
        const int k = grid_k(j, i);
        INFO("element " << e << " k " << k);
        int code = k + 32;
        float y = x[e];
        if (j == 1) {
            code = 32 - k;
            y = 0.9921875f * static_cast<float>(k);
        } else if (j == 7) {
            code = 0;
        } else if (j == 8) {
            code = requantized_8(k) + 32;
            y = static_cast<float>(requantized_8(k)) * 0x1p-7f;
        } else if (j == 5) {
            y = 0.0f;
        }
        CHECK(q6_k::code_at(r.block, e) == code);
        CHECK(r.y[e] == y);
        CHECK(r.saturated[e] == ((j == 5 || j == 7 || e == 128) ? 1 : 0));
    }

    // Bytes by hand. Elements 1, 33, 65, 97 (sub-blocks 0, 2, 4, 6, i = 1) have
    // k = 1, 3, -4, -2: codes 33, 35, 28, 30 = 0b100001, 0b100011, 0b011100, 0b011110.
    //   ql[1]  = lo(1)  | lo(65) << 4 = 0x1 | 0xC << 4
    //   ql[33] = lo(33) | lo(97) << 4 = 0x3 | 0xE << 4
    //   qh[1]  = hi(1) | hi(33) << 2 | hi(65) << 4 | hi(97) << 6 = 2 | 2 << 2 | 1 << 4 | 1 << 6
    CHECK(r.block.ql[1] == 0xC1);
    CHECK(r.block.ql[33] == 0xE3);
    CHECK(r.block.qh[1] == 0x5A);
    // Elements 136, 168, 200, 232 (sub-blocks 8, 10, 12, 14, i = 8) have k = -1,
    // 1, 3, -4: codes 31 (requantized -1), 33, 35, 28.
    //   ql[72] = lo(136) | lo(200) << 4 = 0xF | 0x3 << 4
    //   ql[104] = lo(168) | lo(232) << 4 = 0x1 | 0xC << 4
    //   qh[40] = 1 | 2 << 2 | 2 << 4 | 1 << 6
    CHECK(r.block.ql[72] == 0x3F);
    CHECK(r.block.ql[104] == 0xC1);
    CHECK(r.block.qh[40] == 0x69);
}

TEST_CASE("q6_k: dequantize of hand-built bytes") {
    // d = 0.25; scales alternate -128 (even j) and 127 (odd j); every code 0
    // (q = -32) except: element 255 (h 1, s 3, l 31: ql[127] high nibble,
    // qh[63] bits 6..7) code 63; element 127 (ql[63] high, qh[31] bits 6..7)
    // code 32; element 129 (h 1, s 0, l 1: ql[65] low, qh[33] bits 0..1) code 1.
    block_q6_k b{};
    b.d = fp16_t{0x3400};
    for (std::size_t j = 0; j < 16; ++j) b.scales[j] = static_cast<std::int8_t>(j % 2 ? 127 : -128);
    b.ql[127] = 0xF0;
    b.qh[63] = 0xC0;
    b.qh[31] = 0x80;
    b.ql[65] = 0x01;
    std::array<float, 256> y{};
    q6_k::dequantize_row(&b, y.data(), 256);
    for (std::size_t e = 0; e < 256; ++e) {
        INFO("element " << e);
        if (e == 255) CHECK(y[e] == 31.75f * 31.0f);   // (0.25 * 127) * 31
        else if (e == 127) CHECK(y[e] == 0.0f);       // (0.25 * 127) * 0
        else if (e == 129) CHECK(y[e] == 992.0f);     // (0.25 * -128) * -31
        else CHECK(y[e] == ((e / 16) % 2 ? -1016.0f : 1024.0f)); // (0.25 * s) * -32
    }
}

TEST_CASE("q6_k: rejects NaN, infinity, a super-scale past the fp16 range and an overflowing search") {
    std::vector<float> x(512, 1.0f);
    const auto quantize_x = [&] { (void)quantize<q6_k>(x); };
    x[300] = std::numeric_limits<float>::quiet_NaN();
    CHECK(qtensor_test::message_of(quantize_x) ==
          "qtensor: q6_k: element 300 is NaN; quantized schemes need finite input");
    x[300] = std::numeric_limits<float>::infinity();
    CHECK_THROWS_AS(quantize<q6_k>(x), qtensor::error);
    // A constant sub-block c fits scale -c/32 (every code -32): d = c/4096.
    // c = 4e8: d = 97656 > 65504; c = 2e8: d = 48828 fits.
    std::fill(x.begin(), x.end(), 0.0f);
    for (std::size_t i = 0; i < 16; ++i) x[256 + 32 + i] = 4.0e8f;
    CHECK(qtensor_test::message_of(quantize_x).find("qtensor: q6_k: block 1 needs scale") == 0);
    for (std::size_t i = 0; i < 16; ++i) x[256 + 32 + i] = 2.0e8f;
    CHECK_NOTHROW(quantize<q6_k>(x));
    // 1e13: w * x = x^3 overflows float, so the fit's scale is not finite.
    for (std::size_t i = 0; i < 16; ++i) x[256 + 48 + i] = 1.0e13f;
    const std::string overflow = qtensor_test::message_of(quantize_x);
    CHECK(overflow.find("qtensor: q6_k: block 1, sub-block 3: |x| up to 9999999827968") == 0);
}

TEST_CASE("q6_k . q8_k: codes pair with activations element by element") {
    // Uniform: d = 1, s = 2, every code 33 (q = 1: lo 1, hi 2, so ql 0x11 and
    // qh 0xAA); a.d = 0.5, qa = 3. w = 2, a = 1.5: 256 * 3 = 768.
    block_q6_k w{};
    w.d = fp16_t{0x3C00};
    w.scales.fill(2);
    w.ql.fill(0x11);
    w.qh.fill(0xAA);
    block_q8_k a{};
    a.d = 0.5f;
    a.qs.fill(3);
    a.bsums.fill(48);
    CHECK(q6_k::dot_row(&w, &a, 256) == 768.0f);

    // One-hot: every code 32 (q = 0: ql 0x00, qh 0xAA) except element 37
    // (h 0, s 1, l 5: ql[37] low, qh[5] bits 2..3) code 5 (q = -27) in
    // sub-block 2 (s = 127), and element 200 (h 1, s 2, l 8: ql[72] high,
    // qh[40] bits 4..5) code 58 = 0b111010 (q = 26) in sub-block 12 (s = -7).
    // d = 0.25, a.d = 2, qa[37] = -100, qa[200] = 50:
    // isum = 127 * -27 * -100 + -7 * 26 * 50 = 342900 - 9100 = 333800; dot = 0.5 * 333800.
    w.d = fp16_t{0x3400};
    w.scales.fill(1);
    w.scales[2] = 127;
    w.scales[12] = -7;
    w.ql.fill(0x00);
    w.qh.fill(0xAA);
    w.ql[37] = 0x05;
    w.qh[5] = 0xA2;
    w.ql[72] = 0xA0;
    w.qh[40] = 0xBA;
    a.d = 2.0f;
    a.qs.fill(0);
    a.qs[37] = -100;
    a.qs[200] = 50;
    CHECK(q6_k::code_at(w, 37) == 5);
    CHECK(q6_k::code_at(w, 200) == 58);
    CHECK(q6_k::dot_row(&w, &a, 256) == 166900.0f);
    std::array<float, 256> y{};
    q6_k::dequantize_row(&w, y.data(), 256);
    CHECK(y[37] == 31.75f * -27.0f);
    CHECK(y[200] == -1.75f * 26.0f);
}

TEST_CASE("q6_k . q8_k: within the stated budget of the exact dot product") {
    // Budget (q6_k.hpp): |dot - exact| <= (n/256 + 6) * 2^-24 * sum |w_i a_i|.
    // The exact sum is taken in double over the dequantized rows: each product
    // of two floats is exact in double.
    std::mt19937 rng(6);
    constexpr std::size_t n = 256 * 16;
    for (int trial = 0; trial < 20; ++trial) {
        const auto xw = qtensor_test::spread_blocks(n, 16, rng);
        const auto xa = qtensor_test::spread_blocks(n, 256, rng, -2.0f, 2.0f);
        const auto w = quantize<q6_k>(xw);
        const auto a = quantize<q8_k>(xa);
        const auto exact = qtensor_test::exact_dot_of(dequantize<q6_k>(w), dequantize<q8_k>(a));
        const float got = dot<q6_k>(w, a);
        INFO("trial " << trial << ": dot " << got << ", exact " << exact.sum);
        CHECK(std::fabs(got - exact.sum) <= (n / 256 + 6) * 0x1p-24 * exact.magnitude);
    }
}

// Round trip of the symmetric K-quants (Q3_K, Q6_K) against the requantization
// rule (step 3), with D = fp32(d) * s_j read back from the block and codes
// q = c - H in -H..H-1 (H = 4 for Q3_K, 32 for Q6_K):
//   - D == 0: the sub-block is marked saturated and decodes to +-0.
//   - code not clamped: |x/D - q| <= 1/2, so
//       |y - x| <= |D|/2 + 2^-21 * (|x| + H |D|)
//     (the slack covers the roundings of the division and of y).
//   - code clamped (saturated): q = -H with x/D < -H - 1/2, or q = H - 1 with
//     x/D > H - 1/2: x lies beyond the end of the grid.
// The error must reach about |D|/2 somewhere (the bound is not loose), and
// both kinds of saturation must occur in the data.
TEST_CASE_TEMPLATE("symmetric k-quant round trip follows the requantization rule", S, q3_k, q6_k) {
    constexpr int H = std::is_same_v<S, q3_k> ? 4 : 32;
    std::mt19937 rng(14);
    std::normal_distribution<float> gauss(0.0f, 1.0f);
    std::uniform_real_distribution<float> log_scale(-8.0f, 4.0f);
    std::uniform_real_distribution<float> sub_scale(-5.0f, 0.0f);
    constexpr std::size_t blocks = 300;
    std::vector<float> x(blocks * 256);
    for (std::size_t b = 0; b < blocks; ++b) {
        // Every third block has sub-blocks of very different sizes: sub-scales of 0.
        const float s = std::pow(10.0f, log_scale(rng));
        for (std::size_t j = 0; j < 16; ++j) {
            const float t = b % 3 == 0 ? s * std::pow(10.0f, sub_scale(rng)) : s;
            for (std::size_t i = 0; i < 16; ++i) x[b * 256 + 16 * j + i] = t * gauss(rng);
        }
    }
    std::vector<block_of<S>> q(blocks);
    std::vector<std::uint8_t> sat(x.size());
    S::quantize_row(x.data(), q.data(), x.size(), sat.data());
    const auto y = dequantize<S>(q);

    std::vector<block_of<S>> q2(blocks);
    S::quantize_row(x.data(), q2.data(), x.size());
    CHECK(std::memcmp(q.data(), q2.data(), q.size() * sizeof(block_of<S>)) == 0);

    double worst = 0.0;
    std::size_t clamped = 0, skipped = 0;
    for (std::size_t b = 0; b < blocks; ++b) {
        const double d = fp16_to_fp32(q[b].d);
        for (std::size_t e = 0; e < 256; ++e) {
            const std::size_t i = b * 256 + e;
            const double D = d * S::scale_of(q[b], e / 16);
            const int code = S::code_at(q[b], e) - H;
            const double xi = x[i];
            INFO("block " << b << " element " << e << " x=" << xi << " y=" << y[i] << " D=" << D
                          << " q=" << code);
            if (D == 0.0) {
                REQUIRE(sat[i] == 1);
                REQUIRE(y[i] == 0.0f);
                ++skipped;
                continue;
            }
            const double v = xi / D;
            if (sat[i] == 0) {
                REQUIRE(std::fabs(v - code) <= 0.5 + 1e-5);
                const double err = std::fabs(xi - y[i]);
                REQUIRE(err <= 0.5 * std::fabs(D) + std::ldexp(std::fabs(xi) + H * std::fabs(D), -21));
                worst = std::fmax(worst, err / (0.5 * std::fabs(D)));
            } else {
                REQUIRE((code == -H || code == H - 1));
                REQUIRE((code == -H ? v < -H - 0.5 + 1e-5 : v > H - 0.5 - 1e-5));
                ++clamped;
            }
        }
    }
    CHECK(worst > 0.98);
    CHECK(clamped > 0);
    CHECK(skipped > 0);
}
