// qtensor/scheme/scheme.hpp: what a quantization scheme is, and the checked
// entry points every scheme shares.
//
// A scheme is a type with static members: the block struct (plain bytes, as
// ggml stores it), how many elements one block holds, its GGUF type id and
// name, and the scalar reference quantize/dequantize of one row. Rows are
// whole blocks placed back to back, so a row of n elements takes
// n / block_elems * block_bytes bytes with no padding (ggml's ggml_row_size).
#pragma once

#include <algorithm>
#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cmath>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"

QTENSOR_BEGIN_NAMESPACE

// ggml_type: the tensor type field of a GGUF file (ggml.h): its ids up to 39
// (MXFP4), retired ones left out.
// Their names and block geometry: registry.hpp (type_name, find_ggml_type).
enum class ggml_type : std::uint32_t {
    f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9,
    q2_k = 10, q3_k = 11, q4_k = 12, q5_k = 13, q6_k = 14, q8_k = 15,
    iq2_xxs = 16, iq2_xs = 17, iq3_xxs = 18, iq1_s = 19, iq4_nl = 20, iq3_s = 21, iq2_s = 22, iq4_xs = 23,
    i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28, iq1_m = 29, bf16 = 30,
    tq1_0 = 34, tq2_0 = 35, mxfp4 = 39,
};

template <class S>
concept scheme = requires {
    typename S::block_type;
    { S::block_elems } -> std::convertible_to<std::size_t>;
    { S::block_bytes } -> std::convertible_to<std::size_t>;
    { S::type_id } -> std::convertible_to<ggml_type>;
    { S::name } -> std::convertible_to<std::string_view>;
    requires std::is_trivially_copyable_v<typename S::block_type>;
    requires sizeof(typename S::block_type) == S::block_bytes;
} && requires(const float* x, typename S::block_type* q, const typename S::block_type* cq,
              float* y, std::size_t n) {
    S::quantize_row(x, q, n);   // x[n] -> q[n / block_elems]; n % block_elems == 0
    S::dequantize_row(cq, y, n); // q[n / block_elems] -> y[n]
};

// A scheme with blocks of codes and scales (not a plain float format). Its
// quantizer can also report which elements saturated: saturated[i] = 1 when
// element i's code was clamped to the end of the code range, so a small change
// of x[i] does not move its dequantized value. fake_quant's backward uses it.
template <class S>
concept quantized_scheme = scheme<S> && (S::block_elems > 1) &&
    requires(const float* x, typename S::block_type* q, std::uint8_t* saturated, std::size_t n) {
        S::quantize_row(x, q, n, saturated);
    };

// A scheme whose rows have an integer dot product with rows of a partner
// scheme (ggml's vec_dot_type): q4_0 and q8_0 with q8_0, the K-quants with q8_k.
template <class S>
concept has_dot_partner = scheme<S> && requires { typename S::dot_partner; } &&
    requires(const typename S::block_type* w, const typename S::dot_partner::block_type* a,
             std::size_t n) {
        { S::dot_row(w, a, n) } -> std::same_as<float>;
    };

template <scheme S>
using block_of = typename S::block_type;

// Number of blocks in a row of n elements; throws if n is not a whole number of blocks.
template <scheme S>
constexpr std::size_t blocks_per_row(std::size_t n) {
    if (n % S::block_elems != 0)
        throw error(std::string(S::name) + ": a row of " + std::to_string(n) +
                    " elements is not a multiple of the block size " +
                    std::to_string(S::block_elems));
    return n / S::block_elems;
}

// Bytes of one row of n elements (ggml_row_size).
template <scheme S>
constexpr std::size_t row_bytes(std::size_t n) {
    return blocks_per_row<S>(n) * S::block_bytes;
}

