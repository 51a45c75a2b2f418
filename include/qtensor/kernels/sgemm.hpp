// qtensor/kernels/sgemm.hpp: single-precision GEMM on row-major matrices,
//
//   C[M, N] = alpha op(A)[M, K] op(B)[K, N] + beta C,   op(X) = X or X^T,
//
// the one kernel behind a linear layer's three products. For y[T, rows] =
// x[T, cols] W^T with W [rows, cols]:
//   forward  y  = x W^T:    sgemm(1, x, transposed(W), 0, y)
//   dX       dx = dy W:     sgemm(1, dy, W, 0, dx)
//   dW       dW += dy^T x:  sgemm(1, transposed(dy), x, 1, dW)
//
// The kernel (detail/generic/sgemm-inl.hpp) packs panels of A and B, blocked
// for the caches, into buffers it allocates per call, and runs a register-
// blocked tile of FMAs; the parallel form splits C into row or column pieces
// as tasks of the executor. Each output's arithmetic depends on K alone, so
// results are bit-identical for every thread count and piece.
//
// BLAS's rules: where beta == 0, C is only written (NaN or garbage in C does
// not survive); where alpha == 0 or K == 0, A and B are not read and C = beta C.
//
// Error budget, against the exact alpha sum_k op(A)_ik op(B)_kj + beta c_ij,
// with u = 2^-24, gamma_d = d u / (1 - d u) and
// mag_ij = |alpha| sum_k |op(A)_ik op(B)_kj| + |beta c_ij|:
//   |got - exact| <= gamma_d mag_ij,  d = min(K, KC) + ceil(K / KC) + 1.
// Each output sums K blocks of at most KC = sgemm_k_block = 384 terms in one
// FMA chain each (at most min(K, KC) roundings for a term, fused or not),
// merges the first into C with 1 rounding (2 where alpha acc + beta c does
// not fuse) and each later block with 1 more: a term of block 1 of B blocks
// goes through at most min(K, KC) + 2 + (B - 1). The scalar reference
// (reference::sgemm, one sequential f32 sum) has d = K + 2; from K > KC on
// the kernel's bound is the smaller one.
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "qtensor/core/error.hpp"
#include "qtensor/kernels/backend.hpp"
#include "qtensor/kernels/checks.hpp"
#include "qtensor/kernels/executor.hpp"
#include "qtensor/kernels/reference/matmul.hpp"

QTENSOR_KERNELS_BEGIN_NAMESPACE

// A row-major float matrix as an sgemm operand: the stored matrix [rows,
// cols] has row i at data[i * ld] (ld >= cols; 0 means cols), and the operand
// is that matrix, or its transpose [cols, rows] where `transposed`. T is
// const float for A and B, float for C.
template <class T>
struct matrix_ref {
    std::span<T> data;
    std::size_t rows = 0;
    std::size_t cols = 0;
    std::size_t ld = 0;
    bool transposed = false;

    std::size_t stride() const noexcept { return ld == 0 ? cols : ld; }
    // op()'s shape.
    std::size_t op_rows() const noexcept { return transposed ? cols : rows; }
    std::size_t op_cols() const noexcept { return transposed ? rows : cols; }
};

// The same matrix as its transpose operand.
template <class T>
matrix_ref<T> transposed(matrix_ref<T> m) noexcept {
    m.transposed = !m.transposed;
    return m;
}

namespace unchecked {

// sgemm_args (reference/matmul.hpp) on one thread.
inline void sgemm(const sgemm_args& g, target t = target::best()) { detail::backend::sgemm(t, g); }

} // namespace unchecked

