// qtensor/scheme/fake_quant.hpp: fake quantization for quantization-aware
// training (QAT), bit-identical to packing with a scheme and unpacking.
//
// forward:  y = dequantize<S>(quantize<S>(x)). It is computed as exactly that
//           composition, one block at a time through a block on the stack, not
//           as a closed formula: the training forward then sits on the lattice
//           the packer writes, bit for bit, whatever the scheme's rules are
//           (which element sets the scale, tie-breaks, the rounding rule, the
//           fp16 storage of the scale, a scale search for the K-quants).
// backward: the straight-through estimator with the clip mask,
//           dx[i] = saturated[i] ? 0 : dy[i],
//           where saturated[i] = 1 when the quantizer clamped element i's code
//           (S::quantize_row's mask): moving such an element a little does not
//           move its output. The elements that set a block's scale pass their
//           gradient like any other (the usual STE choice).
//
// Shapes: x, y, dy, dx and saturated all hold n elements, n a multiple of
// S::block_elems. Blocks are independent, so a whole tensor (rows back to back)
// can be passed as one span.
//
// Activation rehearsal needs nothing extra: llama.cpp quantizes the activations
// of a Q4_0/Q8_0 matmul to Q8_0 and of a K-quant matmul to Q8_K, which
// fake_quant<q8_0> and fake_quant<q8_k> simulate. (docs/qat.md)
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/scheme/scheme.hpp"

QTENSOR_BEGIN_NAMESPACE

namespace detail {

// "fake_quant<q4_0>", the prefix of every message below.
template <scheme S>
std::string fake_quant_name() {
    return "fake_quant<" + std::string(S::name) + ">";
}

// A row must be whole blocks.
template <scheme S>
void check_fake_quant_row(std::size_t n) {
    if (n % S::block_elems != 0)
        throw error(fake_quant_name<S>() + ": x holds " + std::to_string(n) +
                    " elements, not a multiple of the block size " +
                    std::to_string(S::block_elems));
}

// Every other span must hold as many elements as x.
template <scheme S>
void check_fake_quant_size(std::string_view what, std::size_t got, std::size_t n) {
    if (got != n)
        throw error(fake_quant_name<S>() + ": " + std::string(what) + " holds " +
                    std::to_string(got) + " elements, x holds " + std::to_string(n) +
                    " (block size " + std::to_string(S::block_elems) + ")");
}

// An output may be its input (in place) but must not overlap it otherwise:
// block b of the output would overwrite input that a later block still reads.
// std::less gives a total order even for pointers into different arrays.
template <scheme S>
void check_fake_quant_alias(std::string_view out_name, std::span<const float> out,
                            std::string_view in_name, std::span<const float> in) {
    if (out.empty() || in.empty() || out.data() == in.data()) return;
    const std::less<const float*> before;
    const bool disjoint = !before(out.data(), in.data() + in.size()) ||
                          !before(in.data(), out.data() + out.size());
    if (!disjoint)
        throw error(fake_quant_name<S>() + ": " + std::string(out_name) + " overlaps " +
                    std::string(in_name) + " without being the same memory");
}

// Quantizes the block at element offset i (x[block_elems] -> *q), with the
// block's place in the row added to any error the scheme reports.
template <scheme S>
void quantize_block_at(const float* x, block_of<S>* q, std::uint8_t* saturated, std::size_t i) {
    try {
        S::quantize_row(x, q, S::block_elems, saturated);
    } catch (const error& e) {
        throw error(fake_quant_name<S>() + ": block " + std::to_string(i / S::block_elems) +
                    " (elements " + std::to_string(i) + ".." +
                    std::to_string(i + S::block_elems - 1) + "): " + std::string(e.message()));
    }
}

} // namespace detail

template <quantized_scheme S>
struct fake_quant {
    using scheme_type = S;
    static constexpr std::size_t block_elems = S::block_elems;

    // x[n] -> y[n] = dequantize<S>(quantize<S>(x)). y may be x itself.
    // Throws qtensor::error on bad sizes, on a partial overlap of x and y, and
    // wherever quantize<S> throws (NaN/Inf input, a scale past fp16).
    static void forward(std::span<const float> x, std::span<float> y) {
        check(x, y, "y");
        run_forward(x.data(), y.data(), nullptr, x.size());
    }

    // The same, and saturated[n] receives the clip mask, so a training step
    // quantizes once: forward(x, y, mask) now, backward(mask, dy, dx) later.
    static void forward(std::span<const float> x, std::span<float> y,
                        std::span<std::uint8_t> saturated) {
        check(x, y, "y");
        detail::check_fake_quant_size<S>("saturated", saturated.size(), x.size());
        run_forward(x.data(), y.data(), saturated.data(), x.size());
    }

    // dy[n] -> dx[n], the mask recomputed from x[n]. dx may be dy or x itself.
    static void backward(std::span<const float> x, std::span<const float> dy,
                         std::span<float> dx) {
        check(x, dx, "dx");
        detail::check_fake_quant_size<S>("dy", dy.size(), x.size());
        detail::check_fake_quant_alias<S>("dx", dx, "dy", dy);
        std::array<std::uint8_t, block_elems> saturated;
        for (std::size_t i = 0; i < x.size(); i += block_elems) {
            block_of<S> q{};
            detail::quantize_block_at<S>(x.data() + i, &q, saturated.data(), i);
            for (std::size_t j = 0; j < block_elems; ++j)
                dx[i + j] = saturated[j] ? 0.0f : dy[i + j];
        }
    }

    // dy[n] -> dx[n] with the mask from forward. dx may be dy itself.
    static void backward(std::span<const std::uint8_t> saturated, std::span<const float> dy,
                         std::span<float> dx) {
        detail::check_fake_quant_row<S>(saturated.size());
        detail::check_fake_quant_size<S>("dy", dy.size(), saturated.size());
        detail::check_fake_quant_size<S>("dx", dx.size(), saturated.size());
        detail::check_fake_quant_alias<S>("dx", dx, "dy", dy);
        // A select, not dy * mask: a NaN or Inf gradient on a clipped element stays out.
        for (std::size_t i = 0; i < dx.size(); ++i) dx[i] = saturated[i] ? 0.0f : dy[i];
    }

private:
    static void check(std::span<const float> x, std::span<const float> out, std::string_view what) {
        detail::check_fake_quant_row<S>(x.size());
        detail::check_fake_quant_size<S>(what, out.size(), x.size());
        detail::check_fake_quant_alias<S>(what, out, "x", x);
    }

    // x[n] -> y[n] (and saturated[n] unless null), block by block: the block is
    // quantized completely before its outputs are written, so y == x is safe.
    // NaN/Inf are looked for in all of x before anything is written; a scale
    // past fp16 in block k is only found there, after blocks 0..k-1 of y (of x,
    // in place) have been written.
    static void run_forward(const float* x, float* y, std::uint8_t* saturated, std::size_t n) {
        detail::check_finite(detail::fake_quant_name<S>(), x, n);
        for (std::size_t i = 0; i < n; i += block_elems) {
            block_of<S> q{};
            detail::quantize_block_at<S>(x + i, &q, saturated ? saturated + i : nullptr, i);
            S::dequantize_row(&q, y + i, block_elems);
        }
    }
};

QTENSOR_END_NAMESPACE
