// Smallest real use of the package: quantize a row to Q4_0 and back.
#include <cstdio>
#include <vector>

#include "qtensor/qtensor.hpp"

int main() {
    // Multiples of 1/2 in [-4, 3.5] with -4 present: Q4_0 scale 0.5, exact round trip.
    std::vector<float> x(32);
    for (std::size_t j = 0; j < x.size(); ++j)
        x[j] = static_cast<float>(static_cast<int>(j % 16) - 8) * 0.5f;
    const auto y = qtensor::dequantize<qtensor::q4_0>(qtensor::quantize<qtensor::q4_0>(x));
    std::printf("qtensor %d.%d.%d: q4_0 round trip %s\n", QTENSOR_VERSION_MAJOR,
                QTENSOR_VERSION_MINOR, QTENSOR_VERSION_PATCH, y == x ? "exact" : "WRONG");
    return y == x ? 0 : 1;
}
