// qtensor/core/error.hpp: the one exception type the library throws.
#pragma once

#include <stdexcept>
#include <string>

#include "qtensor/core/config.hpp"
#include "qtensor/core/text.hpp"

QTENSOR_BEGIN_NAMESPACE

// Thrown for every user-visible failure: bad shapes, bad input values,
// malformed files. The message names the thing that was wrong; names taken
// from a file can hold any bytes, so control characters are escaped here,
// once for every message (printable()).
class error : public std::runtime_error {
public:
    explicit error(const std::string& what) : std::runtime_error("qtensor: " + printable(what)) {}
};

QTENSOR_END_NAMESPACE
