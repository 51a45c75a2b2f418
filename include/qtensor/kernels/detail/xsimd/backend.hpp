// qtensor/kernels/detail/xsimd/backend.hpp: the xsimd backend. Every kernel is
// compiled for one instruction set: xsimd's default architecture, the best
// one that this translation unit's -m flags (or -march) enable: SSE2 without
// flags on x86-64, AVX2 with -march=x86-64-v3, AVX-512 with x86-64-v4, NEON
// on ARM. No run-time dispatch: the TU runs on the CPUs its flags allow.
// A second target, `scalar`, runs the same kernels on one lane (matmul: the
// references), so tests and benchmarks can compare the two in one program.
//
// Everything is inline, in an ABI namespace that names the architecture
// (xsimd_backend_sse2, xsimd_backend_fma3_avx2, ...; abi.hpp): TUs built with
// different -m flags define different functions, and each runs its own code.
// tests/cmake/odr.cmake links such a pair.
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

namespace backend {
#define QTENSOR_XSIMD_KERNEL(name)                                                                          \
    template <class... Args>                                                                                \
    auto name(target t, Args... args) {                                                                     \
        return run_on(t, [&](auto) { return xsimd_target::name(args...); },                                 \
                      [&] { return scalar_target::name(args...); });                                        \
    }
QTENSOR_GENERIC_KERNELS(QTENSOR_XSIMD_KERNEL)
#undef QTENSOR_XSIMD_KERNEL
} // namespace backend
} // namespace detail
QTENSOR_KERNELS_END_NAMESPACE

#include "qtensor/kernels/detail/xsimd/matmul.hpp"