namespace detail {

inline void check_size(std::string_view what, std::string_view name, std::size_t got,
                       std::size_t want) {
    if (got != want)
        throw error(std::string(name) + ": " + std::string(what) + " holds " +
                    std::to_string(got) + ", expected " + std::to_string(want));
}

// Quantized schemes reject NaN and +-Inf: ggml's float-to-int conversions are
// undefined for them, and a scale computed from them is meaningless.
// The test reads the exponent bits, so it holds even where a user's flags let
// the compiler assume floats are finite.
inline bool is_finite_bits(float f) noexcept {
    return (std::bit_cast<std::uint32_t>(f) & 0x7f800000u) != 0x7f800000u;
}

inline void check_finite(std::string_view name, const float* x, std::size_t n) {
    // One pass without a branch (compilers can vectorize it): the largest |x| as bits is
    // >= the exponent mask exactly when some x is NaN or Inf. The search after only on failure.
    std::uint32_t max_abs = 0;
    for (std::size_t i = 0; i < n; ++i) max_abs = std::max(max_abs, std::bit_cast<std::uint32_t>(x[i]) & 0x7fffffffu);
    if (max_abs < 0x7f800000u) return;
    for (std::size_t i = 0; i < n; ++i)
        if (!is_finite_bits(x[i]))
            throw error(std::string(name) + ": element " + std::to_string(i) + " is " +
                        ((std::bit_cast<std::uint32_t>(x[i]) & 0x007fffffu) != 0 ? "NaN" : "infinite") +
                        "; quantized schemes need finite input");
}

// The element of largest magnitude, with its sign (0 when every x is 0).
// ggml replaces its candidate only on a strictly larger |x|, so of equal
// magnitudes the first wins, and with it its sign, which decides the sign of
// the scale in Q4_0, Q5_0, Q8_K, Q3_K, Q6_K, IQ4_NL and IQ4_XS.
inline float signed_absmax(const float* x, std::size_t n) noexcept {
    float amax = 0.0f;
    float max = 0.0f;
    for (std::size_t i = 0; i < n; ++i) {
        if (std::fabs(x[i]) > amax) {
            amax = std::fabs(x[i]);
            max = x[i];
        }
    }
    return max;
}

// Below this largest magnitude, ggml's symmetric searches (make_qx_quants,
// make_q3_quants, the IQ4 scale search) call a group all zero (GROUP_MAX_EPS).
inline constexpr float group_max_eps = 1e-15f;

// A block scale stored as fp16 must be finite (65520 and above round to inf);
// an infinite scale would dequantize the block to inf and NaN.
inline void check_fp16_scale(std::string_view name, std::size_t block, float scale, float stored) {
    if (!is_finite_bits(stored))
        throw error(std::string(name) + ": block " + std::to_string(block) + " needs scale " +
                    std::to_string(scale) + ", past the fp16 range (65520 and above round to inf)");
}

} // namespace detail

// x[n] -> out[n / block_elems], checked: sizes must agree.
template <scheme S>
void quantize(std::span<const float> x, std::span<block_of<S>> out) {
    detail::check_size("output", S::name, out.size(), blocks_per_row<S>(x.size()));
    S::quantize_row(x.data(), out.data(), x.size());
}

template <scheme S>
std::vector<block_of<S>> quantize(std::span<const float> x) {
    std::vector<block_of<S>> out(blocks_per_row<S>(x.size()));
    S::quantize_row(x.data(), out.data(), x.size());
    return out;
}

// in[n / block_elems] -> y[n], checked.
template <scheme S>
void dequantize(std::span<const block_of<S>> in, std::span<float> y) {
    detail::check_size("input", S::name, in.size(), blocks_per_row<S>(y.size()));
    S::dequantize_row(in.data(), y.data(), y.size());
}

template <scheme S>
std::vector<float> dequantize(std::span<const block_of<S>> in) {
    std::vector<float> y(in.size() * S::block_elems);
    S::dequantize_row(in.data(), y.data(), y.size());
    return y;
}

// Scalar reference dot product of a weight row with a partner activation row.
template <has_dot_partner S>
float dot(std::span<const block_of<S>> w, std::span<const block_of<typename S::dot_partner>> a) {
    using P = typename S::dot_partner;
    const std::size_t n = w.size() * S::block_elems;
    detail::check_size("activation row (elements)", S::name, a.size() * P::block_elems, n);
    return S::dot_row(w.data(), a.data(), n);
}

QTENSOR_END_NAMESPACE
