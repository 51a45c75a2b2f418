// qtensor/kernels/detail/generic/matmul_k_quant-inl.hpp: the dot and matmul
// kernels of the K-quants (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K) against Q8_K
// activations, written once over the vector vocabulary `ops` for all five;
// each within the error budget stated in matmul.hpp.
//
// A K-quant block holds 256 codes c, split into sub-blocks j that each have a
// scale s_j (and, in Q2_K, Q4_K and Q5_K, a min m_j); the weight is
// d * s_j * c - dmin * m_j, or d * s_j * (c - offset) in Q3_K and Q6_K. The
// five differ only in where a code's bits sit. Here each is described by
// `layout<S>`: for every "quad" of 16 elements (16e .. 16e + 15), which 16
// bytes hold its low bits and at what shift, and, where the code has high
// bits in a second array, which 16 bytes and what shift hold those. The
// kernel then loads whole vectors of code bytes, shifts and masks them into
// unsigned codes, and multiplies them by the activations, which it rearranged
// once per call into the order the code vectors come in (`plan`).
//
// Per block, exact integers: the codes times the activations, weighted by
// their sub-block's scale (pairs of byte products as int16, each pair times
// its scale as int32); then either the mins times the activation's 16-element
// sums (bsums), or the offset taken back out through the activations' pair
// sums. The block adds them into fp32 lanes with one FMA each.
//
// No include guard and no namespace on purpose: included by
// generic/kernels-inl.hpp inside each instruction set's namespace.

