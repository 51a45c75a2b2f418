// qtensor/kernels/detail/highway/target.hpp: the Highway backend's `target`,
// which names one compiled instruction set (or the best of this CPU). Light:
// hwy/targets.h only, so a TU that only declares the kernels (separate
// compilation) gets it without compiling any kernel.
//
// Include qtensor/kernels/kernels.hpp, not this file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hwy/targets.h"
#include "qtensor/kernels/abi.hpp"

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

// The targets compiled into the kernels (this TU's, or the separately
// compiled TU's) that this CPU can run, best first. The last is always the
// portable fallback (HWY_SCALAR, or EMU128 where it works).
#if defined(QTENSOR_KERNELS_DECLARE_ONLY)
std::vector<target> compiled_targets();
#else
QTENSOR_KERNELS_LINKAGE std::vector<target> compiled_targets() {
    std::vector<target> out;
    for (std::int64_t bit : hwy::SupportedAndGeneratedTargets()) out.push_back(target(bit));
    return out;
}
#endif

QTENSOR_KERNELS_END_NAMESPACE
