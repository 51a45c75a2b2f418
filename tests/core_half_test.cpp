// fp16 / bf16 conversions: hand-derived IEEE cases, and the CPU's own F16C
// conversion (vcvtps2ph, round to nearest even) as an external oracle.
#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <ios>
#include <limits>

#include "qtensor/core/half.hpp"

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#define QTENSOR_TEST_HAVE_F16C 1
#endif

using namespace qtensor;

namespace {
std::uint16_t h(float f) { return fp32_to_fp16(f).bits; }
std::uint16_t b(float f) { return fp32_to_bf16(f).bits; }
float from_bits(std::uint32_t u) { return std::bit_cast<float>(u); }
} // namespace

TEST_CASE("fp16: exact values, range ends and ties to even") {
    CHECK(h(1.0f) == 0x3C00);
    CHECK(h(-2.0f) == 0xC000);
    CHECK(h(0.0f) == 0x0000);
    CHECK(h(-0.0f) == 0x8000);
    CHECK(h(65504.0f) == 0x7BFF);      // largest finite
    CHECK(h(65519.99f) == 0x7BFF);     // below the midpoint to 2^16
    CHECK(h(65520.0f) == 0x7C00);      // midpoint: ties to even = 2^16 = inf
    CHECK(h(1.0e9f) == 0x7C00);
    CHECK(h(-1.0e9f) == 0xFC00);
    CHECK(h(std::ldexp(1.0f, -14)) == 0x0400); // smallest normal
    CHECK(h(std::ldexp(1.0f, -24)) == 0x0001); // smallest subnormal
    CHECK(h(std::ldexp(1.0f, -25)) == 0x0000); // half of it: tie to even (0)
    CHECK(h(std::ldexp(1.5f, -25)) == 0x0001);
    CHECK(h(std::ldexp(3.0f, -25)) == 0x0002); // 1.5 ulp: tie between 1 and 2 -> 2
    CHECK(h(1.0f + std::ldexp(1.0f, -11)) == 0x3C00);        // tie between 1 and 1+2^-10 -> even
    CHECK(h(1.0f + 3.0f * std::ldexp(1.0f, -11)) == 0x3C02); // tie between 0x3C01 and 0x3C02 -> even
    CHECK(h(std::numeric_limits<float>::infinity()) == 0x7C00);
    CHECK(h(std::numeric_limits<float>::quiet_NaN()) == 0x7E00);
    CHECK(h(-std::numeric_limits<float>::quiet_NaN()) == 0xFE00);
}

TEST_CASE("fp16 -> fp32 is exact") {
    CHECK(fp16_to_fp32({0x3C00}) == 1.0f);
    CHECK(fp16_to_fp32({0x3555}) == 0.333251953125f);
    CHECK(fp16_to_fp32({0x0001}) == std::ldexp(1.0f, -24));
    CHECK(fp16_to_fp32({0x03FF}) == std::ldexp(1023.0f, -24));
    CHECK(fp16_to_fp32({0x7BFF}) == 65504.0f);
    CHECK(std::bit_cast<std::uint32_t>(fp16_to_fp32({0x8000})) == 0x80000000u);
    CHECK(std::isinf(fp16_to_fp32({0xFC00})));
    CHECK(std::isnan(fp16_to_fp32({0x7E00})));
    // A signalling NaN half widens to a quiet NaN, payload kept (as F16C does).
    CHECK(std::bit_cast<std::uint32_t>(fp16_to_fp32({0x7C01})) == 0x7FC02000u);
    CHECK(std::bit_cast<std::uint32_t>(fp16_to_fp32({0xFDFF})) == 0xFFFFE000u);
    // Every non-NaN half survives the round trip.
    for (std::uint32_t u = 0; u < 0x10000; ++u) {
        const fp16_t x{static_cast<std::uint16_t>(u)};
        if (std::isnan(fp16_to_fp32(x))) continue;
        REQUIRE(fp32_to_fp16(fp16_to_fp32(x)).bits == x.bits);
    }
}

