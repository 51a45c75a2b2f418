// tests/odr/odr.hpp: what the two builds of tests/odr/tu.cpp export to
// main.cpp. Each does the same work with the same qtensor templates.
#pragma once

#include <span>
#include <vector>

#include "qtensor/qtensor.hpp"

namespace odr_a {
std::vector<qtensor::block_q4_0> quantize(std::span<const float> x);
std::vector<float> dequantize(std::span<const qtensor::block_q4_0> q);
void quantize_bad_row(); // throws qtensor::error: 33 elements is not whole blocks
} // namespace odr_a

namespace odr_b {
std::vector<qtensor::block_q4_0> quantize(std::span<const float> x);
std::vector<float> dequantize(std::span<const qtensor::block_q4_0> q);
void quantize_bad_row();
} // namespace odr_b
