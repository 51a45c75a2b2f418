// qtensor/kernels/scalar/quant.hpp: the quantize and dequantize kernels of the
// scalar backend: the schemes' own reference functions.
#pragma once

#include <cstddef>

#include "qtensor/core/half.hpp"
#include "qtensor/scheme/float.hpp"
#include "qtensor/scheme/q2_k.hpp"
#include "qtensor/scheme/q4_0.hpp"
#include "qtensor/scheme/q8_0.hpp"
#include "qtensor/scheme/q8_k.hpp"

QTENSOR_KERNELS_BEGIN_NAMESPACE
namespace detail::backend {

inline void quantize_q4_0(target, const float* x, block_q4_0* y, std::size_t n) { q4_0::quantize_row(x, y, n); }
inline void quantize_q8_0(target, const float* x, block_q8_0* y, std::size_t n) { q8_0::quantize_row(x, y, n); }
inline void quantize_q8_k(target, const float* x, block_q8_k* y, std::size_t n) { q8_k::quantize_row(x, y, n); }

inline void dequantize_q4_0(target, const block_q4_0* x, float* y, std::size_t n) {
    q4_0::dequantize_row(x, y, n);
}
inline void dequantize_q8_0(target, const block_q8_0* x, float* y, std::size_t n) {
    q8_0::dequantize_row(x, y, n);
}
inline void dequantize_q2_k(target, const block_q2_k* x, float* y, std::size_t n) {
    q2_k::dequantize_row(x, y, n);
}
inline void dequantize_f16(target, const fp16_t* x, float* y, std::size_t n) { f16::dequantize_row(x, y, n); }
inline void dequantize_bf16(target, const bf16_t* x, float* y, std::size_t n) { bf16::dequantize_row(x, y, n); }

} // namespace detail::backend
QTENSOR_KERNELS_END_NAMESPACE
