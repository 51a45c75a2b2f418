// qtensor/kernels/matmul.hpp: dot products, GEMV and GEMM of quantized or
// float weights with activations, within stated error budgets of the exact sum.
//
//   gemm(w, x, y):  y[t, r] = W[r, :] . x[t, :]  for W [rows, cols],
//                   x [T, cols] (f32), y [T, rows];
//   gemv(w, x, y):  the same with T = 1: x [cols] -> y [rows].
//
// The weights w are a GGUF-layout matrix as tensor<S, 2>, tensor_view<S, 2>
// or tensor_view<const S, 2> (gemm_weight), or interleaved<S> (below).
// gemm and gemv check every size (checks.hpp); kernels::unchecked::gemm takes
// raw pointers and T instead.
//
// Quantized weights meet activations quantized to their dot partner (Q4_0
// and Q8_0 with Q8_0, the K-quants Q2_K to Q6_K and TQ2_0 with Q8_K), as ggml's mul_mat does; float weights
// (f32, bf16) meet the f32 activations directly. Work is split over weight
// rows into tasks of whole 16-row groups, run by a caller-given executor
// (executor.hpp); each output is computed by one task from its own row and
// token alone, so results are bit-identical for every thread count.
//
// Error budgets, against the exact sum of the products of the dequantized
// values (each case below includes the scalar reference):
//   - dot_q4_0_q8_0, dot_q8_0_q8_0, and every Q4_0/Q8_0 gemm output (plain or
//     interleaved): |got - exact| <= (n/32 + 17) * 2^-24 * sum_i |w_i a_i|.
//     Each block's integer sum is exact and dw * da (two fp16) is exact in
//     fp32, so the error is one rounding per block term, the sum of at most
//     n/32 terms per lane, and a horizontal sum of at most 16 lanes.
//   - dot_q2_k_q8_k and the gemm outputs of every K-quant (Q2_K to Q6_K) and
//     of TQ2_0 (s_j = 1):
//     |got - exact| <= (n/256 + 24) * 2^-24 * sum_i (|d s_j c_i| + |dmin m_j|) |a_i|,
//     c_i the code less the offset of Q3_K (4), Q6_K (32) and TQ2_0 (1), m_j = 0 there:
//     in the schemes with mins the scale and min terms are rounded separately
//     (d * da, dmin * da, two products, one difference per block) before they
//     cancel, so the bound is relative to both parts, not to |w_i|; in Q3_K,
//     Q6_K and TQ2_0 it is relative to sum_i |w_i a_i|.
//   - dot_f32_f32, dot_bf16_f32 and their gemm outputs (bf16 widens exactly):
//     |got - exact| <= (n + 1) * 2^-24 * sum_i |w_i a_i|, which any summation
//     order meets; the SIMD targets sum n / (2N) terms per lane, far less.
//
// Layouts: from T = 4 tokens on, GGUF-layout rows are regrouped into the
// interleaved layout and run its kernel, so the two layouts give the same
// outputs bit for bit. Below that (GEMV) the GGUF layout has a kernel of its
// own that reads the rows in place (regrouping would add a pass over the
// weights, the whole cost of a GEMV) and rounds in another order: on every
// instruction set of 4 lanes or more it splits each block's integer sum over
// 4 lanes, each scaled and summed on its own, where the interleaved kernel
// scales the block's sum whole. So for T < 4 the promise is the budget above,
// for each layout (twice it between them), not bit identity: at 2048 x 4096,
// T = 1, 1840 to 1870 of the 2048 Q4_0 and Q8_0 outputs differ, by at most
// 0.023 of the budget (one-lane targets, which interleave first, agree).
// Identical results at T < 4 would need the same order in both kernels, not a
// free change.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "qtensor/core/aligned_buffer.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/kernels/backend.hpp"
#include "qtensor/kernels/checks.hpp"
#include "qtensor/kernels/executor.hpp"
#include "qtensor/kernels/quant.hpp"
#include "qtensor/kernels/reference/matmul.hpp"
#include "qtensor/scheme/float.hpp"
#include "qtensor/scheme/tq2_0.hpp"
#include "qtensor/scheme/q2_k.hpp"
#include "qtensor/scheme/q4_0.hpp"
#include "qtensor/scheme/q8_0.hpp"
#include "qtensor/scheme/q8_k.hpp"
#include "qtensor/scheme/registry.hpp"
#include "qtensor/tensor/tensor.hpp"
#include "qtensor/tensor/tensor_view.hpp"

