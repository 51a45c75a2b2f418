// The one TU of a separately compiled program that compiles the kernels
// (docs/kernels.md, "Separate compilation"); every TU has
// QTENSOR_KERNELS_SEPARATE, this one also QTENSOR_KERNELS_DEFINE.
#define QTENSOR_KERNELS_DEFINE
#include "qtensor/kernels/kernels.hpp"
