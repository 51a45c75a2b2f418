// qtensor/kernels/detail/scalar/ops.hpp: the vector vocabulary that the generic
// kernels (kernels/detail/generic/) are written in, on vectors of one lane, in plain
// C++. This file is the vocabulary's definition: the Highway and xsimd
// adaptors (highway/ops-inl.hpp, xsimd/ops.hpp) give each op the same meaning
// on N lanes, lane by lane unless the op says otherwise.
//
// Internal to the kernels: include qtensor/kernels/kernels.hpp.
#pragma once

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "qtensor/core/float_bits.hpp"
#include "qtensor/core/half.hpp"
#include "qtensor/kernels/abi.hpp"

QTENSOR_KERNELS_BEGIN_NAMESPACE
namespace detail::scalar_target::ops {

// ---- types and sizes -------------------------------------------------------------

template <class T>
struct lane {
    T v;
};
// A comparison's result; masks of different lane types are different types.
template <class T>
struct lane_mask {
    bool v;
};

using vf = lane<float>;        // `lanes` floats
using vi = lane<std::int32_t>; // `lanes` int32: integer codes, and float bits
using vd = lane<double>;       // `lanes_d` doubles

inline constexpr std::size_t lanes = 1;   // a power of two, at most 16
inline constexpr std::size_t lanes_d = 1; // a power of two, at most 8

// Whether rounded() keeps a product from fusing with the add after it.
inline constexpr bool can_round = true;
// Whether load_f16 is a native conversion (else the kernels decode the bits).
inline constexpr bool native_f16 = false;

// ---- arithmetic, bitwise and comparison operators ------------------------------
// vf and vd: + - * /; vi: + - (wrapping) * (products that fit) & | ^; all:
// == != < <= > >= -> masks.

template <class T>
lane<T> operator+(lane<T> a, lane<T> b) { return {a.v + b.v}; }
template <class T>
lane<T> operator-(lane<T> a, lane<T> b) { return {a.v - b.v}; }
template <class T>
lane<T> operator*(lane<T> a, lane<T> b) { return {a.v * b.v}; }
template <class T>
lane<T> operator/(lane<T> a, lane<T> b) { return {a.v / b.v}; }
inline vi operator+(vi a, vi b) { return {static_cast<std::int32_t>(std::uint32_t(a.v) + std::uint32_t(b.v))}; }
inline vi operator-(vi a, vi b) { return {static_cast<std::int32_t>(std::uint32_t(a.v) - std::uint32_t(b.v))}; }
inline vi operator&(vi a, vi b) { return {a.v & b.v}; }
inline vi operator|(vi a, vi b) { return {a.v | b.v}; }
inline vi operator^(vi a, vi b) { return {a.v ^ b.v}; }
template <class T>
lane_mask<T> operator==(lane<T> a, lane<T> b) { return {a.v == b.v}; }
template <class T>
lane_mask<T> operator!=(lane<T> a, lane<T> b) { return {a.v != b.v}; }
template <class T>
lane_mask<T> operator<(lane<T> a, lane<T> b) { return {a.v < b.v}; }
template <class T>
lane_mask<T> operator<=(lane<T> a, lane<T> b) { return {a.v <= b.v}; }
template <class T>
lane_mask<T> operator>(lane<T> a, lane<T> b) { return {a.v > b.v}; }
template <class T>
lane_mask<T> operator>=(lane<T> a, lane<T> b) { return {a.v >= b.v}; }

// ---- broadcast, load, store ------------------------------------------------------

inline vf set_f(float x) { return {x}; }
inline vi set_i(std::int32_t x) { return {x}; }
inline vd set_d(double x) { return {x}; }

// p[0, lanes) (any alignment).
inline vf load(const float* p) { return {*p}; }
inline void store(vf v, float* p) { *p = v.v; }
inline void store(vi v, std::int32_t* p) { *p = v.v; }
// p[0, count) in the first lanes, `fill` in the others; count < lanes.
inline vf load_partial(const float*, std::size_t, float fill) { return {fill}; }
// The first `count` lanes of v to p[0, count); count < lanes.
inline void store_partial(vf, float*, std::size_t) {}

// `lanes` narrow integers at p, widened to int32.
inline vi load_u8(const std::uint8_t* p) { return {*p}; }
inline vi load_i8(const std::int8_t* p) { return {*p}; }
inline vi load_u16(const std::uint16_t* p) { return {*p}; }
// `lanes` fp16 at p, exactly (only where native_f16).
inline vf load_f16(const fp16_t* p) { return {fp16_to_fp32(*p)}; }
// `lanes` int32 at p (any alignment).
inline vi load_i32(const std::int32_t* p) { return {*p}; }
// One fp16 as a float (the instruction set's conversion where native_f16);
// and in every lane.
inline float f16_to_f32(fp16_t h) { return fp16_to_fp32(h); }
inline vf set_f16(fp16_t h) { return {fp16_to_fp32(h)}; }
// `lanes_d` floats at p, widened; and back, rounded to nearest.
inline vd load_f64(const float* p) { return {*p}; }
inline void store_f32(vd v, float* p) { *p = static_cast<float>(v.v); }
// The low byte of each lane (lanes known to fit) to p[0, lanes).
inline void store_low_bytes(vi v, std::uint8_t* p) { *p = static_cast<std::uint8_t>(v.v); }
inline void store_low_bytes(vi v, std::int8_t* p) { *p = static_cast<std::int8_t>(v.v); }

// ---- conversions -------------------------------------------------------------------

// The bits of a float lane as int32, and back.
inline vi bits(vf v) { return {std::bit_cast<std::int32_t>(v.v)}; }
inline vf from_bits(vi v) { return {std::bit_cast<float>(v.v)}; }
inline vf to_float(vi v) { return {static_cast<float>(v.v)}; }
// Toward zero, for values known to fit in int32.
inline vi truncate(vf v) { return {static_cast<std::int32_t>(v.v)}; }
// -1 (all bits) where m is true, else 0.
inline vi mask_vec(lane_mask<float> m) { return {m.v ? -1 : 0}; }

// ---- arithmetic ----------------------------------------------------------------------

// min and max: with a NaN operand, either operand (the instruction sets differ).
template <class T>
lane<T> min(lane<T> a, lane<T> b) { return {b.v < a.v ? b.v : a.v}; }
template <class T>
lane<T> max(lane<T> a, lane<T> b) { return {a.v < b.v ? b.v : a.v}; }
template <class T>
lane<T> neg(lane<T> a) { return {-a.v}; }
// a * b + c, fused or not (within the budgets either way).
template <class T>
lane<T> mul_add(lane<T> a, lane<T> b, lane<T> c) { return {a.v * b.v + c.v}; }
// c - a * b, likewise.
inline vd neg_mul_add(vd a, vd b, vd c) { return {c.v - a.v * b.v}; }
// To nearest, ties to even; and down.
inline vd round(vd v) { return {std::nearbyint(v.v)}; }
inline vd floor(vd v) { return {std::floor(v.v)}; }
// Shifts of int32 lanes: left (bits shifted out are lost), right arithmetic.
template <int k>
vi shift_left(vi v) { return {static_cast<std::int32_t>(static_cast<std::uint32_t>(v.v) << k)}; }
template <int k>
vi shift_right(vi v) { return {v.v >> k}; }
inline vi shift_left(vi v, int k) { return {static_cast<std::int32_t>(static_cast<std::uint32_t>(v.v) << k)}; }
inline vi shift_right(vi v, int k) { return {v.v >> k}; }
// Each lane by its own count (0 to 31).
inline vi shift_left(vi v, vi k) { return {static_cast<std::int32_t>(static_cast<std::uint32_t>(v.v) << k.v)}; }
inline vi shift_right(vi v, vi k) { return {v.v >> k.v}; }
// v as a rounded float that later code cannot fuse with the product that made it.
inline vf rounded(vf v) { return {qtensor::detail::opaque(v.v)}; }
// exp and tanh within a few ulp, NaN in, NaN out. exp only for x <= 88.75
// (+inf from ln(FLT_MAX) on; Highway's is not valid further): kernels clamp.
inline vf exp(vf v) { return {std::exp(v.v)}; }
// The square root, correctly rounded (IEEE), as std::sqrt.
inline vf sqrt(vf v) { return {std::sqrt(v.v)}; }
inline vf tanh(vf v) { return {std::tanh(v.v)}; }

// ---- masks -----------------------------------------------------------------------

template <class T, class V>
V select(lane_mask<T> m, V a, V b) { return m.v ? a : b; }
template <class T>
lane_mask<T> mask_or(lane_mask<T> a, lane_mask<T> b) { return {a.v || b.v}; }
template <class T>
lane_mask<T> mask_and(lane_mask<T> a, lane_mask<T> b) { return {a.v && b.v}; }
// a and not b.
template <class T>
lane_mask<T> mask_and_not(lane_mask<T> a, lane_mask<T> b) { return {a.v && !b.v}; }
template <class T>
bool all_false(lane_mask<T> m) { return !m.v; }
// Lane i of m in bit i.
template <class T>
std::uint64_t mask_bits(lane_mask<T> m) { return m.v ? 1u : 0u; }
// The first true lane, or -1.
template <class T>
int first_true(lane_mask<T> m) { return m.v ? 0 : -1; }

// ---- bytes: the integer dot products --------------------------------------------
// A vi also holds 4 * lanes bytes: lane i holds bytes 4i .. 4i + 3, in memory
// order (lowest first). `u` names unsigned bytes, `s` and `w` signed ones.
// Byte-wise & | ^ are those of vi; so is (shift_right(v, k) & m), which
// takes bits k .. of every byte while m keeps at most 8 - k bits per byte.

namespace bytes_impl {
inline std::uint8_t byte(vi v, int k) { return static_cast<std::uint8_t>(static_cast<std::uint32_t>(v.v) >> (8 * k)); }
inline std::int32_t u8(vi v, int k) { return byte(v, k); }
inline std::int32_t s8(vi v, int k) { return static_cast<std::int8_t>(byte(v, k)); }
inline std::int32_t s16(vi v, int k) { return static_cast<std::int16_t>(static_cast<std::uint32_t>(v.v) >> (16 * k)); }
template <class F>
vi bytewise(F f) {
    std::uint32_t out = 0;
    for (int k = 0; k < 4; ++k) out |= static_cast<std::uint32_t>(static_cast<std::uint8_t>(f(k))) << (8 * k);
    return {static_cast<std::int32_t>(out)};
}
} // namespace bytes_impl

// 4 * lanes bytes at p (any alignment).
inline vi load_bytes(const void* p) {
    std::int32_t v;
    std::memcpy(&v, p, sizeof v);
    return {v};
}
inline void store_bytes(vi v, void* p) { std::memcpy(p, &v.v, sizeof v.v); }
// Lane i: the 4 bytes at base + offset[i].
inline vi gather_bytes(const std::byte* base, vi offset) { return load_bytes(base + offset.v); }
// The 32 bytes at p repeated to fill the vector: on one lane, the first 4.
inline vi load_dup_32(const void* p) { return load_bytes(p); }
// |w| per byte, read as unsigned (|-128| = 128); and s * sign(w) per byte (s
// negated where w < 0, 0 where w == 0), for s != -128.
inline vi abs_i8(vi w) { return bytes_impl::bytewise([&](int k) { return std::abs(bytes_impl::s8(w, k)); }); }
inline vi sign_i8(vi s, vi w) {
    return bytes_impl::bytewise([&](int k) {
        const std::int32_t x = bytes_impl::s8(w, k);
        return x < 0 ? -bytes_impl::s8(s, k) : x == 0 ? 0 : bytes_impl::s8(s, k);
    });
}
// Per 16-bit half of each lane, u0 * s0 + u1 * s1 of its two bytes, exact
// while that fits int16.
inline vi pair_sums(vi u, vi s) {
    using namespace bytes_impl;
    const std::int32_t lo = u8(u, 0) * s8(s, 0) + u8(u, 1) * s8(s, 1);
    const std::int32_t hi = u8(u, 2) * s8(s, 2) + u8(u, 3) * s8(s, 3);
    return {static_cast<std::int32_t>((static_cast<std::uint32_t>(lo) & 0xffff) | static_cast<std::uint32_t>(hi) << 16)};
}
// Lane i: lane index[i] of table (0 <= index[i] < lanes).
inline vi lookup(vi table, const std::int32_t*) { return table; }

// The byte dot product: with_byte_dot(f) calls f(dot) with the fastest one this
// CPU has (a run-time choice on some instruction sets). Every one has:
//   dot(acc, u, s): acc + per lane, the sum of its 4 products u * s; exact
//     if dot.full_range, else only while each pair sum u0 s0 + u1 s1 fits
//     int16 (x86's pmaddubsw);
//   dot.pairs(acc, x, y): acc + per lane, x_lo * y_lo + x_hi * y_hi of its
//     int16 halves, exactly.
struct byte_dot {
    static constexpr bool full_range = true;
    vi operator()(vi acc, vi u, vi s) const {
        using namespace bytes_impl;
        std::int32_t sum = 0;
        for (int k = 0; k < 4; ++k) sum += u8(u, k) * s8(s, k);
        return acc + vi{sum};
    }
    vi pairs(vi acc, vi x, vi y) const {
        using namespace bytes_impl;
        return acc + vi{s16(x, 0) * s16(y, 0) + s16(x, 1) * s16(y, 1)};
    }
};
template <class F>
void with_byte_dot(F&& f) { f(byte_dot{}); }
// The same with a dot whose full_range is true (slower where with_byte_dot's is not).
template <class F>
void with_full_range_byte_dot(F&& f) { f(byte_dot{}); }

// ---- quads: 16-byte chunks (instruction sets with lanes >= 4 only) ------------------
// Quad k is lanes 4k .. 4k + 3 of a vector; a vector has lanes / 4 of them.
//   load_quads(p, offset): quad k = the 16 bytes at p[k] + offset;
//   load_dup_quad(p): the 16 bytes at p in every quad;
//   load_quad_f16(p, offset): every lane of quad k = the fp16 at p[k] + offset.
// One lane has no quads: the kernels take another path there, and these
// declarations only let the kernels that use quads be written (a call fails to
// compile).
template <class T = void>
vi load_quads(const std::byte* const*, std::size_t) {
    static_assert(!std::is_void_v<T>, "no quads on one lane");
    return {};
}
template <class T = void>
vi load_dup_quad(const void*) {
    static_assert(!std::is_void_v<T>, "no quads on one lane");
    return {};
}
template <class T = void>
vf load_quad_f16(const std::byte* const*, std::size_t) {
    static_assert(!std::is_void_v<T>, "no quads on one lane");
    return {};
}

// ---- across lanes -------------------------------------------------------------------

template <class T>
T reduce_sum(lane<T> v) { return v.v; }
template <class T>
T reduce_max(lane<T> v) { return v.v; }
// The even (odd) lanes of the 2N lanes lo, hi, lo's first.
template <class T>
lane<T> concat_even(lane<T>, lane<T> lo) { return lo; }
template <class T>
lane<T> concat_odd(lane<T> hi, lane<T>) { return hi; }

} // namespace detail::scalar_target::ops
QTENSOR_KERNELS_END_NAMESPACE