QTENSOR_KERNELS_BEGIN_NAMESPACE

// ---- row dots ------------------------------------------------------------------

namespace unchecked {

// w[n / 32] . a[n / 32].
inline float dot_q4_0_q8_0(const block_q4_0* w, const block_q8_0* a, std::size_t n,
                           target t = target::best()) {
    blocks_per_row<q4_0>(n);
    return detail::backend::dot_q4_0_q8_0(t, w, a, n);
}

inline float dot_q8_0_q8_0(const block_q8_0* w, const block_q8_0* a, std::size_t n,
                           target t = target::best()) {
    blocks_per_row<q8_0>(n);
    return detail::backend::dot_q8_0_q8_0(t, w, a, n);
}

// w[n / 256] . a[n / 256].
inline float dot_q2_k_q8_k(const block_q2_k* w, const block_q8_k* a, std::size_t n,
                           target t = target::best()) {
    blocks_per_row<q2_k>(n);
    return detail::backend::dot_q2_k_q8_k(t, w, a, n);
}

// w[n] . a[n], any n.
inline float dot_bf16_f32(const bf16_t* w, const float* a, std::size_t n, target t = target::best()) {
    return detail::backend::dot_bf16_f32(t, w, a, n);
}

inline float dot_f32_f32(const float* w, const float* a, std::size_t n, target t = target::best()) {
    return detail::backend::dot_f32_f32(t, w, a, n);
}

} // namespace unchecked

namespace detail {

// w[n / block] . a[n / block] through the unchecked kernel `dot`, after
// checking that both hold the same number of elements.
template <class S, class P, class Dot>
float checked_dot(std::string_view fn, std::span<const block_of<S>> w, std::span<const block_of<P>> a, target t,
                  Dot dot) {
    const std::size_t n = w.size() * S::block_elems;
    check_size(fn, {"a", a.size() * P::block_elems}, n, {"w", n});
    return dot(w.data(), a.data(), n, t);
}

} // namespace detail

// w[n / 32] . a[n / 32], w[n / 256] . a[n / 256], w[n] . a[n]: the unchecked
// kernels, after checking that w and a hold the same number of elements.
inline float dot_q4_0_q8_0(std::span<const block_q4_0> w, std::span<const block_q8_0> a,
                           target t = target::best()) {
    return detail::checked_dot<q4_0, q8_0>("dot_q4_0_q8_0", w, a, t, unchecked::dot_q4_0_q8_0);
}
inline float dot_q8_0_q8_0(std::span<const block_q8_0> w, std::span<const block_q8_0> a,
                           target t = target::best()) {
    return detail::checked_dot<q8_0, q8_0>("dot_q8_0_q8_0", w, a, t, unchecked::dot_q8_0_q8_0);
}
inline float dot_q2_k_q8_k(std::span<const block_q2_k> w, std::span<const block_q8_k> a,
                           target t = target::best()) {
    return detail::checked_dot<q2_k, q8_k>("dot_q2_k_q8_k", w, a, t, unchecked::dot_q2_k_q8_k);
}
inline float dot_bf16_f32(std::span<const bf16_t> w, std::span<const float> a, target t = target::best()) {
    return detail::checked_dot<bf16, f32>("dot_bf16_f32", w, a, t, unchecked::dot_bf16_f32);
}
inline float dot_f32_f32(std::span<const float> w, std::span<const float> a, target t = target::best()) {
    return detail::checked_dot<f32, f32>("dot_f32_f32", w, a, t, unchecked::dot_f32_f32);
}

// ---- schemes gemm accepts --------------------------------------------------------

// Those registry.hpp gives simd_kernels::gemm (detail::matmul_kernel below).
template <class S>
concept gemm_scheme = registered_scheme<S> && has_kernels(simd_kernels_of<S>, simd_kernels::gemm);

template <class S>
concept gemm_quantized_scheme = gemm_scheme<S> && has_dot_partner<S>;

namespace detail {
template <class S>
struct has_gemm : std::bool_constant<gemm_scheme<S>> {};
} // namespace detail

// The schemes with gemm kernels, as a scheme_list.
using gemm_scheme_list = all_schemes::filter<detail::has_gemm>;

// Whether file type t is a scheme with gemm kernels (a model can run it in place).
constexpr bool has_gemm_kernels(ggml_type t) noexcept {
    return gemm_scheme_list::visit_if([t](auto s) { return decltype(s)::type_id == t; }, [](auto) {});
}

