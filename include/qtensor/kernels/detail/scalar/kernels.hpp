// qtensor/kernels/detail/scalar/kernels.hpp: the generic kernels on one lane
// (scalar/ops.hpp), in namespace detail::scalar_target: every kernel of the
// scalar backend, and the `scalar` target of the xsimd backend.
//
// Internal to the kernels: include qtensor/kernels/kernels.hpp.
#pragma once

#include "qtensor/kernels/detail/generic/prelude.hpp"
#include "qtensor/kernels/detail/scalar/ops.hpp"

QTENSOR_KERNELS_BEGIN_NAMESPACE
namespace detail::scalar_target {
#include "qtensor/kernels/detail/generic/kernels-inl.hpp"
} // namespace detail::scalar_target
QTENSOR_KERNELS_END_NAMESPACE
