// tests/odr/kernels_tu.cpp: compiled twice into one program (odr_kernels), once
// with the default flags and once with -O3 -march=x86-64-v3 (tests/cmake/odr.cmake); each copy includes
// the kernels' dispatch header. Their per-target functions and tables have
// internal linkage, so the program links and each copy runs its own code.
#include "qtensor/kernels/kernels.hpp"

#include <vector>

#ifndef ODR_TU_NAME
#error "define ODR_TU_NAME"
#endif

// Dequantizes q with every target this TU compiled; returns false on any
// difference from the scalar reference.
bool ODR_TU_NAME(const std::vector<qtensor::block_q4_0>& q) {
    const std::size_t n = q.size() * 32;
    std::vector<float> want(n), got(n);
    qtensor::q4_0::dequantize_row(q.data(), want.data(), n);
    for (const auto t : qtensor::kernels::compiled_targets()) {
        qtensor::kernels::dequantize_q4_0(q, got, t);
        if (got != want) return false;
    }
    return true;
}
