// qtensor/kernels/detail/generic/prelude.hpp: what the generic kernel bodies use,
// included by each backend before it includes generic/kernels-inl.hpp inside
// an instruction set's namespace (where nothing can be #included).
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "qtensor/core/float_bits.hpp"
#include "qtensor/core/half.hpp"
#include "qtensor/kernels/abi.hpp"
#include "qtensor/kernels/detail/kernel_list.hpp"
#include "qtensor/scheme/tq2_0.hpp"
#include "qtensor/scheme/q2_k.hpp"
#include "qtensor/scheme/static_activation.hpp"
#include "qtensor/scheme/q3_k.hpp"
#include "qtensor/scheme/q4_k.hpp"
#include "qtensor/scheme/q5_k.hpp"
#include "qtensor/scheme/q6_k.hpp"
#include "qtensor/scheme/q4_0.hpp"
#include "qtensor/scheme/q8_0.hpp"
#include "qtensor/scheme/q8_k.hpp"

// Fully unrolled small loops keep arrays of vectors in registers.
#if defined(__clang__)
#define QTENSOR_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define QTENSOR_UNROLL _Pragma("GCC unroll 16")
#else
#define QTENSOR_UNROLL
#endif

QTENSOR_KERNELS_BEGIN_NAMESPACE
namespace detail {
// Asks the memory system for the cache line `ahead` bytes past p (a hint; it
// never faults, and the address is formed as an integer, so it may lie past
// the end of p's buffer). Always inlined: GCC otherwise may judge a call to
// it free of effects and drop it (it did, in the Q3_K and Q6_K kernels).
#if defined(__GNUC__)
[[gnu::always_inline]] inline void prefetch(const void* p, std::size_t ahead) noexcept {
    __builtin_prefetch(reinterpret_cast<const void*>(reinterpret_cast<std::uintptr_t>(p) + ahead));
}
#else
inline void prefetch(const void*, std::size_t) noexcept {}
#endif

// Bytes ahead of the current block that the GEMV kernels ask the memory system
// for: the hardware prefetcher alone leaves interleaved Q4_0 GEMV at ~19 GB/s
// out of cache on Zen 5, software prefetch 8 KiB ahead brings it to ~24 (a
// quarter more); the K-quant kernels, one row at a time, read at half the
// roof without it on a Xeon (AVX-512).
inline constexpr std::size_t prefetch_distance = 8192;
} // namespace detail
QTENSOR_KERNELS_END_NAMESPACE