namespace k_quant_impl {

// Where the codes of 16 elements live, in bytes from the start of the block.
struct quad {
    std::size_t lo, lo_shift; // low bits: (block[lo + i] >> lo_shift), lo_bits wide
    std::size_t hi, hi_shift; // high bits, if any: (block[hi + i] >> hi_shift), hi_bits wide
    std::size_t sub_block;    // whose scale (and min) they take
};

// A block's scales s_j and mins m_j as bytes, s_j + scale_bias (so that every
// one is unsigned), zeros past the last sub-block. Unpacked for a whole row
// before its dot products, so the vector loads below never wait on the
// scalar stores that wrote them.
struct scale_set {
    alignas(16) std::uint8_t scale[16];
    alignas(16) std::uint8_t min[16];
};

// The five layouts, as ggml lays the blocks out (scheme/q*_k.hpp), each with
// `unpack` to its scale_set (min_elems: the elements per min, 0 without).
template <class S>
struct layout;

// Q2_K: element 128h + 32s + l is bits 2s of qs[32h + l].
template <>
struct layout<q2_k> {
    static constexpr std::size_t lo_bits = 2, hi_bits = 0, min_elems = 16;
    static constexpr int offset = 0;
    static constexpr quad at(std::size_t e) {
        return {offsetof(block_q2_k, qs) + 32 * (e / 8) + 16 * (e % 2), 2 * (e % 8 / 2), 0, 0, e};
    }
    static constexpr int scale_bias = 0;
    static void unpack(const block_q2_k& b, scale_set& out) { // q2_k::scale_of and min_of, 8 at a time
        for (std::size_t k = 0; k < 16; k += 8) {
            std::uint64_t w;
            std::memcpy(&w, b.scales.data() + k, 8);
            const std::uint64_t low = w & 0x0f0f0f0f0f0f0f0full, high = (w >> 4) & 0x0f0f0f0f0f0f0f0full;
            std::memcpy(out.scale + k, &low, 8);
            std::memcpy(out.min + k, &high, 8);
        }
    }
};

// Q3_K: the low two bits as Q2_K's; bit 2 is bit 4h + s (= e / 2) of hmask[l].
template <>
struct layout<q3_k> {
    static constexpr std::size_t lo_bits = 2, hi_bits = 1, min_elems = 0;
    static constexpr int offset = 4;
    static constexpr quad at(std::size_t e) {
        return {offsetof(block_q3_k, qs) + 32 * (e / 8) + 16 * (e % 2), 2 * (e % 8 / 2),
                offsetof(block_q3_k, hmask) + 16 * (e % 2), e / 2, e};
    }
    // q3_k::scale_of for all 16 sub-blocks (plus 32), 32 bits at a time:
    // bits 3..0 from the nibbles of scales[0..7], bits 5..4 from the bit pairs
    // of scales[8..11].
    static constexpr int scale_bias = 32;
    static void unpack(const block_q3_k& b, scale_set& out) {
        std::uint32_t w[3], bytes[4];
        std::memcpy(w, b.scales.data(), 12);
        for (std::size_t k = 0; k < 4; ++k)
            bytes[k] = ((w[k % 2] >> (4 * (k / 2))) & 0x0f0f0f0fu) | (((w[2] >> (2 * k)) & 0x03030303u) << 4);
        std::memcpy(out.scale, bytes, 16);
    }
};

// What Q4_K and Q5_K share: element 64c + 32p + l is nibble p of
// qs[32c + l]; 8 sub-blocks of 32, each with a 6-bit scale and min.
template <class Block>
struct k4_layout {
    static constexpr std::size_t lo_bits = 4, min_elems = 32;
    static constexpr int offset = 0, scale_bias = 0;
    static constexpr quad nibbles(std::size_t e) {
        return {offsetof(Block, qs) + 32 * (e / 4) + 16 * (e % 2), 4 * (e % 4 / 2), 0, 0, e / 2};
    }
    // detail::k4_scale and k4_min for every j, 32 bits at a time: j < 4 in
    // the low 6 bits of bytes 0..3 (scales) and 4..7 (mins); j >= 4 in the
    // nibbles of bytes 8..11, with bits 5..4 from the top two bits of bytes
    // 0..3 (scales) and 4..7 (mins).
    static void unpack(const Block& b, scale_set& out) {
        std::uint32_t w[3];
        std::memcpy(w, b.scales.data(), 12);
        const std::uint32_t low6 = 0x3f3f3f3fu, low4 = 0x0f0f0f0fu, top2 = 0xc0c0c0c0u;
        const std::uint32_t scale[4] = {w[0] & low6, (w[2] & low4) | ((w[0] & top2) >> 2), 0, 0};
        const std::uint32_t min[4] = {w[1] & low6, ((w[2] >> 4) & low4) | ((w[1] & top2) >> 2), 0, 0};
        std::memcpy(out.scale, scale, 16);
        std::memcpy(out.min, min, 16);
    }
};

template <>
struct layout<q4_k> : k4_layout<block_q4_k> {
    static constexpr std::size_t hi_bits = 0;
    static constexpr quad at(std::size_t e) { return nibbles(e); }
};

// Q5_K: bit 4 is bit 2c + p (= e / 2) of qh[l].
template <>
struct layout<q5_k> : k4_layout<block_q5_k> {
    static constexpr std::size_t hi_bits = 1;
    static constexpr quad at(std::size_t e) {
        quad q = nibbles(e);
        q.hi = offsetof(block_q5_k, qh) + 16 * (e % 2);
        q.hi_shift = e / 2;
        return q;
    }
};

// Q6_K: element 128h + 32s + l is nibble s / 2 of ql[64h + 32(s % 2) + l],
// with bits 2s of qh[32h + l] above it.
template <>
struct layout<q6_k> {
    static constexpr std::size_t lo_bits = 4, hi_bits = 2, min_elems = 0;
    static constexpr int offset = 32;
    static constexpr quad at(std::size_t e) {
        const std::size_t h = e / 8, s = e % 8 / 2, l = 16 * (e % 2);
        return {offsetof(block_q6_k, ql) + 64 * h + 32 * (s % 2) + l, 4 * (s / 2),
                offsetof(block_q6_k, qh) + 32 * h + l, 2 * s, e};
    }
    static constexpr int scale_bias = 128; // int8 scales, their sign bit flipped
    static void unpack(const block_q6_k& b, scale_set& out) {
        for (std::size_t k = 0; k < 16; k += 8) {
            std::uint64_t w;
            std::memcpy(&w, b.scales.data() + k, 8);
            w ^= 0x8080808080808080ull;
            std::memcpy(out.scale + k, &w, 8);
        }
    }
};

template <class S>
inline constexpr bool has_mins = layout<S>::offset == 0;

constexpr std::size_t V = 4 * ops::lanes;    // code bytes per vector
constexpr std::size_t vectors = 256 / V;     // per block
constexpr std::size_t piece = V < 16 ? V : 16; // bytes a vector takes from one quad
constexpr std::size_t pieces = V / piece;

// The vectors of one block, worked out at compile time from layout<S>. The
// quads are ordered by (lo_shift, lo), so a vector's low bytes are one load
// with one shift; vector g takes bytes [V g, V g + V) of the quads in that order.
struct vector_plan {
    std::size_t lo[pieces], lo_shift;
    bool lo_whole; // the pieces' low bytes are contiguous: one load
    std::size_t hi[pieces];
    bool hi_whole;
    std::int32_t hi_shift[ops::lanes]; // per lane, less hi_min
    bool hi_uniform;
    std::size_t hi_min;
    std::size_t scale_base;               // the first sub-block of the scale vector (a multiple of lanes)
    std::int32_t scale_index[ops::lanes]; // per lane, less scale_base
    bool one_scale;                       // every lane has the same sub-block: then scale_base is it
};
struct block_plan {
    std::size_t order[16]; // quads in the order of the vectors
    vector_plan v[vectors];
};

template <class S>
constexpr block_plan make_plan() {
    using L = layout<S>;
    block_plan p{};
    for (std::size_t e = 0; e < 16; ++e) p.order[e] = e;
    const auto before = [](const quad& a, const quad& b) {
        return a.lo_shift != b.lo_shift ? a.lo_shift < b.lo_shift : a.lo < b.lo;
    };
    for (std::size_t i = 1; i < 16; ++i) // insertion sort: std::sort is not constexpr in C++20 on every library
        for (std::size_t k = i; k > 0 && before(L::at(p.order[k]), L::at(p.order[k - 1])); --k)
            std::swap(p.order[k], p.order[k - 1]);
    const auto quad_at = [&](std::size_t pos) { return L::at(p.order[pos / 16]); }; // pos: byte in vector order
    for (std::size_t g = 0; g < vectors; ++g) {
        vector_plan& v = p.v[g];
        v.lo_whole = v.hi_whole = true;
        for (std::size_t k = 0; k < pieces; ++k) {
            const std::size_t pos = V * g + piece * k;
            const quad q = quad_at(pos);
            v.lo[k] = q.lo + pos % 16;
            v.hi[k] = q.hi + pos % 16;
            v.lo_shift = q.lo_shift;
            v.lo_whole = v.lo_whole && v.lo[k] == v.lo[0] + piece * k;
            v.hi_whole = v.hi_whole && v.hi[k] == v.hi[0] + piece * k;
        }
        v.hi_min = v.scale_base = 16 * 8;
        for (std::size_t lane = 0; lane < ops::lanes; ++lane) {
            const quad q = quad_at(V * g + 4 * lane);
            v.hi_min = std::min(v.hi_min, q.hi_shift);
            v.scale_base = std::min(v.scale_base, q.sub_block);
        }
        if (ops::lanes > 1) v.scale_base -= v.scale_base % ops::lanes; // one of the 16 / lanes scale vectors
        v.hi_uniform = v.one_scale = true;
        for (std::size_t lane = 0; lane < ops::lanes; ++lane) {
            const quad q = quad_at(V * g + 4 * lane);
            v.hi_shift[lane] = static_cast<std::int32_t>(q.hi_shift - v.hi_min);
            v.scale_index[lane] = static_cast<std::int32_t>(q.sub_block - v.scale_base);
            v.hi_uniform = v.hi_uniform && v.hi_shift[lane] == 0;
            v.one_scale = v.one_scale && v.scale_index[lane] == v.scale_index[0];
        }
        if (v.one_scale) v.scale_base += static_cast<std::size_t>(v.scale_index[0]);
    }
    return p;
}

// What the kernel relies on: one contiguous load and one shift for a vector's
// low bits, and its sub-blocks within a window of `lanes` scales.
template <class S>
constexpr bool plan_fits(const block_plan& p) {
    for (std::size_t g = 0; g < vectors; ++g) {
        if (!p.v[g].lo_whole) return false;
        for (std::size_t pos = V * g; pos < V * (g + 1); ++pos) {
            const quad q = layout<S>::at(p.order[pos / 16]);
            if (q.lo_shift != p.v[g].lo_shift || q.sub_block - p.v[g].scale_base >= ops::lanes) return false;
        }
    }
    return true;
}

template <class S>
inline constexpr block_plan plan = make_plan<S>();
static_assert(plan_fits<q2_k>(plan<q2_k>) && plan_fits<q3_k>(plan<q3_k>) && plan_fits<q4_k>(plan<q4_k>) &&
              plan_fits<q5_k>(plan<q5_k>) && plan_fits<q6_k>(plan<q6_k>));

// One Q8_K block rearranged once per call: the activations in the order of
// S's code vectors; for schemes with an offset, -offset times the sums of
// their byte pairs (pair p of vector g at offset_pairs[V/2 g + p]); for
// schemes with mins, the activation sum of each min's sub-block (zeros past
// the last).
struct activation {
    alignas(64) std::int8_t qs[256];
    alignas(64) std::int16_t offset_pairs[128];
    alignas(64) std::int32_t sums[16];
    float d;
};

template <class S>
void prepare(const block_q8_k& src, activation& out) {
    constexpr const block_plan& p = plan<S>;
    for (std::size_t pos = 0; pos < 256; ++pos) out.qs[pos] = src.qs[16 * p.order[pos / 16] + pos % 16];
    if constexpr (!has_mins<S>)
        for (std::size_t i = 0; i < 128; ++i)
            out.offset_pairs[i] = static_cast<std::int16_t>(-layout<S>::offset * (out.qs[2 * i] + out.qs[2 * i + 1]));
    if constexpr (has_mins<S>) {
        constexpr std::size_t per = layout<S>::min_elems / 16; // bsums per sub-block
        for (std::size_t j = 0; j < 16; ++j) {
            out.sums[j] = 0;
            for (std::size_t k = per * j; k < per * (j + 1) && k < 16; ++k) out.sums[j] += src.bsums[k];
        }
    }
    out.d = src.d;
}

// The V bytes at base + at[0 .. pieces): one load where they are contiguous.
QTENSOR_OPS_INLINE ops::vi load_pieces(const std::byte* base, const std::size_t* at, bool whole) {
    if constexpr (pieces > 1) {
        if (!whole) {
            const std::byte* p[pieces];
            for (std::size_t k = 0; k < pieces; ++k) p[k] = base + at[k];
            return ops::load_quads(p, 0);
        }
    }
    return ops::load_bytes(base + at[0]);
}

constexpr std::int32_t every_byte(std::uint32_t x) { return static_cast<std::int32_t>(x * 0x01010101u); }

// Vector g of block w's unsigned codes: V bytes, one code each.
template <class S>
QTENSOR_OPS_INLINE ops::vi codes(const std::byte* w, std::size_t g) {
    using L = layout<S>;
    const vector_plan& v = plan<S>.v[g];
    const auto lo = ops::load_bytes(w + v.lo[0]); // plan_fits: one load
    auto c = ops::shift_right(lo, static_cast<int>(v.lo_shift)) & ops::set_i(every_byte((1u << L::lo_bits) - 1));
    if constexpr (L::hi_bits > 0) {
        auto hi = load_pieces(w, v.hi, v.hi_whole);
        if (!v.hi_uniform) hi = ops::shift_right(hi, ops::load_i32(v.hi_shift));
        // Bits hi_min .. of each byte up to bit lo_bits: within the byte,
        // as every lane's shift left the wanted bits at the same place.
        const int up = static_cast<int>(L::lo_bits) - static_cast<int>(v.hi_min);
        hi = up >= 0 ? ops::shift_left(hi, up) : ops::shift_right(hi, -up);
        c = c | (hi & ops::set_i(every_byte(((1u << L::hi_bits) - 1) << L::lo_bits)));
    }
    return c;
}

// The scale in both int16 halves of each lane, for the pair products below.
QTENSOR_OPS_INLINE ops::vi both_halves(ops::vi s) { return (s & ops::set_i(0xffff)) | ops::shift_left<16>(s); }

// One row w[nb], its scales sc[nb], against one prepared Q8_K row a[nb].
template <class S, class Dot>
QTENSOR_OPS_INLINE float row_dot(const block_of<S>* w, const scale_set* sc, const activation* a, std::size_t nb,
                                 Dot dot) {
    constexpr std::size_t N = ops::lanes;
    constexpr const block_plan& p = plan<S>;
    const auto bias = ops::set_i(layout<S>::scale_bias);
    ops::vf acc = ops::set_f(0.0f), acc_min = ops::set_f(0.0f);
    for (std::size_t b = 0; b < nb; ++b) {
        const auto* block = reinterpret_cast<const std::byte*>(w + b);
        ops::vi scales[16 / N]; // sub-blocks N c .. N c + N - 1 in vector c
        QTENSOR_UNROLL
        for (std::size_t c = 0; c < 16 / N; ++c) scales[c] = both_halves(ops::load_u8(sc[b].scale + N * c) - bias);
        // Two partial sums halve the dependency chain of the scale products.
        ops::vi sums[2] = {ops::set_i(0), ops::set_i(0)};
        QTENSOR_UNROLL
        for (std::size_t g = 0; g < vectors; ++g) {
            const vector_plan& v = p.v[g];
            const auto lane_scale = v.one_scale ? both_halves(ops::set_i(sc[b].scale[v.scale_base]) - bias)
                                                : ops::lookup(scales[v.scale_base / N], v.scale_index);
            // Two int16 sums of byte pairs per lane (at most 2 * 63 * 128),
            // then each pair times its lane's scale, summed into int32.
            sums[g % 2] = dot.pairs(sums[g % 2], ops::pair_sums(codes<S>(block, g), ops::load_bytes(a[b].qs + V * g)),
                                    lane_scale);
            if constexpr (!has_mins<S>) // the offset, so each lane sums its own weights' products
                sums[g % 2] = dot.pairs(sums[g % 2], ops::load_bytes(a[b].offset_pairs + V / 2 * g), lane_scale);
        }
        const float d = ops::f16_to_f32(w[b].d) * a[b].d;
        acc = ops::mul_add(ops::to_float(sums[0] + sums[1]), ops::set_f(d), acc);
        if constexpr (has_mins<S>) {
            ops::vi mins = ops::set_i(0);
            QTENSOR_UNROLL
            for (std::size_t j = 0; j < 16; j += N) mins = mins + ops::load_u8(sc[b].min + j) * ops::load_i32(a[b].sums + j);
            const float dmin = ops::f16_to_f32(w[b].dmin) * a[b].d;
            acc_min = ops::mul_add(ops::to_float(mins), ops::set_f(dmin), acc_min);
        }
    }
    return ops::reduce_sum(acc) - ops::reduce_sum(acc_min);
}

// y[t, r] = w[r] . a[t] over the rows and tokens given; one row at a time
// (two rows side by side measured slower out of cache).
template <class S>
void matmul(weight_rows w, q8_k_rows a, output_rows y) {
    const std::size_t nb = a.n / 256;
    std::vector<activation> act(a.T * nb);
    for (std::size_t i = 0; i < act.size(); ++i) prepare<S>(a.blocks[i], act[i]);
    std::vector<scale_set> scales(nb);
    ops::with_byte_dot([&](auto dot) QTENSOR_OPS_LAMBDA {
        for (std::size_t r = 0; r < w.rows; ++r) {
            const auto row = reinterpret_cast<const block_of<S>*>(w.data + r * w.stride_bytes);
            for (std::size_t b = 0; b < nb; ++b) layout<S>::unpack(row[b], scales[b]);
            for (std::size_t t = 0; t < a.T; ++t)
                y.data[t * y.stride + r] = row_dot<S>(row, scales.data(), act.data() + t * nb, nb, dot);
        }
    });
}

} // namespace k_quant_impl

inline void matmul_q2_k(weight_rows w, q8_k_rows a, output_rows y) { k_quant_impl::matmul<q2_k>(w, a, y); }
inline void matmul_q3_k(weight_rows w, q8_k_rows a, output_rows y) { k_quant_impl::matmul<q3_k>(w, a, y); }
inline void matmul_q4_k(weight_rows w, q8_k_rows a, output_rows y) { k_quant_impl::matmul<q4_k>(w, a, y); }
inline void matmul_q5_k(weight_rows w, q8_k_rows a, output_rows y) { k_quant_impl::matmul<q5_k>(w, a, y); }
inline void matmul_q6_k(weight_rows w, q8_k_rows a, output_rows y) { k_quant_impl::matmul<q6_k>(w, a, y); }

inline float dot_q2_k_q8_k(const block_q2_k* w, const block_q8_k* a, std::size_t n) {
    float out;
    matmul_q2_k({reinterpret_cast<const std::byte*>(w), 0, 1}, {a, n, 1}, {&out, 0});
    return out;
}
