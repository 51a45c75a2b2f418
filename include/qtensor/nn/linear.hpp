// qtensor/nn/linear.hpp: a bias-free linear layer y = x W^T with the weight
// W[out, in] in any scheme (or a mixed_weight, whose scheme is picked at run
// time, or a packed_weight, Q4_0/Q8_0 also in the interleaved layout), and the
// split of output rows over an executor; linear_each for several weights
// reading the same activations.
//
// Float weights (f32, bf16) are dotted in f32. Quantized weights follow ggml:
// each activation row is quantized once to the scheme's dot partner (Q8_0 for
// Q4_0/Q8_0, Q8_K for the K-quants and TQ2_0) and the integer dot is used, so
// their results differ from the f32 product by the activation rounding too.
// That rounding takes a scale per block by default; an input_quant with a
// scale makes it static (one fixed scale: scheme/static_activation.hpp), and
// one with `amax` records the input's largest magnitude (calibration).
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <initializer_list>
#include <span>
#include <type_traits>
#include <vector>

#include "qtensor/core/config.hpp"
#include "qtensor/kernels/executor.hpp"
#include "qtensor/kernels/matmul.hpp"
#include "qtensor/nn/mixed_weight.hpp"
#include "qtensor/nn/ops.hpp"
#include "qtensor/nn/packed_weight.hpp"
#include "qtensor/scheme/float.hpp"
#include "qtensor/scheme/scheme.hpp"
#include "qtensor/scheme/static_activation.hpp"
#include "qtensor/tensor/tensor.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace nn {

// How a product takes its input activations x, for quantized weights.
struct input_quant {
    float scale = 0.0f;     // > 0: static int8 codes with this scale (an fp16 value); 0: a scale per block
    float* amax = nullptr;  // if set, raised to max |x| (calibration; float weights too)
};

namespace detail {

// Raises *q.amax to the largest |x|.
inline void record_amax(std::span<const float> x, const input_quant& q) {
    if (q.amax == nullptr) return;
    float m = *q.amax;
    for (const float v : x) m = std::max(m, std::fabs(v));
    *q.amax = m;
}

// x[T, n] quantized to the dot partner P: with q's static scale, else per block.
template <class P>
std::vector<block_of<P>> quantize_input(std::span<const float> x, std::size_t n, std::size_t T, const input_quant& q,
                                        const kernels::executor& ex) {
    if (q.scale <= 0.0f)
        return kernels::detail::quantize_activations<P>(x.data(), n, T, ex, kernels::target::best());
    qtensor::detail::check_finite("static activations", x.data(), x.size());
    const std::size_t nb = blocks_per_row<P>(n);
    std::vector<block_of<P>> a(T * nb);
    for (std::size_t r = 0; r < T; ++r) kernels::unchecked::quantize_static(x.data() + r * n, a.data() + r * nb, n, q.scale);
    return a;
}

} // namespace detail

// x[T, in] -> y[T, out] = x W^T, W[out, in] (a tensor<S, 2>,
// tensor_view<S, 2> or tensor_view<const S, 2>), through kernels::gemm (a
// GEMV when T = 1), split over the executor's threads.
// With q: static activations and calibration, as input_quant says.
template <kernels::gemm_weight W>
void linear(const W& w, std::span<const float> x, std::span<float> y, const kernels::executor& ex = {},
            const input_quant& q = {}) {
    const std::size_t tokens = detail::rows_of("linear", x.size(), w.cols());
    detail::check_size("linear", "y", y.size(), tokens * w.num_rows());
    detail::record_amax(x, q);
    using S = viewed_scheme_t<W>;
    if constexpr (kernels::gemm_quantized_scheme<S>) {
        if (q.scale > 0.0f) {
            const auto a = detail::quantize_input<typename S::dot_partner>(x, w.cols(), tokens, q, ex);
            return kernels::unchecked::gemm(w, a.data(), tokens, y.data(), ex);
        }
    }
    kernels::unchecked::gemm(w, x.data(), tokens, y.data(), ex);
}

// The same for a weight of a scheme known at run time: its scheme's kernel.
inline void linear(const mixed_weight& w, std::span<const float> x, std::span<float> y,
                   const kernels::executor& ex = {}, const input_quant& q = {}) {
    w.visit([&](const auto& v) { linear(v, x, y, ex, q); });
}

// The same for a packed weight: on its interleaved copy once repacked.
template <class S>
void linear(const packed_weight<S>& w, std::span<const float> x, std::span<float> y,
            const kernels::executor& ex = {}, const input_quant& q = {}) {
    if (!w.groups) return linear(w.rows, x, y, ex, q);
    const std::size_t tokens = detail::rows_of("linear", x.size(), w.cols());
    detail::check_size("linear", "y", y.size(), tokens * w.num_rows());
    detail::record_amax(x, q);
    if (q.scale > 0.0f) {
        const auto a = detail::quantize_input<typename S::dot_partner>(x, w.cols(), tokens, q, ex);
        return kernels::unchecked::gemm(*w.groups, a.data(), tokens, y.data(), ex);
    }
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
void linear_each(std::span<const float> x, std::initializer_list<projection<W>> ps, const kernels::executor& ex = {},
                 const input_quant& q = {}) {
    if (ps.size() == 0) return;
    const std::size_t in = ps.begin()->w.cols(), tokens = detail::rows_of("linear_each", x.size(), in);
    for (const projection<W>& p : ps) {
        detail::check_size("linear_each", "a weight's columns", p.w.cols(), in);
        detail::check_size("linear_each", "y", p.y.size(), tokens * p.w.num_rows());
    }
    if constexpr (quantized_weight<W>) {
        using S = std::remove_const_t<typename W::scheme_type>;
        detail::record_amax(x, q);
        const auto a = detail::quantize_input<typename S::dot_partner>(x, in, tokens, q, ex);
        for (const projection<W>& p : ps) detail::gemm(p.w, a.data(), tokens, p.y.data(), ex);
    } else {
        detail::record_amax(x, q);
        const input_quant scale_only{q.scale, nullptr}; // recorded once
        for (const projection<W>& p : ps) linear(p.w, x, p.y, ex, scale_only);
    }
}

} // namespace nn
QTENSOR_END_NAMESPACE
