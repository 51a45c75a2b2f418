// qtensor/kernels/detail/generic/prelude.hpp: what the generic kernel bodies use,
// included by each backend before it includes generic/kernels-inl.hpp inside
// an instruction set's namespace (where nothing can be #included).
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "qtensor/core/float_bits.hpp"
#include "qtensor/core/half.hpp"
#include "qtensor/kernels/abi.hpp"
#include "qtensor/kernels/detail/kernel_list.hpp"
#include "qtensor/scheme/q2_k.hpp"
#include "qtensor/scheme/q4_0.hpp"
#include "qtensor/scheme/q8_0.hpp"
#include "qtensor/scheme/q8_k.hpp"
