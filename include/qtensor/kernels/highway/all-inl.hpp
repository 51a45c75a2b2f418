// qtensor/kernels/highway/all-inl.hpp: every SIMD kernel body, for
// foreach_target.h to re-include once per Highway target. Not include-guarded
// on purpose: each body below has its own per-target toggle guard.
#include "qtensor/kernels/highway/quant-inl.hpp"
#include "qtensor/kernels/highway/matmul-inl.hpp"
#include "qtensor/kernels/highway/float_ops-inl.hpp"
