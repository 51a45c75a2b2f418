// qtensor/kernels/detail/scalar/target.hpp: the scalar backend's `target`.
//
// Include qtensor/kernels/kernels.hpp, not this file.
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
