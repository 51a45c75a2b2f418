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
#include "qtensor/scheme/q2_k.hpp"
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
// the end of p's buffer).
inline void prefetch(const void* p, std::size_t ahead) noexcept {
#if defined(__GNUC__)
    __builtin_prefetch(reinterpret_cast<const void*>(reinterpret_cast<std::uintptr_t>(p) + ahead));
#else
    (void)p, (void)ahead;
#endif
}
} // namespace detail
QTENSOR_KERNELS_END_NAMESPACE
