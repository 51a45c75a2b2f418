// qtensor/kernels/reference/float_ops.hpp: scalar reference of the float ops
// a transformer block needs. They define the results the SIMD kernels in
// float_ops.hpp must reproduce (within the budgets stated there), and they are
// the teaching path: plain loops, float32 throughout, every product that feeds
// a sum written as fmul (core/float_bits.hpp) so no compiler flag turns it into an FMA.
//
// All vectors are float32 arrays of length n; outputs may alias inputs.
#pragma once

#include <cmath>
#include <cstddef>
#include <limits>

#include "qtensor/core/config.hpp"
#include "qtensor/core/float_bits.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace kernels::reference {

using qtensor::detail::fmul;

// sum_i x[i] * y[i], in order.
inline float dot(const float* x, const float* y, std::size_t n) noexcept {
    float sum = 0.0f;
    for (std::size_t i = 0; i < n; ++i) sum += fmul(x[i], y[i]);
    return sum;
}

// y[i] = x[i] * r * w[i], r = 1 / sqrt(mean(x^2) + eps): eps inside the mean
// (Gemma's RMSNorm). w == nullptr: no weight (y[i] = x[i] * r).
inline void rmsnorm(const float* x, const float* w, float* y, std::size_t n, float eps) noexcept {
    const float mean = dot(x, x, n) / static_cast<float>(n);
    const float r = 1.0f / std::sqrt(mean + eps);
    for (std::size_t i = 0; i < n; ++i) y[i] = w ? fmul(x[i], r) * w[i] : fmul(x[i], r);
}

// In place: x[i] = exp(x[i] - max) / sum_j exp(x[j] - max). Entries of -inf
// (masked out) become 0; at least one entry must be finite.
inline void softmax(float* x, std::size_t n) noexcept {
    float max = -std::numeric_limits<float>::infinity();
    for (std::size_t i = 0; i < n; ++i) max = x[i] > max ? x[i] : max;
    float sum = 0.0f;
    for (std::size_t i = 0; i < n; ++i) sum += (x[i] = std::exp(x[i] - max));
    const float inv = 1.0f / sum;
    for (std::size_t i = 0; i < n; ++i) x[i] *= inv;
}

// The tanh approximation of GELU (PyTorch's gelu(approximate="tanh")):
//   0.5 z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3))).
inline float gelu_tanh(float z) noexcept {
    constexpr float sqrt_2_over_pi = 0.7978845608028654f;
    const float inner = fmul(sqrt_2_over_pi, z + fmul(0.044715f, fmul(z, fmul(z, z))));
    return fmul(0.5f, z) * (1.0f + std::tanh(inner));
}

inline void gelu_tanh(const float* x, float* y, std::size_t n) noexcept {
    for (std::size_t i = 0; i < n; ++i) y[i] = gelu_tanh(x[i]);
}

// GeGLU: y[i] = gelu_tanh(gate[i]) * up[i].
inline void geglu(const float* gate, const float* up, float* y, std::size_t n) noexcept {
    for (std::size_t i = 0; i < n; ++i) y[i] = gelu_tanh(gate[i]) * up[i];
}

// Rotate-half (NeoX) RoPE of one head vector x[d] in place, at position pos,
// with per-pair frequencies freq[d / 2]: angle a_i = pos * freq[i], and
//   x[i]       <- x[i] cos a_i - x[i + d/2] sin a_i
//   x[i + d/2] <- x[i + d/2] cos a_i + x[i] sin a_i.
// A zero frequency leaves its pair unchanged (Gemma 4's proportional RoPE).
inline void rope(float* x, const float* freq, std::size_t d, float pos) noexcept {
    const std::size_t half = d / 2;
    for (std::size_t i = 0; i < half; ++i) {
        const float a = fmul(pos, freq[i]);
        const float c = std::cos(a), s = std::sin(a);
        const float x0 = x[i], x1 = x[i + half];
        x[i] = fmul(x0, c) - fmul(x1, s);
        x[i + half] = fmul(x1, c) + fmul(x0, s);
    }
}

// In place: x[i] = cap * tanh(x[i] / cap) (Gemma's final logit softcap).
inline void softcap(float* x, std::size_t n, float cap) noexcept {
    for (std::size_t i = 0; i < n; ++i) x[i] = cap * std::tanh(x[i] / cap);
}

// y[i] += a * x[i].
inline void axpy(float a, const float* x, float* y, std::size_t n) noexcept {
    for (std::size_t i = 0; i < n; ++i) y[i] += fmul(a, x[i]);
}

// x[i] *= a.
inline void scale(float a, float* x, std::size_t n) noexcept {
    for (std::size_t i = 0; i < n; ++i) x[i] *= a;
}

} // namespace kernels::reference
QTENSOR_END_NAMESPACE
