// qtensor/kernels/detail/generic/prelude.hpp: what the generic kernel bodies use,
// included by each backend before it includes generic/kernels-inl.hpp inside
// an instruction set's namespace (where nothing can be #included), and the
// list of those kernels, for the backends' dispatch.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

#include "qtensor/core/float_bits.hpp"
#include "qtensor/core/half.hpp"
#include "qtensor/kernels/abi.hpp"
#include "qtensor/scheme/q2_k.hpp"
#include "qtensor/scheme/q4_0.hpp"
#include "qtensor/scheme/q8_0.hpp"
#include "qtensor/scheme/q8_k.hpp"

// X(name) for every kernel of generic/kernels-inl.hpp.
#define QTENSOR_GENERIC_KERNELS(X)                                                                   \
    X(quantize_q4_0) X(quantize_q8_0) X(quantize_q8_k) X(dequantize_q4_0) X(dequantize_q8_0)         \
    X(dequantize_q2_k) X(dequantize_f16) X(dequantize_bf16) X(dot) X(rmsnorm) X(softmax) X(gelu_tanh) \
    X(geglu) X(rope) X(softcap) X(axpy) X(scale)
