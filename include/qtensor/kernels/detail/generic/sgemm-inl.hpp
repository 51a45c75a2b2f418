// qtensor/kernels/detail/generic/sgemm-inl.hpp: the single-precision GEMM
// C[m, n] = alpha op(A)[m, k] op(B)[k, n] + beta C (sgemm_args in
// reference/matmul.hpp), written once over the vector vocabulary `ops`, in
// the way of Goto's and BLIS's GEMMs:
//
//   for each M block of MC rows:
//     for each K block of KC:              pack op(A)[mc, kc] into MR-row panels
//       for each N block of NC columns:    pack op(B)[kc, nc] into NR-column panels
//         for each MR-row panel of A:      its MR rows of kc stay in L1
//           for each NR-column panel:      B's panels stream from L2
//             C[MR, NR] tile += the panels' product, in MR * NR / N accumulators
//
// Packing makes every inner load contiguous whatever the transposes and
// leading dimensions, and pads the edge panels with zeros, so the tile loop
// has one form; only the write-back of an edge tile is masked. The tile reads
// A one element at a time (a broadcast), so its panel may keep either layout:
// [kc, MR] where op(A) is transposed (a copy per k), MR rows of kc at stride
// KS where it is not (a copy per row: MR = 12 rows do not fill the N x N
// register transposes that B's panels use, and element by element the
// transposing copy took an eighth of the tile's time with 256 columns). The
// products and their order are the same either way. Each output is
// one FMA chain per K block, then merged into C: C = alpha acc + beta C after
// the first block, C += alpha acc after the others. That arithmetic depends on
// k alone, not on where the tile or the call's piece of C lies, so any split
// of C over threads gives the same bits (sgemm.hpp states the budget).
//
// The packing buffers are allocated per call (no state is kept between calls).
//
// No include guard and no namespace on purpose: included by
// generic/kernels-inl.hpp inside each instruction set's namespace.

