// qtensor/kernels/abi.hpp: the namespace of the kernels of one backend.
//
// The kernel layer is built with one backend per translation unit (see
// backend.hpp). Each backend gets its own inline namespace under
// qtensor::kernels, so two TUs of one program that chose different backends
// define different functions instead of breaking the one-definition rule.
//
// Choice: QTENSOR_KERNELS_USE_SCALAR, _HIGHWAY or _XSIMD if defined; else
// Highway if qtensor was configured with it (QTENSOR_HAVE_HIGHWAY), else xsimd
// (QTENSOR_HAVE_XSIMD), else scalar.
#pragma once

#include "qtensor/core/config.hpp"

#if defined(QTENSOR_KERNELS_USE_SCALAR)
#define QTENSOR_KERNELS_BACKEND_SCALAR 1
#elif defined(QTENSOR_KERNELS_USE_HIGHWAY)
#define QTENSOR_KERNELS_BACKEND_HIGHWAY 1
#elif defined(QTENSOR_KERNELS_USE_XSIMD)
#define QTENSOR_KERNELS_BACKEND_XSIMD 1
#elif defined(QTENSOR_HAVE_HIGHWAY)
#define QTENSOR_KERNELS_BACKEND_HIGHWAY 1
#elif defined(QTENSOR_HAVE_XSIMD)
#define QTENSOR_KERNELS_BACKEND_XSIMD 1
#else
#define QTENSOR_KERNELS_BACKEND_SCALAR 1
#endif

#if defined(QTENSOR_KERNELS_BACKEND_HIGHWAY)
#define QTENSOR_KERNELS_ABI highway_backend
#elif defined(QTENSOR_KERNELS_BACKEND_XSIMD)
// xsimd compiles for the one architecture that this TU's flags enable, so the
// architecture is part of the namespace: TUs built with different -m flags
// keep their own code instead of sharing whichever copy the linker keeps.
#include "xsimd/config/xsimd_config.hpp"
#if XSIMD_WITH_AVX512BW
#define QTENSOR_KERNELS_ABI xsimd_backend_avx512bw
#elif XSIMD_WITH_AVX512F
#define QTENSOR_KERNELS_ABI xsimd_backend_avx512f
#elif XSIMD_WITH_FMA3_AVX2
#define QTENSOR_KERNELS_ABI xsimd_backend_fma3_avx2
#elif XSIMD_WITH_AVX2
#define QTENSOR_KERNELS_ABI xsimd_backend_avx2
#elif XSIMD_WITH_FMA3_AVX
#define QTENSOR_KERNELS_ABI xsimd_backend_fma3_avx
#elif XSIMD_WITH_AVX
#define QTENSOR_KERNELS_ABI xsimd_backend_avx
#elif XSIMD_WITH_FMA4
#define QTENSOR_KERNELS_ABI xsimd_backend_fma4
#elif XSIMD_WITH_FMA3_SSE
#define QTENSOR_KERNELS_ABI xsimd_backend_fma3_sse4_2
#elif XSIMD_WITH_SSE4_2
#define QTENSOR_KERNELS_ABI xsimd_backend_sse4_2
#elif XSIMD_WITH_SSE4_1
#define QTENSOR_KERNELS_ABI xsimd_backend_sse4_1
#elif XSIMD_WITH_SSSE3
#define QTENSOR_KERNELS_ABI xsimd_backend_ssse3
#elif XSIMD_WITH_SSE3
#define QTENSOR_KERNELS_ABI xsimd_backend_sse3
#elif XSIMD_WITH_SSE2
#define QTENSOR_KERNELS_ABI xsimd_backend_sse2
#elif XSIMD_WITH_NEON64
#define QTENSOR_KERNELS_ABI xsimd_backend_neon64
#elif XSIMD_WITH_NEON
#define QTENSOR_KERNELS_ABI xsimd_backend_neon
#else
#define QTENSOR_KERNELS_ABI xsimd_backend
#endif
#else
#define QTENSOR_KERNELS_ABI scalar_backend
#endif

// Separate compilation (core/config.hpp, docs/kernels.md): in a TU that only
// declares the kernels (QTENSOR_SEPARATE without QTENSOR_DEFINE) the backend
// gives its entry points' declarations; the QTENSOR_DEFINE TU compiles them
// as ordinary (not inline) functions.
#if defined(QTENSOR_DECLARE_ONLY)
#define QTENSOR_KERNELS_DECLARE_ONLY 1
#endif
#define QTENSOR_KERNELS_LINKAGE QTENSOR_INLINE

#define QTENSOR_KERNELS_BEGIN_NAMESPACE \
    QTENSOR_BEGIN_NAMESPACE namespace kernels { inline namespace QTENSOR_KERNELS_ABI {
#define QTENSOR_KERNELS_END_NAMESPACE } } QTENSOR_END_NAMESPACE
