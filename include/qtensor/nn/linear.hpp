// qtensor/nn/linear.hpp: a bias-free linear layer y = x W^T with the weight
// W[out, in] in any scheme, and the split of output rows over an executor.
//
// Float weights (f32, f16, bf16) are dotted in f32: each weight row is
// widened once and dotted with every token. Quantized weights follow ggml:
// each activation row is quantized once to the scheme's dot partner (Q8_0 for
// Q4_0/Q8_0, Q8_K for the K-quants) and the integer dot S::dot_row is used, so
// their results differ from the f32 product by the activation rounding too.
#pragma once

#include <algorithm>
#include <cstddef>
#include <span>
#include <type_traits>
#include <vector>

#include "qtensor/core/config.hpp"
#include "qtensor/kernels/executor.hpp"
#include "qtensor/kernels/reference/float_ops.hpp"
#include "qtensor/nn/ops.hpp"
#include "qtensor/scheme/float.hpp"
#include "qtensor/scheme/scheme.hpp"
#include "qtensor/tensor/tensor_view.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace nn {

// Runs f(begin, end) over [0, n) cut into one range per executor slot.
template <class F>
void for_ranges(const kernels::executor& ex, std::size_t n, F&& f) {
    const std::size_t tasks = std::max<std::size_t>(1, std::min(n, ex.concurrency()));
    const std::size_t chunk = (n + tasks - 1) / tasks;
    ex.run(tasks, [&](std::size_t i) {
        const std::size_t begin = i * chunk;
        if (begin < n) f(begin, std::min(n, begin + chunk));
    });
}

// x[T, in] -> y[T, out] = x W^T, W[out, in].
template <class S>
    requires scheme<S>
void linear(tensor_view<const S, 2> w, std::span<const float> x, std::span<float> y,
            const kernels::executor& ex = {}) {
    const std::size_t in = w.cols(), out = w.num_rows();
    const std::size_t tokens = detail::rows_of("linear", x.size(), in);
    detail::check_size("linear", "y", y.size(), tokens * out);
    if constexpr (has_dot_partner<S>) {
        using P = typename S::dot_partner;
        const std::size_t nb = blocks_per_row<P>(in);
        std::vector<block_of<P>> a(tokens * nb); // a[T, in / P::block_elems]
        for (std::size_t t = 0; t < tokens; ++t) P::quantize_row(x.data() + t * in, a.data() + t * nb, in);
        for_ranges(ex, out, [&](std::size_t begin, std::size_t end) {
            for (std::size_t o = begin; o < end; ++o) {
                const block_of<S>* row = w.blocks(o).data();
                for (std::size_t t = 0; t < tokens; ++t)
                    y[t * out + o] = S::dot_row(row, a.data() + t * nb, in);
            }
        });
    } else {
        for_ranges(ex, out, [&](std::size_t begin, std::size_t end) {
            std::vector<float> wide(in);
            for (std::size_t o = begin; o < end; ++o) {
                const float* row = nullptr;
                if constexpr (std::is_same_v<S, qtensor::f32>) {
                    row = w.blocks(o).data();
                } else {
                    S::dequantize_row(w.blocks(o).data(), wide.data(), in);
                    row = wide.data();
                }
                for (std::size_t t = 0; t < tokens; ++t)
                    y[t * out + o] = kernels::reference::dot(row, x.data() + t * in, in);
            }
        });
    }
}

} // namespace nn
QTENSOR_END_NAMESPACE
