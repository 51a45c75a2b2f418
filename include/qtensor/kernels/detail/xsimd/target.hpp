// qtensor/kernels/detail/xsimd/target.hpp: the xsimd backend's `target`: the
// architecture of this TU's flags, or the kernels on one lane.
//
// Include qtensor/kernels/kernels.hpp, not this file.
#pragma once

#include <string>
#include <type_traits>
#include <vector>

#include "qtensor/kernels/abi.hpp"
#include "xsimd/xsimd.hpp"

QTENSOR_KERNELS_BEGIN_NAMESPACE

namespace detail {

// The architecture every xsimd kernel body is compiled for.
using xsimd_arch = xsimd::default_arch;

// False where xsimd knows no SIMD architecture for these flags: then the
// scalar target is the only one.
inline constexpr bool xsimd_arch_available = !std::is_same_v<xsimd_arch, xsimd::unavailable>;

} // namespace detail

class target;
std::vector<target> compiled_targets();

// Which code a kernel runs: best() is the xsimd code of this TU's
// architecture (the scalar references where xsimd has none); the other
// target of compiled_targets() is the references.
class target {
public:
    static target best() noexcept { return target(detail::xsimd_arch_available); }
    // "xsimd:<arch>" (xsimd's name of the architecture, e.g. "xsimd:fma3+avx2"), or "scalar".
    std::string name() const {
        if constexpr (detail::xsimd_arch_available) {
            if (simd_) return std::string("xsimd:") + detail::xsimd_arch::name();
        }
        return "scalar";
    }
    // Whether kernels run xsimd code (else the references).
    bool simd() const noexcept { return simd_; }
    friend bool operator==(target, target) = default;

private:
    explicit target(bool simd) noexcept : simd_(simd) {}
    friend std::vector<target> compiled_targets();
    bool simd_;
};

// The xsimd target (where there is one), then the scalar one.
inline std::vector<target> compiled_targets() {
    if constexpr (detail::xsimd_arch_available) return {target(true), target(false)};
    return {target(false)};
}

namespace detail {

// simd(xsimd_arch{}) on the xsimd target, ref() on the scalar one. simd is a
// generic lambda, so its body is not even instantiated where xsimd has no
// architecture.
template <class Simd, class Ref>
decltype(auto) run_on(target t, Simd&& simd, Ref&& ref) {
    if constexpr (xsimd_arch_available) {
        if (t.simd()) return simd(xsimd_arch{});
    }
    return ref();
}

} // namespace detail
QTENSOR_KERNELS_END_NAMESPACE
