// qtensor/kernels/detail/xsimd/ops.hpp: two things. At the bottom, the `ops`
// vocabulary of the generic kernels (scalar/ops.hpp defines it) on xsimd
// batches. First, xsimd_ops: the helpers `ops` is written in, on batches of
// one xsimd architecture A (the compile-time one; see backend.hpp):
//   - what xsimd 8 lacks: widening loads (int8/uint8/uint16/fp16/float to
//     wider lanes), narrowing int32 lanes to bytes, float <-> double of a
//     partial vector;
//   - what moved between xsimd versions: horizontal sum (hadd in 8.x,
//     reduce_add from 9) and bit casts (batch type in 8.x, element type from 9);
//   - rounded(): a barrier that keeps GCC from fusing a product into an add.
// Each op has an x86 body (intrinsics on the batch's raw register, for SSE2 ..
// AVX-512) and a portable one (a loop over the lanes) for every other arch,
// so a kernel written in these ops compiles for any xsimd architecture.
//
// Internal to the xsimd backend: include qtensor/kernels/kernels.hpp.
#pragma once

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "qtensor/core/half.hpp"
#include "qtensor/kernels/abi.hpp"
#include "xsimd/xsimd.hpp"

#if XSIMD_WITH_SSE2
#include <immintrin.h>
#endif

QTENSOR_KERNELS_BEGIN_NAMESPACE
namespace detail::xsimd_ops {

template <class T, class A>
using vec = xsimd::batch<T, A>;

// Which x86 register width A's integer batches use natively (0: none, e.g.
// AVX without AVX2, whose integer batches xsimd emulates, or any other arch).
template <class A>
constexpr int x86_int_bits() {
#if XSIMD_WITH_AVX512BW
    if constexpr (std::is_base_of_v<xsimd::avx512bw, A>) return 512;
#endif
#if XSIMD_WITH_AVX2
    if constexpr (std::is_base_of_v<xsimd::avx2, A>) return 256;
#endif
#if XSIMD_WITH_SSE2
    if constexpr (std::is_base_of_v<xsimd::sse2, A>) return 128;
#endif
    return 0;
}

// ---- across xsimd versions ---------------------------------------------------

template <class T, class A>
T hsum(const vec<T, A>& v) {
#if XSIMD_VERSION_MAJOR >= 9
    return xsimd::reduce_add(v);
#else
    return xsimd::hadd(v);
#endif
}

template <class T, class A>
T hmax(const vec<T, A>& v) {
    alignas(64) T lanes[vec<T, A>::size];
    v.store_aligned(lanes);
    T m = lanes[0];
    for (std::size_t i = 1; i < vec<T, A>::size; ++i) m = lanes[i] > m ? lanes[i] : m;
    return m;
}

// v's bits as lanes of To (same lane size).
template <class To, class T, class A>
vec<To, A> bits(const vec<T, A>& v) {
#if XSIMD_VERSION_MAJOR >= 9
    return xsimd::bitwise_cast<To>(v);
#else
    return xsimd::bitwise_cast<vec<To, A>>(v);
#endif
}

// The lanes of v, forced to exist as rounded floats: the vector twin of
// qtensor::detail::fmul. xsimd's operators are plain vector arithmetic to GCC,
// which fuses a product and the add after it into an FMA under its default
// -ffp-contract=fast; the references round every product first.
template <class A>
vec<float, A> rounded(vec<float, A> v) {
    auto r = v.data;
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    asm("" : "+v"(r));
#elif defined(__GNUC__) && (defined(__aarch64__) || defined(__arm__))
    asm("" : "+w"(r));
#endif
    return vec<float, A>(r);
}

// Whether rounded() is a real barrier on this compiler and arch. Where it is
// not, the quantizers (which must give the references' bits) are the references.
constexpr bool can_round =
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__) || defined(__aarch64__) || defined(__arm__))
    true;
#else
    false;
#endif

// ---- partial vectors -------------------------------------------------------------

// p[0, count) in the first lanes, `fill` in the others; count < size.
template <class A, class T>
vec<T, A> load_partial(const T* p, std::size_t count, T fill) {
    alignas(64) T buf[vec<T, A>::size];
    for (auto& b : buf) b = fill;
    std::memcpy(buf, p, count * sizeof(T));
    return vec<T, A>::load_aligned(buf);
}

