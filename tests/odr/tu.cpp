// tests/odr/tu.cpp: compiled twice into the odr_two_tus program, as namespace
// odr_a with the default flags and as odr_b with -O3 -march=x86-64-v3
// -ffp-contract=fast (where the CPU runs that); see tests/cmake/odr.cmake.
#include "odr.hpp"

#ifndef ODR_TU_NAME
#error "define ODR_TU_NAME"
#endif

namespace ODR_TU_NAME {

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

} // namespace ODR_TU_NAME
