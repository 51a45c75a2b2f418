// qtensor/scheme/static_activation.hpp: activations as int8 codes with a
// scale fixed ahead of time ("static activations": calibrated once on sample
// text, not measured per block at run time), written into the blocks of the
// weights' dot partners so that the integer kernels run them unchanged:
// Q8_K for TQ2_0 and the K-quants (w2a8), Q8_0 for Q4_0 and Q8_0 (w4a8, w8a8).
//
//   code = nearest_int(clamp(x * (1 / s), -127, 127))    (half to even)
//   Q8_K: d = s, bsums[g] = the sum of codes 16g .. 16g + 15
//   Q8_0: d = fp16(s); s must be an fp16 value (static_scale_fp16 rounds one)
//
// The product is clamped before it is rounded: an activation far past the
// calibrated range saturates at +-127, as a fixed-scale int8 runtime does,
// and never leaves nearest_int's range. A block of zeros gets zero codes and
// the same d: unlike the dynamic quantizers, d never depends on the values.
// saturated[i] = 1 where |x * (1 / s)| > 127 (the clamp changed the value).
// The reciprocal 1 / s is the fp32 quotient; a scale whose reciprocal is not
// finite, a scale that is not finite and positive, and NaN/Inf input throw.
// kernels/quant.hpp has the SIMD kernels, bit for bit these; fake_quant_static
// is what QAT rehearses (codes times s, as floats).
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/core/float_bits.hpp"
#include "qtensor/core/half.hpp"
#include "qtensor/scheme/q8_0.hpp"
#include "qtensor/scheme/q8_k.hpp"
#include "qtensor/scheme/scheme.hpp"

QTENSOR_BEGIN_NAMESPACE

// The largest code magnitude of a static int8 activation.
inline constexpr float static_code_max = 127.0f;

// The scale that maps amax, the largest activation magnitude a calibration
// saw, onto code 127, rounded up to an fp16 value (so Q8_0 can store it and
// amax still fits). Throws where amax is not finite and positive, or the
// scale is past fp16's range (below its smallest normal, or above 65504).
inline float static_scale_fp16(float amax) {
    if (!(amax > 0.0f) || !detail::is_finite_bits(amax))
        throw error("static activation scale: the largest magnitude " + std::to_string(amax) +
                    " is not finite and positive");
    const float s = amax / static_code_max;
    fp16_t h = fp32_to_fp16(s);
    if (fp16_to_fp32(h) < s) h = fp16_t{static_cast<std::uint16_t>(h.bits + 1)}; // up to the next fp16
    const float out = fp16_to_fp32(h);
    if (!detail::is_finite_bits(out) || out < 0x1p-14f)
        throw error("static activation scale: " + std::to_string(s) + " (largest magnitude " + std::to_string(amax) +
                    ") is outside fp16's normal range");
    return out;
}

namespace detail {

// 1 / s, checked as the banner says; Q8_0 also needs s to be an fp16 value.
inline float static_reciprocal(float s, bool fp16_scale) {
    if (!(s > 0.0f) || !is_finite_bits(s))
        throw error("static activation scale " + std::to_string(s) + " is not finite and positive");
    if (fp16_scale && fp16_to_fp32(fp32_to_fp16(s)) != s)
        throw error("static activation scale " + std::to_string(s) +
                    " is not an fp16 value, which Q8_0 blocks store (static_scale_fp16 gives one)");
    const float inv = 1.0f / s;
    if (!is_finite_bits(inv)) throw error("static activation scale " + std::to_string(s) + " has no finite reciprocal");
    return inv;
}

inline int static_code(float x, float inv) noexcept {
    return nearest_int(std::min(std::max(fmul(x, inv), -static_code_max), static_code_max));
}
inline bool static_clips(float x, float inv) noexcept { return std::fabs(fmul(x, inv)) > static_code_max; }

// x[n] -> codes[n] (and the clip mask), with inv = 1 / s.
inline void static_codes(const float* x, std::int8_t* codes, std::size_t n, float inv, std::uint8_t* saturated) {
    for (std::size_t i = 0; i < n; ++i) {
        codes[i] = static_cast<std::int8_t>(static_code(x[i], inv));
        if (saturated != nullptr) saturated[i] = static_clips(x[i], inv);
    }
}

} // namespace detail

// x[n] -> y[n / 32] (Q8_0 blocks; s an fp16 value) or y[n / 256] (Q8_K) with
// the fixed scale s: the reference of kernels::quantize_static.
template <class B>
    requires std::same_as<B, block_q8_0> || std::same_as<B, block_q8_k>
void quantize_row_static(const float* x, B* y, std::size_t n, float s, std::uint8_t* saturated = nullptr) {
    using P = std::conditional_t<std::same_as<B, block_q8_0>, q8_0, q8_k>;
    constexpr std::size_t block = P::block_elems;
    const float inv = detail::static_reciprocal(s, std::same_as<P, q8_0>);
    const std::size_t blocks = blocks_per_row<P>(n);
    detail::check_finite("static activations", x, n);
    for (std::size_t b = 0; b < blocks; ++b) {
        detail::static_codes(x + block * b, y[b].qs.data(), block, inv, saturated ? saturated + block * b : nullptr);
        if constexpr (std::same_as<P, q8_0>) {
            y[b].d = fp32_to_fp16(s);
        } else {
            y[b].d = s;
            for (std::size_t g = 0; g < 16; ++g) {
                int sum = 0;
                for (std::size_t j = 16 * g; j < 16 * (g + 1); ++j) sum += y[b].qs[j];
                y[b].bsums[g] = static_cast<std::int16_t>(sum);
            }
        }
    }
}

// The fake-quant twin, for QAT: y[i] = code(x[i]) * s, the activation a
// product with static activations multiplies the weights by, and saturated
// as above (where the straight-through backward passes no gradient). y may
// be x.
inline void fake_quant_static(const float* x, float* y, std::size_t n, float s, std::uint8_t* saturated = nullptr) {
    const float inv = detail::static_reciprocal(s, false);
    detail::check_finite("static activations", x, n);
    for (std::size_t i = 0; i < n; ++i) {
        const float v = x[i];
        if (saturated != nullptr) saturated[i] = detail::static_clips(v, inv);
        y[i] = static_cast<float>(detail::static_code(v, inv)) * s;
    }
}

QTENSOR_END_NAMESPACE
