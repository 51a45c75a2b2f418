// qtensor/kernels/detail/scalar/backend.hpp: the scalar backend, for builds without
// a SIMD library (or with QTENSOR_KERNELS_USE_SCALAR): the generic kernels on
// one lane (scalar/kernels.hpp), and the matmul references. Include qtensor/kernels/kernels.hpp, not this file.
#pragma once

#include <string>
#include <vector>

#include "qtensor/kernels/abi.hpp"

QTENSOR_KERNELS_BEGIN_NAMESPACE

// The one target of this backend; kept so that code written against the SIMD
// backends (a loop over compiled_targets(), an explicit target) compiles here.
class target {
public:
    static target best() noexcept { return target(); }
    std::string name() const { return "scalar"; }
    friend bool operator==(target, target) = default;

private:
    target() = default;
};

inline std::vector<target> compiled_targets() { return {target::best()}; }

QTENSOR_KERNELS_END_NAMESPACE

#include "qtensor/kernels/detail/scalar/kernels.hpp"

QTENSOR_KERNELS_BEGIN_NAMESPACE
namespace detail::backend {
#define QTENSOR_SCALAR_KERNEL(name)                                  \
    template <class... Args>                                         \
    auto name(target, Args... args) {                                \
        return scalar_target::name(args...);                         \
    }
QTENSOR_GENERIC_KERNELS(QTENSOR_SCALAR_KERNEL)
#undef QTENSOR_SCALAR_KERNEL
} // namespace detail::backend
QTENSOR_KERNELS_END_NAMESPACE

#include "qtensor/kernels/detail/scalar/matmul.hpp"