// The first `count` lanes of v to p[0, count); count < size.
template <class T, class A>
void store_partial(const vec<T, A>& v, T* p, std::size_t count) {
    alignas(64) T buf[vec<T, A>::size];
    v.store_aligned(buf);
    std::memcpy(p, buf, count * sizeof(T));
}

// ---- widening loads ----------------------------------------------------------------

// Lanes of To from as many From at p, each converted as by static_cast (the
// portable body of every widening load below).
template <class To, class A, class From>
vec<To, A> load_each(const From* p) {
    alignas(64) To buf[vec<To, A>::size];
    for (std::size_t i = 0; i < vec<To, A>::size; ++i) buf[i] = static_cast<To>(p[i]);
    return vec<To, A>::load_aligned(buf);
}

#if XSIMD_WITH_SSE2
inline __m128i load64(const void* p) { return _mm_loadl_epi64(static_cast<const __m128i*>(p)); }
inline __m128i load128(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }
#endif

// size int8 at p -> int32 lanes.
template <class A>
vec<std::int32_t, A> load_i8_i32(const std::int8_t* p) {
    using V = vec<std::int32_t, A>;
    constexpr int w = x86_int_bits<A>();
#if XSIMD_WITH_AVX512BW
    if constexpr (w == 512) return V(_mm512_cvtepi8_epi32(load128(p)));
#endif
#if XSIMD_WITH_AVX2
    if constexpr (w == 256) return V(_mm256_cvtepi8_epi32(load64(p)));
#endif
#if XSIMD_WITH_SSE2
    if constexpr (w == 128) {
        std::int32_t word;
        std::memcpy(&word, p, 4);
        const __m128i x = _mm_cvtsi32_si128(word);
        const __m128i x16 = _mm_unpacklo_epi8(x, x);
        return V(_mm_srai_epi32(_mm_unpacklo_epi16(x16, x16), 24));
    }
#endif
    return load_each<std::int32_t, A>(p);
}

// size uint8 at p -> int32 lanes.
template <class A>
vec<std::int32_t, A> load_u8_i32(const std::uint8_t* p) {
    using V = vec<std::int32_t, A>;
    constexpr int w = x86_int_bits<A>();
#if XSIMD_WITH_AVX512BW
    if constexpr (w == 512) return V(_mm512_cvtepu8_epi32(load128(p)));
#endif
#if XSIMD_WITH_AVX2
    if constexpr (w == 256) return V(_mm256_cvtepu8_epi32(load64(p)));
#endif
#if XSIMD_WITH_SSE2
    if constexpr (w == 128) {
        std::int32_t word;
        std::memcpy(&word, p, 4);
        const __m128i zero = _mm_setzero_si128();
        return V(_mm_unpacklo_epi16(_mm_unpacklo_epi8(_mm_cvtsi32_si128(word), zero), zero));
    }
#endif
    return load_each<std::int32_t, A>(p);
}

// size uint16 at p -> uint32 lanes.
template <class A>
vec<std::uint32_t, A> load_u16_u32(const std::uint16_t* p) {
    using V = vec<std::uint32_t, A>;
    constexpr int w = x86_int_bits<A>();
#if XSIMD_WITH_AVX512BW
    if constexpr (w == 512) return V(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))));
#endif
#if XSIMD_WITH_AVX2
    if constexpr (w == 256) return V(_mm256_cvtepu16_epi32(load128(p)));
#endif
#if XSIMD_WITH_SSE2
    if constexpr (w == 128) return V(_mm_unpacklo_epi16(load64(p), _mm_setzero_si128()));
#endif
    return load_each<std::uint32_t, A>(p);
}

// size fp16 at p -> float lanes, exact (fp16_to_fp32: NaN keeps sign and
// payload and comes out quiet). F16C's vcvtph2ps where the build has it;
// otherwise integer bit moves, with fp16 subnormals as m * 2^-24 (an exact
// convert and multiply).
template <class A>
vec<float, A> load_f16(const fp16_t* h) {
    using VF = vec<float, A>;
    using VU = vec<std::uint32_t, A>;
    [[maybe_unused]] const auto* p = reinterpret_cast<const std::uint16_t*>(h);
#if defined(__F16C__) && XSIMD_WITH_AVX
    if constexpr (VF::size == 4) return VF(_mm_cvtph_ps(load64(p)));
    if constexpr (VF::size == 8) return VF(_mm256_cvtph_ps(load128(p)));
#endif
#if XSIMD_WITH_AVX512F
    if constexpr (VF::size == 16)
        return VF(_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))));
