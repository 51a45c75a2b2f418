// tests/odr/b.cpp: one of the two TUs of the ODR test; a.cpp is its twin. This one
// is built with -O3 -march=x86-64-v3 -ffp-contract=fast where the CPU runs that.
#include "odr.hpp"

namespace odr_b {

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

} // namespace odr_b
