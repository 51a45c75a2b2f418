// qtensor/nn/rope_frequencies.hpp: the per-pair frequencies of a RoPE, plain
// double maths. Apart from nn/ops.hpp (which applies them with the kernels)
// so that a config reader can compute them without including any kernel.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace nn {

// The RoPE frequencies of a head of d elements: f_i = theta^(-2i/d) / factor
// for the first `rotated` pairs, 0 (no rotation) for the other d/2 - rotated.
// The exponent uses the full d even when only some pairs rotate (Gemma 4's
// "proportional" RoPE). Computed in double, rounded once.
inline std::vector<float> rope_frequencies(std::size_t d, double theta, std::size_t rotated,
                                           double factor = 1.0) {
    if (d % 2 != 0 || rotated > d / 2)
        throw error("nn::rope_frequencies: head dim " + std::to_string(d) + " with " +
                    std::to_string(rotated) + " rotated pairs");
    std::vector<float> f(d / 2, 0.0f);
    for (std::size_t i = 0; i < rotated; ++i)
        f[i] = static_cast<float>(
            std::pow(theta, -static_cast<double>(2 * i) / static_cast<double>(d)) / factor);
    return f;
}

} // namespace nn
QTENSOR_END_NAMESPACE
