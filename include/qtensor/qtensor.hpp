// qtensor/qtensor.hpp: the umbrella header: everything the library offers.
#pragma once

#include "qtensor/core/aligned_buffer.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/core/half.hpp"
#include "qtensor/scheme/fake_quant.hpp"
#include "qtensor/scheme/registry.hpp" // every scheme
#include "qtensor/scheme/scheme.hpp"
#include "qtensor/tensor/extents.hpp"
#include "qtensor/tensor/tensor.hpp"
#include "qtensor/tensor/tensor_view.hpp"
