// qtensor/nn/linear.hpp: a bias-free linear layer y = x W^T with the weight
// W[out, in] in any scheme (or a mixed_weight, whose scheme is picked at run
// time, or a packed_weight, Q4_0/Q8_0 also in the interleaved layout), and the
// split of output rows over an executor; linear_each for several weights
// reading the same activations.
//
// Float weights (f32, bf16) are dotted in f32. Quantized weights follow ggml:
// each activation row is quantized once to the scheme's dot partner (Q8_0 for
// Q4_0/Q8_0, Q8_K for the K-quants) and the integer dot is used, so their results
// differ from the f32 product by the activation rounding too.
#pragma once

#include <concepts>
#include <cstddef>
#include <initializer_list>
#include <span>
#include <type_traits>

#include "qtensor/core/config.hpp"
#include "qtensor/kernels/executor.hpp"
#include "qtensor/kernels/matmul.hpp"
#include "qtensor/nn/mixed_weight.hpp"
#include "qtensor/nn/ops.hpp"
#include "qtensor/nn/packed_weight.hpp"
#include "qtensor/scheme/float.hpp"
#include "qtensor/scheme/scheme.hpp"
#include "qtensor/tensor/tensor.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace nn {

// x[T, in] -> y[T, out] = x W^T, W[out, in] (a tensor<S, 2>,
// tensor_view<S, 2> or tensor_view<const S, 2>), through kernels::gemm (a
// GEMV when T = 1), split over the executor's threads.
template <kernels::gemm_weight W>
void linear(const W& w, std::span<const float> x, std::span<float> y, const kernels::executor& ex = {}) {
    const std::size_t tokens = detail::rows_of("linear", x.size(), w.cols());
    detail::check_size("linear", "y", y.size(), tokens * w.num_rows());
    kernels::unchecked::gemm(w, x.data(), tokens, y.data(), ex);
}

// The same for a weight of a scheme known at run time: its scheme's kernel.
inline void linear(const mixed_weight& w, std::span<const float> x, std::span<float> y,
                   const kernels::executor& ex = {}) {
    w.visit([&](const auto& v) { linear(v, x, y, ex); });
}

// The same for a packed weight: on its interleaved copy once repacked.
template <class S>
void linear(const packed_weight<S>& w, std::span<const float> x, std::span<float> y,
            const kernels::executor& ex = {}) {
    if (!w.groups) return linear(w.rows, x, y, ex);
    const std::size_t tokens = detail::rows_of("linear", x.size(), w.cols());
    detail::check_size("linear", "y", y.size(), tokens * w.num_rows());
    kernels::unchecked::gemm(*w.groups, x.data(), tokens, y.data(), ex);
}

// What linear takes as a weight.
template <class W>
concept linear_weight = kernels::gemm_weight<W> || std::same_as<W, mixed_weight> || is_packed_weight<W>;

// A weight of a quantized scheme known at compile time.
template <class W>
concept quantized_weight =
    (kernels::gemm_weight<W> && kernels::gemm_quantized_scheme<viewed_scheme_t<W>>) || is_packed_weight<W>;

namespace detail {

// y[T, out] = a W^T for activations already quantized to the scheme's dot partner.
template <kernels::gemm_weight W>
void gemm(const W& w, const typename viewed_scheme_t<W>::dot_partner::block_type* a, std::size_t T, float* y,
          const kernels::executor& ex) {
    kernels::unchecked::gemm(w, a, T, y, ex);
}

} // namespace detail

// One of several projections of the same activations (linear_each).
template <linear_weight W>
struct projection {
    const W& w;
    std::span<float> y;
};

// x[T, in] -> y_i[T, out_i] = x W_i^T for weights of one type (q, k and v;
// gate and up), every size checked before any product. Quantized weights
// take x quantized once to the scheme's dot partner and reused by every
// product, where nn::linear would quantize it for each: the same bits, less
// work. (Mixed weights may differ in scheme: each quantizes x for itself.)
template <linear_weight W>
void linear_each(std::span<const float> x, std::initializer_list<projection<W>> ps, const kernels::executor& ex = {}) {
    if (ps.size() == 0) return;
    const std::size_t in = ps.begin()->w.cols(), tokens = detail::rows_of("linear_each", x.size(), in);
    for (const projection<W>& p : ps) {
        detail::check_size("linear_each", "a weight's columns", p.w.cols(), in);
        detail::check_size("linear_each", "y", p.y.size(), tokens * p.w.num_rows());
    }
    if constexpr (quantized_weight<W>) {
        using S = std::remove_const_t<typename W::scheme_type>;
        const auto a = kernels::detail::quantize_activations<typename S::dot_partner>(x.data(), in, tokens, ex,
                                                                                     kernels::target::best());
        for (const projection<W>& p : ps) detail::gemm(p.w, a.data(), tokens, p.y.data(), ex);
    } else {
        for (const projection<W>& p : ps) linear(p.w, x, p.y, ex);
    }
}

} // namespace nn
QTENSOR_END_NAMESPACE