#ifdef QTENSOR_TEST_HAVE_F16C
namespace {
[[gnu::target("f16c")]] std::uint16_t f16c(float f) {
    // Not _cvtss_sh: clang's macro for it is a C99 compound literal.
    return static_cast<std::uint16_t>(_mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(f), _MM_FROUND_TO_NEAREST_INT), 0));
}
[[gnu::target("f16c")]] float f16c_back(std::uint16_t x) { return _cvtsh_ss(x); }
// CPUID leaf 1: F16C (ECX bit 29), and AVX (bit 28) with the OS saving the
// YMM state (OSXSAVE, bit 27, and XCR0 bits 1-2), as VEX instructions need.
// By hand: clang 14's __builtin_cpu_supports has no "f16c".
bool cpu_has_f16c() {
    unsigned a = 0, b = 0, c = 0, d = 0;
    constexpr unsigned need = (1u << 27) | (1u << 28) | (1u << 29);
    if (__get_cpuid(1, &a, &b, &c, &d) == 0 || (c & need) != need) return false;
    unsigned xcr0_low = 0, xcr0_high = 0;
    __asm__("xgetbv" : "=a"(xcr0_low), "=d"(xcr0_high) : "c"(0));
    return (xcr0_low & 6u) == 6u;
}
} // namespace

TEST_CASE("fp16: matches the CPU's F16C conversion on a dense sample of all floats") {
    if (!cpu_has_f16c()) {
        MESSAGE("CPU has no F16C: oracle comparison skipped");
        return;
    }
    // Every 61st bit pattern (61 is prime, so all exponents and low mantissa
    // bits are visited), plus every float in the fp16 subnormal/normal border.
    std::uint64_t checked = 0;
    for (std::uint64_t u = 0; u <= 0xFFFFFFFFull; u += 61) {
        const float f = from_bits(static_cast<std::uint32_t>(u));
        if (std::isnan(f)) continue;
        REQUIRE_MESSAGE(h(f) == f16c(f), "bits 0x" << std::hex << u);
        ++checked;
    }
    for (std::uint32_t u = 0x33000000u; u <= 0x38800000u; u += 7) {
        REQUIRE(h(from_bits(u)) == f16c(from_bits(u)));
        REQUIRE(h(-from_bits(u)) == f16c(-from_bits(u)));
    }
    for (std::uint32_t u = 0; u < 0x10000; ++u) { // NaN halves included
        const float ours = fp16_to_fp32({static_cast<std::uint16_t>(u)});
        REQUIRE(std::bit_cast<std::uint32_t>(ours) ==
                std::bit_cast<std::uint32_t>(f16c_back(static_cast<std::uint16_t>(u))));
    }
    CHECK(checked > 60'000'000u);
}
#endif

TEST_CASE("bf16: round to nearest even, NaN stays NaN, exact widening") {
    CHECK(b(1.0f) == 0x3F80);
    CHECK(b(-1.0f) == 0xBF80);
    CHECK(b(1.0f + std::ldexp(1.0f, -8)) == 0x3F80);        // tie -> even
    CHECK(b(1.0f + 3.0f * std::ldexp(1.0f, -8)) == 0x3F82); // tie -> even (up)
    CHECK(b(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20)) == 0x3F81); // above the tie
    CHECK(b(std::numeric_limits<float>::max()) == 0x7F80);  // rounds past the largest bf16: inf
    CHECK(b(std::numeric_limits<float>::infinity()) == 0x7F80);
    CHECK(b(from_bits(0x00000001u)) == 0x0000);             // smallest subnormal rounds to 0
    CHECK(std::isnan(bf16_to_fp32(fp32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
    // A signalling NaN whose payload sits only in the low bits must not become inf.
    CHECK(std::isnan(bf16_to_fp32(fp32_to_bf16(from_bits(0x7F800001u)))));
    CHECK(bf16_to_fp32({0x4049}) == 3.140625f);
    CHECK(std::bit_cast<std::uint32_t>(bf16_to_fp32({0x8000})) == 0x80000000u);
}
