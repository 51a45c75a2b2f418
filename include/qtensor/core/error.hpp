// qtensor/core/error.hpp: the one exception type the library throws.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

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
    // what() without the "qtensor: " in front, for a message that wraps this one.
    std::string_view message() const noexcept { return std::string_view(what()).substr(9); }
};

QTENSOR_END_NAMESPACE
