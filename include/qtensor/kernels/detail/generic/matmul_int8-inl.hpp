// qtensor/kernels/detail/generic/matmul_int8-inl.hpp: the dot and matmul
// kernels of Q4_0 and Q8_0 weights against Q8_0 activations, on GGUF rows and
// on the interleaved layout, written once over the vector vocabulary `ops`;
// each within the error budget stated in matmul.hpp.
//
// Every block's sum is an exact integer made of byte dot products
// (ops::with_byte_dot: each int32 lane adds 4 products of unsigned weight
// bytes by signed activation bytes). Signed weights are made unsigned by an
// offset that the activation block sums take back out: Q4_0 codes are 0..15
// (value code - 8: subtract 8 * sum(a)); Q8_0 codes c become c ^ 0x80 = c +
// 128 where the dot takes any byte (subtract 128 * sum(a)), else the sign
// trick |c| * (a * sign(c)) keeps pmaddubsw's pair sums within int16 (and
// needs activation codes of -127..127, as the Q8_0 quantizer writes). So the
// sum of each block is the same integer on every path; one FMA per block
// then adds it, times dw * da, to a float lane.
//
// No include guard and no namespace on purpose: included by
// generic/kernels-inl.hpp inside each instruction set's namespace.

namespace int8_impl {

constexpr std::size_t R = interleave_rows; // rows of an interleaved group

// How the code bytes of scheme S meet the byte dot product Dot.
template <class S, class Dot>
struct codes {
    static constexpr bool nibbles = std::is_same_v<S, q4_0>;
    // Signed Q8_0 weights with a dot that is exact only for small pair sums:
    // |w| times a * sign(w) (activation codes must not be -128).
    static constexpr bool sign_trick = !nibbles && !Dot::full_range;
    // Added to every weight to make it unsigned.
    static constexpr std::int32_t offset = nibbles ? 8 : sign_trick ? 0 : 128;

