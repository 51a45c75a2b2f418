// Helpers shared by the benchmarks.
#pragma once

#include <cstddef>
#include <random>
#include <vector>

namespace qtensor_bench {

// n standard-normal floats, the same every run.
inline std::vector<float> random_floats(std::size_t n) {
    std::mt19937 rng(42);
    std::normal_distribution<float> gauss(0.0f, 1.0f);
    std::vector<float> x(n);
    for (auto& v : x) v = gauss(rng);
    return x;
}

} // namespace qtensor_bench
