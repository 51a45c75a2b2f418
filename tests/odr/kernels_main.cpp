// Runs both copies of tests/odr/kernels_tu.cpp on the same blocks.
#include <cmath>
#include <cstdio>
#include <vector>

#include "qtensor/scheme/q4_0.hpp"

bool odr_kernels_default(const std::vector<qtensor::block_q4_0>& q);
bool odr_kernels_v3(const std::vector<qtensor::block_q4_0>& q);

int main() {
    std::vector<float> x(256);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.7f * static_cast<float>(i)) * 3.0f;
    const auto q = qtensor::quantize<qtensor::q4_0>(x);
    const bool a = odr_kernels_default(q), b = odr_kernels_v3(q);
    std::printf("default TU %s, x86-64-v3 TU %s\n", a ? "ok" : "WRONG", b ? "ok" : "WRONG");
    return a && b ? 0 : 1;
}
