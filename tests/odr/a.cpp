// tests/odr/a.cpp: one of the two TUs of the ODR test; b.cpp is its twin.
#include "odr.hpp"

namespace odr_a {

std::vector<qtensor::block_q4_0> quantize(std::span<const float> x) {
    return qtensor::quantize<qtensor::q4_0>(x);
}

std::vector<float> dequantize(std::span<const qtensor::block_q4_0> q) {
    return qtensor::dequantize<qtensor::q4_0>(q);
}

void quantize_bad_row() {
    const std::vector<float> x(33, 1.0f);
    static_cast<void>(qtensor::quantize<qtensor::q4_0>(x));
}

} // namespace odr_a
