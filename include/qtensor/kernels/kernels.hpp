// qtensor/kernels/kernels.hpp: every kernel, on the backend of this build.
//
// Backends (a compile-time choice per translation unit; see abi.hpp):
//   - Highway (the default when qtensor was configured with it): every target
//     is compiled in and the best one this CPU runs is chosen at run time.
//     Highway allows one such TU-wide expansion per translation unit: include
//     the kernels only in the .cpp files that call them.
//   - xsimd (the default without Highway): the architecture this TU is
//     compiled for (-m flags), and the same kernels on one lane.
//   - scalar: the kernels on one lane, with no SIMD library at all.
// Define QTENSOR_KERNELS_USE_HIGHWAY, _XSIMD or _SCALAR before including to choose.
#pragma once

#include "qtensor/kernels/executor.hpp"
#include "qtensor/kernels/float_ops.hpp"
#include "qtensor/kernels/matmul.hpp"
#include "qtensor/kernels/quant.hpp"
#include "qtensor/kernels/sgemm.hpp"
