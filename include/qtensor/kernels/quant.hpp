// qtensor/kernels/quant.hpp: quantize and dequantize kernels. Each gives the
// same bits as its scheme's scalar reference, on every target, and the
// quantizers throw the reference's qtensor::error (naming the element or
// block) for the same input: NaN/Inf, or a block scale past the fp16 range.
//
// Every function checks that n is a whole number of blocks (qtensor::error).
// quantize_row<S> / dequantize_row<S> take any scheme: its kernel where there
// is one, its reference otherwise.
#pragma once

#include <cstddef>
#include <type_traits>

#include "qtensor/core/half.hpp"
#include "qtensor/kernels/backend.hpp"
#include "qtensor/scheme/float.hpp"
#include "qtensor/scheme/q2_k.hpp"
#include "qtensor/scheme/q4_0.hpp"
#include "qtensor/scheme/q8_0.hpp"
#include "qtensor/scheme/q8_k.hpp"
#include "qtensor/scheme/scheme.hpp"

QTENSOR_KERNELS_BEGIN_NAMESPACE

// x[n] -> y[n / 32]; bit for bit q4_0::quantize_row.
inline void quantize_q4_0(const float* x, block_q4_0* y, std::size_t n, target t = target::best()) {
    blocks_per_row<q4_0>(n);
    detail::backend::quantize_q4_0(t, x, y, n);
}

// x[n] -> y[n / 32]; bit for bit q8_0::quantize_row.
inline void quantize_q8_0(const float* x, block_q8_0* y, std::size_t n, target t = target::best()) {
    blocks_per_row<q8_0>(n);
    detail::backend::quantize_q8_0(t, x, y, n);
}

// x[n] -> y[n / 256]; bit for bit q8_k::quantize_row.
inline void quantize_q8_k(const float* x, block_q8_k* y, std::size_t n, target t = target::best()) {
    blocks_per_row<q8_k>(n);
    detail::backend::quantize_q8_k(t, x, y, n);
}

// x[n / 32] -> y[n]; bit for bit q4_0::dequantize_row.
inline void dequantize_q4_0(const block_q4_0* x, float* y, std::size_t n, target t = target::best()) {
    blocks_per_row<q4_0>(n);
    detail::backend::dequantize_q4_0(t, x, y, n);
}

// x[n / 32] -> y[n]; bit for bit q8_0::dequantize_row.
inline void dequantize_q8_0(const block_q8_0* x, float* y, std::size_t n, target t = target::best()) {
    blocks_per_row<q8_0>(n);
    detail::backend::dequantize_q8_0(t, x, y, n);
}

// x[n / 256] -> y[n]; bit for bit q2_k::dequantize_row.
inline void dequantize_q2_k(const block_q2_k* x, float* y, std::size_t n, target t = target::best()) {
    blocks_per_row<q2_k>(n);
    detail::backend::dequantize_q2_k(t, x, y, n);
}

// x[n] -> y[n]; bit for bit fp16_to_fp32, NaN payloads included.
inline void dequantize_f16(const fp16_t* x, float* y, std::size_t n, target t = target::best()) {
    detail::backend::dequantize_f16(t, x, y, n);
}

// x[n] -> y[n]; bit for bit bf16_to_fp32.
inline void dequantize_bf16(const bf16_t* x, float* y, std::size_t n, target t = target::best()) {
    detail::backend::dequantize_bf16(t, x, y, n);
}

// x[n] -> y[n / S::block_elems] for any scheme: the kernel above where S has
// one, S::quantize_row otherwise.
template <scheme S>
void quantize_row(const float* x, block_of<S>* y, std::size_t n, [[maybe_unused]] target t = target::best()) {
    if constexpr (std::is_same_v<S, q4_0>) {
        quantize_q4_0(x, y, n, t);
    } else if constexpr (std::is_same_v<S, q8_0>) {
        quantize_q8_0(x, y, n, t);
    } else if constexpr (std::is_same_v<S, q8_k>) {
        quantize_q8_k(x, y, n, t);
    } else {
        blocks_per_row<S>(n);
        S::quantize_row(x, y, n);
    }
}

// x[n / S::block_elems] -> y[n] for any scheme, likewise.
template <scheme S>
void dequantize_row(const block_of<S>* x, float* y, std::size_t n, [[maybe_unused]] target t = target::best()) {
    if constexpr (std::is_same_v<S, q4_0>) {
        dequantize_q4_0(x, y, n, t);
    } else if constexpr (std::is_same_v<S, q8_0>) {
        dequantize_q8_0(x, y, n, t);
    } else if constexpr (std::is_same_v<S, q2_k>) {
        dequantize_q2_k(x, y, n, t);
    } else if constexpr (std::is_same_v<S, f16>) {
        dequantize_f16(x, y, n, t);
    } else if constexpr (std::is_same_v<S, bf16>) {
        dequantize_bf16(x, y, n, t);
    } else {
        blocks_per_row<S>(n);
        S::dequantize_row(x, y, n);
    }
}

QTENSOR_KERNELS_END_NAMESPACE
