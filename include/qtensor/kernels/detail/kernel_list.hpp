// qtensor/kernels/detail/kernel_list.hpp: every kernel a backend provides,
// with its signature, once: X(result, name, (parameters), (arguments)).
// dispatch.hpp makes detail::backend::name(target, parameters) of each, and
// the backends their per-target tables or calls, from these lists.
//
// Internal to the kernels: include qtensor/kernels/kernels.hpp.
#pragma once

#include <cstddef>
#include <cstdint>

#include "qtensor/core/half.hpp"
#include "qtensor/kernels/reference/float_ops.hpp"
#include "qtensor/kernels/reference/matmul.hpp"
#include "qtensor/scheme/fake_quant.hpp"
#include "qtensor/scheme/tq2_0.hpp"
#include "qtensor/scheme/q2_k.hpp"
#include "qtensor/scheme/q3_k.hpp"
#include "qtensor/scheme/q4_k.hpp"
#include "qtensor/scheme/q5_k.hpp"
#include "qtensor/scheme/q6_k.hpp"
#include "qtensor/scheme/q4_0.hpp"
#include "qtensor/scheme/q8_0.hpp"
#include "qtensor/scheme/q8_k.hpp"

// Every kernel, written once in detail/generic/ (quant-inl.hpp,
// float_ops-inl.hpp, matmul-inl.hpp, matmul_int8-inl.hpp, matmul_k_quant-inl.hpp,
// sgemm-inl.hpp).
#define QTENSOR_KERNELS(X)                                                                          \
    X(void, quantize_q4_0, (const float* x, block_q4_0* y, std::size_t n), (x, y, n))                       \
    X(void, quantize_q8_0, (const float* x, block_q8_0* y, std::size_t n), (x, y, n))                       \
    X(void, quantize_q8_k, (const float* x, block_q8_k* y, std::size_t n), (x, y, n))                       \
    X(void, quantize_static_q8_0, (const float* x, block_q8_0* y, std::size_t n, float s, float inv),         \
      (x, y, n, s, inv))                                                                                    \
    X(void, quantize_static_q8_k, (const float* x, block_q8_k* y, std::size_t n, float s, float inv),         \
      (x, y, n, s, inv))                                                                                    \
    X(void, fake_quant_q4_0, (const float* x, float* y, std::uint8_t* saturated, std::size_t n),             \
      (x, y, saturated, n))                                                                                 \
    X(void, dequantize_q4_0, (const block_q4_0* x, float* y, std::size_t n), (x, y, n))                     \
    X(void, dequantize_q8_0, (const block_q8_0* x, float* y, std::size_t n), (x, y, n))                     \
    X(void, dequantize_q2_k, (const block_q2_k* x, float* y, std::size_t n), (x, y, n))                     \
    X(void, dequantize_f16, (const fp16_t* x, float* y, std::size_t n), (x, y, n))                          \
    X(void, dequantize_bf16, (const bf16_t* x, float* y, std::size_t n), (x, y, n))                         \
    X(float, dot, (const float* x, const float* y, std::size_t n), (x, y, n))                               \
    X(void, rmsnorm, (const float* x, const float* w, float* y, std::size_t n, float eps), (x, w, y, n, eps)) \
    X(void, rmsnorm_backward, (const float* x, const float* w, const float* dy, float* dx, float* dw,         \
                               std::size_t n, float eps), (x, w, dy, dx, dw, n, eps))                       \
    X(void, softmax, (float* x, std::size_t n), (x, n))                                                     \
    X(void, gelu_tanh, (const float* x, float* y, std::size_t n), (x, y, n))                                \
    X(void, geglu, (const float* gate, const float* up, float* y, std::size_t n), (gate, up, y, n))         \
    X(void, geglu_backward, (const float* gate, const float* up, const float* dy, float* d_gate, float* d_up,  \
                             std::size_t n), (gate, up, dy, d_gate, d_up, n))                                \
    X(void, rope, (float* x, const float* freq, std::size_t d, float pos), (x, freq, d, pos))               \
    X(void, softcap, (float* x, std::size_t n, float cap), (x, n, cap))                                     \
    X(void, axpy, (float a, const float* x, float* y, std::size_t n), (a, x, y, n))                         \
    X(void, scale, (float a, float* x, std::size_t n), (a, x, n))                                           \
    X(void, adamw_update, (float* p, float* m, float* v, const float* g, std::size_t n,                      \
                           const adamw_constants& k), (p, m, v, g, n, k))                                   \
    X(float, dot_bf16_f32, (const bf16_t* w, const float* a, std::size_t n), (w, a, n))                     \
    X(float, dot_f32_f32, (const float* w, const float* a, std::size_t n), (w, a, n))                       \
    X(void, matmul_f32, (weight_rows w, f32_rows a, output_rows y), (w, a, y))                              \
    X(void, matmul_bf16, (weight_rows w, f32_rows a, output_rows y), (w, a, y))                             \
    X(float, dot_q4_0_q8_0, (const block_q4_0* w, const block_q8_0* a, std::size_t n), (w, a, n))           \
    X(float, dot_q8_0_q8_0, (const block_q8_0* w, const block_q8_0* a, std::size_t n), (w, a, n))           \
    X(float, dot_q2_k_q8_k, (const block_q2_k* w, const block_q8_k* a, std::size_t n), (w, a, n))           \
    X(void, matmul_q4_0, (weight_rows w, q8_0_rows a, output_rows y), (w, a, y))                            \
    X(void, matmul_q8_0, (weight_rows w, q8_0_rows a, output_rows y), (w, a, y))                            \
    X(void, matmul_tq2_0, (weight_rows w, q8_k_rows a, output_rows y), (w, a, y))                            \
    X(void, matmul_q2_k, (weight_rows w, q8_k_rows a, output_rows y), (w, a, y))                            \
    X(void, matmul_q3_k, (weight_rows w, q8_k_rows a, output_rows y), (w, a, y))                            \
    X(void, matmul_q4_k, (weight_rows w, q8_k_rows a, output_rows y), (w, a, y))                            \
    X(void, matmul_q5_k, (weight_rows w, q8_k_rows a, output_rows y), (w, a, y))                            \
    X(void, matmul_q6_k, (weight_rows w, q8_k_rows a, output_rows y), (w, a, y))                            \
    X(void, matmul_q4_0x16, (interleaved_rows w, q8_0_rows a, output_rows y), (w, a, y))                    \
    X(void, matmul_q8_0x16, (interleaved_rows w, q8_0_rows a, output_rows y), (w, a, y))                    \
    X(void, sgemm, (sgemm_args g), (g))

// (a, b) -> a, b: a parenthesised list of the X() above, spread out.
#define QTENSOR_SPREAD(...) __VA_ARGS__
