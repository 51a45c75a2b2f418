// qtensor/kernels/backend.hpp: picks the kernel backend of this translation
// unit (abi.hpp says how) and includes it. Each backend defines
//   - class target, target::best() and compiled_targets();
//   - detail::entry::<kernel>(target, args...) for every kernel of
//     detail/kernel_list.hpp,
// and detail/dispatch.hpp makes detail::backend::<kernel>(target, args...),
// which the public, argument-checking functions (quant.hpp, matmul.hpp,
// float_ops.hpp) call. With separate compilation (QTENSOR_KERNELS_SEPARATE
// without QTENSOR_KERNELS_DEFINE) only the target and the declarations are
// included: no kernel is compiled in this TU.
#pragma once

#include "qtensor/kernels/abi.hpp"

#if defined(QTENSOR_KERNELS_DECLARE_ONLY)
#if defined(QTENSOR_KERNELS_BACKEND_HIGHWAY)
#include "qtensor/kernels/detail/highway/target.hpp"
#elif defined(QTENSOR_KERNELS_BACKEND_XSIMD)
#include "qtensor/kernels/detail/xsimd/target.hpp"
#else
#include "qtensor/kernels/detail/scalar/target.hpp"
#endif
#elif defined(QTENSOR_KERNELS_BACKEND_HIGHWAY)
#include "qtensor/kernels/detail/highway/backend.hpp"
#elif defined(QTENSOR_KERNELS_BACKEND_XSIMD)
#include "qtensor/kernels/detail/xsimd/backend.hpp"
#else
#include "qtensor/kernels/detail/scalar/backend.hpp"
#endif

#include "qtensor/kernels/detail/dispatch.hpp"
