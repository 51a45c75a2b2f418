// qtensor/nn/embedding.hpp: embedding lookup, rows of a table in any scheme
// widened to float32 and scaled.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/nn/mixed_weight.hpp"
#include "qtensor/nn/ops.hpp"
#include "qtensor/tensor/tensor.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace nn {

// out[T, n] = table[ids[t]] * factor; table[V, n] (a tensor<S, 2>,
// tensor_view<S, 2> or tensor_view<const S, 2>). An id outside [0, V)
// throws, naming its position.
template <weight_like W, class S = viewed_scheme_t<W>>
void embedding(const W& weights, std::span<const std::int32_t> ids, float factor, std::span<float> out) {
    const tensor_view<const S, 2> table = as_const_view(weights);
    const std::size_t n = table.cols(), vocab = table.num_rows();
    detail::check_size("embedding", "out", out.size(), ids.size() * n);
    for (std::size_t t = 0; t < ids.size(); ++t) {
        if (ids[t] < 0 || static_cast<std::size_t>(ids[t]) >= vocab)
            throw error("token id " + std::to_string(ids[t]) + " at position " + std::to_string(t) +
                        " is out of range for a vocabulary of " + std::to_string(vocab));
        float* row = out.data() + t * n;
        S::dequantize_row(table.blocks(static_cast<std::size_t>(ids[t])).data(), row, n);
        scale(std::span<float>(row, n), factor);
    }
}

// The same for a table whose scheme is known at run time.
inline void embedding(const mixed_weight& table, std::span<const std::int32_t> ids, float factor,
                      std::span<float> out) {
    table.visit([&](const auto& v) { embedding(v, ids, factor, out); });
}

} // namespace nn
QTENSOR_END_NAMESPACE
