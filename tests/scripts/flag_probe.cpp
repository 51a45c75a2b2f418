// Compiled by tests/cmake/flags.cmake with flags the headers must refuse.
#include "qtensor/qtensor.hpp"

int main() { return qtensor::q4_0::block_bytes == 18 ? 0 : 1; }
