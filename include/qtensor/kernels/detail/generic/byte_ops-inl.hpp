// qtensor/kernels/detail/generic/byte_ops-inl.hpp: the byte ops of the `ops`
// vocabulary (scalar/ops.hpp defines them) written with its int32 lane ops,
// for instruction sets that have no byte instructions for them. An adaptor
// includes this file inside its namespace ops, after its lane ops, and takes
// what it lacks from ops::portable.
//
// No include guard and no namespace on purpose (one inclusion per
// instruction set).

namespace portable {

// Byte k of every lane, as unsigned and as signed int32.
template <int k>
inline vi u8(vi v) { return shift_right<8 * k>(v) & set_i(0xff); }
template <int k>
inline vi s8(vi v) { return shift_right<24>(shift_left<24 - 8 * k>(v)); }
template <int k>
inline vi s16(vi v) { return shift_right<16>(shift_left<16 - 16 * k>(v)); }
// Byte k of every lane set to the low byte of x (whose other bytes may be anything).
template <int k>
inline vi at_byte(vi x) { return shift_left<8 * k>(x & set_i(0xff)); }

template <int k>
inline vi abs_byte(vi w) {
    const vi x = s8<k>(w);
    return at_byte<k>(select(x < set_i(0), neg(x), x));
}
inline vi abs_i8(vi w) { return abs_byte<0>(w) | abs_byte<1>(w) | abs_byte<2>(w) | abs_byte<3>(w); }

template <int k>
inline vi sign_byte(vi s, vi w) {
    const vi x = s8<k>(w), y = s8<k>(s), zero = set_i(0);
    return at_byte<k>(select(x < zero, neg(y), select(x == zero, zero, y)));
}
inline vi sign_i8(vi s, vi w) {
    return sign_byte<0>(s, w) | sign_byte<1>(s, w) | sign_byte<2>(s, w) | sign_byte<3>(s, w);
}

inline vi pair_sums(vi u, vi s) {
    const vi lo = u8<0>(u) * s8<0>(s) + u8<1>(u) * s8<1>(s);
    const vi hi = u8<2>(u) * s8<2>(s) + u8<3>(u) * s8<3>(s);
    return (lo & set_i(0xffff)) | shift_left<16>(hi);
}

struct byte_dot {
    static constexpr bool full_range = true;
    inline vi operator()(vi acc, vi u, vi s) const {
        return acc + (u8<0>(u) * s8<0>(s) + u8<1>(u) * s8<1>(s)) + (u8<2>(u) * s8<2>(s) + u8<3>(u) * s8<3>(s));
    }
    inline vi pairs(vi acc, vi x, vi y) const { return acc + (s16<0>(x) * s16<0>(y) + s16<1>(x) * s16<1>(y)); }
};
template <class F>
inline void with_byte_dot(F&& f) { f(byte_dot{}); }

inline vi gather_bytes(const std::byte* base, vi offset) {
    alignas(64) std::int32_t at[lanes], out[lanes];
    store(offset, at);
    for (std::size_t i = 0; i < lanes; ++i) std::memcpy(out + i, base + at[i], 4);
    return load_i32(out);
}

inline vi lookup(vi table, const std::int32_t* index) {
    alignas(64) std::int32_t t[lanes], out[lanes];
    store(table, t);
    for (std::size_t i = 0; i < lanes; ++i) out[i] = t[index[i]];
    return load_i32(out);
}

inline vi load_quads(const std::byte* const* p, std::size_t offset) {
    alignas(64) std::int32_t out[lanes];
    for (std::size_t k = 0; k < lanes / 4; ++k) std::memcpy(out + 4 * k, p[k] + offset, 16);
    return load_i32(out);
}

inline vi load_dup_32(const void* p) {
    alignas(64) std::uint8_t out[4 * lanes];
    for (std::size_t k = 0; k < sizeof out; ++k) out[k] = static_cast<const std::uint8_t*>(p)[k % 32];
    return load_bytes(out);
}

inline vi load_dup_quad(const void* p) {
    alignas(64) std::int32_t out[lanes];
    for (std::size_t k = 0; k < lanes / 4; ++k) std::memcpy(out + 4 * k, p, 16);
    return load_i32(out);
}

inline vf load_quad_f16(const std::byte* const* p, std::size_t offset) {
    alignas(64) float out[lanes];
    for (std::size_t k = 0; k < lanes / 4; ++k) {
        fp16_t h;
        std::memcpy(&h, p[k] + offset, 2);
        for (std::size_t j = 0; j < 4; ++j) out[4 * k + j] = f16_to_f32(h);
    }
    return load(out);
}

} // namespace portable
