// qtensor/kernels/detail/generic/matmul_k_quant-inl.hpp: the dot and matmul
// kernels of the K-quants (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K) and of TQ2_0 against
// Q8_K activations, written once over the vector vocabulary `ops` for all
// six; each within the error budget stated in matmul.hpp.
//
// A K-quant block holds 256 codes c, split into sub-blocks j that each have a
// scale s_j (and, in Q2_K, Q4_K and Q5_K, a min m_j); the weight is
// d * s_j * c - dmin * m_j, or d * s_j * (c - code_offset) in Q3_K and Q6_K.
// TQ2_0 is Q2_K's code planes with no sub-block scales: d * (c - 1), as if
// every s_j were 1. The six differ only in where a code's bits sit. Here each is described by
// `layout<S>`: for every "quad" of 16 elements (16e .. 16e + 15), which 16
// bytes hold its low bits and at what shift, and, where the code has high
// bits in a second array, which 16 bytes and what shift hold those. The
// kernel then loads whole vectors of code bytes, shifts and masks them into
// unsigned codes, and multiplies them by the activations, which it rearranged
// once per call into the order the code vectors come in (`plan`).
//
// Per block, exact integers: the codes times the activations, weighted by
// their sub-block's scale. With mins: pairs of byte products as int16, each
// pair times its scale as int32, and the mins times the activation sums of
// their sub-blocks. With a code offset: the four byte products of each lane
// summed into an int32 that starts at -offset times the four activations'
// sum, so it holds the lane's own (c - offset) a, which fits int16; then that
// times its scale. The scales and mins come straight from the block's bytes
// with lane shifts (`field_plan`). The block adds them into fp32 lanes with
// one FMA each.
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

// Where one scale or min sits in the block's `scales` bytes, counted in bits:
// its low bits are [pos, pos + len), and where hi_len > 0 the bits above
// them are [hi_pos, hi_pos + hi_len).
struct scale_bits {
    std::size_t pos, len, hi_pos = 0, hi_len = 0;
};

// The five layouts, as ggml lays the blocks out (scheme/q*_k.hpp). Besides
// the codes (`at`), each lists its "fields", the 4- to 8-bit numbers in
// `scales` (Q6_K's are int8): the sub-blocks' scales s_j, then, where the scheme has them, their
// mins m_j. Schemes without mins have a code_offset instead; scale_bias is
// taken from every field, and signed fields are sign-extended.
template <class S>
struct layout;

// A layout without fields (TQ2_0): its one scale is the block's d.
template <class S>
inline constexpr bool has_fields = layout<S>::sub_blocks > 0;

// Q2_K: element 128h + 32s + l is bits 2s of qs[32h + l]; s_j and m_j are
// the low and high nibbles of scales[j].
template <>
struct layout<q2_k> {
    static constexpr std::size_t lo_bits = 2, hi_bits = 0;
    static constexpr quad at(std::size_t e) {
        return {offsetof(block_q2_k, qs) + 32 * (e / 8) + 16 * (e % 2), 2 * (e % 8 / 2), 0, 0, e};
    }
    static constexpr std::size_t sub_blocks = q2_k::sub_blocks;
    static constexpr bool mins = true, signed_fields = false;
    static constexpr int code_offset = 0, scale_bias = 0;
    static constexpr scale_bits field(std::size_t f) { return {8 * (f % 16) + 4 * (f / 16), 4}; }
};

// TQ2_0: Q2_K's code planes at the start of the block, no fields.
template <>
struct layout<tq2_0> {
    static constexpr std::size_t lo_bits = 2, hi_bits = 0;
    static constexpr quad at(std::size_t e) {
        quad q = layout<q2_k>::at(e);
        q.lo -= offsetof(block_q2_k, qs) - offsetof(block_tq2_0, qs);
        q.sub_block = 0;
        return q;
    }
    static constexpr std::size_t sub_blocks = 0;
    static constexpr bool mins = false, signed_fields = false;
    static constexpr int code_offset = tq2_0::code_offset, scale_bias = 0;
};

