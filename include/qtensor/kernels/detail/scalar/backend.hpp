// qtensor/kernels/detail/scalar/backend.hpp: the scalar backend, for builds
// without a SIMD library (or with QTENSOR_KERNELS_USE_SCALAR): the generic
// kernels on one lane (scalar/kernels.hpp).
//
// Include qtensor/kernels/kernels.hpp, not this file.
#pragma once

#include "qtensor/kernels/detail/scalar/target.hpp"
#include "qtensor/kernels/detail/scalar/kernels.hpp"

QTENSOR_KERNELS_BEGIN_NAMESPACE
namespace detail::entry {
#define QTENSOR_SCALAR_ENTRY(result, name, params, args) \
    inline result name(target, QTENSOR_SPREAD params) { return scalar_target::name(QTENSOR_SPREAD args); }
QTENSOR_KERNELS(QTENSOR_SCALAR_ENTRY)
#undef QTENSOR_SCALAR_ENTRY
} // namespace detail::entry
QTENSOR_KERNELS_END_NAMESPACE
