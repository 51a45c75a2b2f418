// qtensor/nn/as_stored.hpp: what a model names instead of a scheme for weights
// kept in the scheme their file stores them in, tensor by tensor (each an
// nn::mixed_weight, mixed_weight.hpp). Light: no kernels.
#pragma once

#include <string_view>

#include "qtensor/core/config.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace nn {

struct as_stored {
    static constexpr std::string_view name = "as_stored";
};

} // namespace nn
QTENSOR_END_NAMESPACE