// Q3_K: the low two bits as Q2_K's; bit 2 is bit 4h + s (= e / 2) of
// hmask[l]. s_j + 32 has bits 3..0 in nibble j / 8 of scales[j % 8] and
// bits 5..4 at bit 2(j / 4) of scales[8 + j % 4].
template <>
struct layout<q3_k> {
    static constexpr std::size_t lo_bits = 2, hi_bits = 1;
    static constexpr quad at(std::size_t e) {
        return {offsetof(block_q3_k, qs) + 32 * (e / 8) + 16 * (e % 2), 2 * (e % 8 / 2),
                offsetof(block_q3_k, hmask) + 16 * (e % 2), e / 2, e};
    }
    static constexpr std::size_t sub_blocks = q3_k::sub_blocks;
    static constexpr bool mins = false, signed_fields = false;
    static constexpr int code_offset = q3_k::code_offset, scale_bias = 32;
    static constexpr scale_bits field(std::size_t j) { return {8 * (j % 8) + 4 * (j / 8), 4, 8 * (8 + j % 4) + 2 * (j / 4), 2}; }
};

// What Q4_K and Q5_K share: element 64c + 32p + l is nibble p of
// qs[32c + l]; 8 sub-blocks of 32, each with a 6-bit scale and min, as
// detail::k4_scale and k4_min read them: for j < 4 the low 6 bits of
// scales[j] (scale) and scales[j + 4] (min); for j >= 4 the low (scale) and
// high (min) nibble of scales[j + 4], bits 5..4 from the top two bits of
// scales[j - 4] (scale) and scales[j] (min).
template <class Block>
struct k4_layout {
    static constexpr std::size_t lo_bits = 4;
    static constexpr quad nibbles(std::size_t e) {
        return {offsetof(Block, qs) + 32 * (e / 4) + 16 * (e % 2), 4 * (e % 4 / 2), 0, 0, e / 2};
    }
    static constexpr std::size_t sub_blocks = qtensor::detail::k4_sub_blocks;
    static constexpr bool mins = true, signed_fields = false;
    static constexpr int code_offset = 0, scale_bias = 0;
    static constexpr scale_bits field(std::size_t f) {
        const std::size_t j = f % 8, m = f / 8; // m: 0 scale, 1 min
        if (j < 4) return {8 * (j + 4 * m), 6};
        return {8 * (j + 4) + 4 * m, 4, 8 * (j - 4 + 4 * m) + 6, 2};
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
// with bits 2s of qh[32h + l] above it; s_j is the int8 scales[j].
template <>
struct layout<q6_k> {
    static constexpr std::size_t lo_bits = 4, hi_bits = 2;
    static constexpr quad at(std::size_t e) {
        const std::size_t h = e / 8, s = e % 8 / 2, l = 16 * (e % 2);
        return {offsetof(block_q6_k, ql) + 64 * h + 32 * (s % 2) + l, 4 * (s / 2),
                offsetof(block_q6_k, qh) + 32 * h + l, 2 * s, e};
    }
    static constexpr std::size_t sub_blocks = q6_k::sub_blocks;
    static constexpr bool mins = false, signed_fields = true;
    static constexpr int code_offset = q6_k::code_offset, scale_bias = 0;
    static constexpr scale_bits field(std::size_t j) { return {8 * j, 8}; }
};

constexpr std::size_t N = ops::lanes;
constexpr std::size_t V = 4 * N;              // code bytes per vector
constexpr std::size_t vectors = 256 / V;      // per block

// The vectors of one block, worked out at compile time from layout<S>. The
// quads are ordered by (lo_shift, lo), so a vector's low bytes are one load
// with one shift; vector g takes bytes [V g, V g + V) of the quads in that order.
struct vector_plan {
    std::size_t lo, lo_shift;
    std::size_t hi;
    bool hi_twice; // the high bytes are the 32 at hi twice (16 lanes), else the V at hi
    std::int32_t hi_shift[N]; // per lane, less hi_min
    bool hi_uniform;
    std::size_t hi_min;
    std::size_t scale_base;        // the first sub-block of the scale vector (a multiple of N)
    std::int32_t scale_index[N];   // per lane, less scale_base
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
        v.lo = quad_at(V * g).lo + V * g % 16;
        v.lo_shift = quad_at(V * g).lo_shift;
        v.hi = quad_at(V * g).hi + V * g % 16;
        v.hi_twice = V == 64 && quad_at(V * g + 32).hi == quad_at(V * g).hi;
        v.hi_min = v.scale_base = 16 * 8;
        for (std::size_t lane = 0; lane < N; ++lane) {
            const quad q = quad_at(V * g + 4 * lane);
            v.hi_min = std::min(v.hi_min, q.hi_shift);
            v.scale_base = std::min(v.scale_base, q.sub_block);
        }
        v.scale_base -= v.scale_base % N; // one of the scale vectors
        v.hi_uniform = true;
        for (std::size_t lane = 0; lane < N; ++lane) {
            const quad q = quad_at(V * g + 4 * lane);
            v.hi_shift[lane] = static_cast<std::int32_t>(q.hi_shift - v.hi_min);
            v.scale_index[lane] = static_cast<std::int32_t>(q.sub_block - v.scale_base);
            v.hi_uniform = v.hi_uniform && v.hi_shift[lane] == 0;
        }
    }
    return p;
}

// What the kernel relies on: one contiguous load and one shift for a vector's
// low bits; one load for its high bits (of V bytes, or of 32 taken twice);
// and its sub-blocks within one vector of N scales.
template <class S>
constexpr bool plan_fits(const block_plan& p) {
    for (std::size_t g = 0; g < vectors; ++g)
        for (std::size_t pos = V * g; pos < V * (g + 1); ++pos) {
            const quad q = layout<S>::at(p.order[pos / 16]);
            const vector_plan& v = p.v[g];
            const std::size_t at = pos - V * g; // byte of the vector
            if (q.lo + pos % 16 != v.lo + at || q.lo_shift != v.lo_shift || q.sub_block - v.scale_base >= N ||
                (layout<S>::hi_bits > 0 && q.hi + pos % 16 != v.hi + (v.hi_twice ? at % 32 : at)))
                return false;
        }
    return true;
}

template <class S>
inline constexpr block_plan plan = make_plan<S>();
static_assert(plan_fits<tq2_0>(plan<tq2_0>) && plan_fits<q2_k>(plan<q2_k>) && plan_fits<q3_k>(plan<q3_k>) && plan_fits<q4_k>(plan<q4_k>) &&
              plan_fits<q5_k>(plan<q5_k>) && plan_fits<q6_k>(plan<q6_k>));

// The fields (scales, then mins) in vectors of N lanes, straight from the
// block: the 16 bytes at `window` (which hold `scales` and lie within the
// block) as four int32 words; per lane, the word that holds the field's low
// bits, shifted left then right (arithmetic) to bring them to bit 0, and
// masked; likewise its high bits, to just above them.
template <class S>
struct field_plan {
    using L = layout<S>;
    static constexpr std::size_t count = L::sub_blocks * (L::mins ? 2 : 1);
    static constexpr std::size_t window =
        std::min(offsetof(block_of<S>, scales), sizeof(block_of<S>) - 16);
    std::int32_t word[count], left[count], right[count], mask[count];
    std::int32_t hi_word[count], hi_left[count], hi_right[count], hi_mask[count];
    bool any_left = false, any_hi = false, any_hi_left = false;
    // What load_fields assumes: whole vectors of fields, each part of a field
    // within one of the four words, and no high bits on signed fields.
    bool fits = count % N == 0;