#endif
    const VU b = load_u16_u32<A>(p);
    const VU exp = (b >> 10) & VU(0x1f);
    const VU mant = b & VU(0x3ff);
    const VU sign = (b & VU(0x8000)) << 16;
    const VU normal = ((exp + VU(112)) << 23) | (mant << 13);
    const VU subnormal = bits<std::uint32_t>(xsimd::batch_cast<float>(bits<std::int32_t>(mant)) * VF(0x1p-24f));
    const VU quiet = xsimd::select(mant != VU(0), VU(0x00400000), VU(0));
    const VU special = VU(0x7f800000) | (mant << 13) | quiet;
    const VU magnitude = xsimd::select(exp == VU(0), subnormal, xsimd::select(exp == VU(0x1f), special, normal));
    return bits<float>(sign | magnitude);
}

// size floats at p -> double lanes, and back (rounded to nearest).
template <class A>
vec<double, A> load_f32_f64(const float* p) {
    using V = vec<double, A>;
#if XSIMD_WITH_AVX512F
    if constexpr (std::is_base_of_v<xsimd::avx512f, A>) return V(_mm512_cvtps_pd(_mm256_loadu_ps(p)));
#endif
#if XSIMD_WITH_AVX
    if constexpr (std::is_base_of_v<xsimd::avx, A>) return V(_mm256_cvtps_pd(_mm_loadu_ps(p)));
#endif
#if XSIMD_WITH_SSE2
    if constexpr (std::is_base_of_v<xsimd::sse2, A>) return V(_mm_cvtps_pd(_mm_castsi128_ps(load64(p))));
#endif
    return load_each<double, A>(p);
}

template <class A>
void store_f64_f32(const vec<double, A>& v, float* p) {
#if XSIMD_WITH_AVX512F
    if constexpr (std::is_base_of_v<xsimd::avx512f, A>) return _mm256_storeu_ps(p, _mm512_cvtpd_ps(v.data));
#endif
#if XSIMD_WITH_AVX
    if constexpr (std::is_base_of_v<xsimd::avx, A>) return _mm_storeu_ps(p, _mm256_cvtpd_ps(v.data));
#endif
#if XSIMD_WITH_SSE2
    if constexpr (std::is_base_of_v<xsimd::sse2, A>)
        return _mm_storel_epi64(reinterpret_cast<__m128i*>(p), _mm_castps_si128(_mm_cvtpd_ps(v.data)));
#endif
    alignas(64) double lanes[vec<double, A>::size];
    v.store_aligned(lanes);
    for (std::size_t i = 0; i < vec<double, A>::size; ++i) p[i] = static_cast<float>(lanes[i]);
}

// The low byte of each int32 lane to p[0, size) (lanes known to be in
// [-128, 255], e.g. codes).
template <class A>
void store_low_bytes(const vec<std::int32_t, A>& v, void* p) {
    constexpr int w = x86_int_bits<A>();
#if XSIMD_WITH_AVX512BW
    if constexpr (w == 512) return _mm_storeu_si128(static_cast<__m128i*>(p), _mm512_cvtepi32_epi8(v.data));
#endif
#if XSIMD_WITH_AVX2
    if constexpr (w == 256) {
        // Per 128-bit half: 4 lanes -> 4 bytes (repeated); then the halves side by side.
        const __m256i bytes8 = _mm256_and_si256(v.data, _mm256_set1_epi32(0xff));
        const __m256i words = _mm256_packs_epi32(bytes8, bytes8);
        const __m256i bytes = _mm256_packus_epi16(words, words);
        const __m128i both = _mm_unpacklo_epi32(_mm256_castsi256_si128(bytes), _mm256_extracti128_si256(bytes, 1));
        return _mm_storel_epi64(static_cast<__m128i*>(p), both);
    }
#endif
#if XSIMD_WITH_SSE2
    if constexpr (w == 128) {
        const __m128i bytes8 = _mm_and_si128(v.data, _mm_set1_epi32(0xff));
        const __m128i words = _mm_packs_epi32(bytes8, bytes8);
        const int word = _mm_cvtsi128_si32(_mm_packus_epi16(words, words));
        std::memcpy(p, &word, 4);
        return;
    }
#endif
    alignas(64) std::int32_t lanes[vec<std::int32_t, A>::size];
    v.store_aligned(lanes);
    auto* out = static_cast<std::uint8_t*>(p);
    for (std::size_t i = 0; i < vec<std::int32_t, A>::size; ++i) out[i] = static_cast<std::uint8_t>(lanes[i]);
}

} // namespace detail::xsimd_ops
QTENSOR_KERNELS_END_NAMESPACE

