// A program that uses qtensor the way a downstream project does: only through
// the qtensor::qtensor target. Built by the find_package and add_subdirectory
// consumer projects (tests/cmake/consumers.cmake); exits non-zero on a wrong result.
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "qtensor/qtensor.hpp"

// The backend macros must reach the consumer as the package was configured.
#if defined(QTENSOR_HAVE_HIGHWAY) != QTENSOR_EXPECT_HIGHWAY
#error "QTENSOR_HAVE_HIGHWAY does not match how qtensor was configured"
#endif
#if defined(QTENSOR_HAVE_XSIMD) != QTENSOR_EXPECT_XSIMD
#error "QTENSOR_HAVE_XSIMD does not match how qtensor was configured"
#endif
// Conan-style Highway: the usage requirements of highway::highway must reach a
// target that links only qtensor::qtensor.
#if defined(QTENSOR_EXPECT_CONAN_HIGHWAY) && !defined(QTENSOR_FAKE_CONAN_HIGHWAY)
#error "qtensor::qtensor did not pass on highway::highway's usage requirements"
#endif

int main() {
    // One Q4_0 block, x[j] = (j % 16 - 8) / 2 in [-4, 3.5]. By docs/schemes.md (section 6): the
    // first element of largest |x| is x[0] = -4, so d = -4 / -8 = 0.5 (fp16
    // 0x3800) and 1/d = 2; code[j] = trunc(2 x[j] + 8.5) = j % 16 exactly, so
    // qs[j] = code[j] | code[j + 16] << 4 = 0x11 * j, and (code - 8) * d gives x back.
    std::vector<float> x(32);
    for (std::size_t j = 0; j < x.size(); ++j)
        x[j] = static_cast<float>(static_cast<int>(j % 16) - 8) * 0.5f;

    std::array<std::uint8_t, 18> want{0x00, 0x38};
    for (std::size_t j = 0; j < 16; ++j) want[2 + j] = static_cast<std::uint8_t>(0x11 * j);

    const auto blocks = qtensor::quantize<qtensor::q4_0>(x);
    if (blocks.size() != 1 || std::memcmp(blocks.data(), want.data(), want.size()) != 0) {
        std::puts("consumer: q4_0 bytes differ from the ones derived by hand");
        return 1;
    }
    const auto y = qtensor::dequantize<qtensor::q4_0>(blocks);
    if (y != x) {
        std::puts("consumer: q4_0 round trip of exactly representable values is not exact");
        return 1;
    }
    std::puts("consumer: q4_0 quantize/dequantize OK");
    return 0;
}
