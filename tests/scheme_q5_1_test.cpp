// Q5_1 byte layout and reference rounding, from docs/schemes.md section 9 by
// hand. Constant blocks and the round-trip bound, which it shares with Q4_1,
// are in scheme_q4_1_test; byte-exactness against ggml is scheme_golden_test's job.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "qtensor/scheme/q5_1.hpp"
#include "test_util.hpp"

using namespace qtensor;

static_assert(scheme<q5_1> && quantized_scheme<q5_1> && !has_dot_partner<q5_1>);
static_assert(q5_1::block_elems == 32 && q5_1::block_bytes == 24);
static_assert(q5_1::type_id == ggml_type::q5_1 && static_cast<int>(q5_1::type_id) == 7);
static_assert(offsetof(block_q5_1, d) == 0 && offsetof(block_q5_1, m) == 2 && offsetof(block_q5_1, qh) == 4 &&
              offsetof(block_q5_1, qs) == 8);

namespace {

struct quantized {
    block_q5_1 block;
    std::array<std::uint8_t, 32> saturated;
    std::array<float, 32> y;
};

quantized run(const std::vector<float>& x) {
    REQUIRE(x.size() == 32);
    quantized r{};
    r.saturated.fill(0xAA); // quantize_row must write every entry
    q5_1::quantize_row(x.data(), &r.block, 32, r.saturated.data());
    q5_1::dequantize_row(&r.block, r.y.data(), 32);
    return r;
}

} // namespace

TEST_CASE("q5_1: min -1, max 30 gives d = 1, m = -1; codes round half up; nibbles and the fifth bit") {
    // d = (30 - -1) / 31 = 1, id = 1, code = trunc(x + 1 + 0.5).
    // Low half: x = j - 1 -> code j (0..15, fifth bit 0). High half (element 16 + j), x -> x + 1.5 -> code:
    //   30 -> 31.5 -> 31     29.5 -> 31.0 -> 31   28 -> 29.5 -> 29     20.49 -> 21.99 -> 21
    //   16 -> 17.5 -> 17     15.5 -> 17.0 -> 17   14.5 -> 16.0 -> 16   14.49 -> 15.99 -> 15
    //   7 -> 8.5 -> 8        6.5 -> 8.0 -> 8      3 -> 4.5 -> 4        0 -> 1.5 -> 1
    //   -0.5 -> 1.0 -> 1     -0.75 -> 0.75 -> 0   -1 -> 0.5 -> 0       29.9 -> 31.4 -> 31
    std::vector<float> x(32);
    for (std::size_t j = 0; j < 16; ++j) x[j] = static_cast<float>(j) - 1.0f;
    const std::array<float, 16> high{30, 29.5f, 28, 20.49f, 16, 15.5f, 14.5f, 14.49f,
                                     7,  6.5f,  3,  0,      -0.5f, -0.75f, -1, 29.9f};
    const std::array<int, 16> high_code{31, 31, 29, 21, 17, 17, 16, 15, 8, 8, 4, 1, 1, 0, 0, 31};
    for (std::size_t j = 0; j < 16; ++j) x[16 + j] = high[j];
    const auto r = run(x);
    CHECK(r.block.d.bits == 0x3C00); // fp16(1.0)
    CHECK(r.block.m.bits == 0xBC00); // fp16(-1.0)
    // qh bit 16 + j = high_code[j] >> 4: 1 for j = 0..6, 0 for j = 7..14, 1 for j = 15.
    CHECK(r.block.qh[0] == 0x00);
    CHECK(r.block.qh[1] == 0x00);
    CHECK(r.block.qh[2] == 0x7F);
    CHECK(r.block.qh[3] == 0x80);
    // qs[j] = j | (high_code[j] & 15) << 4, e.g. qs[0] = 0xF0, qs[2] = 2 | 13 << 4, qs[3] = 3 | 5 << 4.
    const std::array<std::uint8_t, 16> qs{0xF0, 0xF1, 0xD2, 0x53, 0x14, 0x15, 0x06, 0xF7,
                                          0x88, 0x89, 0x4A, 0x1B, 0x1C, 0x0D, 0x0E, 0xFF};
    for (std::size_t j = 0; j < 16; ++j) {
        CHECK(r.block.qs[j] == qs[j]);
        // w = code * 1 + -1, exact.
        CHECK(r.y[j] == x[j]);
        CHECK(r.y[16 + j] == static_cast<float>(high_code[j] - 1));
    }
    for (auto s : r.saturated) CHECK(s == 0);
}

