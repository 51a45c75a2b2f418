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

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "qtensor/kernels/detail/highway/all-inl.hpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "qtensor/kernels/detail/highway/all-inl.hpp"

QTENSOR_KERNELS_BEGIN_NAMESPACE

class target;
std::vector<target> compiled_targets();

// Which compiled code a kernel runs. target::best() (the default) lets
// Highway pick the best target of this CPU, once, and remembers it as it does
// for HWY_DYNAMIC_DISPATCH. A specific target comes only from
// compiled_targets(), so a target that is not compiled in or that this CPU
// cannot run cannot be named at all.
class target {
public:
    static target best() noexcept { return target(0); }
    // A single HWY_* bit (e.g. HWY_AVX2), or 0 for best().
    std::int64_t bit() const noexcept { return bit_; }
    std::string name() const { return bit_ == 0 ? "best" : hwy::TargetName(bit_); }
    friend bool operator==(target, target) = default;

private:
    explicit target(std::int64_t bit) noexcept : bit_(bit) {}
    friend std::vector<target> compiled_targets();
    std::int64_t bit_;
};

// The targets compiled into this TU that this CPU can run, best first. The
// last is always the portable fallback (HWY_SCALAR, or EMU128 where it works).
inline std::vector<target> compiled_targets() {
    std::vector<target> out;
    for (std::int64_t bit : hwy::SupportedAndGeneratedTargets()) out.push_back(target(bit));
    return out;
}

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

// Exports the per-target table of kernel `name` (declared in a *-inl.hpp body)
// and a forwarder kernels::detail::backend::name(target, args...) that calls
// the table entry of that target. Use inside namespace kernels::detail.
#define QTENSOR_HWY_KERNEL(name)                                                    \
    namespace {                                                                     \
    HWY_EXPORT(name);                                                               \
    }                                                                               \
    namespace backend {                                                             \
    template <class... Args>                                                        \
    inline auto name(target t, Args... args) {                                      \
        return (*HWY_DISPATCH_TABLE(name)[table_index(t)])(args...);                \
    }                                                                               \
    }

QTENSOR_KERNELS_BEGIN_NAMESPACE
namespace detail {
QTENSOR_GENERIC_KERNELS(QTENSOR_HWY_KERNEL)
} // namespace detail
QTENSOR_KERNELS_END_NAMESPACE
#include "qtensor/kernels/detail/highway/matmul.hpp"

#undef QTENSOR_HWY_KERNEL
