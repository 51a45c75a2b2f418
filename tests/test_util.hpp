// Helpers shared by the doctest files.
#pragma once

#include <string>

#include "qtensor/core/error.hpp"

namespace qtensor_test {

// The message of the qtensor::error that f() throws, so tests can check that
// it names the shape, index or size at fault.
template <class F>
std::string message_of(F&& f) {
    try {
        f();
    } catch (const qtensor::error& e) {
        return e.what();
    }
    return "(no qtensor::error thrown)";
}

} // namespace qtensor_test
