// qtensor/kernels/quant.hpp: quantize and dequantize kernels. Each gives the
// same bits as its scheme's scalar reference, on every target, and the
// quantizers throw the reference's qtensor::error (naming the element or
// block) for the same input: NaN/Inf, or a block scale past the fp16 range.
//
// Each takes spans and checks their sizes (x[n] and y[n / block]), or in
// kernels::unchecked raw pointers and n (checks.hpp says why both); either
// form checks that n is a whole number of blocks (qtensor::error).
// quantize_row<S> / dequantize_row<S> take any scheme: its kernel where
// registry.hpp says there is one, its reference otherwise.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>
#include <string>
#include <string_view>

#include "qtensor/core/half.hpp"
#include "qtensor/kernels/backend.hpp"
#include "qtensor/kernels/checks.hpp"
#include "qtensor/scheme/fake_quant.hpp"
#include "qtensor/scheme/float.hpp"
#include "qtensor/scheme/q2_k.hpp"
#include "qtensor/scheme/q4_0.hpp"
#include "qtensor/scheme/q8_0.hpp"
#include "qtensor/scheme/q8_k.hpp"
#include "qtensor/scheme/registry.hpp"
#include "qtensor/scheme/scheme.hpp"
#include "qtensor/scheme/static_activation.hpp"

QTENSOR_KERNELS_BEGIN_NAMESPACE

namespace unchecked {

// x[n] -> y[n / 32]; bit for bit q4_0::quantize_row.
inline void quantize_q4_0(const float* x, block_q4_0* y, std::size_t n, target t = target::best()) {
    blocks_per_row<q4_0>(n);
    detail::backend::quantize_q4_0(t, x, y, n);
}

// x[n] -> y[n / 32]; bit for bit q8_0::quantize_row.
inline void quantize_q8_0(const float* x, block_q8_0* y, std::size_t n, target t = target::best()) {
    blocks_per_row<q8_0>(n);
    detail::backend::quantize_q8_0(t, x, y, n);
}

// x[n] -> y[n / 256]; bit for bit q8_k::quantize_row.
inline void quantize_q8_k(const float* x, block_q8_k* y, std::size_t n, target t = target::best()) {
    blocks_per_row<q8_k>(n);
    detail::backend::quantize_q8_k(t, x, y, n);
}

// x[n] -> y[n / 32] or y[n / 256] with the fixed scale s (static
// activations); bit for bit quantize_row_static, which says what s may be
// (qtensor::error otherwise). Finite input is the caller's to check.
inline void quantize_static(const float* x, block_q8_0* y, std::size_t n, float s, target t = target::best()) {
    blocks_per_row<q8_0>(n);
    detail::backend::quantize_static_q8_0(t, x, y, n, s, qtensor::detail::static_reciprocal(s, true));
}
inline void quantize_static(const float* x, block_q8_k* y, std::size_t n, float s, target t = target::best()) {
    blocks_per_row<q8_k>(n);
    detail::backend::quantize_static_q8_k(t, x, y, n, s, qtensor::detail::static_reciprocal(s, false));
}

// x[n] -> y[n] and the clip mask saturated[n]; bit for bit
// fake_quant<q4_0>::forward (y may be x).
inline void fake_quant_q4_0(const float* x, float* y, std::uint8_t* saturated, std::size_t n,
                            target t = target::best()) {
    blocks_per_row<q4_0>(n);
    detail::backend::fake_quant_q4_0(t, x, y, saturated, n);
}

// x[n / 32] -> y[n]; bit for bit q4_0::dequantize_row.
inline void dequantize_q4_0(const block_q4_0* x, float* y, std::size_t n, target t = target::best()) {
    blocks_per_row<q4_0>(n);
    detail::backend::dequantize_q4_0(t, x, y, n);
}

// x[n / 32] -> y[n]; bit for bit q8_0::dequantize_row.
inline void dequantize_q8_0(const block_q8_0* x, float* y, std::size_t n, target t = target::best()) {
    blocks_per_row<q8_0>(n);
    detail::backend::dequantize_q8_0(t, x, y, n);
}

// x[n / 256] -> y[n]; bit for bit q2_k::dequantize_row.
inline void dequantize_q2_k(const block_q2_k* x, float* y, std::size_t n, target t = target::best()) {
    blocks_per_row<q2_k>(n);
    detail::backend::dequantize_q2_k(t, x, y, n);
}

// x[n] -> y[n]; bit for bit fp16_to_fp32, NaN payloads included.
inline void dequantize_f16(const fp16_t* x, float* y, std::size_t n, target t = target::best()) {
    detail::backend::dequantize_f16(t, x, y, n);
}

// x[n] -> y[n]; bit for bit bf16_to_fp32.
inline void dequantize_bf16(const bf16_t* x, float* y, std::size_t n, target t = target::best()) {
    detail::backend::dequantize_bf16(t, x, y, n);
}

} // namespace unchecked