// A GGUF-layout weight matrix gemm accepts, in any of its three forms.
template <class W>
concept gemm_weight = weight_like<W> && gemm_scheme<viewed_scheme_t<W>>;

// The schemes that have an interleaved layout (simd_kernels::interleaved).
template <class S>
concept interleavable_scheme = registered_scheme<S> && has_kernels(simd_kernels_of<S>, simd_kernels::interleaved);

namespace detail {

// The backend's matmul kernels, by scheme: rows() on the GGUF layout, x16()
// on the interleaved one. One entry per scheme with a gemm flag, and x16()
// exactly for those with an interleaved flag.
template <class S>
struct matmul_kernel {};
template <>
struct matmul_kernel<q4_0> {
    static void rows(target t, weight_rows w, q8_0_rows a, output_rows y) { backend::matmul_q4_0(t, w, a, y); }
    static void x16(target t, interleaved_rows w, q8_0_rows a, output_rows y) {
        backend::matmul_q4_0x16(t, w, a, y);
    }
};
template <>
struct matmul_kernel<q8_0> {
    static void rows(target t, weight_rows w, q8_0_rows a, output_rows y) { backend::matmul_q8_0(t, w, a, y); }
    static void x16(target t, interleaved_rows w, q8_0_rows a, output_rows y) {
        backend::matmul_q8_0x16(t, w, a, y);
    }
};
#define QTENSOR_K_QUANT_KERNEL(S)                                                                          \
    template <>                                                                                            \
    struct matmul_kernel<S> {                                                                              \
        static void rows(target t, weight_rows w, q8_k_rows a, output_rows y) { backend::matmul_##S(t, w, a, y); } \
    };
QTENSOR_K_QUANT_KERNEL(tq2_0)
QTENSOR_K_QUANT_KERNEL(q2_k)
QTENSOR_K_QUANT_KERNEL(q3_k)
QTENSOR_K_QUANT_KERNEL(q4_k)
QTENSOR_K_QUANT_KERNEL(q5_k)
QTENSOR_K_QUANT_KERNEL(q6_k)
#undef QTENSOR_K_QUANT_KERNEL
template <>
struct matmul_kernel<f32> {
    static void rows(target t, weight_rows w, f32_rows a, output_rows y) { backend::matmul_f32(t, w, a, y); }
};
template <>
struct matmul_kernel<bf16> {
    static void rows(target t, weight_rows w, f32_rows a, output_rows y) { backend::matmul_bf16(t, w, a, y); }
};

constexpr bool matmul_kernels_match_registry() {
    bool ok = true;
    for_each_scheme([&](auto s) {
        using S = decltype(s);
        ok = ok && has_kernels(simd_kernels_of<S>, simd_kernels::gemm) == requires { &matmul_kernel<S>::rows; } &&
             has_kernels(simd_kernels_of<S>, simd_kernels::interleaved) == requires { &matmul_kernel<S>::x16; };
    });
    return ok;
}
static_assert(matmul_kernels_match_registry(),
              "registry.hpp's simd_kernels flags and kernels::detail::matmul_kernel disagree for some scheme");

} // namespace detail

// ---- interleaved weights ------------------------------------------------------------

// A [rows, cols] Q4_0 or Q8_0 matrix in the interleaved layout described in
// reference/matmul.hpp: groups of 16 rows whose blocks are interleaved 4 bytes
// at a time, with their scales apart. gemm on it runs the arithmetic that the
// GGUF layout runs from 4 tokens on (the same results, bit for bit; within
// the budget below that, as the top of this file says) without regrouping
// rows on every call. The last group is padded with zero rows when rows is not
// a multiple of 16; the padding is never read back into a row or an output.
// Build it once, at load time; it owns its (64-byte aligned) memory.
template <interleavable_scheme S>
class interleaved {
public:
    using scheme_type = S;
    static constexpr std::size_t group_rows = interleave_rows;

    interleaved() = default;

    // From a GGUF-layout matrix (any row stride, any of the three forms).
    // Groups are converted as tasks of `ex`.
    template <weight_like W>
        requires std::same_as<viewed_scheme_t<W>, S>
    explicit interleaved(const W& weights, const executor& ex = {})
        : interleaved(as_const_view(weights), ex) {}