namespace sgemm_impl {

constexpr std::size_t N = ops::lanes;
// The register tile C[MR, NV * N]: MR * NV accumulators, NV vectors of B and
// one broadcast of A live at once: 27 of AVX-512's 32 registers, 15 of the 16
// of AVX2 and SSE4; 20 floats on one lane.
constexpr std::size_t NV = N == 1 ? 4 : 2;
constexpr std::size_t MR = N >= 16 ? 12 : N == 1 ? 4 : 6;
constexpr std::size_t NR = NV * N;
// A panel (18 KiB at MR = 12) stays in a 32 KiB L1; the packed B block
// [KC, NC] (480 KiB) and A block of MC rows (750 KiB at stride KS) share a
// 2 MiB L2 with the C rows they update (480 KiB at 256 columns), so C stays
// in L2 from one K block to the next (A blocks of 1536 rows left the training
// step's GEMMs with 64 or 256 columns and large K 3 to 15% slower). NC is a
// multiple of every NR, MC of every MR.
constexpr std::size_t KC = sgemm_k_block;
// The row stride of A's row panels: 25 cache lines, so the MR rows fall in different L1 sets.
constexpr std::size_t KS = KC + 16;
constexpr std::size_t NC = 320;
constexpr std::size_t MC = 480;

constexpr std::size_t round_up(std::size_t x, std::size_t to) { return (x + to - 1) / to * to; }

// The length of each of the fewest near-equal blocks of [0, total) that are
// at most `most` long, rounded up to a multiple of `unit`.
constexpr std::size_t block_size(std::size_t total, std::size_t most, std::size_t unit) {
    const std::size_t count = (total + most - 1) / most;
    return round_up((total + count - 1) / count, unit);
}

// v[N], the rows of an N x N block, -> its columns, in log2(N) rounds that
// each take the even and the odd lanes of every pair: in bits, the element
// at row r, column c moves to row (c_0, r >> 1), column (r_0, c >> 1), so
// after log2(N) rounds row c, column r.
QTENSOR_OPS_INLINE void transpose(ops::vf (&v)[N]) {
    QTENSOR_UNROLL
    for (std::size_t round = 1; round < N; round *= 2) {
        ops::vf t[N];
        QTENSOR_UNROLL
        for (std::size_t i = 0; i < N / 2; ++i) {
            t[i] = ops::concat_even(v[2 * i + 1], v[2 * i]);
            t[i + N / 2] = ops::concat_odd(v[2 * i + 1], v[2 * i]);
        }
        QTENSOR_UNROLL
        for (std::size_t i = 0; i < N; ++i) v[i] = t[i];
    }
}

// `rows` (<= W) rows r0.. of op(X), columns p0 .. p0 + kc, as one panel
// out[kc, W]: out[p * W + r] = op(X)[r0 + r, p0 + p], zeros for r >= rows.
template <std::size_t W>
QTENSOR_OPS_INLINE void pack_panel(const f32_operand& x, std::size_t r0, std::size_t rows, std::size_t p0,
                                   std::size_t kc, float* out) {
    if (x.transposed) {
        // op(X)[r0.., p] is contiguous in memory: one copy per p.
        const float* src = x.data + p0 * x.ld + r0;
        for (std::size_t p = 0; p < kc; ++p, src += x.ld, out += W) {
            if (rows == W) {
                std::memcpy(out, src, W * sizeof(float));
            } else {
                std::memcpy(out, src, rows * sizeof(float));
                std::fill(out + rows, out + W, 0.0f);
            }
        }
        return;
    }
    // Each row of op(X) is contiguous: transpose N rows by N columns at a
    // time in registers (N loads, one per row, and N stores, one per column),
    // the rest (rows past a multiple of N, the last kc % N columns) element
    // by element, each row's part read whole before the next. (Reading W rows
    // a float at a time costs a miss per float where ld is a multiple of 4
    // KiB: the rows' lines all fall in one cache set.)
    const std::size_t full_rows = rows / N * N, full_cols = kc / N * N;
    const auto row = [&](std::size_t r) { return x.data + (r0 + r) * x.ld + p0; };
    for (std::size_t r = 0; r < full_rows; r += N)
        for (std::size_t p = 0; p < full_cols; p += N) {
            ops::vf v[N];
            QTENSOR_UNROLL
            for (std::size_t i = 0; i < N; ++i) v[i] = ops::load(row(r + i) + p);
            transpose(v);
            QTENSOR_UNROLL
            for (std::size_t i = 0; i < N; ++i) ops::store(v[i], out + (p + i) * W + r);
        }
    for (std::size_t r = 0; r < W; ++r) {
        const std::size_t from = r < full_rows ? full_cols : 0;
        for (std::size_t p = from; p < kc; ++p) out[p * W + r] = r < rows ? row(r)[p] : 0.0f;
    }
}

// op(X)[r0 .. r0 + rows, p0 .. p0 + kc] as consecutive [kc, W] panels.
template <std::size_t W>
void pack(const f32_operand& x, std::size_t r0, std::size_t rows, std::size_t p0, std::size_t kc, float* out) {
    for (std::size_t r = 0; r < rows; r += W, out += kc * W)
        pack_panel<W>(x, r0 + r, std::min(W, rows - r), p0, kc, out);
}

// The same rows of an untransposed X as consecutive panels of MR rows at stride KS:
// out[r * KS + p] = X[r0 + r, p0 + p], rows past `rows` zero.
inline void pack_rows(const f32_operand& x, std::size_t r0, std::size_t rows, std::size_t p0, std::size_t kc,
                      float* out) {
    for (std::size_t r = 0; r < round_up(rows, MR); ++r, out += KS) {
        if (r < rows) std::memcpy(out, x.data + (r0 + r) * x.ld + p0, kc * sizeof(float));
        else std::fill(out, out + kc, 0.0f);
    }
}

// Where the tile finds op(A)[r, p] in a packed panel: [kc, MR] (k_major) or MR rows at stride KS.
template <bool k_major>
QTENSOR_OPS_INLINE float a_at(const float* a, std::size_t r, std::size_t p) {
    return k_major ? a[p * MR + r] : a[r * KS + p];
}

// c[mr, nr] (row stride ldc) from acc: alpha acc + beta c after the first K
// block (c unread where beta == 0), c + alpha acc after the others. The loops
// run over the whole tile, so acc is only indexed by constants and stays in
// registers.
QTENSOR_OPS_INLINE void merge_tile(const ops::vf (&acc)[MR][NV], std::size_t mr, std::size_t nr, float alpha,
                                   float beta, bool first, float* c, std::size_t ldc) {
    const ops::vf va = ops::set_f(alpha), vb = ops::set_f(beta);
    const bool read = !first || beta != 0.0f;
    QTENSOR_UNROLL
    for (std::size_t r = 0; r < MR; ++r) {
        QTENSOR_UNROLL
        for (std::size_t v = 0; v < NV; ++v) {
            if (r >= mr || v * N >= nr) continue;
            float* out = c + r * ldc + v * N;
            const std::size_t count = std::min(N, nr - v * N);
            ops::vf old = ops::set_f(0.0f);
            if (read) old = count == N ? ops::load(out) : ops::load_partial(out, count, 0.0f);
            if (first && read) old = old * vb;
            const ops::vf sum = ops::mul_add(va, acc[r][v], old);
            if (count == N) ops::store(sum, out);
            else ops::store_partial(sum, out, count);
        }
    }
}

// C[mr, nr] tile (mr <= MR, nr <= NR) from the panels of a (a_at) and b[kc, NR].
template <bool k_major>
QTENSOR_OPS_INLINE void tile(std::size_t kc, const float* a, const float* b, std::size_t mr, std::size_t nr,
                             float alpha, float beta, bool first, float* c, std::size_t ldc) {
    ops::vf acc[MR][NV];
    QTENSOR_UNROLL
    for (std::size_t r = 0; r < MR; ++r) {
        QTENSOR_UNROLL
        for (std::size_t v = 0; v < NV; ++v) acc[r][v] = ops::set_f(0.0f);
    }
    for (std::size_t p = 0; p < kc; ++p, b += NR) {
        ops::vf bv[NV];
        QTENSOR_UNROLL
        for (std::size_t v = 0; v < NV; ++v) bv[v] = ops::load(b + v * N);
        QTENSOR_UNROLL
        for (std::size_t r = 0; r < MR; ++r) {
            const ops::vf ar = ops::set_f(a_at<k_major>(a, r, p));
            QTENSOR_UNROLL
            for (std::size_t v = 0; v < NV; ++v) acc[r][v] = ops::mul_add(ar, bv[v], acc[r][v]);
        }
    }
    merge_tile(acc, mr, nr, alpha, beta, first, c, ldc);
}

// The tiles of C[mc, nc] (at c) from A's packed panels (a_at) and B's.
template <bool k_major>
QTENSOR_OPS_INLINE void block(const sgemm_args& g, const float* a, const float* b, std::size_t mc, std::size_t nc,
                              std::size_t kc, bool first, float* c) {
    for (std::size_t i = 0; i < mc; i += MR)
        for (std::size_t j = 0; j < nc; j += NR)
            tile<k_major>(kc, a + i * (k_major ? kc : KS), b + j * kc, std::min(MR, mc - i), std::min(NR, nc - j),
                          g.alpha, g.beta, first, c + i * g.ldc + j, g.ldc);
}

// C = beta C, for alpha == 0 or k == 0 (beta == 0 writes zeros, reading nothing).
inline void scale_only(const sgemm_args& g) {
    for (std::size_t i = 0; i < g.m; ++i) {
        float* row = g.c + i * g.ldc;
        if (g.beta == 0.0f) std::fill(row, row + g.n, 0.0f);
        else
            for (std::size_t j = 0; j < g.n; ++j) row[j] *= g.beta;
    }
}

// `floats` floats, 64-byte aligned, uninitialised (packing writes every one it reads).
struct pack_buffer {
    std::unique_ptr<float[]> storage;
    float* data;
    explicit pack_buffer(std::size_t floats) : storage(new float[floats + 16]) {
        const auto p = reinterpret_cast<std::uintptr_t>(storage.get());
        data = storage.get() + (64 - p % 64) % 64 / sizeof(float);
    }
};

} // namespace sgemm_impl

