// qtensor/kernels/scalar/float_ops.hpp: the float ops of the scalar backend:
// the reference ops of reference/float_ops.hpp.
#pragma once

#include <cstddef>

#include "qtensor/kernels/reference/float_ops.hpp"

QTENSOR_KERNELS_BEGIN_NAMESPACE
namespace detail::backend {

inline float dot(target, const float* x, const float* y, std::size_t n) { return reference::dot(x, y, n); }
inline void rmsnorm(target, const float* x, const float* w, float* y, std::size_t n, float eps) {
    reference::rmsnorm(x, w, y, n, eps);
}
inline void softmax(target, float* x, std::size_t n) { reference::softmax(x, n); }
inline void gelu_tanh(target, const float* x, float* y, std::size_t n) { reference::gelu_tanh(x, y, n); }
inline void geglu(target, const float* gate, const float* up, float* y, std::size_t n) {
    reference::geglu(gate, up, y, n);
}
inline void rope(target, float* x, const float* freq, std::size_t d, float pos) { reference::rope(x, freq, d, pos); }
inline void softcap(target, float* x, std::size_t n, float cap) { reference::softcap(x, n, cap); }
inline void axpy(target, float a, const float* x, float* y, std::size_t n) { reference::axpy(a, x, y, n); }
inline void scale(target, float a, float* x, std::size_t n) { reference::scale(a, x, n); }

} // namespace detail::backend
QTENSOR_KERNELS_END_NAMESPACE
