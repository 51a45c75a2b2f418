// qtensor/kernels/highway/float_ops.hpp: dispatch tables of the float
// ops (bodies in float_ops-inl.hpp). Included by backend.hpp.
#pragma once

QTENSOR_KERNELS_BEGIN_NAMESPACE
namespace detail {
QTENSOR_HWY_KERNEL(dot)
QTENSOR_HWY_KERNEL(rmsnorm)
QTENSOR_HWY_KERNEL(softmax)
QTENSOR_HWY_KERNEL(gelu_tanh)
QTENSOR_HWY_KERNEL(geglu)
QTENSOR_HWY_KERNEL(rope)
QTENSOR_HWY_KERNEL(softcap)
QTENSOR_HWY_KERNEL(axpy)
QTENSOR_HWY_KERNEL(scale)
} // namespace detail
QTENSOR_KERNELS_END_NAMESPACE
