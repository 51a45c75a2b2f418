// qtensor/train/random.hpp: counter-based random numbers for training (the
// initial weights, the windows a step reads): a pure function of a seed and
// an index: the same at any point of a resumed run, and with any standard
// library (std::normal_distribution's numbers are implementation-defined).
#pragma once

#include <cmath>
#include <cstdint>
#include <numbers>

#include "qtensor/core/config.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace train {

// splitmix64's step and finaliser: consecutive inputs give independent-looking outputs.
inline std::uint64_t mix(std::uint64_t x) noexcept {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

// The i-th standard normal of `seed`, from two uniforms (Box-Muller), in double.
inline double normal(std::uint64_t seed, std::uint64_t i) noexcept {
    const double u1 = (static_cast<double>(mix(seed ^ (2 * i)) >> 11) + 1.0) * 0x1p-53; // (0, 1]
    const double u2 = static_cast<double>(mix(seed ^ (2 * i + 1)) >> 11) * 0x1p-53;   // [0, 1)
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

} // namespace train
QTENSOR_END_NAMESPACE
