// qtensor/kernels/dispatch.hpp: the SIMD kernels, compiled for every Highway
// target and chosen at run time.
//
// This header compiles each *-inl.hpp kernel body once per target (SSSE3,
// SSE4, AVX2, AVX-512 on x86; NEON on ARM; the one-lane HWY_SCALAR fallback)
// through Highway's foreach_target.h. Highway allows that once per translation
// unit, so include this header, and only this one, where you call kernels;
// your own Highway code in the same TU would need its own TU. The per-target
// functions and tables have internal linkage, so several TUs (even ones built
// with different -m flags) can include it without ODR clashes.
//
// The caller passes a `target`, by default the best one this CPU runs (the
// only state is Highway's own record of the CPU's features). Tests and benches
// walk compiled_targets() to force each target in turn.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "qtensor/core/error.hpp"
#include "qtensor/scheme/q4_0.hpp"
#include "qtensor/scheme/q8_0.hpp"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "qtensor/kernels/q4_0-inl.hpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "qtensor/kernels/q4_0-inl.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace kernels::detail {
namespace {
HWY_EXPORT(dequantize_q4_0);
HWY_EXPORT(dot_q4_0_q8_0);
} // namespace
} // namespace kernels::detail
QTENSOR_END_NAMESPACE

QTENSOR_BEGIN_NAMESPACE
namespace kernels {

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

#define QTENSOR_KERNEL(name, t) (*detail::HWY_DISPATCH_TABLE(name)[detail::table_index(t)])

} // namespace detail

// x[n / 32] -> y[n]; bit for bit q4_0::dequantize_row.
inline void dequantize_q4_0(const block_q4_0* x, float* y, std::size_t n, target t = target::best()) {
    blocks_per_row<q4_0>(n);
    QTENSOR_KERNEL(dequantize_q4_0, t)(x, y, n);
}

// w[n / 32] . a[n / 32]. Error budget against the exact sum of the dequantized
// products (per-lane FMA accumulation, then a horizontal sum of at most 16 lanes):
//   |dot - exact| <= (n/32 + 17) * 2^-24 * sum_i |w_i * a_i|.
inline float dot_q4_0_q8_0(const block_q4_0* w, const block_q8_0* a, std::size_t n,
                           target t = target::best()) {
    blocks_per_row<q4_0>(n);
    return QTENSOR_KERNEL(dot_q4_0_q8_0, t)(w, a, n);
}

#undef QTENSOR_KERNEL

} // namespace kernels
QTENSOR_END_NAMESPACE
