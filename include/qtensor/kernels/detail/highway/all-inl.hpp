// qtensor/kernels/detail/highway/all-inl.hpp: every SIMD kernel, for foreach_target.h
// to re-include once per Highway target: the generic kernels over this
// target's vocabulary (ops-inl.hpp).

// Per-target include guard (Highway's toggle idiom).
#if defined(QTENSOR_KERNELS_HIGHWAY_ALL_INL_HPP_) == defined(HWY_TARGET_TOGGLE)
#ifdef QTENSOR_KERNELS_HIGHWAY_ALL_INL_HPP_
#undef QTENSOR_KERNELS_HIGHWAY_ALL_INL_HPP_
#else
#define QTENSOR_KERNELS_HIGHWAY_ALL_INL_HPP_
#endif

#include "hwy/contrib/math/math-inl.h" // per-target too: Exp, Tanh
#include "hwy/highway.h"
#include "qtensor/kernels/detail/generic/prelude.hpp"

HWY_BEFORE_NAMESPACE();
QTENSOR_KERNELS_BEGIN_NAMESPACE
namespace detail {
namespace HWY_NAMESPACE {
namespace {
#include "qtensor/kernels/detail/highway/ops-inl.hpp"
#define QTENSOR_OPS_INLINE HWY_INLINE
#define QTENSOR_OPS_LAMBDA HWY_ATTR
#include "qtensor/kernels/detail/generic/kernels-inl.hpp"
} // namespace
} // namespace HWY_NAMESPACE
} // namespace detail
QTENSOR_KERNELS_END_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif // per-target include guard
