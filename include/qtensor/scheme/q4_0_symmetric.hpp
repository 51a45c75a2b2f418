// qtensor/scheme/q4_0_symmetric.hpp: another rounding rule for Q4_0 blocks,
// the symmetric amax / 7 grid (codes -7..7) of symmetric int4 QAT recipes. It
// writes ordinary Q4_0 blocks (q4_0.hpp), so its output is a valid GGUF Q4_0
// tensor; only the quantizer differs from ggml's:
//
//   ggml:       d = max / -8, codes -8..7 around the signed largest element;
//   symmetric:  d = amax / 7 (amax = max |x|, fp32), code = round(x * (1/d)),
//               the fp32 reciprocal, rounded half away from zero, in -7..7,
//               stored as code + 8; the block keeps fp16(d), as Q8_0 does.
//
// A model trained with fake_quant<q4_0_symmetric> holds weights on grids whose
// largest code is 7; ggml's rule re-rounds them onto amax / 8 steps, while
// lattice::quantize_row_aligned (lattice.hpp) packs them exactly. It is not a
// registered scheme: no kernels of its own, as the blocks are q4_0's.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "qtensor/core/config.hpp"
#include "qtensor/core/float_bits.hpp"
#include "qtensor/core/half.hpp"
#include "qtensor/scheme/q4_0.hpp"
#include "qtensor/scheme/q8_0.hpp"
#include "qtensor/scheme/scheme.hpp"

QTENSOR_BEGIN_NAMESPACE

struct q4_0_symmetric {
    using block_type = block_q4_0;
    static constexpr std::size_t block_elems = q4_0::block_elems;
    static constexpr std::size_t block_bytes = q4_0::block_bytes;
    static constexpr ggml_type type_id = ggml_type::q4_0;
    static constexpr std::string_view name = "q4_0_symmetric";

    // x[n] -> y[n/32]. Throws qtensor::error on NaN/Inf input or a scale past
    // the fp16 range. |x| / d <= 7 by construction, so no code is clamped and
    // saturated[i] (the clamp to -7..7, kept for safety) is always 0: the
    // straight-through backward passes every gradient.
    static void quantize_row(const float* x, block_q4_0* y, std::size_t n,
                             std::uint8_t* saturated = nullptr) {
        detail::check_finite(name, x, n);
        constexpr std::size_t half = block_elems / 2;
        for (std::size_t b = 0; b < n / block_elems; ++b, x += block_elems) {
            const float id = detail::symmetric_scale(name, b, x, block_elems, 7.0f, &y[b].d);

            std::array<int, block_elems> code;
            for (std::size_t j = 0; j < block_elems; ++j) {
                const int k = static_cast<int>(std::round(detail::fmul(x[j], id)));
                code[j] = std::clamp(k, -7, 7) + 8;
                if (saturated != nullptr) *saturated++ = k < -7 || k > 7;
            }
            for (std::size_t j = 0; j < half; ++j)
                y[b].qs[j] = static_cast<std::uint8_t>(code[j] | (code[j + half] << 4));
        }
    }

    static void dequantize_row(const block_q4_0* x, float* y, std::size_t n) noexcept {
        q4_0::dequantize_row(x, y, n);
    }
};

QTENSOR_END_NAMESPACE
