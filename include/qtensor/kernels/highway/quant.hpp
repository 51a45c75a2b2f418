// qtensor/kernels/highway/quant.hpp: dispatch tables of the quantize and
// dequantize kernels (bodies in quant-inl.hpp). Included by backend.hpp.
#pragma once

QTENSOR_KERNELS_BEGIN_NAMESPACE
namespace detail {
QTENSOR_HWY_KERNEL(quantize_q4_0)
QTENSOR_HWY_KERNEL(quantize_q8_0)
QTENSOR_HWY_KERNEL(quantize_q8_k)
QTENSOR_HWY_KERNEL(dequantize_q4_0)
QTENSOR_HWY_KERNEL(dequantize_q8_0)
QTENSOR_HWY_KERNEL(dequantize_q2_k)
QTENSOR_HWY_KERNEL(dequantize_f16)
QTENSOR_HWY_KERNEL(dequantize_bf16)
} // namespace detail
QTENSOR_KERNELS_END_NAMESPACE