    // Q4_0: a word of 8 nibbles -> its low nibbles (elements 0..15 of the
    // block) and its high ones (16..31).
    static QTENSOR_OPS_INLINE ops::vi low(ops::vi v) { return v & ops::set_i(0x0f0f0f0f); }
    static QTENSOR_OPS_INLINE ops::vi high(ops::vi v) { return ops::shift_right<4>(v) & ops::set_i(0x0f0f0f0f); }
    // Q8_0: code bytes as loaded -> the bytes the dot takes.
    static QTENSOR_OPS_INLINE ops::vi prepare(ops::vi v) {
        if constexpr (offset == 128) return v ^ ops::set_i(static_cast<std::int32_t>(0x80808080u));
        else return v;
    }
    // acc + per lane, the 4 weight bytes w times the 4 activation bytes a.
    static QTENSOR_OPS_INLINE ops::vi dot(Dot d, ops::vi acc, ops::vi w, ops::vi a) {
        if constexpr (sign_trick) return d(acc, ops::abs_i8(w), ops::sign_i8(a, w));
        else return d(acc, w, a);
    }
};

// The four activation bytes at p in every lane.
QTENSOR_OPS_INLINE ops::vi broadcast_word(const std::int8_t* p) {
    std::int32_t v;
    std::memcpy(&v, p, 4);
    return ops::set_i(v);
}

// ---- the interleaved layout --------------------------------------------------

// One interleaved group (R = 16 rows) against TT tokens t0 .. t0 + TT - 1:
// out[t][i] = row i . token t0 + t. Each lane is a row: lanes rows per pass,
// R / lanes passes, each over all blocks, with the codes of a block unpacked
// once for all TT tokens. A token's arithmetic does not depend on TT.
template <class S, std::size_t TT, class Dot>
QTENSOR_OPS_INLINE void group_tile(const std::byte* group, std::size_t nb, const q8_0_rows& a, std::size_t t0,
                                   float* out, Dot dot) {
    using C = codes<S, Dot>;
    constexpr std::size_t N = ops::lanes;
    constexpr std::size_t qb = interleaved_code_bytes<S>;
    const auto* scales = reinterpret_cast<const fp16_t*>(group + nb * R * qb);
    for (std::size_t rv = 0; rv < R; rv += N) {
        ops::vf acc[TT];
        QTENSOR_UNROLL
        for (std::size_t t = 0; t < TT; ++t) acc[t] = ops::set_f(0.0f);
        for (std::size_t b = 0; b < nb; ++b) {
            const std::byte* p = group + b * R * qb + rv * 4;
            // w[c]: the weights that meet activation word c (elements 4c .. 4c + 3).
            ops::vi w[8];
            QTENSOR_UNROLL
            for (std::size_t c = 0; c < qb / 4; ++c) {
                detail::prefetch(p, detail::prefetch_distance + c * 64);
                const auto v = ops::load_bytes(p + c * R * 4);
                if constexpr (C::nibbles) w[c] = C::low(v), w[c + 4] = C::high(v);
                else w[c] = C::prepare(v);
            }
            const ops::vf dw = load_halves(scales + b * R + rv);
            QTENSOR_UNROLL
            for (std::size_t t = 0; t < TT; ++t) {
                const std::size_t ab = (t0 + t) * nb + b;
                const std::int8_t* q = a.blocks[ab].qs.data();
                // The offset's correction starts the sum.
                ops::vi s0 = ops::set_i(-a.sums[ab] * C::offset), s1 = ops::set_i(0);
                QTENSOR_UNROLL
                for (std::size_t c = 0; c < 8; c += 2) {
                    s0 = C::dot(dot, s0, w[c], broadcast_word(q + 4 * c));
                    s1 = C::dot(dot, s1, w[c + 1], broadcast_word(q + 4 * c + 4));
                }
                acc[t] = ops::mul_add(ops::to_float(s0 + s1), dw * ops::set_f(a.scales[ab]), acc[t]);
            }
        }
        QTENSOR_UNROLL
        for (std::size_t t = 0; t < TT; ++t) ops::store(acc[t], out + t * R + rv);
    }
}

// All groups of `w` against all tokens, in token tiles of 8, 4, 2, 1.
template <class S, class Dot>
QTENSOR_OPS_INLINE void groups_matmul(interleaved_rows w, q8_0_rows a, output_rows y, Dot dot) {
    const std::size_t nb = a.n / S::block_elems;
    alignas(64) float tile[8 * R];
    for (std::size_t g = 0; g * R < w.rows; ++g) {
        const std::byte* group = w.data + g * w.group_bytes;
        const std::size_t valid = w.rows - g * R < R ? w.rows - g * R : R;
        for (std::size_t t0 = 0; t0 < a.T;) {
            const std::size_t left = a.T - t0;
            const std::size_t TT = left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
            switch (TT) {
            case 8: group_tile<S, 8>(group, nb, a, t0, tile, dot); break;
            case 4: group_tile<S, 4>(group, nb, a, t0, tile, dot); break;
            case 2: group_tile<S, 2>(group, nb, a, t0, tile, dot); break;
            default: group_tile<S, 1>(group, nb, a, t0, tile, dot); break;
            }
            for (std::size_t t = 0; t < TT; ++t)
                std::memcpy(y.data + (t0 + t) * y.stride + g * R, tile + t * R, valid * sizeof(float));
            t0 += TT;
        }
    }
}

// 16 GGUF-layout rows at rows + i * stride -> one interleaved group, as
// reference::interleave_group: one gather per code word (word c of a block,
// lanes rows at a time), the fp16 scales one by one. Byte offsets i * stride
// must fit int32.
template <class S>
QTENSOR_OPS_INLINE void gather_group(const std::byte* rows, std::size_t stride, std::size_t nb, std::byte* group) {
    constexpr std::size_t N = ops::lanes;
    constexpr std::size_t qb = interleaved_code_bytes<S>;
    for (std::size_t rv = 0; rv < R; rv += N) {
        alignas(64) std::int32_t at[N];
        for (std::size_t i = 0; i < N; ++i) at[i] = static_cast<std::int32_t>((rv + i) * stride);
        const auto offsets = ops::load_i32(at);
        for (std::size_t b = 0; b < nb; ++b) {
            const std::byte* block_codes = rows + b * S::block_bytes + sizeof(fp16_t);
            for (std::size_t c = 0; c < qb / 4; ++c)
                ops::store_bytes(ops::gather_bytes(block_codes + 4 * c, offsets),
                                 group + b * R * qb + (c * R + rv) * 4);
        }
    }
    std::byte* scales = group + nb * R * qb;
    for (std::size_t b = 0; b < nb; ++b)
        for (std::size_t i = 0; i < R; ++i)
            std::memcpy(scales + (b * R + i) * sizeof(fp16_t), rows + i * stride + b * S::block_bytes, sizeof(fp16_t));
}

// ---- GGUF rows -----------------------------------------------------------------------

// GEMV (and T < 4) on GGUF rows, where a vector has quads (lanes >= 4): each
// quad (4 lanes, 16 bytes) holds 16 code bytes of one row, so no regrouping is
// needed; each lane sums part of its row's block, the lanes are scaled by
// their row's dw * da and accumulated, and each row's 4 lanes are added at
// the end. Tiles of Q vectors share the activation loads and the offset's
// correction. A row's arithmetic does not depend on the tile. per_vec, the
// rows per vector, is a parameter only so that one-lane instruction sets
// (which never instantiate this) can compile it.
template <class S, std::size_t Q, class Dot, std::size_t per_vec = ops::lanes / 4>
QTENSOR_OPS_INLINE void plain_rows_matmul(weight_rows w, q8_0_rows a, output_rows y, Dot dot) {
    using C = codes<S, Dot>;
    static_assert(per_vec >= 1, "GGUF rows need quads");
    constexpr std::size_t tile = Q * per_vec;       // rows per tile
    const std::size_t nb = a.n / S::block_elems;
    // The tile's rows are read side by side, a block of each per step. Each
    // is prefetched once every `every` steps (at most a cache line), `ahead`
    // steps before it is read, so that the tile reads prefetch_distance
    // bytes behind its prefetches; short rows carry on into the next tiles.
    constexpr std::size_t every = 64 / S::block_bytes;
    constexpr std::size_t ahead = detail::prefetch_distance / (tile * S::block_bytes);
    const auto offset = ops::set_i(static_cast<std::int32_t>(static_cast<std::uint32_t>(C::offset) * 0x01010101u));
    const auto zero = ops::set_i(0);
    alignas(64) float lane_sums[Q][ops::lanes]; // quad k of vector q: row q * per_vec + k
    for (std::size_t r0 = 0; r0 < w.rows; r0 += tile) {
        // Rows past the end repeat the last row; their outputs are dropped.
        const std::byte* rows[tile];
        for (std::size_t i = 0; i < tile; ++i) rows[i] = w.data + std::min(r0 + i, w.rows - 1) * w.stride_bytes;
        for (std::size_t t = 0; t < a.T; ++t) {
            ops::vf acc[Q];
            QTENSOR_UNROLL
            for (std::size_t q = 0; q < Q; ++q) acc[q] = ops::set_f(0.0f);
            for (std::size_t b = 0; b < nb; ++b) {
                if (t == 0) {
                    // Where row i's reading will be `ahead` blocks on: in
                    // this tile, or past its end in the tiles after it.
                    const std::size_t at = b + ahead;
                    const std::size_t skip = at / nb * tile * w.stride_bytes + at % nb * S::block_bytes;
                    QTENSOR_UNROLL
                    for (std::size_t i = b % every; i < tile; i += every) detail::prefetch(rows[i], skip);
                }
                const std::size_t ab = t * nb + b;
                const std::int8_t* qa = a.blocks[ab].qs.data();
                const auto act_lo = ops::load_dup_quad(qa);      // elements 0..15 in every quad
                const auto act_hi = ops::load_dup_quad(qa + 16); // 16..31
                auto corr = zero;
                if constexpr (C::offset != 0) corr = dot(dot(zero, offset, act_lo), offset, act_hi);
                const auto da = ops::set_f(a.scales[ab]);
                const std::size_t off = b * S::block_bytes;
                QTENSOR_UNROLL
                for (std::size_t q = 0; q < Q; ++q) {
                    const std::byte* const* p = rows + q * per_vec;
                    ops::vi lo, hi;
                    if constexpr (C::nibbles) {
                        const auto v = ops::load_quads(p, off + 2);
                        lo = C::low(v), hi = C::high(v);
                    } else {
                        lo = C::prepare(ops::load_quads(p, off + 2));
                        hi = C::prepare(ops::load_quads(p, off + 18));
                    }
                    const auto isum = C::dot(dot, C::dot(dot, zero, lo, act_lo), hi, act_hi) - corr;
                    acc[q] = ops::mul_add(ops::to_float(isum), ops::load_quad_f16(p, off) * da, acc[q]);
                }
            }
            QTENSOR_UNROLL
            for (std::size_t q = 0; q < Q; ++q) ops::store(acc[q], lane_sums[q]);
            for (std::size_t i = 0; i < tile && r0 + i < w.rows; ++i) {
                const float* l = lane_sums[i / per_vec] + 4 * (i % per_vec);
                y.data[t * y.stride + r0 + i] = (l[0] + l[1]) + (l[2] + l[3]);
            }
        }
    }
}

// GGUF rows: GEMV as above (tiles of 4 vectors, measured: 4 > 2 > 1; one
// vector for a single row); GEMM (T >= 4), and GEMV without quads: each run
// of 16 rows interleaved into a scratch group, then computed as
// interleaved<S>, so the results equal those of interleaved<S> bit for bit.
template <class S, class Dot>
QTENSOR_OPS_INLINE void plain_matmul(weight_rows w, q8_0_rows a, output_rows y, Dot dot) {
    if constexpr (ops::lanes >= 4) {
        if (a.T < 4) {
            if (w.rows <= ops::lanes / 4) plain_rows_matmul<S, 1>(w, a, y, dot);
            else plain_rows_matmul<S, 4>(w, a, y, dot);
            return;
        }
    }
    const std::size_t nb = a.n / S::block_elems;
    const std::size_t group_bytes = interleaved_group_bytes<S>(nb);
    std::vector<std::byte> scratch(group_bytes + 64);
    const auto aligned = (reinterpret_cast<std::uintptr_t>(scratch.data()) + 63) & ~std::uintptr_t{63};
    std::byte* group = reinterpret_cast<std::byte*>(aligned);
    for (std::size_t r0 = 0; r0 < w.rows; r0 += R) {
        const std::size_t count = w.rows - r0 < R ? w.rows - r0 : R;
        if (count == R && w.stride_bytes <= 0x7fffffff / R) {
            gather_group<S>(w.data + r0 * w.stride_bytes, w.stride_bytes, nb, group);
        } else {
            const block_of<S>* rows[R];
            for (std::size_t i = 0; i < count; ++i)
                rows[i] = reinterpret_cast<const block_of<S>*>(w.data + (r0 + i) * w.stride_bytes);
            reference::interleave_group<S>(rows, count, nb, group);
        }
        groups_matmul<S>({group, group_bytes, count}, a, {y.data + r0, y.stride}, dot);
    }
}

// One row w[n / 32] . a[n / 32], through plain_matmul in runs of up to 32
// blocks whose activation scales and sums are made here; with a full-range
// dot, so any codes (-128 included) multiply exactly. Not a hot path: the
// row takes a whole tile (one vector, 4 quads of the same row).
template <class S>
QTENSOR_OPS_INLINE float dot_row(const block_of<S>* w, const block_q8_0* a, std::size_t n) {
    constexpr std::size_t run = 32;
    const std::size_t nb = n / S::block_elems;
    float total = 0.0f;
    for (std::size_t b0 = 0; b0 < nb; b0 += run) {
        const std::size_t count = nb - b0 < run ? nb - b0 : run;
        float scales[run];
        std::int32_t sums[run];
        for (std::size_t b = 0; b < count; ++b) {
            scales[b] = fp16_to_fp32(a[b0 + b].d);
            sums[b] = 0;
            for (const std::int8_t q : a[b0 + b].qs) sums[b] += q;
        }
        float out;
        ops::with_full_range_byte_dot([&](auto dot) QTENSOR_OPS_LAMBDA {
            plain_matmul<S>({reinterpret_cast<const std::byte*>(w + b0), 0, 1},
                            {a + b0, scales, sums, count * S::block_elems, 1}, {&out, 0}, dot);
        });
        total += out;
    }
    return total;
}

} // namespace int8_impl