namespace detail {

// The stored matrix's extent in floats, after checking ld and data.size().
template <class T>
std::size_t checked_extent(std::string_view name, const matrix_ref<T>& m) {
    const std::string fn = "kernels::sgemm: " + std::string(name);
    if (m.stride() < m.cols)
        throw error(fn + " has ld " + std::to_string(m.ld) + " < cols " + std::to_string(m.cols));
    if (m.rows == 0 || m.cols == 0) return 0;
    if (m.data.size() < m.cols || m.rows - 1 > (m.data.size() - m.cols) / m.stride())
        throw error(fn + " [" + std::to_string(m.rows) + ", " + std::to_string(m.cols) + "] with ld " +
                    std::to_string(m.stride()) + " needs " + std::to_string(m.rows - 1) + " * " +
                    std::to_string(m.stride()) + " + " + std::to_string(m.cols) + " floats, data has " +
                    std::to_string(m.data.size()));
    return (m.rows - 1) * m.stride() + m.cols;
}

inline bool overlap(const float* a, std::size_t na, const float* b, std::size_t nb) {
    const std::less<const float*> before;
    return na != 0 && nb != 0 && before(a, b + nb) && before(b, a + na);
}

inline f32_operand operand_of(const matrix_ref<const float>& m) {
    return {m.data.data(), m.stride(), m.transposed};
}

// Rows [i0, i1) of C (and of op(A)), or columns [j0, j1) (and of op(B)).
inline sgemm_args rows_of_c(sgemm_args g, std::size_t i0, std::size_t i1) {
    g.a.data += g.a.transposed ? i0 : i0 * g.a.ld;
    g.c += i0 * g.ldc;
    g.m = i1 - i0;
    return g;
}
inline sgemm_args cols_of_c(sgemm_args g, std::size_t j0, std::size_t j1) {
    g.b.data += g.b.transposed ? j0 * g.b.ld : j0;
    g.c += j0;
    g.n = j1 - j0;
    return g;
}

} // namespace detail

// C = alpha op(A) op(B) + beta C (top of this file), after checking that
// op(A) is [M, K], op(B) [K, N] and C [M, N] (C may be transposed too), that
// each span holds its matrix and that C shares no memory with A or B. Work is
// split over C's rows (in pieces of 48) or columns (of 64), the longer way,
// into at most ex.concurrency() tasks.
inline void sgemm(float alpha, matrix_ref<const float> a, matrix_ref<const float> b, float beta, matrix_ref<float> c,
                  const executor& ex = {}, target t = target::best()) {
    const std::size_t na = detail::checked_extent("a", a), nb = detail::checked_extent("b", b),
                      nc = detail::checked_extent("c", c);
    detail::check_size("sgemm", {"op(b)", b.op_rows(), "rows"}, a.op_cols(), {"op(a)", a.op_cols(), "columns"});
    detail::check_size("sgemm", {"op(c)", c.op_rows(), "rows"}, a.op_rows(), {"op(a)", a.op_rows(), "rows"});
    detail::check_size("sgemm", {"op(c)", c.op_cols(), "columns"}, b.op_cols(), {"op(b)", b.op_cols(), "columns"});
    const float* cd = c.data.data();
    if (detail::overlap(cd, nc, a.data.data(), na) || detail::overlap(cd, nc, b.data.data(), nb))
        throw error("kernels::sgemm: c shares memory with a or b");
    // A transposed C is the stored [N, M] = op(B)^T op(A)^T.
    if (c.transposed) {
        std::swap(a, b);
        a = transposed(a);
        b = transposed(b);
    }
    const sgemm_args g{c.rows,
                       c.cols,
                       a.op_cols(),
                       alpha,
                       detail::operand_of(a),
                       detail::operand_of(b),
                       beta,
                       c.data.data(),
                       c.stride()};
    // Split the way that repacks less: by rows, each task packs all of op(B)
    // [K, N] again; by columns, all of op(A) [M, K].
    constexpr std::size_t row_grain = 48, col_grain = 64; // multiples of every target's tile
    const bool by_rows = g.m >= g.n;
    const std::size_t extent = by_rows ? g.m : g.n, grain = by_rows ? row_grain : col_grain;
    const std::size_t pieces = (extent + grain - 1) / grain, tasks = std::min(ex.concurrency(), pieces);
    ex.run(tasks, [&](std::size_t i) {
        const std::size_t begin = std::min(extent, pieces * i / tasks * grain);
        const std::size_t end = std::min(extent, pieces * (i + 1) / tasks * grain);
        if (end == begin) return;
        unchecked::sgemm(by_rows ? detail::rows_of_c(g, begin, end) : detail::cols_of_c(g, begin, end), t);
    });
}

QTENSOR_KERNELS_END_NAMESPACE