namespace detail {

// The kernels above, by scheme: one entry per scheme that registry.hpp's
// simd_kernels_of gives a quantize or dequantize kernel, and no other.
template <class S>
struct quant_kernel {};
template <>
struct quant_kernel<q4_0> {
    static constexpr auto quantize = &unchecked::quantize_q4_0;
    static constexpr auto dequantize = &unchecked::dequantize_q4_0;
    static constexpr auto fake_quant = &unchecked::fake_quant_q4_0;
};
template <>
struct quant_kernel<q8_0> {
    static constexpr auto quantize = &unchecked::quantize_q8_0;
    static constexpr auto dequantize = &unchecked::dequantize_q8_0;
};
template <>
struct quant_kernel<q8_k> {
    static constexpr auto quantize = &unchecked::quantize_q8_k;
};
template <>
struct quant_kernel<q2_k> {
    static constexpr auto dequantize = &unchecked::dequantize_q2_k;
};
template <>
struct quant_kernel<f16> {
    static constexpr auto dequantize = &unchecked::dequantize_f16;
};
template <>
struct quant_kernel<bf16> {
    static constexpr auto dequantize = &unchecked::dequantize_bf16;
};

// Each registered scheme's flags and its entry above agree: a kernel nobody
// calls, or a flag without a kernel, does not compile.
constexpr bool quant_kernels_match_registry() {
    bool ok = true;
    for_each_scheme([&](auto s) {
        using S = decltype(s);
        ok = ok && has_kernels(simd_kernels_of<S>, simd_kernels::quantize) == requires { quant_kernel<S>::quantize; } &&
             has_kernels(simd_kernels_of<S>, simd_kernels::dequantize) == requires { quant_kernel<S>::dequantize; } &&
             has_kernels(simd_kernels_of<S>, simd_kernels::fake_quant) == requires { quant_kernel<S>::fake_quant; };
    });
    return ok;
}
static_assert(quant_kernels_match_registry(),
              "registry.hpp's simd_kernels flags and kernels::detail::quant_kernel disagree for some scheme");

// The checked forms: x[n] -> y[n / S::block_elems] and back through an
// unchecked kernel, after checking that the sizes agree.
template <scheme S, class Kernel>
void checked_quantize(std::string_view fn, std::span<const float> x, std::span<block_of<S>> y, target t,
                      Kernel kernel) {
    check_size(fn, {"y", y.size(), S::block_elems == 1 ? "elements" : "blocks"},
               blocks_of(fn, {"x", x.size()}, S::name, S::block_elems), {"x", x.size()});
    kernel(x.data(), y.data(), x.size(), t);
}

template <scheme S, class Kernel>
void checked_dequantize(std::string_view fn, std::span<const block_of<S>> x, std::span<float> y, target t,
                        Kernel kernel) {
    check_size(fn, {"x", x.size(), S::block_elems == 1 ? "elements" : "blocks"},
               blocks_of(fn, {"y", y.size()}, S::name, S::block_elems), {"y", y.size()});
    kernel(x.data(), y.data(), y.size(), t);
}

} // namespace detail

namespace unchecked {

// x[n] -> y[n / S::block_elems] for any scheme: its kernel above where the
// registry gives S one (simd_kernels::quantize), S::quantize_row otherwise.
template <scheme S>
void quantize_row(const float* x, block_of<S>* y, std::size_t n, [[maybe_unused]] target t = target::best()) {
    if constexpr (registered_scheme<S> && has_kernels(simd_kernels_of<S>, simd_kernels::quantize)) {
        detail::quant_kernel<S>::quantize(x, y, n, t);
    } else {
        blocks_per_row<S>(n);
        S::quantize_row(x, y, n);
    }
}

// x[n / S::block_elems] -> y[n] for any scheme, likewise (simd_kernels::dequantize).
template <scheme S>
void dequantize_row(const block_of<S>* x, float* y, std::size_t n, [[maybe_unused]] target t = target::best()) {
    if constexpr (registered_scheme<S> && has_kernels(simd_kernels_of<S>, simd_kernels::dequantize)) {
        detail::quant_kernel<S>::dequantize(x, y, n, t);
    } else {
        blocks_per_row<S>(n);
        S::dequantize_row(x, y, n);
    }
}

// x[n] -> y[n] = dequantize<S>(quantize<S>(x)) and the clip mask
// saturated[n] for any quantized scheme, as fake_quant<S>::forward: its
// kernel where the registry gives S one (simd_kernels::fake_quant), the
// reference otherwise. y may be x.
template <quantized_scheme S>
void fake_quant_row(const float* x, float* y, std::uint8_t* saturated, std::size_t n,
                    [[maybe_unused]] target t = target::best()) {
    if constexpr (requires { detail::quant_kernel<S>::fake_quant; }) // the registry's flag, checked above
        detail::quant_kernel<S>::fake_quant(x, y, saturated, n, t);
    else
        fake_quant<S>::forward({x, n}, {y, n}, {saturated, n});
}

} // namespace unchecked

