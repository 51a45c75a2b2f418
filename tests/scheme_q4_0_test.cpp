// Q4_0 byte layout and reference rounding, from docs/schemes.md section 6, by hand.
#include <doctest/doctest.h>

#include <array>
#include <vector>

#include "qtensor/scheme/q4_0.hpp"

using namespace qtensor;

TEST_CASE("q4_0: an all-zero block stores d = -0.0 and every byte 0x88") {
    const std::vector<float> x(32, 0.0f);
    const auto b = quantize<q4_0>(x);
    REQUIRE(b.size() == 1);
    CHECK(b[0].d.bits == 0x8000);
    for (auto q : b[0].qs) CHECK(q == 0x88);
}

TEST_CASE("q4_0: max maps to code 0, -max clamps to 15, ties round half up") {
    // max = +8 (first), so d = -1 and id = -1: code = min(15, trunc(-x + 8.5)).
    std::vector<float> x(32, 0.0f);
    x[0] = 8.0f;   // -8 + 8.5 = 0.5  -> 0
    x[1] = -8.0f;  // 8 + 8.5 = 16.5  -> 16 -> clamped to 15
    x[2] = 0.5f;   // -0.5 + 8.5 = 8.0 -> 8
    x[3] = -0.5f;  // 0.5 + 8.5 = 9.0  -> 9 (half up)
    x[4] = 1.5f;   // -1.5 + 8.5 = 7.0 -> 7
    x[16] = 3.0f;  // element 16 -> high nibble of byte 0: 5.5 -> 5
    std::array<std::uint8_t, 32> sat{};
    block_q4_0 b{};
    q4_0::quantize_row(x.data(), &b, 32, sat.data());
    CHECK(b.d.bits == 0xBC00); // fp16(-1.0)
    CHECK(b.qs[0] == (0x0 | (0x5 << 4)));
    CHECK((b.qs[1] & 0x0f) == 15);
    CHECK((b.qs[2] & 0x0f) == 8);
    CHECK((b.qs[3] & 0x0f) == 9);
    CHECK((b.qs[4] & 0x0f) == 7);
    CHECK(sat[1] == 1);
    CHECK(sat[0] == 0);
}

TEST_CASE("q4_0: rejects NaN, infinity and a scale past the fp16 range") {
    std::vector<float> x(32, 1.0f);
    x[5] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_AS(quantize<q4_0>(x), qtensor::error);
    x[5] = std::numeric_limits<float>::infinity();
    CHECK_THROWS_AS(quantize<q4_0>(x), qtensor::error);
    x[5] = 1.0e6f; // d = -125000 does not fit fp16
    CHECK_THROWS_AS(quantize<q4_0>(x), qtensor::error);
    x[5] = 5.0e5f; // d = -62500 fits
    CHECK_NOTHROW(quantize<q4_0>(x));
}
