// qtensor/kernels/detail/dispatch.hpp: detail::backend::name(target, ...) for
// every kernel of kernel_list.hpp, the one way the public functions (quant.hpp,
// matmul.hpp, float_ops.hpp) reach a backend. Each forwards to entry::name of
// the backend compiled in; in a TU that only declares the kernels (separate
// compilation, abi.hpp) they are declarations, defined by the one TU that
// compiles the kernels.
//
// Internal to the kernels: include qtensor/kernels/kernels.hpp.
#pragma once

#include "qtensor/kernels/abi.hpp"
#include "qtensor/kernels/detail/kernel_list.hpp"

QTENSOR_KERNELS_BEGIN_NAMESPACE
namespace detail::backend {
#if defined(QTENSOR_KERNELS_DECLARE_ONLY)
#define QTENSOR_KERNEL_DISPATCH(result, name, params, args) result name(target t, QTENSOR_SPREAD params);
#else
#define QTENSOR_KERNEL_DISPATCH(result, name, params, args)                       \
    QTENSOR_KERNELS_LINKAGE result name(target t, QTENSOR_SPREAD params) {        \
        return entry::name(t, QTENSOR_SPREAD args);                               \
    }
#endif
QTENSOR_KERNELS(QTENSOR_KERNEL_DISPATCH)
#undef QTENSOR_KERNEL_DISPATCH
} // namespace detail::backend
QTENSOR_KERNELS_END_NAMESPACE
