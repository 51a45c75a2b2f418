// qtensor/core/float_bits.hpp: float operations whose exact rounding the
// reference quantizers depend on.
#pragma once

#include <bit>
#include <cstdint>

#include "qtensor/core/config.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace detail {

// fmul(a, b): a * b rounded to binary32, never fused with a following add;
// opaque(p) is the barrier itself, for code that multiplies its own way.
//
// ggml's reference quantizers are compiled without FMA, so every product is
// rounded before it is added. GCC contracts `a * b + c` into an FMA by default
// (-ffp-contract=fast in GNU mode) whenever the target has FMA, even across
// statements, and that changes Q2_K/Q4_K bytes. The user's flags are not ours
// to choose, so the reference code routes every product that feeds a sum
// through this function. The empty asm makes the rounded product opaque to the
// optimiser: it must exist as a float in a register, so it cannot be fused.
[[gnu::always_inline]] inline float opaque(float p) noexcept {
#if defined(__GNUC__) && (defined(__x86_64__) || (defined(__i386__) && defined(__SSE2__)))
    asm("" : "+x"(p));
#elif defined(__GNUC__) && defined(__aarch64__)
    asm("" : "+w"(p));
#elif defined(__GNUC__)
    asm("" : "+m"(p));
#endif
    // MSVC does not contract under its default /fp:precise.
    return p;
}

[[gnu::always_inline]] inline float fmul(float a, float b) noexcept { return opaque(a * b); }

// ggml's nearest_int: adding 1.5 * 2^23 pushes the fraction out of the
// mantissa, so the low mantissa bits hold the integer rounded half-to-even.
// Exact for |f| <= 2^22; beyond that it returns the same (meaningless but
// well-defined) value as ggml, which the byte-exact Q2_K/Q4_K paths need.
inline int nearest_int(float f) noexcept {
    const float biased = f + 12582912.0f;
    const auto bits = std::bit_cast<std::int32_t>(biased);
    return (bits & 0x007fffff) - 0x00400000;
}

} // namespace detail
QTENSOR_END_NAMESPACE