#ifndef XSIMD_NO_SUPPORTED_ARCHITECTURE
QTENSOR_KERNELS_BEGIN_NAMESPACE

// The vector vocabulary of the generic kernels (defined on one lane in
// scalar/ops.hpp), on batches of xsimd's default architecture: the best one
// this TU's -m flags enable.
namespace detail::xsimd_target::ops {

using arch = xsimd::default_arch;
using vf = xsimd::batch<float, arch>;
using vi = xsimd::batch<std::int32_t, arch>;
using vd = xsimd::batch<double, arch>;
using mf = xsimd::batch_bool<float, arch>;
using mi = xsimd::batch_bool<std::int32_t, arch>;

inline constexpr std::size_t lanes = vf::size;
inline constexpr std::size_t lanes_d = vd::size;
inline constexpr bool can_round = xsimd_ops::can_round;
#if XSIMD_WITH_AVX512F || (defined(__F16C__) && XSIMD_WITH_AVX)
inline constexpr bool native_f16 = true;
#else
inline constexpr bool native_f16 = false;
#endif

inline vf set_f(float x) { return vf(x); }
inline vi set_i(std::int32_t x) { return vi(x); }
inline vd set_d(double x) { return vd(x); }

inline vf load(const float* p) { return vf::load_unaligned(p); }
inline void store(vf v, float* p) { v.store_unaligned(p); }
inline void store(vi v, std::int32_t* p) { v.store_unaligned(p); }
inline vf load_partial(const float* p, std::size_t count, float fill) {
    return xsimd_ops::load_partial<arch>(p, count, fill);
}
inline void store_partial(vf v, float* p, std::size_t count) { xsimd_ops::store_partial(v, p, count); }

inline vi load_u8(const std::uint8_t* p) { return xsimd_ops::load_u8_i32<arch>(p); }
inline vi load_i8(const std::int8_t* p) { return xsimd_ops::load_i8_i32<arch>(p); }
inline vi load_u16(const std::uint16_t* p) {
    return xsimd_ops::bits<std::int32_t>(xsimd_ops::load_u16_u32<arch>(p));
}
inline vf load_f16(const fp16_t* p) { return xsimd_ops::load_f16<arch>(p); }
inline vd load_f64(const float* p) { return xsimd_ops::load_f32_f64<arch>(p); }
inline void store_f32(vd v, float* p) { xsimd_ops::store_f64_f32<arch>(v, p); }
inline void store_low_bytes(vi v, std::uint8_t* p) { xsimd_ops::store_low_bytes<arch>(v, p); }
inline void store_low_bytes(vi v, std::int8_t* p) { xsimd_ops::store_low_bytes<arch>(v, p); }

inline vi bits(vf v) { return xsimd_ops::bits<std::int32_t>(v); }
inline vf from_bits(vi v) { return xsimd_ops::bits<float>(v); }
inline vf to_float(vi v) { return xsimd::batch_cast<float>(v); }
inline vi truncate(vf v) { return xsimd::batch_cast<std::int32_t>(v); }
inline vi mask_vec(mf m) { return bits(xsimd::select(m, from_bits(vi(-1)), vf(0.0f))); }

template <class V>
V min(V a, V b) { return xsimd::min(a, b); }
template <class V>
V max(V a, V b) { return xsimd::max(a, b); }
template <class V>
V neg(V a) { return -a; }
template <class V>
V mul_add(V a, V b, V c) { return xsimd::fma(a, b, c); }
inline vd neg_mul_add(vd a, vd b, vd c) { return xsimd::fnma(a, b, c); }
inline vd round(vd v) { return xsimd::nearbyint(v); }
inline vd floor(vd v) { return xsimd::floor(v); }
template <int k>
vi shift_left(vi v) { return v << k; }
template <int k>
vi shift_right(vi v) { return v >> k; }
inline vi shift_left(vi v, int k) { return v << k; }
inline vi shift_right(vi v, int k) { return v >> k; }
// Each lane by its own count: xsimd 8 has no vpsllvd / vpsravd (it would split
// the vector).
template <bool left>
inline vi shift_lanes(vi v, vi k) {
#if XSIMD_WITH_AVX512F
    if constexpr (left) return vi(_mm512_sllv_epi32(v.data, k.data));
    else return vi(_mm512_srav_epi32(v.data, k.data));
#elif XSIMD_WITH_AVX2
    if constexpr (left) return vi(_mm256_sllv_epi32(v.data, k.data));
    else return vi(_mm256_srav_epi32(v.data, k.data));
#else
    if constexpr (left) return v << k;
    else return v >> k;
#endif
}
inline vi shift_left(vi v, vi k) { return shift_lanes<true>(v, k); }
inline vi shift_right(vi v, vi k) { return shift_lanes<false>(v, k); }
inline vf rounded(vf v) { return xsimd_ops::rounded(v); }

// xsimd's exp and tanh may not carry NaN through: feed them 0 there and give
// the NaN back. xsimd's exp also flushes results below 2^-126 to 0: there
// exp(x) = exp(x / 2)^2 (x / 2 is exact and exp(x / 2) normal; the square is
// rounded once, to a subnormal).
inline vf exp(vf x) {
    const auto nan = xsimd::isnan(x);
    const auto tiny = x < vf(-87.0f);
    const vf e = xsimd::exp(xsimd::select(nan, vf(0.0f), xsimd::select(tiny, x * vf(0.5f), x)));
    return xsimd::select(nan, x, xsimd::select(tiny, e * e, e));
}
inline vf tanh(vf x) {
    const auto nan = xsimd::isnan(x);
    return xsimd::select(nan, x, xsimd::tanh(xsimd::select(nan, vf(0.0f), x)));
}

#if defined(__arm__) // xsimd's NEON sqrt is an estimate refined by Newton steps, not IEEE's
inline vf sqrt(vf x) {
    alignas(64) float lane[vf::size];
    x.store_aligned(lane);
    for (float& v : lane) v = std::sqrt(v);
    return vf::load_aligned(lane);
}
#else
inline vf sqrt(vf x) { return xsimd::sqrt(x); }
#endif

template <class M, class V>
V select(M m, V a, V b) { return xsimd::select(m, a, b); }
template <class M>
M mask_or(M a, M b) { return a || b; }
template <class M>
M mask_and(M a, M b) { return a && b; }
template <class M>
M mask_and_not(M a, M b) { return a && !b; }
template <class M>
bool all_false(M m) { return xsimd::none(m); }

// Lane i of m in bit i: the sign bits of the mask register on x86.
template <class T>
std::uint64_t mask_bits(const xsimd::batch_bool<T, arch>& m) {
#if XSIMD_WITH_AVX512F
    return static_cast<std::uint64_t>(m.data);
#elif XSIMD_WITH_AVX
    if constexpr (std::is_same_v<T, float>) return static_cast<unsigned>(_mm256_movemask_ps(m.data));
    else return static_cast<unsigned>(_mm256_movemask_ps(_mm256_castsi256_ps(m.data)));
#elif XSIMD_WITH_SSE2
    if constexpr (std::is_same_v<T, float>) return static_cast<unsigned>(_mm_movemask_ps(m.data));
    else return static_cast<unsigned>(_mm_movemask_ps(_mm_castsi128_ps(m.data)));
#else
    bool set[xsimd::batch_bool<T, arch>::size];
    m.store_unaligned(set);
    std::uint64_t out = 0;
    for (std::size_t i = 0; i < xsimd::batch_bool<T, arch>::size; ++i) out |= std::uint64_t{set[i]} << i;
    return out;
#endif
}
template <class T>
int first_true(const xsimd::batch_bool<T, arch>& m) {
    const std::uint64_t set = mask_bits(m);
    return set == 0 ? -1 : std::countr_zero(set);
}

inline float reduce_sum(vf v) { return xsimd_ops::hsum(v); }
inline std::int32_t reduce_sum(vi v) { return xsimd_ops::hsum(v); }
inline float reduce_max(vf v) { return xsimd_ops::hmax(v); }
inline std::int32_t reduce_max(vi v) { return xsimd_ops::hmax(v); }

// The even (odd) lanes of the 2N lanes lo, hi, lo's first: one shuffle on
// SSE, a shuffle and a 64-bit permute on AVX2, a two-table permute on AVX-512.
template <bool odd>
vf concat_lanes(vf hi, vf lo) {
#if XSIMD_WITH_AVX512F
    alignas(64) static constexpr std::int32_t index[16] = {0 + odd,  2 + odd,  4 + odd,  6 + odd,  8 + odd,  10 + odd,
                                                           12 + odd, 14 + odd, 16 + odd, 18 + odd, 20 + odd, 22 + odd,
                                                           24 + odd, 26 + odd, 28 + odd, 30 + odd};
    return vf(_mm512_permutex2var_ps(lo.data, _mm512_load_si512(index), hi.data));
#elif XSIMD_WITH_AVX2
    const __m256 t = _mm256_shuffle_ps(lo.data, hi.data, odd ? 0xdd : 0x88);
    return vf(_mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), 0xd8)));