    // `done`, if given, is called with the bytes of each slab of rows once
    // they are copied (slabs of slab_rows), so a caller can let go of a
    // memory-mapped matrix's pages as the copy grows, not after it.
    explicit interleaved(tensor_view<const S, 2> w, const executor& ex = {},
                         const std::function<void(std::span<const std::byte>)>& done = {})
        : rows_(w.num_rows()), cols_(w.cols()), group_bytes_(interleaved_group_bytes<S>(w.blocks_per_row())),
          data_(groups() * group_bytes_) {
        const std::size_t nb = w.blocks_per_row();
        for (std::size_t g0 = 0; g0 < groups(); g0 += slab_rows / group_rows) {
            const std::size_t g1 = std::min(groups(), g0 + slab_rows / group_rows);
            ex.run(g1 - g0, [&](std::size_t i) {
                const std::size_t g = g0 + i;
                const block_of<S>* rows[group_rows];
                const std::size_t count = std::min(group_rows, rows_ - g * group_rows);
                for (std::size_t r = 0; r < count; ++r) rows[r] = w.blocks(g * group_rows + r).data();
                reference::interleave_group<S>(rows, count, nb, data_.data() + g * group_bytes_);
            });
            if (done) done(rows_bytes(w, g0 * group_rows, std::min(rows_, g1 * group_rows)));
        }
        // Once more whole: a page that two slabs share is in neither's whole pages.
        if (done && groups() > slab_rows / group_rows) done(rows_bytes(w, 0, rows_));
    }

    static constexpr std::size_t slab_rows = 4096;

private:
    // The bytes of rows [r0, r1) of w, from the first row's start to the last row's end.
    static std::span<const std::byte> rows_bytes(const tensor_view<const S, 2>& w, std::size_t r0, std::size_t r1) {
        return {reinterpret_cast<const std::byte*>(w.blocks(r0).data()),
                (r1 - r0 - 1) * w.row_stride_bytes() + w.blocks_per_row() * sizeof(block_of<S>)};
    }

public:

    std::size_t rows() const noexcept { return rows_; }
    std::size_t cols() const noexcept { return cols_; }
    std::size_t groups() const noexcept { return (rows_ + group_rows - 1) / group_rows; }
    std::size_t group_bytes() const noexcept { return group_bytes_; }
    const std::byte* data() const noexcept { return data_.data(); }
    std::size_t size_bytes() const noexcept { return data_.size(); }

    // Back to the GGUF layout, bit for bit: `out` is [rows, cols] (any row stride).
    void copy_to(tensor_view<S, 2> out) const {
        if (out.num_rows() != rows_ || out.cols() != cols_)
            throw error("interleaved<" + std::string(S::name) + ">::copy_to: the output has shape " +
                        out.extents().to_string() + ", expected [" + std::to_string(rows_) + ", " +
                        std::to_string(cols_) + "]");
        for (std::size_t r = 0; r < rows_; ++r)
            reference::deinterleave_row<S>(data_.data() + r / group_rows * group_bytes_, r % group_rows,
                                           out.blocks_per_row(), out.blocks(r).data());
    }

private:
    std::size_t rows_ = 0;
    std::size_t cols_ = 0;
    std::size_t group_bytes_ = 0;
    aligned_buffer data_;
};

namespace detail {

// Splits `rows` into at most ex.concurrency() tasks of whole 16-row groups
// (also whole 64-byte lines of outputs) and runs f(first_row, row_count).
template <class F>
void for_row_chunks(std::size_t rows, const executor& ex, F&& f) {
    const std::size_t groups = (rows + interleave_rows - 1) / interleave_rows;
    const std::size_t tasks = std::min(ex.concurrency(), groups);
    ex.run(tasks, [&](std::size_t i) {
        const std::size_t g0 = groups * i / tasks, g1 = groups * (i + 1) / tasks;
        const std::size_t r0 = g0 * interleave_rows, r1 = std::min(rows, g1 * interleave_rows);
        if (r1 > r0) f(r0, r1 - r0);
    });
}

// Q8_0 activation rows with their per-block fp32 scales and code sums.
struct q8_0_prepared {
    std::vector<float> scales;
    std::vector<std::int32_t> sums;
    q8_0_rows rows;

