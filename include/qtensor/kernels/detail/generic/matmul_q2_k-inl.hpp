// qtensor/kernels/detail/generic/matmul_q2_k-inl.hpp: the dot and matmul kernels
// of Q2_K weights against Q8_K activations, written once over the vector
// vocabulary `ops`; each within the error budget stated in matmul.hpp.
//
// A Q2_K block (256 weights) is 16 sub-blocks of 16, each with a 4-bit scale
// and a 4-bit min; weight = d * scale * code - dmin * min, codes 0..3. Its 64
// code bytes hold 4 bit planes: plane s of byte l in half h (l < 32) is
// element 128h + 32s + l. Per block, two exact integers: the codes times the
// activations, weighted by their sub-block's scale; and the mins times the
// activation's 16 sub-block sums (bsums). Each block then adds them, times
// d * da and dmin * da, with one FMA each.
//
// No include guard and no namespace on purpose: included by
// generic/kernels-inl.hpp inside each instruction set's namespace.

namespace q2_k_impl {

constexpr std::size_t V = 4 * ops::lanes; // code bytes per vector
static_assert(64 % V == 0);

// One Q8_K block rearranged once per call: the activations that meet vector
// v of the codes at plane s, back to back; the block sums as int32.
struct activation {
    alignas(64) std::int8_t qs[256];
    std::int32_t bsums[16];
    float d;
};

inline void prepare(const block_q8_k& src, activation& out) {
    constexpr std::size_t run = V < 32 ? V : 32; // code bytes within one half
    for (std::size_t v = 0; v < 64 / V; ++v)
        for (std::size_t s = 0; s < 4; ++s)
            for (std::size_t B = V * v; B < V * v + V; B += run)
                std::memcpy(out.qs + V * (4 * v + s) + (B - V * v), src.qs.data() + 128 * (B / 32) + 32 * s + B % 32,
                            run);
    for (std::size_t j = 0; j < 16; ++j) out.bsums[j] = src.bsums[j];
    out.d = src.d;
}

// Sub-block of code byte B at plane s.
constexpr std::size_t sub_block(std::size_t B, std::size_t s) { return 8 * (B / 32) + 2 * s + (B % 32) / 16; }

// Where a vector spans several sub-blocks (V > 16), lane p of vector v at
// plane s takes its scale from lane index[v][s][p] of the ops::lanes scales
// loaded for v (sub-blocks lanes * v ..., which cover them).
struct scale_table {
    alignas(64) std::int32_t index[64 / V][4][ops::lanes];
};
constexpr scale_table make_scale_table() {
    scale_table t{};
    for (std::size_t v = 0; v < 64 / V; ++v)
        for (std::size_t s = 0; s < 4; ++s)
            for (std::size_t p = 0; p < ops::lanes; ++p)
                t.index[v][s][p] = static_cast<std::int32_t>(sub_block(V * v + 4 * p, s) - ops::lanes * v);
    return t;
}
inline constexpr scale_table scale_lanes = make_scale_table();

// One Q2_K row w[nb] against one prepared Q8_K row a[nb].
template <class Dot>
QTENSOR_OPS_INLINE float row_dot(const block_q2_k* w, const activation* a, std::size_t nb, Dot dot) {
    constexpr std::size_t N = ops::lanes;
    const auto three = ops::set_i(0x03030303), low_nibble = ops::set_i(0x0f);
    ops::vf acc = ops::set_f(0.0f), acc_min = ops::set_f(0.0f);
    for (std::size_t b = 0; b < nb; ++b) {
        // Two partial sums halve the dependency chain of the scale products.
        ops::vi sums[2] = {ops::set_i(0), ops::set_i(0)}, mins = ops::set_i(0);
        QTENSOR_UNROLL
        for (std::size_t v = 0; v < 64 / V; ++v) {
            const auto bytes = ops::load_bytes(w[b].qs.data() + V * v);
            // Scales and mins of sub-blocks N v .. N v + N - 1, one per lane.
            const auto sc = ops::load_u8(w[b].scales.data() + N * v);
            const auto scale = sc & low_nibble;
            // The scale in both int16 halves of its lane, for the pair products below.
            const auto scale2 = scale | ops::shift_left<16>(scale);
            QTENSOR_UNROLL
            for (std::size_t s = 0; s < 4; ++s) {
                const auto plane = ops::shift_right(bytes, static_cast<int>(2 * s)) & three;
                // Two int16 sums of byte pairs per lane (at most 2 * 3 * 128),
                // then each pair times its lane's scale, summed into int32.
                const auto pairs = ops::pair_sums(plane, ops::load_bytes(a[b].qs + V * (4 * v + s)));
                ops::vi lane_scale;
                if constexpr (V > 16) {
                    lane_scale = ops::lookup(scale2, scale_lanes.index[v][s]);
                } else { // one sub-block for the whole vector
                    const std::int32_t x = w[b].scales[sub_block(V * v, s)] & 0x0f;
                    lane_scale = ops::set_i(x | x << 16);
                }
                sums[s % 2] = dot.pairs(sums[s % 2], pairs, lane_scale);
            }
            mins = dot.pairs(mins, ops::load_i32(a[b].bsums + N * v), ops::shift_right<4>(sc));
        }
        const float d = ops::f16_to_f32(w[b].d) * a[b].d;
        const float dmin = ops::f16_to_f32(w[b].dmin) * a[b].d;
        acc = ops::mul_add(ops::to_float(sums[0] + sums[1]), ops::set_f(d), acc);
        acc_min = ops::mul_add(ops::to_float(mins), ops::set_f(dmin), acc_min);
    }
    return ops::reduce_sum(acc) - ops::reduce_sum(acc_min);
}

} // namespace q2_k_impl

// y[t, r] = w[r] . a[t] over the rows and tokens given; one row at a time
// (two rows side by side measured slower out of cache).
inline void matmul_q2_k(weight_rows w, q8_k_rows a, output_rows y) {
    const std::size_t nb = a.n / q2_k::block_elems;
    std::vector<q2_k_impl::activation> act(a.T * nb);
    for (std::size_t i = 0; i < act.size(); ++i) q2_k_impl::prepare(a.blocks[i], act[i]);
    ops::with_byte_dot([&](auto dot) QTENSOR_OPS_LAMBDA {
        for (std::size_t r = 0; r < w.rows; ++r) {
            const auto row = reinterpret_cast<const block_q2_k*>(w.data + r * w.stride_bytes);
            for (std::size_t t = 0; t < a.T; ++t)
                y.data[t * y.stride + r] = q2_k_impl::row_dot(row, act.data() + t * nb, nb, dot);
        }
    });
}

inline float dot_q2_k_q8_k(const block_q2_k* w, const block_q8_k* a, std::size_t n) {
    float out;
    matmul_q2_k({reinterpret_cast<const std::byte*>(w), 0, 1}, {a, n, 1}, {&out, 0});
    return out;
}
