// qtensor/kernels/detail/highway/matmul.hpp: dispatch tables of the dot and matmul
// kernels (bodies in matmul-inl.hpp). Included by backend.hpp.
#pragma once

QTENSOR_KERNELS_BEGIN_NAMESPACE
namespace detail {
QTENSOR_HWY_KERNEL(dot_q4_0_q8_0)
QTENSOR_HWY_KERNEL(dot_q8_0_q8_0)
QTENSOR_HWY_KERNEL(dot_q2_k_q8_k)
QTENSOR_HWY_KERNEL(dot_bf16_f32)
QTENSOR_HWY_KERNEL(dot_f32_f32)
QTENSOR_HWY_KERNEL(matmul_q4_0)
QTENSOR_HWY_KERNEL(matmul_q8_0)
QTENSOR_HWY_KERNEL(matmul_q2_k)
QTENSOR_HWY_KERNEL(matmul_f32)
QTENSOR_HWY_KERNEL(matmul_bf16)
QTENSOR_HWY_KERNEL(matmul_q4_0x16)
QTENSOR_HWY_KERNEL(matmul_q8_0x16)
} // namespace detail
QTENSOR_KERNELS_END_NAMESPACE
