// qtensor/kernels/reference/matmul.hpp: scalar reference of the matmul
// kernels, and the byte layout of interleaved ("repacked") weights.
//
// Every matmul kernel computes y[t, r] = W[r, :] . x[t, :] for a chunk of
// weight rows r and all tokens t. Quantized weights meet activations that
// were quantized to the scheme's dot partner (q4_0/q8_0 -> q8_0, q2_k .. q6_k -> q8_k),
// and each output is the scheme's own dot_row; float weights (f32, bf16) meet
// f32 activations in a plain loop. The SIMD kernels in matmul.hpp must stay
// within the error budgets stated there of the exact sum; these loops define
// what they compute and are the teaching path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "qtensor/core/config.hpp"
#include "qtensor/core/float_bits.hpp"
#include "qtensor/core/half.hpp"
#include "qtensor/scheme/q2_k.hpp"
#include "qtensor/scheme/q4_0.hpp"
#include "qtensor/scheme/q8_0.hpp"
#include "qtensor/scheme/q8_k.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace kernels {

// ---- kernel arguments -------------------------------------------------------

// A chunk of weight rows in GGUF layout: row r (r < rows) starts at
// data + r * stride_bytes and holds n / block_elems blocks back to back.
struct weight_rows {
    const std::byte* data;
    std::size_t stride_bytes;
    std::size_t rows;
};

// T activation rows of n elements, quantized to Q8_0: blocks[T, n / 32]; and
// per block, precomputed once per call: scales[T, n / 32] = fp32(d), and
// sums[T, n / 32] = the sum of its 32 codes. The SIMD kernels multiply
// unsigned weight codes by signed activation codes and take the weights'
// offset (8 for q4_0) back out through these sums.
struct q8_0_rows {
    const block_q8_0* blocks;
    const float* scales;
    const std::int32_t* sums;
    std::size_t n;
    std::size_t T;
};

// T activation rows of n elements quantized to Q8_K: blocks[T, n / 256].
struct q8_k_rows {
    const block_q8_k* blocks;
    std::size_t n;
    std::size_t T;
};

// T float activation rows: x[T, n], row t at x + t * n.
struct f32_rows {
    const float* x;
    std::size_t n;
    std::size_t T;
};

// Outputs: y[t, r] at data[t * stride + r].
struct output_rows {
    float* data;
    std::size_t stride;
};

// One operand of sgemm, op(X)[r, c], read from row-major storage with leading
// dimension ld: op(X)[r, c] = data[r * ld + c], or data[c * ld + r] when
// `transposed` (the stored matrix is then op(X)'s transpose).
struct f32_operand {
    const float* data;
    std::size_t ld;
    bool transposed;
};

// C[m, n] = alpha op(A)[m, k] op(B)[k, n] + beta C, C[i, j] at c[i * ldc + j].
// Where beta == 0, C is only written (BLAS's rule: NaN in C does not
// survive); where alpha == 0 or k == 0, A and B are not read.
struct sgemm_args {
    std::size_t m, n, k;
    float alpha;
    f32_operand a, b;
    float beta;
    float* c;
    std::size_t ldc;
};

// The SIMD sgemm's K block: each output is summed in chains of at most this
// many terms, the same on every target (sgemm.hpp's budget counts it).
inline constexpr std::size_t sgemm_k_block = 384;

// ---- interleaved layout ------------------------------------------------------
//
// Q4_0 and Q8_0 weights regrouped so that one SIMD register holds the same
// 4 bytes of 16 different rows, and one block step serves 16 outputs: scale
// conversion, the float multiply-add and the activation loads are shared by
// 16 rows instead of paid per row (docs/kernels.md, "Where the time goes").
//
// Rows are taken in groups of `interleave_rows` (16). Group g holds rows
// 16g .. 16g+15; a last group with fewer rows is padded with all-zero rows,
// whose outputs are never written. With QB code bytes per block (16 for Q4_0,
// 32 for Q8_0) and nb blocks per row, one group is, in bytes:
//
//   [0, nb * 16 * QB)            codes: block b at b * 16 * QB; inside it,
//                                 4-byte word c of row i at (c * 16 + i) * 4
//                                 (c < QB / 4, i < 16): word c of all 16 rows
//                                 is one 64-byte line
//   [nb * 16 * QB, + nb * 32)     scales: fp16 d of block b of row i at
//                                 (b * 16 + i) * 2
//   padding to a multiple of 64   so every group starts on a cache line
//
// Code bytes are copied unchanged (Q4_0 nibble order as in GGUF: low nibbles
// are elements 0..15, high nibbles 16..31), so the conversion back is exact.
inline constexpr std::size_t interleave_rows = 16;