#elif XSIMD_WITH_SSE2 && !XSIMD_WITH_AVX
    return vf(_mm_shuffle_ps(lo.data, hi.data, odd ? 0xdd : 0x88));
#else
    alignas(64) float a[2 * lanes], out[lanes];
    lo.store_aligned(a);
    hi.store_aligned(a + lanes);
    for (std::size_t i = 0; i < lanes; ++i) out[i] = a[2 * i + odd];
    return vf::load_aligned(out);
#endif
}
inline vf concat_even(vf hi, vf lo) { return concat_lanes<false>(hi, lo); }
inline vf concat_odd(vf hi, vf lo) { return concat_lanes<true>(hi, lo); }
inline vi concat_even(vi hi, vi lo) { return bits(concat_lanes<false>(from_bits(hi), from_bits(lo))); }
inline vi concat_odd(vi hi, vi lo) { return bits(concat_lanes<true>(from_bits(hi), from_bits(lo))); }

// ---- bytes: the integer dot products --------------------------------------------
// x86 from SSSE3 on has the byte instructions (pmaddubsw, pabsb, psignb),
// and AVX-512 VNNI (when this TU's flags enable it) the full-range vpdpbusd;
// xsimd's emulated integer AVX and other architectures take ops::portable.

inline vi load_i32(const std::int32_t* p) { return vi::load_unaligned(p); }
inline float f16_to_f32(fp16_t h) {
#if defined(__F16C__)
    return _cvtsh_ss(h.bits);
#else
    return fp16_to_fp32(h);
#endif
}
inline vf set_f16(fp16_t h) { return set_f(f16_to_f32(h)); }
inline vi load_bytes(const void* p) { return load_i32(static_cast<const std::int32_t*>(p)); }
inline void store_bytes(vi v, void* p) { v.store_unaligned(static_cast<std::int32_t*>(p)); }

