// qtensor/kernels/detail/generic/kernels-inl.hpp: every kernel written once over the
// vector vocabulary `ops`. A backend includes generic/prelude.hpp, then this
// file inside each instruction set's namespace after defining `ops` there:
//
//   namespace detail::some_target {
//   #include "<backend>/ops...."               // namespace ops { vf, load, ... }
//   #include "qtensor/kernels/detail/generic/kernels-inl.hpp"
//   }
//
// No include guard on purpose (one inclusion per instruction set). The
// includer may define QTENSOR_OPS_INLINE (how small helpers are declared:
// Highway wants HWY_INLINE) and QTENSOR_OPS_LAMBDA (what a lambda needs
// after its parameters: Highway's HWY_ATTR); both are undefined after.

#ifndef QTENSOR_OPS_INLINE
#define QTENSOR_OPS_INLINE inline
#endif
#ifndef QTENSOR_OPS_LAMBDA
#define QTENSOR_OPS_LAMBDA
#endif

#include "qtensor/kernels/detail/generic/quant-inl.hpp"
#include "qtensor/kernels/detail/generic/float_ops-inl.hpp"
#include "qtensor/kernels/detail/generic/matmul-inl.hpp"
#include "qtensor/kernels/detail/generic/matmul_int8-inl.hpp"
#include "qtensor/kernels/detail/generic/matmul_k_quant-inl.hpp"
#include "qtensor/kernels/detail/generic/sgemm-inl.hpp"

#undef QTENSOR_OPS_INLINE
#undef QTENSOR_OPS_LAMBDA