TEST_CASE("q5_1: the codes use the fp32 d; only the stored one is rounded") {
    // min 0, max 3.1: d = 3.1f / 31 = 0.099999994, id = 1 / d = 10.000001 (both
    // float), stored d = fp16(0.1) = 0x2E66 = 1638 / 16384. x = 1.5497 -> 15.497 + 0.5
    // -> 15, where 1 / fp16(d) = 10.00244 would give 15.5008 + 0.5 -> 16. 3.1 -> 31.
    std::vector<float> x(32, 0.0f);
    x[1] = 3.1f;
    x[2] = 1.5497f;
    const auto r = run(x);
    CHECK(r.block.d.bits == 0x2E66);
    CHECK(r.block.m.bits == 0x0000);
    CHECK(detail::five_bit_code(r.block.qs, r.block.qh, 1) == 31);
    CHECK(detail::five_bit_code(r.block.qs, r.block.qh, 2) == 15);
    CHECK(r.block.qs[1] == 0x0F);
    CHECK(r.block.qs[2] == 0x0F);
    CHECK(r.block.qh[0] == 0x02); // only element 1 has the fifth bit
    CHECK(r.y[1] == 31.0f * 1638.0f / 16384.0f);
    CHECK(r.y[2] == 15.0f * 1638.0f / 16384.0f);
}

TEST_CASE("q5_1: the worked example of docs/schemes.md section 9 is stored exactly") {
    // x[j] = ((7j mod 32) - 12) / 8: min -1.5, max 2.375, d = 3.875 / 31 = 0.125, id = 8,
    // (x + 1.5) * 8 = 7j mod 32, an integer: code[j] = 7j mod 32, every value 0..31 once.
    // qs[j] = n | n << 4 with n = 7j mod 16 (codes j and j + 16 differ only in bit 4);
    // qh bit j = (7j mod 32) >> 4, e.g. elements 0..7 (codes 0 7 14 21 28 3 10 17): 0x98.
    std::vector<float> x(32);
    for (std::size_t j = 0; j < 32; ++j) x[j] = static_cast<float>(static_cast<int>(7 * j % 32) - 12) / 8.0f;
    const auto r = run(x);
    CHECK(r.block.d.bits == 0x3000);
    CHECK(r.block.m.bits == 0xBE00);
    const std::array<std::uint8_t, 4> qh{0x98, 0x33, 0x67, 0xCC};
    const std::array<std::uint8_t, 16> qs{0x00, 0x77, 0xEE, 0x55, 0xCC, 0x33, 0xAA, 0x11,
                                          0x88, 0xFF, 0x66, 0xDD, 0x44, 0xBB, 0x22, 0x99};
    CHECK(r.block.qh == qh);
    CHECK(r.block.qs == qs);
    for (std::size_t j = 0; j < 32; ++j) {
        CHECK(detail::five_bit_code(r.block.qs, r.block.qh, j) == static_cast<int>(7 * j % 32));
        CHECK(r.y[j] == x[j]);
    }
}

TEST_CASE("q5_1: rejects NaN, infinity, and a d or minimum past the fp16 range") {
    std::vector<float> x(64, 1.0f);
    const auto quantize_x = [&] { (void)quantize<q5_1>(x); };
    x[40] = std::numeric_limits<float>::quiet_NaN();
    CHECK(qtensor_test::message_of(quantize_x) ==
          "qtensor: q5_1: element 40 is NaN; quantized schemes need finite input");
    x[40] = std::numeric_limits<float>::infinity();
    CHECK(qtensor_test::message_of(quantize_x) ==
          "qtensor: q5_1: element 40 is infinite; quantized schemes need finite input");
    // Range 3e6 - 1 in block 1: d = 96774.2 rounds to fp16 inf.
    x[40] = 3.0e6f;
    CHECK(qtensor_test::message_of(quantize_x).find("qtensor: q5_1: block 1 needs scale 96774") == 0);
    // Range 2031000 - 1: d = 65516.1, below the rounding point 65520: 65504.
    x[40] = 2031000.0f;
    CHECK(quantize<q5_1>(x)[1].d.bits == 0x7BFF);
    // A block minimum of -70000 rounds to -inf; -65500 rounds to -65504.
    std::fill(x.begin(), x.end(), -70000.0f);
    CHECK(qtensor_test::message_of(quantize_x).find("qtensor: q5_1: block 0 has minimum -70000") == 0);
    std::fill(x.begin(), x.end(), -65500.0f);
    CHECK(quantize<q5_1>(x)[0].m.bits == 0xFBFF);
}