#include "qtensor/kernels/detail/generic/byte_ops-inl.hpp"
using portable::gather_bytes;
using portable::load_quad_f16;
using portable::lookup;

#if XSIMD_WITH_AVX512BW
inline vi abs_i8(vi w) { return vi(_mm512_abs_epi8(w.data)); }
inline vi sign_i8(vi s, vi w) {
    const __mmask64 neg = _mm512_movepi8_mask(w.data);
    const __mmask64 zero = _mm512_testn_epi8_mask(w.data, w.data);
    const __m512i flipped = _mm512_mask_sub_epi8(s.data, neg, _mm512_setzero_si512(), s.data);
    return vi(_mm512_maskz_mov_epi8(static_cast<__mmask64>(~zero), flipped));
}
inline vi pair_sums(vi u, vi s) { return vi(_mm512_maddubs_epi16(u.data, s.data)); }
inline vi madd16(vi x, vi y) { return vi(_mm512_madd_epi16(x.data, y.data)); }
inline vi load_dup_quad(const void* p) { return vi(_mm512_broadcast_i32x4(_mm_loadu_si128(static_cast<const __m128i*>(p)))); }
inline vi load_dup_32(const void* p) { return vi(_mm512_broadcast_i64x4(_mm256_loadu_si256(static_cast<const __m256i*>(p)))); }
inline vi load_quads(const std::byte* const* p, std::size_t offset) {
    const auto at = [&](std::size_t k) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p[k] + offset)); };
    __m512i z = _mm512_zextsi128_si512(at(0));
    z = _mm512_inserti32x4(z, at(1), 1);
    z = _mm512_inserti32x4(z, at(2), 2);
    return vi(_mm512_inserti32x4(z, at(3), 3));
}
#elif XSIMD_WITH_AVX2 && !XSIMD_WITH_AVX512F // AVX-512F without BW: 512-bit integers, portable bytes
inline vi abs_i8(vi w) { return vi(_mm256_abs_epi8(w.data)); }
inline vi sign_i8(vi s, vi w) { return vi(_mm256_sign_epi8(s.data, w.data)); }
inline vi pair_sums(vi u, vi s) { return vi(_mm256_maddubs_epi16(u.data, s.data)); }
inline vi madd16(vi x, vi y) { return vi(_mm256_madd_epi16(x.data, y.data)); }
inline vi load_dup_quad(const void* p) { return vi(_mm256_broadcastsi128_si256(_mm_loadu_si128(static_cast<const __m128i*>(p)))); }
inline vi load_dup_32(const void* p) { return vi(_mm256_loadu_si256(static_cast<const __m256i*>(p))); }
inline vi load_quads(const std::byte* const* p, std::size_t offset) {
    const auto at = [&](std::size_t k) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p[k] + offset)); };
    return vi(_mm256_inserti128_si256(_mm256_castsi128_si256(at(0)), at(1), 1));
}
#elif XSIMD_WITH_SSSE3 && !XSIMD_WITH_AVX
inline vi abs_i8(vi w) { return vi(_mm_abs_epi8(w.data)); }
inline vi sign_i8(vi s, vi w) { return vi(_mm_sign_epi8(s.data, w.data)); }
inline vi pair_sums(vi u, vi s) { return vi(_mm_maddubs_epi16(u.data, s.data)); }
inline vi madd16(vi x, vi y) { return vi(_mm_madd_epi16(x.data, y.data)); }
inline vi load_dup_quad(const void* p) { return vi(_mm_loadu_si128(static_cast<const __m128i*>(p))); }
inline vi load_quads(const std::byte* const* p, std::size_t offset) {
    return vi(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p[0] + offset)));
}
using portable::load_dup_32;
#else
#define QTENSOR_XSIMD_PORTABLE_BYTES 1
using portable::abs_i8;
using portable::byte_dot;
using portable::load_dup_32;
using portable::load_dup_quad;
using portable::load_quads;
using portable::pair_sums;
using portable::sign_i8;
using portable::with_byte_dot;
#endif