// ---- the checked forms ------------------------------------------------------------

// x[n] -> y[n / S::block_elems], as unchecked::quantize_row<S>.
template <scheme S>
void quantize_row(std::span<const float> x, std::span<block_of<S>> y, target t = target::best()) {
    detail::checked_quantize<S>("quantize_row<" + std::string(S::name) + ">", x, y, t, unchecked::quantize_row<S>);
}

// x[n / S::block_elems] -> y[n], as unchecked::dequantize_row<S>.
template <scheme S>
void dequantize_row(std::span<const block_of<S>> x, std::span<float> y, target t = target::best()) {
    detail::checked_dequantize<S>("dequantize_row<" + std::string(S::name) + ">", x, y, t,
                                  unchecked::dequantize_row<S>);
}

// x[n] -> y[n] and saturated[n], as unchecked::fake_quant_row<S>, after
// fake_quant<S>'s checks, in its order (whole blocks, y's size, y is x or apart from it, the mask's size).
template <quantized_scheme S>
void fake_quant_row(std::span<const float> x, std::span<float> y, std::span<std::uint8_t> saturated,
                    target t = target::best()) {
    qtensor::detail::check_fake_quant_row<S>(x.size());
    qtensor::detail::check_fake_quant_size<S>("y", y.size(), x.size());
    qtensor::detail::check_fake_quant_alias<S>("y", y, "x", x);
    qtensor::detail::check_fake_quant_size<S>("saturated", saturated.size(), x.size());
    unchecked::fake_quant_row<S>(x.data(), y.data(), saturated.data(), x.size(), t);
}

// x[n] -> y[n / 32] (q4_0, q8_0) or y[n / 256] (q8_k), as the unchecked forms.
inline void quantize_q4_0(std::span<const float> x, std::span<block_q4_0> y, target t = target::best()) {
    detail::checked_quantize<q4_0>("quantize_q4_0", x, y, t, unchecked::quantize_q4_0);
}
inline void quantize_q8_0(std::span<const float> x, std::span<block_q8_0> y, target t = target::best()) {
    detail::checked_quantize<q8_0>("quantize_q8_0", x, y, t, unchecked::quantize_q8_0);
}
inline void quantize_q8_k(std::span<const float> x, std::span<block_q8_k> y, target t = target::best()) {
    detail::checked_quantize<q8_k>("quantize_q8_k", x, y, t, unchecked::quantize_q8_k);
}

// x[n] -> y[n / 32] (Q8_0) or y[n / 256] (Q8_K) with the fixed scale s, as
// the unchecked forms; NaN/Inf in x throw, as in quantize_row_static.
template <class B>
    requires std::same_as<B, block_q8_0> || std::same_as<B, block_q8_k>
void quantize_static(std::span<const float> x, std::span<B> y, float s, target t = target::best()) {
    using P = std::conditional_t<std::same_as<B, block_q8_0>, q8_0, q8_k>;
    qtensor::detail::check_size("output", "quantize_static", y.size(), blocks_per_row<P>(x.size()));
    qtensor::detail::check_finite("quantize_static", x.data(), x.size());
    unchecked::quantize_static(x.data(), y.data(), x.size(), s, t);
}

// x[n / block] -> y[n], as the unchecked forms.
inline void dequantize_q4_0(std::span<const block_q4_0> x, std::span<float> y, target t = target::best()) {
    detail::checked_dequantize<q4_0>("dequantize_q4_0", x, y, t, unchecked::dequantize_q4_0);
}
inline void dequantize_q8_0(std::span<const block_q8_0> x, std::span<float> y, target t = target::best()) {
    detail::checked_dequantize<q8_0>("dequantize_q8_0", x, y, t, unchecked::dequantize_q8_0);
}
inline void dequantize_q2_k(std::span<const block_q2_k> x, std::span<float> y, target t = target::best()) {
    detail::checked_dequantize<q2_k>("dequantize_q2_k", x, y, t, unchecked::dequantize_q2_k);
}
inline void dequantize_f16(std::span<const fp16_t> x, std::span<float> y, target t = target::best()) {
    detail::checked_dequantize<f16>("dequantize_f16", x, y, t, unchecked::dequantize_f16);
}
inline void dequantize_bf16(std::span<const bf16_t> x, std::span<float> y, target t = target::best()) {
    detail::checked_dequantize<bf16>("dequantize_bf16", x, y, t, unchecked::dequantize_bf16);
}

QTENSOR_KERNELS_END_NAMESPACE