    q8_0_prepared(const block_q8_0* a, std::size_t n, std::size_t T)
        : scales(T * (n / 32)), sums(T * (n / 32)), rows{a, scales.data(), sums.data(), n, T} {
        for (std::size_t b = 0; b < scales.size(); ++b) {
            scales[b] = fp16_to_fp32(a[b].d);
            std::int32_t s = 0;
            for (const std::int8_t q : a[b].qs) s += q;
            sums[b] = s;
        }
    }
};

// x[T, n] -> Q8_0 or Q8_K rows [T, n / block], bit for bit the reference
// quantizer; rows are quantized as tasks of `ex`.
template <class P>
std::vector<block_of<P>> quantize_activations(const float* x, std::size_t n, std::size_t T, const executor& ex,
                                              target t) {
    static_assert(has_kernels(simd_kernels_of<P>, simd_kernels::quantize), "a gemm partner needs a quantize kernel");
    const std::size_t nb = blocks_per_row<P>(n);
    std::vector<block_of<P>> a(T * nb);
    const std::size_t tasks = std::min(T, ex.concurrency());
    ex.run(tasks, [&](std::size_t i) {
        for (std::size_t r = T * i / tasks; r < T * (i + 1) / tasks; ++r)
            unchecked::quantize_row<P>(x + r * n, a.data() + r * nb, n, t);
    });
    return a;
}

template <class W>
inline constexpr bool is_interleaved = false;
template <class S>
inline constexpr bool is_interleaved<interleaved<S>> = true;

} // namespace detail

// ---- gemm and gemv ----------------------------------------------------------------

// What gemm and gemv accept as weights.
template <class W>
concept matmul_weight = gemm_weight<W> || detail::is_interleaved<W>;

// The blocks of activations quantized to W's dot partner.
template <matmul_weight W>
using partner_block_t = block_of<typename W::scheme_type::dot_partner>;

namespace unchecked {

// y[T, rows] = x[T, cols] . W^T, W = w [rows, cols] (GGUF layout, any row
// stride), with activations already quantized to S's dot partner:
// a[T, cols / partner block]. Q8_0 activation codes must be in [-127, 127]
// (what the Q8_0 quantizer writes): without AVX-512 VNNI the kernels multiply
// Q8_0 weights by the sign trick, which cannot negate -128. (dot_q8_0_q8_0
// takes any codes.)
template <gemm_weight W, class S = viewed_scheme_t<W>>
    requires gemm_quantized_scheme<S>
void gemm(const W& weights, const partner_block_t<W>* a, std::size_t T, float* y, const executor& ex = {},
          target t = target::best()) {
    const tensor_view<const S, 2> w = as_const_view(weights);
    const std::size_t rows = w.num_rows(), n = w.cols();
    if (T == 0 || rows == 0) return;
    const auto bytes = [&](std::size_t r0) { return w.data_handle() + r0 * w.row_stride_bytes(); };
    if constexpr (std::same_as<typename S::dot_partner, q8_k>) {
        detail::for_row_chunks(rows, ex, [&](std::size_t r0, std::size_t count) {
            detail::matmul_kernel<S>::rows(t, weight_rows{bytes(r0), w.row_stride_bytes(), count},
                                           q8_k_rows{a, n, T}, output_rows{y + r0, rows});
        });
    } else {
        static_assert(std::same_as<typename S::dot_partner, q8_0>);
        const detail::q8_0_prepared act(a, n, T);
        detail::for_row_chunks(rows, ex, [&](std::size_t r0, std::size_t count) {
            detail::matmul_kernel<S>::rows(t, weight_rows{bytes(r0), w.row_stride_bytes(), count}, act.rows,
                                           output_rows{y + r0, rows});
        });
    }
}

// y[T, rows] = x[T, cols] . W^T from float activations x[T, cols]: quantized
// first (quantized S: kernels::quantize_q8_0 / quantize_q8_k, bit for bit the
// partner's reference quantizer), or used as they are (f32, bf16).
template <gemm_weight W, class S = viewed_scheme_t<W>>
void gemm(const W& weights, const float* x, std::size_t T, float* y, const executor& ex = {},
          target t = target::best()) {
    const tensor_view<const S, 2> w = as_const_view(weights);
    const std::size_t rows = w.num_rows(), n = w.cols();
    if (T == 0 || rows == 0) return;
    if constexpr (gemm_quantized_scheme<S>) {
        const auto a = detail::quantize_activations<typename S::dot_partner>(x, n, T, ex, t);
        gemm(w, a.data(), T, y, ex, t);
    } else {
        detail::for_row_chunks(rows, ex, [&](std::size_t r0, std::size_t count) {
            const weight_rows wr{w.data_handle() + r0 * w.row_stride_bytes(), w.row_stride_bytes(), count};
            detail::matmul_kernel<S>::rows(t, wr, f32_rows{x, n, T}, output_rows{y + r0, rows});
        });
    }
}

// The same on interleaved weights (the same results as on the GGUF layout
// from T = 4 on; within the budget below that, see the top of this file).
template <interleavable_scheme S>
void gemm(const interleaved<S>& w, const block_q8_0* a, std::size_t T, float* y, const executor& ex = {},
          target t = target::best()) {
    const std::size_t rows = w.rows();
    if (T == 0 || rows == 0) return;
    const detail::q8_0_prepared act(a, w.cols(), T);
    detail::for_row_chunks(rows, ex, [&](std::size_t r0, std::size_t count) {
        const interleaved_rows wr{w.data() + r0 / interleave_rows * w.group_bytes(), w.group_bytes(), count};
        detail::matmul_kernel<S>::x16(t, wr, act.rows, output_rows{y + r0, rows});
    });
}

template <interleavable_scheme S>
void gemm(const interleaved<S>& w, const float* x, std::size_t T, float* y, const executor& ex = {},
          target t = target::best()) {
    if (T == 0 || w.rows() == 0) return;
    const auto a = detail::quantize_activations<q8_0>(x, w.cols(), T, ex, t);
    gemm(w, a.data(), T, y, ex, t);
}

} // namespace unchecked

namespace detail {

template <class S>
std::size_t rows_of_weight(const interleaved<S>& w) {
    return w.rows();
}
template <weight_like W>
std::size_t rows_of_weight(const W& w) {
    return w.num_rows();
}

// T of activations x[T, cols] (x counted in `per_row` units per row: floats
// or partner blocks) after checking them and y[T, rows]; a gemv has T = 1.
template <matmul_weight W>
std::size_t checked_tokens(bool gemv, const W& w, const sized& x, std::size_t per_row, std::size_t y) {
    const std::string fn = (gemv ? "gemv<" : "gemm<") + std::string(W::scheme_type::name) + ">";
    const std::size_t rows = rows_of_weight(w);
    if (gemv) check_size(fn, x, per_row, {"w", w.cols(), "columns"});
    const std::size_t T = gemv ? 1 : rows_of(fn, x, per_row);
    check_size(fn, {"y", y}, T * rows, gemv ? sized{"w", rows, "rows"} : x);
    return T;
}

template <matmul_weight W>
std::size_t partner_blocks_per_row(const W& w) {
    return w.cols() / W::scheme_type::dot_partner::block_elems;
}

} // namespace detail

// x[T, cols] -> y[T, rows] = x W^T. w: tensor<S, 2>, tensor_view<S, 2>,
// tensor_view<const S, 2> or interleaved<S>.
template <matmul_weight W>
void gemm(const W& w, std::span<const float> x, std::span<float> y, const executor& ex = {},
          target t = target::best()) {
    const std::size_t T = detail::checked_tokens(false, w, {"x", x.size()}, w.cols(), y.size());
    unchecked::gemm(w, x.data(), T, y.data(), ex, t);
}

// The same from activations already quantized to the dot partner:
// a[T, cols / partner block] (the codes in [-127, 127], as unchecked::gemm says).
template <matmul_weight W>
void gemm(const W& w, std::span<const partner_block_t<W>> a, std::span<float> y, const executor& ex = {},
          target t = target::best()) {
    const std::size_t T =
        detail::checked_tokens(false, w, {"a", a.size(), "blocks"}, detail::partner_blocks_per_row(w), y.size());
    unchecked::gemm(w, a.data(), T, y.data(), ex, t);
}

// x[cols] -> y[rows] = W x: gemm with T = 1, for any weights gemm takes.
template <matmul_weight W>
void gemv(const W& w, std::span<const float> x, std::span<float> y, const executor& ex = {},
          target t = target::best()) {
    detail::checked_tokens(true, w, {"x", x.size()}, w.cols(), y.size());
    unchecked::gemm(w, x.data(), 1, y.data(), ex, t);
}

// a[cols / partner block] -> y[rows].
template <matmul_weight W>
void gemv(const W& w, std::span<const partner_block_t<W>> a, std::span<float> y, const executor& ex = {},
          target t = target::best()) {
    detail::checked_tokens(true, w, {"a", a.size(), "blocks"}, detail::partner_blocks_per_row(w), y.size());
    unchecked::gemm(w, a.data(), 1, y.data(), ex, t);
}

QTENSOR_KERNELS_END_NAMESPACE