template <class S>
constexpr std::size_t interleaved_code_bytes = S::block_bytes - sizeof(fp16_t);

template <class S>
constexpr std::size_t interleaved_group_bytes(std::size_t blocks) noexcept {
    const std::size_t raw = blocks * interleave_rows * (interleaved_code_bytes<S> + sizeof(fp16_t));
    return (raw + 63) / 64 * 64;
}

// A run of whole groups: data[groups * group_bytes]; `rows` of their
// groups * 16 rows are real (the rest is padding).
struct interleaved_rows {
    const std::byte* data;
    std::size_t group_bytes;
    std::size_t rows;
};

namespace reference {

using qtensor::detail::fmul;

// ---- interleave and back --------------------------------------------------------

// rows[count] (count <= 16, each nb blocks) -> one group at `group`; missing
// rows are zero.
template <class S>
void interleave_group(const block_of<S>* const* rows, std::size_t count, std::size_t blocks,
                      std::byte* group) noexcept {
    constexpr std::size_t qb = interleaved_code_bytes<S>;
    std::memset(group, 0, interleaved_group_bytes<S>(blocks));
    std::byte* scales = group + blocks * interleave_rows * qb;
    for (std::size_t i = 0; i < count; ++i)
        for (std::size_t b = 0; b < blocks; ++b) {
            const auto& blk = rows[i][b];
            for (std::size_t c = 0; c < qb / 4; ++c)
                std::memcpy(group + b * interleave_rows * qb + (c * interleave_rows + i) * 4,
                            blk.qs.data() + 4 * c, 4);
            std::memcpy(scales + (b * interleave_rows + i) * sizeof(fp16_t), &blk.d, sizeof(fp16_t));
        }
}

// Row i (< 16) of a group -> its nb blocks in GGUF layout.
template <class S>
void deinterleave_row(const std::byte* group, std::size_t i, std::size_t blocks,
                      block_of<S>* row) noexcept {
    constexpr std::size_t qb = interleaved_code_bytes<S>;
    const std::byte* scales = group + blocks * interleave_rows * qb;
    for (std::size_t b = 0; b < blocks; ++b) {
        for (std::size_t c = 0; c < qb / 4; ++c)
            std::memcpy(row[b].qs.data() + 4 * c,
                        group + b * interleave_rows * qb + (c * interleave_rows + i) * 4, 4);
        std::memcpy(&row[b].d, scales + (b * interleave_rows + i) * sizeof(fp16_t), sizeof(fp16_t));
    }
}

// ---- dots of float rows ---------------------------------------------------------

// sum_i w[i] * a[i], in order.
inline float dot_f32_f32(const float* w, const float* a, std::size_t n) noexcept {
    float sum = 0.0f;
    for (std::size_t i = 0; i < n; ++i) sum += fmul(w[i], a[i]);
    return sum;
}

inline float dot_bf16_f32(const bf16_t* w, const float* a, std::size_t n) noexcept {
    float sum = 0.0f;
    for (std::size_t i = 0; i < n; ++i) sum += fmul(bf16_to_fp32(w[i]), a[i]);
    return sum;
}

// ---- matmul: y[t, r] = W[r, :] . x[t, :] ----------------------------------------

template <class B>
const B* row_of(const weight_rows& w, std::size_t r) noexcept {
    return reinterpret_cast<const B*>(w.data + r * w.stride_bytes);
}

inline void matmul_q4_0(weight_rows w, q8_0_rows a, output_rows y) noexcept {
    const std::size_t nb = a.n / q4_0::block_elems;
    for (std::size_t t = 0; t < a.T; ++t)
        for (std::size_t r = 0; r < w.rows; ++r)
            y.data[t * y.stride + r] = q4_0::dot_row(row_of<block_q4_0>(w, r), a.blocks + t * nb, a.n);
}

inline void matmul_q8_0(weight_rows w, q8_0_rows a, output_rows y) noexcept {
    const std::size_t nb = a.n / q8_0::block_elems;
    for (std::size_t t = 0; t < a.T; ++t)
        for (std::size_t r = 0; r < w.rows; ++r)
            y.data[t * y.stride + r] = q8_0::dot_row(row_of<block_q8_0>(w, r), a.blocks + t * nb, a.n);
}

inline void matmul_q2_k(weight_rows w, q8_k_rows a, output_rows y) noexcept {
    const std::size_t nb = a.n / q2_k::block_elems;
    for (std::size_t t = 0; t < a.T; ++t)
        for (std::size_t r = 0; r < w.rows; ++r)
            y.data[t * y.stride + r] = q2_k::dot_row(row_of<block_q2_k>(w, r), a.blocks + t * nb, a.n);
}

inline void matmul_f32(weight_rows w, f32_rows a, output_rows y) noexcept {
    for (std::size_t t = 0; t < a.T; ++t)
        for (std::size_t r = 0; r < w.rows; ++r)
            y.data[t * y.stride + r] = dot_f32_f32(row_of<float>(w, r), a.x + t * a.n, a.n);
}

inline void matmul_bf16(weight_rows w, f32_rows a, output_rows y) noexcept {
    for (std::size_t t = 0; t < a.T; ++t)
        for (std::size_t r = 0; r < w.rows; ++r)
            y.data[t * y.stride + r] = dot_bf16_f32(row_of<bf16_t>(w, r), a.x + t * a.n, a.n);
}

// ---- sgemm: C = alpha op(A) op(B) + beta C ------------------------------------------

// op(X)[r, c] as f32_operand defines it.
inline float operand_at(const f32_operand& x, std::size_t r, std::size_t c) noexcept {
    return x.transposed ? x.data[c * x.ld + r] : x.data[r * x.ld + c];
}

// Each output from products rounded to f32 and summed in f32 in k order, then
// alpha s + beta c with both products rounded: at most k + 2 roundings per
// term (matmul.hpp's sgemm budget).
inline void sgemm(const sgemm_args& g) noexcept {
    for (std::size_t i = 0; i < g.m; ++i)
        for (std::size_t j = 0; j < g.n; ++j) {
            float s = 0.0f;
            if (g.alpha != 0.0f)
                for (std::size_t p = 0; p < g.k; ++p) s += fmul(operand_at(g.a, i, p), operand_at(g.b, p, j));
            float& c = g.c[i * g.ldc + j];
            c = fmul(g.alpha, s) + (g.beta == 0.0f ? 0.0f : fmul(g.beta, c));
        }
}

// Interleaved weights: each real row is taken back out of its group and
// meets dot_row, so the results equal those of the GGUF layout.
template <class S>
void matmul_interleaved(interleaved_rows w, q8_0_rows a, output_rows y) {
    const std::size_t nb = a.n / S::block_elems;
    std::vector<block_of<S>> row(nb);
    for (std::size_t r = 0; r < w.rows; ++r) {
        deinterleave_row<S>(w.data + r / interleave_rows * w.group_bytes, r % interleave_rows, nb, row.data());
        for (std::size_t t = 0; t < a.T; ++t)
            y.data[t * y.stride + r] = S::dot_row(row.data(), a.blocks + t * nb, a.n);
    }
}

inline void matmul_q4_0x16(interleaved_rows w, q8_0_rows a, output_rows y) {
    matmul_interleaved<q4_0>(w, a, y);
}

inline void matmul_q8_0x16(interleaved_rows w, q8_0_rows a, output_rows y) {
    matmul_interleaved<q8_0>(w, a, y);
}

} // namespace reference
} // namespace kernels
QTENSOR_END_NAMESPACE
