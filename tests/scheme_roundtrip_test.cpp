// Round-trip error of Q4_0, Q5_0 and Q8_0 against bounds derived from the rules.
//
// With d the fp32 block scale, d16 = fp16(d) the stored one, and c the code:
//   Q8_0: c = roundf(x / d) (via the fp32 reciprocal), |c| <= 127, so
//         |x - c*d16| <= |c|*|d16 - d| + |d|*|c - x/d| <= 127*|d16 - d| + 0.5*|d|
//   Q4_0: c - 8 = floor(x/d + 0.5) in [-8, 7], so the same argument gives
//         8*|d16 - d| + 0.5*|d|, and |d| for the one clamped element (x/d = 8).
//   Q5_0: c - 16 = floor(x/d + 0.5) in [-16, 15]: 16*|d16 - d| + 0.5*|d|, and
//         |d| for the clamped element (x/d = 16).
// Each bound gets a slack of 2^-20 * |d| for the fp32 rounding of x * (1/d) and
// of the final product.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include "qtensor/scheme/q4_0.hpp"
#include "qtensor/scheme/q5_0.hpp"
#include "qtensor/scheme/q8_0.hpp"

using namespace qtensor;

namespace {

struct rule {
    float max_code;     // largest |c| (Q8_0 127, Q4_0 8, Q5_0 16)
    float divisor;      // d = signed max / divisor
};

template <class S>
void check_roundtrip(const rule& r, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> gauss(0.0f, 1.0f);
    std::uniform_real_distribution<float> log_scale(-6.0f, 4.0f);
    constexpr std::size_t blocks = 2000;
    std::vector<float> x(blocks * 32);
    for (std::size_t b = 0; b < blocks; ++b) {
        const float s = std::pow(10.0f, log_scale(rng));
        for (std::size_t j = 0; j < 32; ++j) x[b * 32 + j] = s * gauss(rng);
    }
    std::vector<block_of<S>> q(blocks);
    std::vector<std::uint8_t> saturated(x.size());
    S::quantize_row(x.data(), q.data(), x.size(), saturated.data());
    const auto y = dequantize<S>(q);

    double worst_ratio = 0.0; // largest observed error / (0.5 * |d|): shows the bound is tight
    for (std::size_t b = 0; b < blocks; ++b) {
        float amax = 0.0f;
        for (std::size_t j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[b * 32 + j]));
        const double d = amax / r.divisor;
        const double d16 = std::fabs(fp16_to_fp32(q[b].d));
        for (std::size_t j = 0; j < 32; ++j) {
            const std::size_t i = b * 32 + j;
            const double code_err = saturated[i] ? 1.0 : 0.5;
            const double bound = r.max_code * std::fabs(d16 - d) + (code_err + std::ldexp(1.0, -20)) * d;
            const double err = std::fabs(static_cast<double>(x[i]) - y[i]);
            INFO("block " << b << " element " << j << " x=" << x[i] << " y=" << y[i] << " d=" << d);
            REQUIRE(err <= bound);
            if (!saturated[i]) worst_ratio = std::fmax(worst_ratio, err / (0.5 * d));
        }
    }
    // Half a step is reached (up to the fp16 scale error): the bound is not loose.
    CHECK(worst_ratio > 0.98);
}

} // namespace

TEST_CASE("q8_0 round trip: |x - y| <= 127*|fp16(d) - d| + |d|/2") {
    check_roundtrip<q8_0>({127.0f, 127.0f}, 7);
}

TEST_CASE("q4_0 round trip: |x - y| <= 8*|fp16(d) - d| + |d|/2, |d| when clamped") {
    check_roundtrip<q4_0>({8.0f, 8.0f}, 11);
}

TEST_CASE("q5_0 round trip: |x - y| <= 16*|fp16(d) - d| + |d|/2, |d| when clamped") {
    check_roundtrip<q5_0>({16.0f, 16.0f}, 13);
}
