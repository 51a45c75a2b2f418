// qtensor/kernels/detail/xsimd/backend.hpp: the xsimd backend. Every kernel is
// compiled for one instruction set: xsimd's default architecture, the best
// one that this translation unit's -m flags (or -march) enable: SSE2 without
// flags on x86-64, AVX2 with -march=x86-64-v3, AVX-512 with x86-64-v4, NEON
// on ARM. No run-time dispatch: the TU runs on the CPUs its flags allow.
// A second target, `scalar`, runs the same kernels on one lane, so tests and
// benchmarks can compare the two in one program.
//
// Everything is inline, in an ABI namespace that names the architecture
// (xsimd_backend_sse2, xsimd_backend_fma3_avx2, ...; abi.hpp): TUs built with
// different -m flags define different functions, and each runs its own code.
// tests/cmake/odr.cmake links such a pair.
//
// Include qtensor/kernels/kernels.hpp, not this file.
#pragma once

#include "qtensor/kernels/detail/xsimd/target.hpp"
#include "qtensor/kernels/detail/scalar/kernels.hpp"
#include "qtensor/kernels/detail/xsimd/ops.hpp"

QTENSOR_KERNELS_BEGIN_NAMESPACE
namespace detail {
#ifndef XSIMD_NO_SUPPORTED_ARCHITECTURE
namespace xsimd_target {
#include "qtensor/kernels/detail/generic/kernels-inl.hpp"
} // namespace xsimd_target
#else
namespace xsimd_target = scalar_target; // never run: best() is the scalar target
#endif

namespace entry {
#define QTENSOR_XSIMD_ENTRY(result, name, params, args)                                                     \
    inline result name(target t, QTENSOR_SPREAD params) {                                                   \
        return run_on(t, [&](auto) { return xsimd_target::name(QTENSOR_SPREAD args); },                     \
                      [&] { return scalar_target::name(QTENSOR_SPREAD args); });                            \
    }
QTENSOR_KERNELS(QTENSOR_XSIMD_ENTRY)
#undef QTENSOR_XSIMD_ENTRY
} // namespace entry
} // namespace detail
QTENSOR_KERNELS_END_NAMESPACE