    constexpr field_plan() {
        const std::size_t start = 8 * (offsetof(block_of<S>, scales) - window);
        for (std::size_t f = 0; f < count; ++f) {
            const scale_bits b = L::field(f);
            const auto at = static_cast<std::int32_t>((start + b.pos) % 32);
            const auto len = static_cast<std::int32_t>(b.len);
            word[f] = static_cast<std::int32_t>((start + b.pos) / 32);
            left[f] = L::signed_fields ? 32 - at - len : 0;
            right[f] = L::signed_fields ? 32 - len : at;
            mask[f] = L::signed_fields ? -1 : (1 << len) - 1;
            const auto hi_at = static_cast<std::int32_t>((start + b.hi_pos) % 32);
            const std::int32_t down = hi_at - len; // where the high bits go: above the low ones
            hi_word[f] = static_cast<std::int32_t>((start + b.hi_pos) / 32);
            hi_left[f] = b.hi_len > 0 && down < 0 ? -down : 0;
            hi_right[f] = b.hi_len > 0 && down > 0 ? down : 0;
            hi_mask[f] = ((1 << b.hi_len) - 1) << len;
            any_left = any_left || left[f] != 0;
            any_hi = any_hi || b.hi_len > 0;
            any_hi_left = any_hi_left || hi_left[f] != 0;
            const bool hi_fits = hi_word[f] < 4 && hi_at + static_cast<std::int32_t>(b.hi_len) <= 32;
            fits = fits && word[f] < 4 && at + len <= 32 && (b.hi_len == 0 || (hi_fits && !L::signed_fields));
        }
    }
};
template <class S>
inline constexpr field_plan<S> fields{};
static_assert(fields<q2_k>.fits && fields<q3_k>.fits && fields<q4_k>.fits && fields<q5_k>.fits && fields<q6_k>.fits);
static_assert(N == 1 || N % 4 == 0, "load_dup_quad fills whole quads");

// Fields f = N c .. N c + N - 1 of one block into out[c].
template <class S>
QTENSOR_OPS_INLINE void load_fields(const std::byte* block, ops::vi* out) {
    using F = field_plan<S>;
    constexpr const F& p = fields<S>;
    const std::byte* bytes = block + F::window;
    [[maybe_unused]] ops::vi all_words;
    if constexpr (N > 1) all_words = ops::load_dup_quad(bytes);
    const auto words = [&](const std::int32_t* index) QTENSOR_OPS_LAMBDA {
        if constexpr (N == 1) return ops::load_bytes(bytes + 4 * index[0]);
        else return ops::lookup(all_words, index);
    };
    QTENSOR_UNROLL
    for (std::size_t c = 0; c < F::count / N; ++c) {
        const std::size_t f = N * c;
        auto v = words(p.word + f);
        if constexpr (p.any_left) v = ops::shift_left(v, ops::load_i32(p.left + f));
        v = ops::shift_right(v, ops::load_i32(p.right + f));
        if constexpr (!layout<S>::signed_fields) v = v & ops::load_i32(p.mask + f);
        if constexpr (p.any_hi) {
            auto hi = words(p.hi_word + f);
            if constexpr (p.any_hi_left) hi = ops::shift_left(hi, ops::load_i32(p.hi_left + f));
            v = v | (ops::shift_right(hi, ops::load_i32(p.hi_right + f)) & ops::load_i32(p.hi_mask + f));
        }
        if constexpr (layout<S>::scale_bias != 0) v = v - ops::set_i(layout<S>::scale_bias);
        out[c] = v;
    }
}

// One Q8_K block rearranged once per call: the activations in the order of
// S's code vectors; for schemes with a code offset, -offset times the sums of
// their lanes' four bytes (lane l of vector g at offset_quads[N g + l]); for
// schemes with mins, against each field the activation sum of its
// sub-block where the field is a min, 0 where it is a scale.
struct activation {
    alignas(64) std::int8_t qs[256];
    alignas(64) std::int32_t offset_quads[64];
    alignas(64) std::int32_t min_sums[32];
    float d;
};

template <class S>
void prepare(const block_q8_k& src, activation& out) {
    using L = layout<S>;
    constexpr const block_plan& p = plan<S>;
    for (std::size_t pos = 0; pos < 256; ++pos) out.qs[pos] = src.qs[16 * p.order[pos / 16] + pos % 16];
    if constexpr (L::mins) {
        constexpr std::size_t per = 16 / L::sub_blocks; // bsums per sub-block
        for (std::size_t j = 0; j < L::sub_blocks; ++j) {
            out.min_sums[j] = out.min_sums[L::sub_blocks + j] = 0;
            for (std::size_t k = per * j; k < per * (j + 1); ++k) out.min_sums[L::sub_blocks + j] += src.bsums[k];
        }
    } else {
        for (std::size_t i = 0; i < 64; ++i)
            out.offset_quads[i] = -L::code_offset * (out.qs[4 * i] + out.qs[4 * i + 1] + out.qs[4 * i + 2] + out.qs[4 * i + 3]);
    }
    out.d = src.d;
}

constexpr std::int32_t every_byte(std::uint32_t x) { return static_cast<std::int32_t>(x * 0x01010101u); }

// Vector g of block w's unsigned codes: V bytes, one code each.
template <class S>
QTENSOR_OPS_INLINE ops::vi codes(const std::byte* w, std::size_t g) {
    using L = layout<S>;
    const vector_plan& v = plan<S>.v[g];
    const auto lo = ops::load_bytes(w + v.lo); // plan_fits: one load
    auto c = ops::shift_right(lo, static_cast<int>(v.lo_shift)) & ops::set_i(every_byte((1u << L::lo_bits) - 1));
    if constexpr (L::hi_bits > 0) {
        auto hi = v.hi_twice ? ops::load_dup_32(w + v.hi) : ops::load_bytes(w + v.hi); // plan_fits: one load
        if (!v.hi_uniform) hi = ops::shift_right(hi, ops::load_i32(v.hi_shift));
        // Bits hi_min .. of each byte up to bit lo_bits: within the byte,
        // as every lane's shift left the wanted bits at the same place.
        const int up = static_cast<int>(L::lo_bits) - static_cast<int>(v.hi_min);
        hi = up >= 0 ? ops::shift_left(hi, up) : ops::shift_right(hi, -up);
        c = c | (hi & ops::set_i(every_byte(((1u << L::hi_bits) - 1) << L::lo_bits)));
    }
    return c;
}

// The scale in both int16 halves of each lane, against two pair sums; or in
// the low half only, against one int32 that fits int16 (whose high half is
// its sign).
QTENSOR_OPS_INLINE ops::vi both_halves(ops::vi s) { return (s & ops::set_i(0xffff)) | ops::shift_left<16>(s); }
QTENSOR_OPS_INLINE ops::vi low_half(ops::vi s) { return s & ops::set_i(0xffff); }

// Vectors of fields per block (one, unused, where there are none).
template <class S>
constexpr std::size_t field_vectors_of() {
    if constexpr (has_fields<S>) return field_plan<S>::count / N;
    else return 1;
}

// One row w[nb] against one prepared Q8_K row a[nb].
template <class S, class Dot>
QTENSOR_OPS_INLINE float row_dot(const block_of<S>* w, const activation* a, std::size_t nb, Dot dot) {
    using L = layout<S>;
    constexpr const block_plan& p = plan<S>;
    ops::vf acc = ops::set_f(0.0f), acc_min = ops::set_f(0.0f);
    for (std::size_t b = 0; b < nb; ++b) {
        const auto* block = reinterpret_cast<const std::byte*>(w + b);
        QTENSOR_UNROLL // every cache line of the block prefetch_distance ahead
        for (std::size_t line = 0; line < sizeof(block_of<S>); line += 64)
            detail::prefetch(block, detail::prefetch_distance + line);
        constexpr std::size_t field_vectors = field_vectors_of<S>();
        constexpr std::size_t scale_vectors = has_fields<S> ? (L::sub_blocks + N - 1) / N : 1;
        ops::vi field[field_vectors];
        ops::vi scales[scale_vectors]; // sub-blocks N c .. N c + N - 1 in vector c
        if constexpr (has_fields<S>) {
            load_fields<S>(block, field);
            QTENSOR_UNROLL
            for (std::size_t c = 0; c < scale_vectors; ++c) scales[c] = L::mins ? both_halves(field[c]) : low_half(field[c]);
        } else {
            scales[0] = ops::set_i(1); // in the low half, as the offset schemes' scales
        }
        // Two partial sums halve the dependency chain of the scale products.
        ops::vi sums[2] = {ops::set_i(0), ops::set_i(0)};
        QTENSOR_UNROLL
        for (std::size_t g = 0; g < vectors; ++g) {
            const vector_plan& v = p.v[g];
            const auto lane_scale = ops::lookup(scales[v.scale_base / N], v.scale_index);
            const auto c = codes<S>(block, g), act = ops::load_bytes(a[b].qs + V * g);
            if constexpr (L::mins) {
                // Two int16 sums of byte pairs per lane (at most 2 * 63 * 128),
                // then each pair times its lane's scale, summed into int32.
                sums[g % 2] = dot.pairs(sums[g % 2], ops::pair_sums(c, act), lane_scale);
            } else {
                // Each lane's four (c - offset) a, so it sums its own weights'
                // products: at most 4 * 32 * 128 (Q6_K's codes less 32).
                const auto own = dot(ops::load_i32(a[b].offset_quads + N * g), c, act);
                sums[g % 2] = dot.pairs(sums[g % 2], own, lane_scale);
            }
        }
        const auto d = ops::set_f16(w[b].d) * ops::set_f(a[b].d);
        acc = ops::mul_add(ops::to_float(sums[0] + sums[1]), d, acc);
        if constexpr (L::mins) {
            ops::vi mins = ops::set_i(0);
            QTENSOR_UNROLL
            for (std::size_t c = L::sub_blocks / N; c < field_vectors; ++c)
                mins = mins + field[c] * ops::load_i32(a[b].min_sums + N * c);
            const auto dmin = ops::set_f16(w[b].dmin) * ops::set_f(a[b].d);
            acc_min = ops::mul_add(ops::to_float(mins), dmin, acc_min);
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
    ops::with_byte_dot([&](auto dot) QTENSOR_OPS_LAMBDA {
        for (std::size_t r = 0; r < w.rows; ++r) {
            const auto row = reinterpret_cast<const block_of<S>*>(w.data + r * w.stride_bytes);
            for (std::size_t t = 0; t < a.T; ++t)
                y.data[t * y.stride + r] = row_dot<S>(row, act.data() + t * nb, nb, dot);
        }
    });
}

} // namespace k_quant_impl

inline void matmul_tq2_0(weight_rows w, q8_k_rows a, output_rows y) { k_quant_impl::matmul<tq2_0>(w, a, y); }
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
