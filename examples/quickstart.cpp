// Quantize a row to Q4_0, look at the bytes, dequantize it, measure the error.
#include <cmath>
#include <cstdio>
#include <vector>

#include "qtensor/qtensor.hpp"

int main() {
    std::vector<float> x(64);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37f * static_cast<float>(i));

    const auto blocks = qtensor::quantize<qtensor::q4_0>(x);
    const auto y = qtensor::dequantize<qtensor::q4_0>(blocks);

    double max_err = 0.0;
    for (std::size_t i = 0; i < x.size(); ++i)
        max_err = std::fmax(max_err, std::fabs(static_cast<double>(x[i]) - y[i]));
    std::printf("%zu floats (%zu bytes) -> %zu q4_0 blocks (%zu bytes), max |error| %.4f\n",
                x.size(), x.size() * sizeof(float), blocks.size(),
                qtensor::row_bytes<qtensor::q4_0>(x.size()), max_err);
}
