// tests/odr/main.cpp: links the two builds of tu.cpp (odr_a, odr_b), which both include the umbrella
// header and instantiate the same templates, and checks that both give the
// bytes derived by hand, undo each other, and throw a qtensor::error that this
// third TU catches by type.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "odr.hpp"

namespace {

int failures = 0;

void check(bool ok, const char* what) {
    if (!ok) {
        std::printf("FAILED: %s\n", what);
        ++failures;
    }
}

bool has_bytes(const std::vector<qtensor::block_q4_0>& q, const std::vector<std::uint8_t>& want) {
    return q.size() * sizeof(qtensor::block_q4_0) == want.size() &&
           std::memcmp(q.data(), want.data(), want.size()) == 0;
}

template <class F>
bool throws_qtensor_error(F f) {
    try {
        f();
    } catch (const qtensor::error&) {
        return true;
    } catch (...) {
        return false;
    }
    return false;
}

} // namespace

int main() {
    // Two Q4_0 blocks whose values are exact multiples of the scale (docs/schemes.md section 6):
    //   block 0: x[j] = (j % 16 - 8) / 2, first largest |x| is x[0] = -4, so
    //            d = -4 / -8 = 0.5 (fp16 0x3800), 1/d = 2, code[j] = trunc(2x + 8.5) = j % 16;
    //   block 1: x[j] = (8 - j % 16) / 2, first largest |x| is x[0] = +4, so
    //            d = 4 / -8 = -0.5 (fp16 0xB800), 1/d = -2, again code[j] = j % 16.
    // qs[j] = code[j] | code[j + 16] << 4 = 0x11 * j, and (code - 8) * d is x exactly.
    std::vector<float> x(64);
    for (std::size_t j = 0; j < 32; ++j) {
        const int k = static_cast<int>(j % 16);
        x[j] = static_cast<float>(k - 8) * 0.5f;
        x[32 + j] = static_cast<float>(8 - k) * 0.5f;
    }
    std::vector<std::uint8_t> want;
    for (const std::uint8_t d_high : {std::uint8_t{0x38}, std::uint8_t{0xB8}}) {
        want.push_back(0x00); // fp16 little-endian: low byte first
        want.push_back(d_high);
        for (unsigned j = 0; j < 16; ++j) want.push_back(static_cast<std::uint8_t>(0x11 * j));
    }

    const auto qa = odr_a::quantize(x);
    const auto qb = odr_b::quantize(x);
    check(has_bytes(qa, want), "odr_a: q4_0 bytes differ from the hand-derived ones");
    check(has_bytes(qb, want), "odr_b: q4_0 bytes differ from the hand-derived ones");
    check(odr_b::dequantize(qa) == x, "odr_b does not dequantize odr_a's blocks back to x");
    check(odr_a::dequantize(qb) == x, "odr_a does not dequantize odr_b's blocks back to x");
    check(throws_qtensor_error(odr_a::quantize_bad_row), "odr_a: no qtensor::error for 33 elements");
    check(throws_qtensor_error(odr_b::quantize_bad_row), "odr_b: no qtensor::error for 33 elements");

    if (failures == 0) std::puts("odr_two_tus: OK");
    return failures == 0 ? 0 : 1;
}
