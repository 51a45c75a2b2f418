// Q8_0 byte layout and reference rounding (docs/schemes.md section 5), by hand.
#include <doctest/doctest.h>

#include <limits>
#include <vector>

#include "qtensor/scheme/q8_0.hpp"

using namespace qtensor;

static_assert(quantized_scheme<q8_0> && has_dot_partner<q8_0>);

TEST_CASE("q8_0: d = amax / 127 stored as fp16, codes round half away from zero") {
    // amax = 127 gives d = 1 and id = 1: codes are roundf(x).
    std::vector<float> x(32, 0.0f);
    x[0] = -127.0f;
    x[1] = 2.5f;   // half away from zero: 3
    x[2] = -2.5f;  // -3
    x[3] = 3.5f;   // 4
    x[4] = 0.49f;  // 0
    x[31] = 100.0f;
    const auto q = quantize<q8_0>(x);
    REQUIRE(q.size() == 1);
    CHECK(q[0].d.bits == 0x3C00);
    CHECK(q[0].qs[0] == -127);
    CHECK(q[0].qs[1] == 3);
    CHECK(q[0].qs[2] == -3);
    CHECK(q[0].qs[3] == 4);
    CHECK(q[0].qs[4] == 0);
    CHECK(q[0].qs[31] == 100);
}

TEST_CASE("q8_0: the codes use the fp32 1/d, not the fp16 d") {
    // amax = 1: d = 1/127 = 0.0078740157 in fp32, and 1/d is exactly 127.
    // fp16(d) = 0.0078735352 is smaller, so dividing by it would give
    // 0.515716553 / 0.0078735352 = 65.50... -> 66, while 0.515716553 * 127 =
    // 65.49 -> 65.
    std::vector<float> x(32, 0.0f);
    x[0] = 1.0f;
    x[1] = 0.515716553f;
    const auto q = quantize<q8_0>(x);
    CHECK(q[0].d.bits == 0x2008); // fp16(0.0078740157): 1.0078125 * 2^-7
    CHECK(q[0].qs[0] == 127);
    CHECK(q[0].qs[1] == 65);
}

TEST_CASE("q8_0: all-zero block, second block independent, dequantize q * d") {
    std::vector<float> x(64, 0.0f);
    x[32] = 254.0f; // block 1: d = 2
    x[33] = -3.0f;  // -1.5 -> -2 (away from zero)
    const auto q = quantize<q8_0>(x);
    CHECK(q[0].d.bits == 0x0000); // +0: amax starts at +0
    for (auto c : q[0].qs) CHECK(c == 0);
    CHECK(q[1].d.bits == 0x4000);
    CHECK(q[1].qs[1] == -2);
    const auto y = dequantize<q8_0>(q);
    CHECK(y[32] == 254.0f);
    CHECK(y[33] == -4.0f);
}

TEST_CASE("q8_0: bad input throws, tiny blocks are defined") {
    std::vector<float> x(32, 0.0f);
    x[7] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_AS(quantize<q8_0>(x), qtensor::error);
    x[7] = 127.0f * 65520.0f; // d rounds to fp16 inf
    CHECK_THROWS_AS(quantize<q8_0>(x), qtensor::error);
    // 1/d overflows float: the block is encoded as zeros (fp16 d is 0 anyway).
    x[7] = 1.0e-40f;
    const auto q = quantize<q8_0>(x);
    CHECK(q[0].d.bits == 0);
    for (auto c : q[0].qs) CHECK(c == 0);
    CHECK_THROWS_AS(quantize<q8_0>(std::span<const float>(x.data(), 31)), qtensor::error);
}
