// qtensor/kernels/matmul.hpp: dot products, GEMV and GEMM of quantized or
// float weights with activations, within stated error budgets of the exact sum.
//
//   gemm(w, x, T, y):  y[t, r] = W[r, :] . x[t, :]  for W [rows, cols],
//                      x [T, cols] (f32), y [T, rows]; T == 1 is a GEMV.
//
// Quantized weights meet activations quantized to their dot partner (Q4_0
// and Q8_0 with Q8_0, Q2_K with Q8_K), as ggml's mul_mat does; float weights
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
//   - dot_q2_k_q8_k and Q2_K gemm outputs: |got - exact| <=
//     (n/256 + 24) * 2^-24 * sum_i (|d s_j q_i| + |dmin m_j|) |a_i|: the scale
//     and min terms are rounded separately (d * da, dmin * da, two products,
//     one difference per block) before they cancel, so the bound is relative
//     to both parts, not to |w_i|.
//   - dot_f32_f32, dot_bf16_f32 and their gemm outputs (bf16 widens exactly):
//     |got - exact| <= (n + 1) * 2^-24 * sum_i |w_i a_i|, which any summation
//     order meets; the SIMD targets sum n / (2N) terms per lane, far less.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "qtensor/core/aligned_buffer.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/kernels/backend.hpp"
#include "qtensor/kernels/executor.hpp"
#include "qtensor/kernels/quant.hpp"
#include "qtensor/kernels/reference/matmul.hpp"
#include "qtensor/scheme/float.hpp"
#include "qtensor/scheme/q2_k.hpp"
#include "qtensor/scheme/q4_0.hpp"
#include "qtensor/scheme/q8_0.hpp"
#include "qtensor/scheme/q8_k.hpp"
#include "qtensor/scheme/registry.hpp"
#include "qtensor/tensor/tensor_view.hpp"

QTENSOR_KERNELS_BEGIN_NAMESPACE

// ---- row dots ------------------------------------------------------------------

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

// ---- schemes gemm accepts --------------------------------------------------------

// Those registry.hpp gives simd_kernels::gemm (detail::matmul_kernel below).
template <class S>
concept gemm_scheme = registered_scheme<S> && has_kernels(simd_kernels_of<S>, simd_kernels::gemm);

template <class S>
concept gemm_quantized_scheme = gemm_scheme<S> && has_dot_partner<S>;

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
template <>
struct matmul_kernel<q2_k> {
    static void rows(target t, weight_rows w, q8_k_rows a, output_rows y) { backend::matmul_q2_k(t, w, a, y); }
};
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
// at a time, with their scales apart. gemm on it runs the same arithmetic as
// on the GGUF layout (so the same results, bit for bit) without regrouping
// rows on every call. The last group is padded with zero rows when rows is not
// a multiple of 16; the padding is never read back into a row or an output.
// Build it once, at load time; it owns its (64-byte aligned) memory.
template <interleavable_scheme S>
class interleaved {
public:
    static constexpr std::size_t group_rows = interleave_rows;

    interleaved() = default;

    // From a GGUF-layout matrix (any row stride). Groups are converted as
    // tasks of `ex`.
    template <class V>
        requires std::same_as<std::remove_const_t<V>, S>
    explicit interleaved(tensor_view<V, 2> w, const executor& ex = {})
        : rows_(w.num_rows()), cols_(w.cols()), group_bytes_(interleaved_group_bytes<S>(w.blocks_per_row())),
          data_(groups() * group_bytes_) {
        const std::size_t nb = w.blocks_per_row();
        ex.run(groups(), [&](std::size_t g) {
            const block_of<S>* rows[group_rows];
            const std::size_t count = std::min(group_rows, rows_ - g * group_rows);
            for (std::size_t i = 0; i < count; ++i) rows[i] = w.blocks(g * group_rows + i).data();
            reference::interleave_group<S>(rows, count, nb, data_.data() + g * group_bytes_);
        });
    }

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

template <class S>
std::string gemm_name() {
    return "kernels::gemm<" + std::string(S::name) + ">";
}

inline void check_gemm_args(const std::string& name, const void* x, std::size_t T, const float* y) {
    if (T != 0 && x == nullptr) throw error(name + ": the activations are null");
    if (T != 0 && y == nullptr) throw error(name + ": the output is null");
}

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
            quantize_row<P>(x + r * n, a.data() + r * nb, n, t);
    });
    return a;
}

} // namespace detail

// ---- gemm ----------------------------------------------------------------------------

// y[T, rows] = x[T, cols] . W^T, W = w [rows, cols] (GGUF layout, any row
// stride), with activations already quantized to S's dot partner:
// a[T, cols / partner block]. Q8_0 activation codes must be in [-127, 127]
// (what the Q8_0 quantizer writes): CPUs without AVX-512 VNNI multiply Q8_0
// weights by the sign trick, which cannot negate -128.
template <class V, class S = std::remove_const_t<V>>
    requires gemm_quantized_scheme<S>
void gemm(tensor_view<V, 2> w, const block_of<typename S::dot_partner>* a, std::size_t T, float* y,
          const executor& ex = {}, target t = target::best()) {
    detail::check_gemm_args(detail::gemm_name<S>(), a, T, y);
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
template <class V, class S = std::remove_const_t<V>>
    requires gemm_scheme<S>
void gemm(tensor_view<V, 2> w, const float* x, std::size_t T, float* y, const executor& ex = {},
          target t = target::best()) {
    detail::check_gemm_args(detail::gemm_name<S>(), x, T, y);
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

// The same on interleaved weights: the same results as on the GGUF layout.
template <interleavable_scheme S>
void gemm(const interleaved<S>& w, const block_q8_0* a, std::size_t T, float* y, const executor& ex = {},
          target t = target::best()) {
    detail::check_gemm_args(detail::gemm_name<S>(), a, T, y);
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
    detail::check_gemm_args(detail::gemm_name<S>(), x, T, y);
    if (T == 0 || w.rows() == 0) return;
    const auto a = detail::quantize_activations<q8_0>(x, w.cols(), T, ex, t);
    gemm(w, a.data(), T, y, ex, t);
}

QTENSOR_KERNELS_END_NAMESPACE
