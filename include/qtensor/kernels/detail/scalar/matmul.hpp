// qtensor/kernels/detail/scalar/matmul.hpp: the dot and matmul kernels of the scalar
// backend: the references (reference/matmul.hpp and the schemes' dot_row).
#pragma once

#include <cstddef>

#include "qtensor/kernels/reference/matmul.hpp"
#include "qtensor/scheme/q2_k.hpp"
#include "qtensor/scheme/q4_0.hpp"
#include "qtensor/scheme/q8_0.hpp"

QTENSOR_KERNELS_BEGIN_NAMESPACE
namespace detail::entry {

inline float dot_q4_0_q8_0(target, const block_q4_0* w, const block_q8_0* a, std::size_t n) {
    return q4_0::dot_row(w, a, n);
}
inline float dot_q8_0_q8_0(target, const block_q8_0* w, const block_q8_0* a, std::size_t n) {
    return q8_0::dot_row(w, a, n);
}
inline float dot_q2_k_q8_k(target, const block_q2_k* w, const block_q8_k* a, std::size_t n) {
    return q2_k::dot_row(w, a, n);
}

inline void matmul_q4_0(target, weight_rows w, q8_0_rows a, output_rows y) { reference::matmul_q4_0(w, a, y); }
inline void matmul_q8_0(target, weight_rows w, q8_0_rows a, output_rows y) { reference::matmul_q8_0(w, a, y); }
inline void matmul_q2_k(target, weight_rows w, q8_k_rows a, output_rows y) { reference::matmul_q2_k(w, a, y); }
inline void matmul_q4_0x16(target, interleaved_rows w, q8_0_rows a, output_rows y) {
    reference::matmul_q4_0x16(w, a, y);
}
inline void matmul_q8_0x16(target, interleaved_rows w, q8_0_rows a, output_rows y) {
    reference::matmul_q8_0x16(w, a, y);
}

} // namespace detail::entry
QTENSOR_KERNELS_END_NAMESPACE
