// qtensor/core/half.hpp: IEEE binary16 (fp16) and bfloat16 storage types and
// their conversions to and from float.
//
// All conversions are integer bit manipulation, so no compiler flag (FMA
// contraction, flush-to-zero) can change their results.
#pragma once

#include <bit>
#include <cstdint>

#include "qtensor/core/config.hpp"

QTENSOR_BEGIN_NAMESPACE

// Plain 16-bit patterns. They are storage, not arithmetic types: convert to
// float to compute.
struct fp16_t {
    std::uint16_t bits;
    friend constexpr bool operator==(fp16_t, fp16_t) = default;
};
struct bf16_t {
    std::uint16_t bits;
    friend constexpr bool operator==(bf16_t, bf16_t) = default;
};
static_assert(sizeof(fp16_t) == 2 && sizeof(bf16_t) == 2);

// fp32 -> fp16, round to nearest, ties to even (what F16C and ggml's software
// routine do). Subnormals are produced exactly; finite values too large for
// fp16 become +-inf; NaN becomes the quiet NaN 0x7E00 with the sign kept.
constexpr fp16_t fp32_to_fp16(float f) noexcept {
    const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
    const std::uint16_t sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
    const std::uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return {static_cast<std::uint16_t>(sign | 0x7e00u)}; // NaN
    if (ax >= 0x477ff000u) return {static_cast<std::uint16_t>(sign | 0x7c00u)}; // rounds to >= 2^16: inf
    if (ax >= 0x38800000u) {
        // Normal fp16 range (|f| >= 2^-14): rebias the exponent, round 13 bits away.
        const std::uint32_t mant_round = ax + 0x00000fffu + ((ax >> 13) & 1u);
        return {static_cast<std::uint16_t>(sign | ((mant_round - 0x38000000u) >> 13))};
    }
    if (ax < 0x33000000u) return {sign}; // below half the smallest subnormal: +-0
    // Subnormal fp16: value = m * 2^-24 with m = round(|f| * 2^24).
    const std::uint32_t e = ax >> 23;                       // 102..112
    const std::uint32_t m = (ax & 0x007fffffu) | 0x00800000u; // 24-bit significand
    const std::uint32_t shift = 126u - e;                   // 14..24
    const std::uint32_t q = m >> shift;
    const std::uint32_t rem = m & ((1u << shift) - 1u);
    const std::uint32_t half = 1u << (shift - 1u);
    const std::uint32_t r = q + ((rem > half || (rem == half && (q & 1u))) ? 1u : 0u);
    return {static_cast<std::uint16_t>(sign | r)};
}

// fp16 -> fp32 is exact for every number. NaN keeps its sign and payload and
// comes out quiet, as F16C (vcvtph2ps) and ggml's table do.
constexpr float fp16_to_fp32(fp16_t h) noexcept {
    const std::uint32_t sign = static_cast<std::uint32_t>(h.bits & 0x8000u) << 16;
    const std::uint32_t exp = (h.bits >> 10) & 0x1fu;
    std::uint32_t mant = h.bits & 0x3ffu;
    if (exp == 0x1f)
        return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13) | (mant != 0 ? 0x00400000u : 0u));
    if (exp != 0) return std::bit_cast<float>(sign | ((exp + 112u) << 23) | (mant << 13));
    if (mant == 0) return std::bit_cast<float>(sign);
    // Subnormal: normalise the significand.
    std::uint32_t e = 113u;
    while ((mant & 0x400u) == 0) {
        mant <<= 1;
        --e;
    }
    return std::bit_cast<float>(sign | (e << 23) | ((mant & 0x3ffu) << 13));
}

// fp32 -> bf16, round to nearest, ties to even (PyTorch's rule). NaN becomes a
// quiet NaN with the sign kept; overflow rounds to +-inf as IEEE does.
constexpr bf16_t fp32_to_bf16(float f) noexcept {
    const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return {static_cast<std::uint16_t>((x >> 16) | 0x0040u)};
    return {static_cast<std::uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16)};
}

// bf16 -> fp32 is exact: bf16 is the top half of a float.
constexpr float bf16_to_fp32(bf16_t b) noexcept {
    return std::bit_cast<float>(static_cast<std::uint32_t>(b.bits) << 16);
}

QTENSOR_END_NAMESPACE