inline void sgemm(sgemm_args g) {
    using namespace sgemm_impl;
    if (g.m == 0 || g.n == 0) return;
    if (g.k == 0 || g.alpha == 0.0f) return scale_only(g);
    // K blocks depend on k alone, so every piece of C sums in the same order.
    const std::size_t kb = block_size(g.k, KC, 1), nb = block_size(g.n, NC, NR), mb = block_size(g.m, MC, MR);
    const f32_operand bt{g.b.data, g.b.ld, !g.b.transposed}; // op(B)^T[n, k]
    const bool k_major = g.a.transposed; // op(A)'s columns are contiguous
    pack_buffer a_packed(k_major ? mb * kb : mb * KS), b_packed(nb * kb);
    for (std::size_t i0 = 0; i0 < g.m; i0 += mb) {
        const std::size_t mc = std::min(mb, g.m - i0);
        for (std::size_t p0 = 0; p0 < g.k; p0 += kb) {
            const std::size_t kc = std::min(kb, g.k - p0);
            if (k_major) pack<MR>(g.a, i0, mc, p0, kc, a_packed.data);
            else pack_rows(g.a, i0, mc, p0, kc, a_packed.data);
            for (std::size_t j0 = 0; j0 < g.n; j0 += nb) {
                const std::size_t nc = std::min(nb, g.n - j0);
                pack<NR>(bt, j0, nc, p0, kc, b_packed.data);
                float* c = g.c + i0 * g.ldc + j0;
                if (k_major) block<true>(g, a_packed.data, b_packed.data, mc, nc, kc, p0 == 0, c);
                else block<false>(g, a_packed.data, b_packed.data, mc, nc, kc, p0 == 0, c);
            }
        }
    }
}
