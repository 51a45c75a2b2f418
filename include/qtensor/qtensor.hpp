// qtensor/qtensor.hpp: the umbrella header: everything the library offers.
#pragma once

#include "qtensor/core/aligned_buffer.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/core/half.hpp"
#include "qtensor/scheme/fake_quant.hpp"
#include "qtensor/scheme/float.hpp"
#include "qtensor/scheme/q2_k.hpp"
#include "qtensor/scheme/q4_0.hpp"
#include "qtensor/scheme/q4_1.hpp"
#include "qtensor/scheme/q4_k.hpp"
#include "qtensor/scheme/q6_k.hpp"
#include "qtensor/scheme/q8_0.hpp"
#include "qtensor/scheme/q8_k.hpp"
#include "qtensor/scheme/scheme.hpp"
#include "qtensor/tensor/extents.hpp"
#include "qtensor/tensor/tensor.hpp"
#include "qtensor/tensor/tensor_view.hpp"
