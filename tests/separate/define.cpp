// The one TU of the separately compiled test programs that compiles the
// library (docs/kernels.md, "Separate compilation"): every TU has
// QTENSOR_SEPARATE (kernels_test.cpp the kernels' name for it,
// QTENSOR_KERNELS_SEPARATE), this one also QTENSOR_DEFINE. It compiles what
// the headers it includes declare: the kernels and, with nlohmann-json, the
// file readers, the checkpoint and model<P> of the named policies.
#define QTENSOR_DEFINE
#include "qtensor/kernels/kernels.hpp"
#if defined(QTENSOR_HAVE_JSON)
#include "qtensor/gemma4/checkpoint.hpp"
#include "qtensor/gemma4/model.hpp"
#endif
