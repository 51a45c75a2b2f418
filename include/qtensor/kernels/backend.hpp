// qtensor/kernels/backend.hpp: picks the kernel backend of this translation
// unit (abi.hpp says how) and includes it. Each backend defines
//   - class target, target::best() and compiled_targets();
//   - detail::backend::<kernel>(target, args...) for every kernel.
// The public, argument-checking functions (quant.hpp, matmul.hpp,
// float_ops.hpp) call those.
#pragma once

#include "qtensor/kernels/abi.hpp"

#if defined(QTENSOR_KERNELS_BACKEND_HIGHWAY)
#include "qtensor/kernels/detail/highway/backend.hpp"
#elif defined(QTENSOR_KERNELS_BACKEND_XSIMD)
#include "qtensor/kernels/detail/xsimd/backend.hpp"
#else
#include "qtensor/kernels/detail/scalar/backend.hpp"
#endif
