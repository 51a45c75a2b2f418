// qtensor/nn/mlp.hpp: the GeGLU feed-forward block (Gemma's MLP), bias-free:
//   y = down( gelu_tanh(gate x) * up x ).
#pragma once

#include <cstddef>
#include <concepts>
#include <span>
#include <vector>

#include "qtensor/core/config.hpp"
#include "qtensor/kernels/executor.hpp"
#include "qtensor/nn/linear.hpp"
#include "qtensor/nn/ops.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace nn {

// x[T, D] -> y[T, D]; gate[F, D], up[F, D], down[D, F], each in any of
// linear's weight forms; `in` is how gate and up take x, `down_in` how down
// takes the GeGLU's output (input_quant, linear.hpp).
template <linear_weight G, linear_weight U, linear_weight D>
void geglu_mlp(const G& gate, const U& up, const D& down, std::span<const float> x, std::span<float> y,
               const kernels::executor& ex = {}, const input_quant& in = {}, const input_quant& down_in = {}) {
    const std::size_t tokens = detail::rows_of("geglu_mlp", x.size(), gate.cols());
    std::vector<float> g(tokens * gate.num_rows()), u(tokens * up.num_rows()); // [T, F]
    if constexpr (std::same_as<G, U>) { // one quantization of x for both
        linear_each<G>(x, {{gate, g}, {up, u}}, ex, in);
    } else {
        linear(gate, x, std::span<float>(g), ex, in);
        linear(up, x, std::span<float>(u), ex, {in.scale, nullptr});
    }
    geglu(g, u, g);
    linear(down, std::span<const float>(g), y, ex, down_in);
}

} // namespace nn
QTENSOR_END_NAMESPACE
