// Kernels compiled separately (separate/kernels.cpp) and called from a TU
// that only declares them: the same bits as the references, on every target
// the other TU compiled.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "qtensor/kernels/kernels.hpp"

#if !defined(QTENSOR_KERNELS_DECLARE_ONLY)
#error "this TU must be built with QTENSOR_KERNELS_SEPARATE and without QTENSOR_KERNELS_DEFINE"
#endif
#if defined(HWY_TARGET_INCLUDE) || defined(HWY_NAMESPACE)
#error "a TU that only declares the kernels compiled Highway's per-target code"
#endif

using namespace qtensor;

TEST_CASE("separately compiled kernels give the references' results") {
    std::mt19937 rng(5);
    std::normal_distribution<float> normal;
    std::vector<float> x(4096), y(4096);
    for (auto& v : x) v = normal(rng);
    for (auto& v : y) v = normal(rng);
    std::vector<block_q4_0> want(x.size() / 32);
    q4_0::quantize_row(x.data(), want.data(), x.size());
    REQUIRE(kernels::compiled_targets().size() >= 1);
    for (const auto t : kernels::compiled_targets()) {
        INFO("target " << t.name());
        std::vector<block_q4_0> got(want.size());
        kernels::quantize_row<q4_0>(x, got, t);
        CHECK(std::memcmp(got.data(), want.data(), got.size() * sizeof(block_q4_0)) == 0);

        double exact = 0.0, bound = 0.0;
        for (std::size_t i = 0; i < x.size(); ++i) {
            exact += double(x[i]) * double(y[i]);
            bound += std::fabs(double(x[i]) * double(y[i]));
        }
        // float_ops.hpp: |dot - ref| <= gamma_(5n/4 + 7) sum |x y|, ref within gamma_n of exact.
        const double n = static_cast<double>(x.size());
        CHECK(std::fabs(kernels::dot(x, y, t) - exact) <= (2.25 * n + 7) * 0x1p-24 * bound);
    }
}
