// Conformance of the Q4_0 SIMD kernels with their scalar twins, on every target
// compiled in and supported by this CPU, forced one by one.
#include <doctest/doctest.h>

#include "test_util.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <span>
#include <type_traits>
#include <vector>

#include "qtensor/kernels/kernels.hpp"

using namespace qtensor;

namespace {

// Blocks over many orders of magnitude, and an all-zero block.
std::vector<float> random_row(std::size_t n, std::mt19937& rng) {
    auto x = qtensor_test::spread_blocks(n, 32, rng, -4.0f, 3.0f);
    if (n >= 64) std::fill(x.begin() + 32, x.begin() + 64, 0.0f);
    return x;
}

// Row lengths: one block, odd block counts, a long row.
constexpr std::size_t lengths[] = {32, 96, 160, 4096 + 32};

} // namespace

TEST_CASE("kernels: every compiled target is listed, best first, the fallback last") {
    const auto targets = kernels::compiled_targets();
    REQUIRE(!targets.empty());
#if defined(QTENSOR_KERNELS_BACKEND_HIGHWAY)
    for (std::size_t i = 1; i < targets.size(); ++i) CHECK(targets[i - 1].bit() < targets[i].bit());
#endif
    // Only compiled_targets() and best() make targets: no way to name one that
    // this CPU cannot run.
    static_assert(!std::is_constructible_v<kernels::target, std::int64_t>);
    MESSAGE("targets: " << [&] {
        std::string s;
        for (auto t : targets) s += t.name() + " ";
        return s;
    }());
}

TEST_CASE("kernels: dequantize_q4_0 equals q4_0::dequantize_row bit for bit on every target") {
    std::mt19937 rng(3);
    for (std::size_t n : lengths) {
        const auto q = quantize<q4_0>(random_row(n, rng));
        std::vector<float> want(n);
        q4_0::dequantize_row(q.data(), want.data(), n);
        for (const auto t : kernels::compiled_targets()) {
            std::vector<float> got(n, -1.0f);
            kernels::dequantize_q4_0(q, got, t);
            for (std::size_t i = 0; i < n; ++i) {
                INFO(t.name() << " n=" << n << " i=" << i);
                REQUIRE(std::bit_cast<std::uint32_t>(got[i]) == std::bit_cast<std::uint32_t>(want[i]));
            }
        }
    }
}

TEST_CASE("kernels: dot_q4_0_q8_0 stays within (n/32 + 17) * 2^-24 * sum |w a| on every target") {
    std::mt19937 rng(5);
    for (std::size_t n : lengths) {
        for (int rep = 0; rep < 4; ++rep) {
            const auto wq = quantize<q4_0>(random_row(n, rng));
            const auto aq = quantize<q8_0>(random_row(n, rng));
            const qtensor_test::exact_dot e = qtensor_test::exact_dot_of(dequantize<q4_0>(wq), dequantize<q8_0>(aq));
            const double exact = e.sum, magnitude = e.magnitude; // INFO captures them: no structured binding
            const double budget = static_cast<double>(n / 32 + 17) * std::ldexp(1.0, -24) * magnitude;
            CHECK(budget < 1e-3 * magnitude);
            for (const auto t : kernels::compiled_targets()) {
                const float got = kernels::dot_q4_0_q8_0(wq, aq, t);
                INFO(t.name() << " n=" << n << " exact=" << exact << " got=" << got);
                CHECK(std::fabs(got - exact) <= budget);
            }
        }
    }
}

TEST_CASE("kernels: best() runs the best compiled target's code; bad lengths throw") {
    std::mt19937 rng(9);
    const auto q = quantize<q4_0>(random_row(256, rng));
    std::vector<float> best(256), first(256);
    kernels::dequantize_q4_0(q, best); // target::best()
    kernels::dequantize_q4_0(q, first, kernels::compiled_targets().front());
    CHECK(best == first);
    CHECK_THROWS_AS(kernels::dequantize_q4_0(q, std::span(best).first(48)), qtensor::error);
    CHECK_THROWS_AS(kernels::dot_q4_0_q8_0(q, {}), qtensor::error);
    CHECK_THROWS_AS(kernels::unchecked::dot_q4_0_q8_0(q.data(), nullptr, 40), qtensor::error);
}
