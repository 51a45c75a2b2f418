// qtensor/nn/ops.hpp: the element-wise and per-row float ops of a transformer
// (RMSNorm over rows, RoPE over heads, GELU, GeGLU, residual adds, softcap),
// on row-major float32 activations.
//
// Every nn/ op reaches the float kernels (kernels/float_ops.hpp: SIMD on the
// build's backend, each within a stated budget of its scalar reference)
// through this file: sizes are checked here, once per call, and the kernels'
// unchecked forms run per row or head.
// Shapes use T = tokens, n = row length, H = heads, d = head dim.
#pragma once

#include <cstddef>
#include <span>
#include <string>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/kernels/float_ops.hpp"
#include "qtensor/nn/rope_frequencies.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace nn {

namespace detail {
inline void check_size(const char* op, const char* what, std::size_t got, std::size_t want) {
    if (got != want)
        throw error(std::string("nn::") + op + ": " + what + " has " + std::to_string(got) +
                    " elements, expected " + std::to_string(want));
}

// Rows of a [rows, n] buffer; throws when x is not whole rows.
inline std::size_t rows_of(const char* op, std::size_t size, std::size_t n) {
    if (n == 0 || size % n != 0)
        throw error(std::string("nn::") + op + ": " + std::to_string(size) +
                    " elements are not whole rows of " + std::to_string(n));
    return size / n;
}
} // namespace detail

inline float dot(std::span<const float> x, std::span<const float> y) {
    detail::check_size("dot", "y", y.size(), x.size());
    return kernels::unchecked::dot(x.data(), y.data(), x.size());
}

// x[rows, n] -> y[rows, n] (y may be x): y = x / sqrt(mean(x^2) + eps) * w.
// w[n], or empty for the weightless norm (Gemma's v_norm, router norm).
inline void rmsnorm(std::span<const float> x, std::span<const float> w, std::span<float> y,
                    std::size_t n, float eps) {
    const std::size_t rows = detail::rows_of("rmsnorm", x.size(), n);
    detail::check_size("rmsnorm", "y", y.size(), x.size());
    if (!w.empty()) detail::check_size("rmsnorm", "weight", w.size(), n);
    for (std::size_t r = 0; r < rows; ++r)
        kernels::unchecked::rmsnorm(x.data() + r * n, w.empty() ? nullptr : w.data(), y.data() + r * n, n, eps);
}

// x[T, H, d] in place: rotate-half RoPE of every head of token t at position
// pos[t], frequencies freq[d / 2].
inline void rope(std::span<float> x, std::size_t d, std::span<const float> freq,
                 std::span<const std::size_t> pos) {
    detail::check_size("rope", "freq", freq.size(), d / 2);
    const std::size_t tokens = pos.size();
    if (tokens == 0) return;
    const std::size_t heads = detail::rows_of("rope", x.size(), tokens * d);
    for (std::size_t t = 0; t < tokens; ++t)
        for (std::size_t h = 0; h < heads; ++h)
            kernels::unchecked::rope(x.data() + (t * heads + h) * d, freq.data(), d, static_cast<float>(pos[t]));
}

// y[i] = gelu_tanh(x[i]); y may be x.
inline void gelu_tanh(std::span<const float> x, std::span<float> y) {
    detail::check_size("gelu_tanh", "y", y.size(), x.size());
    kernels::unchecked::gelu_tanh(x.data(), y.data(), x.size());
}

// y[i] = gelu_tanh(gate[i]) * up[i]; y may be gate or up.
inline void geglu(std::span<const float> gate, std::span<const float> up, std::span<float> y) {
    detail::check_size("geglu", "up", up.size(), gate.size());
    detail::check_size("geglu", "y", y.size(), gate.size());
    kernels::unchecked::geglu(gate.data(), up.data(), y.data(), gate.size());
}

// y[i] += x[i] (residual add).
inline void add(std::span<const float> x, std::span<float> y) {
    detail::check_size("add", "y", y.size(), x.size());
    kernels::unchecked::axpy(1.0f, x.data(), y.data(), x.size());
}

// y[i] += a * x[i].
inline void axpy(float a, std::span<const float> x, std::span<float> y) {
    detail::check_size("axpy", "y", y.size(), x.size());
    kernels::unchecked::axpy(a, x.data(), y.data(), x.size());
}

// y[i] *= x[i].
inline void mul(std::span<const float> x, std::span<float> y) {
    detail::check_size("mul", "y", y.size(), x.size());
    for (std::size_t i = 0; i < x.size(); ++i) y[i] *= x[i];
}

// x[i] *= a.
inline void scale(std::span<float> x, float a) {
    kernels::unchecked::scale(a, x.data(), x.size());
}

// In place: x[i] = cap * tanh(x[i] / cap).
inline void softcap(std::span<float> x, float cap) {
    kernels::unchecked::softcap(x.data(), x.size(), cap);
}

// In place over one row of scores; -inf entries become 0.
inline void softmax(std::span<float> x) { kernels::unchecked::softmax(x.data(), x.size()); }

} // namespace nn
QTENSOR_END_NAMESPACE