#ifndef QTENSOR_XSIMD_PORTABLE_BYTES
// vpdpbusd where the flags enable VNNI; else pmaddubsw, then pmaddwd by ones:
// exact while the pair sums fit int16.
struct byte_dot {
#if XSIMD_WITH_AVX512BW && defined(__AVX512VNNI__)
    static constexpr bool full_range = true;
    vi operator()(vi acc, vi u, vi s) const { return vi(_mm512_dpbusd_epi32(acc.data, u.data, s.data)); }
    vi pairs(vi acc, vi x, vi y) const { return vi(_mm512_dpwssd_epi32(acc.data, x.data, y.data)); }
#else
    static constexpr bool full_range = false;
    vi operator()(vi acc, vi u, vi s) const { return acc + madd16(pair_sums(u, s), vi(0x00010001)); }
    vi pairs(vi acc, vi x, vi y) const { return acc + madd16(x, y); }
#endif
};
template <class F>
void with_byte_dot(F&& f) { f(byte_dot{}); }
#endif
#undef QTENSOR_XSIMD_PORTABLE_BYTES
template <class F>
void with_full_range_byte_dot(F&& f) {
    if constexpr (byte_dot::full_range) f(byte_dot{});
    else f(portable::byte_dot{});
}

} // namespace detail::xsimd_target::ops
QTENSOR_KERNELS_END_NAMESPACE
#endif
