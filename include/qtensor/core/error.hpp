// qtensor/core/error.hpp: the one exception type the library throws.
#pragma once

#include <stdexcept>
#include <string>

#include "qtensor/core/config.hpp"

QTENSOR_BEGIN_NAMESPACE

// Thrown for every user-visible failure: bad shapes, bad input values,
// malformed files. The message names the thing that was wrong.
class error : public std::runtime_error {
public:
    explicit error(const std::string& what) : std::runtime_error("qtensor: " + what) {}
};

QTENSOR_END_NAMESPACE
