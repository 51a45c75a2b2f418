// qtensor/kernels/detail/highway/backend.hpp: the Highway backend. Compiles every
// kernel body once per Highway target (SSSE3, SSE4, AVX2, AVX-512 on x86;
// NEON on ARM; the one-lane HWY_SCALAR fallback) through foreach_target.h and
// chooses among them at run time.
//
// Highway allows foreach_target.h once per translation unit, so a TU that has
// its own Highway code must not also include the kernels. Everything defined
// per target has internal linkage, so several TUs (even ones built with
// different -m flags) can include this header without ODR clashes.
//
// Include qtensor/kernels/kernels.hpp, not this file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "qtensor/kernels/detail/highway/target.hpp"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "qtensor/kernels/detail/highway/all-inl.hpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "qtensor/kernels/detail/highway/all-inl.hpp"

QTENSOR_KERNELS_BEGIN_NAMESPACE
namespace detail {

// Where Highway's dispatch tables keep `t`'s function: entry 0 is Highway's
// own lazy chooser, then one entry per dynamic target, then the fallback.
// For best() this is exactly what HWY_DYNAMIC_DISPATCH reads.
inline std::size_t table_index(target t) noexcept {
    if (t.bit() == 0) return hwy::GetChosenTarget().GetIndex();
    const std::int64_t shifted = HWY_CHOSEN_TARGET_SHIFT(t.bit());
    if (shifted == 0) return HWY_MAX_DYNAMIC_TARGETS + 1;
    return static_cast<std::size_t>(hwy::Num0BitsBelowLS1Bit_Nonzero64(static_cast<std::uint64_t>(shifted)));
}

} // namespace detail
QTENSOR_KERNELS_END_NAMESPACE

// Per kernel of kernel_list.hpp: its per-target table (HWY_EXPORT, of the
// function of that name in each target's namespace), and entry::name(target,
// ...), which calls the table entry of that target.
#define QTENSOR_HWY_EXPORT(result, name, params, args) HWY_EXPORT(name);
#define QTENSOR_HWY_ENTRY(result, name, params, args)                                \
    inline result name(target t, QTENSOR_SPREAD params) {                            \
        return (*HWY_DISPATCH_TABLE(name)[table_index(t)])(QTENSOR_SPREAD args);      \
    }

QTENSOR_KERNELS_BEGIN_NAMESPACE
namespace detail {
namespace {
QTENSOR_KERNELS(QTENSOR_HWY_EXPORT)
} // namespace
namespace entry {
QTENSOR_KERNELS(QTENSOR_HWY_ENTRY)
} // namespace entry
} // namespace detail
QTENSOR_KERNELS_END_NAMESPACE

#undef QTENSOR_HWY_EXPORT
#undef QTENSOR_HWY_ENTRY
