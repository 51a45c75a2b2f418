// IQ4_NL and IQ4_XS: layouts, the grid, the quantizer on inputs whose result
// is known by hand, and the dot products, from docs/schemes.md section 16.
// (Their bytes against ggml's are checked in scheme_golden_test.cpp.)
//
// The hand-made blocks are x = sigma * grid[code] with sigma a power of two and
// every code present twice: the grid fits them exactly, so the search finds
// scale = sigma (sumqx = sigma * sumq2 exactly, term by term, as sigma is a
// power of two) and the codes come back.
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "test_util.hpp"

#include "qtensor/scheme/iq4_nl.hpp"
#include "qtensor/scheme/iq4_xs.hpp"

using namespace qtensor;
using qtensor_test::message_of;

static_assert(scheme<iq4_nl> && quantized_scheme<iq4_nl> && has_dot_partner<iq4_nl>);
static_assert(scheme<iq4_xs> && quantized_scheme<iq4_xs> && has_dot_partner<iq4_xs>);
static_assert(std::is_same_v<iq4_nl::dot_partner, q8_0> && std::is_same_v<iq4_xs::dot_partner, q8_k>);
static_assert(static_cast<int>(iq4_nl::type_id) == 20 && static_cast<int>(iq4_xs::type_id) == 23);
static_assert(iq4_nl::block_elems == 32 && iq4_nl::block_bytes == 18);
static_assert(iq4_xs::block_elems == 256 && iq4_xs::block_bytes == 136);
static_assert(offsetof(block_iq4_nl, qs) == 2);
static_assert(offsetof(block_iq4_xs, scales_h) == 2 && offsetof(block_iq4_xs, scales_l) == 4 &&
              offsetof(block_iq4_xs, qs) == 8);

