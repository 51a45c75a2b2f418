// qtensor/scheme/float.hpp: the unquantized formats f32, f16 and bf16 as
// schemes (one element per block).
//
// Conversions follow IEEE: fp32 -> f16/bf16 rounds to nearest, ties to even;
// finite values beyond the format's range become +-inf; NaN stays NaN (quiet,
// sign kept). They never throw: a float format can hold inf and NaN.
#pragma once

#include <cstddef>
#include <cstring>
#include <string_view>

#include "qtensor/core/half.hpp"
#include "qtensor/scheme/scheme.hpp"

QTENSOR_BEGIN_NAMESPACE

struct f32 {
    using block_type = float;
    static constexpr std::size_t block_elems = 1;
    static constexpr std::size_t block_bytes = 4;
    static constexpr ggml_type type_id = ggml_type::f32;
    static constexpr std::string_view name = "f32";

    static void quantize_row(const float* x, float* y, std::size_t n) noexcept {
        if (n != 0) std::memcpy(y, x, n * sizeof(float));
    }
    static void dequantize_row(const float* x, float* y, std::size_t n) noexcept {
        if (n != 0) std::memcpy(y, x, n * sizeof(float));
    }
};

struct f16 {
    using block_type = fp16_t;
    static constexpr std::size_t block_elems = 1;
    static constexpr std::size_t block_bytes = 2;
    static constexpr ggml_type type_id = ggml_type::f16;
    static constexpr std::string_view name = "f16";

    static void quantize_row(const float* x, fp16_t* y, std::size_t n) noexcept {
        for (std::size_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
    }
    static void dequantize_row(const fp16_t* x, float* y, std::size_t n) noexcept {
        for (std::size_t i = 0; i < n; ++i) y[i] = fp16_to_fp32(x[i]);
    }
};

struct bf16 {
    using block_type = bf16_t;
    static constexpr std::size_t block_elems = 1;
    static constexpr std::size_t block_bytes = 2;
    static constexpr ggml_type type_id = ggml_type::bf16;
    static constexpr std::string_view name = "bf16";

    static void quantize_row(const float* x, bf16_t* y, std::size_t n) noexcept {
        for (std::size_t i = 0; i < n; ++i) y[i] = fp32_to_bf16(x[i]);
    }
    static void dequantize_row(const bf16_t* x, float* y, std::size_t n) noexcept {
        for (std::size_t i = 0; i < n; ++i) y[i] = bf16_to_fp32(x[i]);
    }
};

QTENSOR_END_NAMESPACE