inline float dot_q4_0_q8_0(const block_q4_0* w, const block_q8_0* a, std::size_t n) {
    return int8_impl::dot_row<q4_0>(w, a, n);
}
inline float dot_q8_0_q8_0(const block_q8_0* w, const block_q8_0* a, std::size_t n) {
    return int8_impl::dot_row<q8_0>(w, a, n);
}

// y[t, r] = w[r] . a[t] over the rows and tokens given.
inline void matmul_q4_0(weight_rows w, q8_0_rows a, output_rows y) {
    ops::with_byte_dot([&](auto dot) QTENSOR_OPS_LAMBDA { int8_impl::plain_matmul<q4_0>(w, a, y, dot); });
}
inline void matmul_q8_0(weight_rows w, q8_0_rows a, output_rows y) {
    ops::with_byte_dot([&](auto dot) QTENSOR_OPS_LAMBDA { int8_impl::plain_matmul<q8_0>(w, a, y, dot); });
}
inline void matmul_q4_0x16(interleaved_rows w, q8_0_rows a, output_rows y) {
    ops::with_byte_dot([&](auto dot) QTENSOR_OPS_LAMBDA { int8_impl::groups_matmul<q4_0>(w, a, y, dot); });
}
inline void matmul_q8_0x16(interleaved_rows w, q8_0_rows a, output_rows y) {
    ops::with_byte_dot([&](auto dot) QTENSOR_OPS_LAMBDA { int8_impl::groups_matmul<q8_0>(w, a, y, dot); });
}