namespace {

// ggml's kvalues_iq4nl (ggml-common.h), written out here as the oracle.
constexpr std::array<int, 16> ggml_grid{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

// Every code twice per 32: 0..15, then 15..0. Element 0 (code 0, grid -127)
// is the first of largest magnitude.
int pattern(std::size_t e) { return e % 32 < 16 ? static_cast<int>(e % 32) : static_cast<int>(31 - e % 32); }

std::vector<float> grid_block(const std::vector<float>& sigma) {
    std::vector<float> x(32 * sigma.size());
    for (std::size_t e = 0; e < x.size(); ++e)
        x[e] = sigma[e / 32] * static_cast<float>(ggml_grid[static_cast<std::size_t>(pattern(e))]);
    return x;
}

} // namespace

TEST_CASE("iq4: the grid is ggml's, and a value goes to its nearest grid point, ties upward") {
    for (std::size_t c = 0; c < 16; ++c) CHECK(detail::iq4_grid[c] == ggml_grid[c]);
    CHECK(detail::iq4_code(-1000.0f) == 0);
    CHECK(detail::iq4_code(-127.0f) == 0);
    CHECK(detail::iq4_code(113.0f) == 15);
    CHECK(detail::iq4_code(1e9f) == 15);
    CHECK(detail::iq4_code(0.0f) == 8);   // 1 is nearer than -10
    CHECK(detail::iq4_code(-4.5f) == 8);  // halfway between -10 and 1: upward
    CHECK(detail::iq4_code(-4.51f) == 7);
    CHECK(detail::iq4_code(7.0f) == 9);   // halfway between 1 and 13
    CHECK(detail::iq4_code(-115.5f) == 1); // halfway between -127 and -104
    CHECK(detail::iq4_code(101.0f) == 15); // halfway between 89 and 113
    for (std::size_t c = 0; c < 16; ++c) CHECK(detail::iq4_code(static_cast<float>(ggml_grid[c])) == static_cast<int>(c));
}

TEST_CASE("iq4_nl: dequantize is d * grid[code], low nibbles first") {
    block_iq4_nl b{};
    b.d = fp32_to_fp16(-0.25f);
    for (std::size_t j = 0; j < 16; ++j) b.qs[j] = static_cast<std::uint8_t>(j | (15 - j) << 4);
    std::array<float, 32> y{};
    iq4_nl::dequantize_row(&b, y.data(), 32);
    for (std::size_t e = 0; e < 32; ++e)
        CHECK(y[e] == -0.25f * static_cast<float>(ggml_grid[static_cast<std::size_t>(pattern(e))]));
    CHECK(y[0] == 31.75f);
    CHECK(y[16] == -28.25f); // code 15, 113
}

TEST_CASE("iq4_nl: a block on the grid comes back exactly") {
    for (const float sigma : {0.5f, -0.5f, 0.0078125f, 64.0f}) {
        INFO("sigma=" << sigma);
        const std::vector<float> x = grid_block({sigma});
        std::array<std::uint8_t, 32> saturated{};
        block_iq4_nl b{};
        iq4_nl::quantize_row(x.data(), &b, 32, saturated.data());
        CHECK(fp16_to_fp32(b.d) == sigma);
        for (std::size_t j = 0; j < 16; ++j) CHECK(b.qs[j] == (j | (15 - j) << 4));
        for (auto s : saturated) CHECK(s == 0); // -127 and 113 are reached, not passed
        std::array<float, 32> y{};
        iq4_nl::dequantize_row(&b, y.data(), 32);
        for (std::size_t e = 0; e < 32; ++e) CHECK(y[e] == x[e]);
    }
}

TEST_CASE("iq4_nl: zero and near-zero blocks store d = 0 and code 8, all saturated") {
    for (const float v : {0.0f, -0.0f, 1e-16f}) {
        INFO("v=" << v);
        std::vector<float> x(32, v);
        std::array<std::uint8_t, 32> saturated{};
        block_iq4_nl b{};
        iq4_nl::quantize_row(x.data(), &b, 32, saturated.data());
        CHECK(b.d.bits == 0x0000);
        for (auto q : b.qs) CHECK(q == 0x88);
        for (auto s : saturated) CHECK(s == 1);
    }
    // At exactly 1e-15 the block is searched (the test is |max| < 1e-15): the
    // first fit maps it to 113 and every later sum underflows to 0, so that
    // fit stays: codes 15. Its scale, 1e-15 / 113, is below fp16's range, so
    // d = 0 and the output is 0 whatever x is: all saturated.
    std::vector<float> x(32, 1e-15f);
    std::array<std::uint8_t, 32> saturated{};
    block_iq4_nl b{};
    iq4_nl::quantize_row(x.data(), &b, 32, saturated.data());
    CHECK(b.d.bits == 0x0000);
    for (auto q : b.qs) CHECK(q == 0xFF);
    for (auto s : saturated) CHECK(s == 1);
}

TEST_CASE("iq4_xs: sub-block scales, their packing, and the clamp at 31") {
    // Sub-block scales sigma_s; the largest |sigma| is 2, first at s = 3
    // (s = 4's -2 ties and loses), so D = -2/32 = -0.0625 and
    // l_s = nearest_int(-16 * sigma_s) = -16 8 -4 -32 32->31 -2 16 -8,
    // ls_s = l_s + 32 = 16 40 28 0 63 30 48 24.
    const std::vector<float> sigma{1.0f, -0.5f, 0.25f, 2.0f, -2.0f, 0.125f, -1.0f, 0.5f};
    const std::vector<float> x = grid_block(sigma);
    std::array<std::uint8_t, 256> saturated{};
    block_iq4_xs b{};
    iq4_xs::quantize_row(x.data(), &b, 256, saturated.data());

    CHECK(b.d.bits == 0xAC00); // fp16(-0.0625)
    const std::array<int, 8> want_ls{16, 40, 28, 0, 63, 30, 48, 24};
    for (std::size_t s = 0; s < 8; ++s) CHECK(iq4_xs::scale_of(b, s) == want_ls[s]);
    // Low nibbles: 0|8, 12|0, 15|14, 0|8; high pairs 1 2 1 0 3 1 3 1 from bit 0 up.
    CHECK(b.scales_l[0] == 0x80);
    CHECK(b.scales_l[1] == 0x0C);
    CHECK(b.scales_l[2] == 0xEF);
    CHECK(b.scales_l[3] == 0x80);
    CHECK(b.scales_h[0] == 0x19); // 0b00'01'10'01 read from bit 0: 1, 2, 1, 0
    CHECK(b.scales_h[1] == 0x77); // 3, 1, 3, 1

    // Sub-block 4 has step D * 31 = -1.9375 for sigma -2: its values scale by
    // 2 / 1.9375 = 1.032, which keeps every code (the grid's half gaps are
    // >= 5.5, the shift at most 4.1) but pushes -127 and 113 past the ends.
    std::array<float, 256> y{};
    iq4_xs::dequantize_row(&b, y.data(), 256);
    for (std::size_t e = 0; e < 256; ++e) {
        INFO("e=" << e);
        const std::size_t s = e / 32;
        const int code = pattern(e);
        CHECK(iq4_xs::code_at(b, e) == code);
        const float step = s == 4 ? -1.9375f : sigma[s];
        CHECK(y[e] == step * static_cast<float>(ggml_grid[static_cast<std::size_t>(code)]));
        CHECK(saturated[e] == (s == 4 && (code == 0 || code == 15) ? 1 : 0));
    }
}

TEST_CASE("iq4_xs: sub-scales round half to even; a sub-block at l = 0 has codes 8, all saturated") {
    // D = -2/32 = -1/16 again, so l_s = nearest_int(-16 * sigma_s): sigma
    // 1/32 gives -0.5 and -1/32 gives 0.5, both 0 (half to even; roundf would
    // give -1 and 1); 2^-4 gives -1.
    const std::vector<float> sigma{2.0f, 0.03125f, -0.03125f, 0.0625f, 1.0f, 1.0f, 1.0f, 1.0f};
    const std::vector<float> x = grid_block(sigma);
    std::array<std::uint8_t, 256> saturated{};
    block_iq4_xs b{};
    iq4_xs::quantize_row(x.data(), &b, 256, saturated.data());
    REQUIRE(b.d.bits == 0xAC00);
    CHECK(iq4_xs::scale_of(b, 0) == 0);
    CHECK(iq4_xs::scale_of(b, 1) == 32);
    CHECK(iq4_xs::scale_of(b, 2) == 32);
    CHECK(iq4_xs::scale_of(b, 3) == 31);
    for (std::size_t e = 32; e < 96; ++e) {
        CHECK(iq4_xs::code_at(b, e) == 8);
        CHECK(saturated[e] == 1);
    }
}

TEST_CASE("iq4_xs: an all-zero super-block stores d = -0 and scale 32, and dequantizes to -0") {
    std::vector<float> x(256, 0.0f);
    std::array<std::uint8_t, 256> saturated{};
    block_iq4_xs b{};
    iq4_xs::quantize_row(x.data(), &b, 256, saturated.data());
    CHECK(b.d.bits == 0x8000); // -max_scale / 32 with max_scale = +0
    CHECK(b.scales_h[0] == 0xAA);
    CHECK(b.scales_h[1] == 0xAA);
    for (auto l : b.scales_l) CHECK(l == 0x00);
    for (auto q : b.qs) CHECK(q == 0x88);
    for (auto s : saturated) CHECK(s == 1);
    std::array<float, 256> y{};
    iq4_xs::dequantize_row(&b, y.data(), 256);
    for (float v : y) CHECK((v == 0.0f && std::signbit(v)));
}

TEST_CASE("iq4_nl . q8_0 and iq4_xs . q8_k: code j pairs with a[j], scales as ggml applies them") {
    // Codes 7j mod 16 (low nibbles) and (7j + 3) mod 16 (high), a.qs[j] = j*j - 100:
    // no symmetry that a swapped nibble or a reversed row would keep.
    block_iq4_nl w{};
    w.d = fp32_to_fp16(0.5f);
    for (std::size_t j = 0; j < 16; ++j) w.qs[j] = static_cast<std::uint8_t>((7 * j) % 16 | ((7 * j + 3) % 16) << 4);
    block_q8_0 a{};
    a.d = fp32_to_fp16(0.25f);
    double want = 0.0;
    for (std::size_t j = 0; j < 32; ++j) {
        a.qs[j] = static_cast<std::int8_t>(static_cast<int>(j * j % 200) - 100);
        const std::size_t code = j < 16 ? (7 * j) % 16 : (7 * (j - 16) + 3) % 16;
        want += 0.5 * 0.25 * ggml_grid[code] * (static_cast<int>(j * j % 200) - 100);
    }
    CHECK(iq4_nl::dot_row(&w, &a, 32) == static_cast<float>(want));

    // One super-block, sub-block s at ls = 32 + s - 4 (steps -4 .. 3), all
    // codes pattern(e), a.qs = s + 1 at element e = 32s + 5 only (so a
    // sub-block paired with another's scale changes the sum).
    block_iq4_xs x{};
    x.d = fp32_to_fp16(0.5f);
    unsigned h = 0;
    for (std::size_t s = 0; s < 8; ++s) {
        const unsigned ls = static_cast<unsigned>(28 + s);
        x.scales_l[s / 2] = static_cast<std::uint8_t>(x.scales_l[s / 2] | (ls & 15) << (4 * (s % 2)));
        h |= (ls >> 4) << (2 * s);
    }
    x.scales_h = {static_cast<std::uint8_t>(h & 0xff), static_cast<std::uint8_t>(h >> 8)};
    for (std::size_t j = 0; j < 128; ++j) x.qs[j] = static_cast<std::uint8_t>(j % 16 | (15 - j % 16) << 4);
    block_q8_k q{};
    q.d = 2.0f;
    double want_xs = 0.0;
    for (std::size_t s = 0; s < 8; ++s) {
        q.qs[32 * s + 5] = static_cast<std::int8_t>(s + 1);
        want_xs += 2.0 * 0.5 * (static_cast<double>(s) - 4.0) * ggml_grid[5] * static_cast<double>(s + 1);
    }
    CHECK(iq4_xs::scale_of(x, 0) == 28);
    CHECK(iq4_xs::dot_row(&x, &q, 256) == static_cast<float>(want_xs));
}

TEST_CASE_TEMPLATE("iq4 dot products stay within their stated budget", W, iq4_nl, iq4_xs) {
    using A = typename W::dot_partner;
    for (const std::size_t n : {256u, 4096u}) {
        for (std::uint32_t seed = 1; seed <= 4; ++seed) {
            std::mt19937 rng(seed);
            std::normal_distribution<float> dist(0.0f, 1.0f);
            std::vector<float> xw(n), xa(n);
            for (auto& v : xw) v = dist(rng);
            for (auto& v : xa) v = dist(rng);
            const auto w = quantize<W>(xw);
            const auto a = quantize<A>(xa);
            const std::vector<float> dw = dequantize<W>(std::span<const block_of<W>>(w));
            const std::vector<float> da = dequantize<A>(std::span<const block_of<A>>(a));
            double exact = 0.0, magnitude = 0.0;
            for (std::size_t i = 0; i < n; ++i) {
                exact += static_cast<double>(dw[i]) * da[i];
                magnitude += std::fabs(static_cast<double>(dw[i]) * da[i]);
            }
            // iq4_nl: Q4_0's (n/32 + 1); iq4_xs: (n/32 + 4) (the dot_row comments).
            const double terms = std::is_same_v<W, iq4_nl> ? 1.0 : 4.0;
            const double budget = (static_cast<double>(n / 32) + terms) * std::ldexp(1.0, -24) * magnitude;
            const double got = W::dot_row(w.data(), a.data(), n);
            INFO("n=" << n << " seed=" << seed << " exact=" << exact << " got=" << got << " budget=" << budget);
            CHECK(std::fabs(got - exact) <= budget);
            CHECK(budget < 1e-3 * magnitude);
        }
    }
}

TEST_CASE_TEMPLATE("iq4: NaN, infinity and scales past the fp16 range are refused", S, iq4_nl, iq4_xs) {
    std::vector<float> x(256, 1.0f);
    x[200] = std::numeric_limits<float>::quiet_NaN();
    CHECK(message_of([&] { quantize<S>(x); }).find("is NaN") != std::string::npos);
    x[200] = -std::numeric_limits<float>::infinity();
    CHECK(message_of([&] { quantize<S>(x); }).find("is infinite") != std::string::npos);
    // IQ4_NL's scale is about max/127: 1e7 needs 78740, past 65504. IQ4_XS
    // stores max/127/32, so it takes 3e8 (scale 73800) to overflow it.
    x[200] = 1e7f;
    if constexpr (std::is_same_v<S, iq4_nl>)
        CHECK(message_of([&] { quantize<S>(x); }).find("past the fp16 range") != std::string::npos);
    else
        CHECK_NOTHROW(quantize<S>(x)); // d = 78740 / 32
    x[200] = 3e8f;
    CHECK(message_of([&] { quantize<S>(x); }).find("past the fp16 range") != std::string::npos);
    // |x| = 1e13: x^2 * 127 * x overflows the search's float sums. With one
    // sum +inf and the other -inf, the scale is NaN: an IQ4_XS sub-block must
    // not then be skipped (|NaN| is never the largest scale).
    x[200] = 1e13f;
    const std::string where = std::is_same_v<S, iq4_nl> ? "block 6: " : "block 0, sub-block 6: ";
    CHECK(message_of([&] { quantize<S>(x); }).find(where + "the scale search overflows float") != std::string::npos);
    x[200] = 1e15f;
    x[201] = -3e13f;
    CHECK(message_of([&] { quantize<S>(x); }).find("the scale search overflows float") != std::string::npos);
}
