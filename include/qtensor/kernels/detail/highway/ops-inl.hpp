// qtensor/kernels/detail/highway/ops-inl.hpp: the vector vocabulary of the generic
// kernels (defined on one lane in scalar/ops.hpp) on one Highway target:
// floats and int32 in vectors of up to 16 lanes, doubles in up to 8.
//
// No include guard and no namespace on purpose: highway/all-inl.hpp includes
// it once per target, inside that target's namespace.

namespace ops {
namespace hn = hwy::HWY_NAMESPACE;

inline constexpr hn::CappedTag<float, 16> df{};
inline constexpr hn::RebindToSigned<hn::CappedTag<float, 16>> di{};
inline constexpr hn::CappedTag<double, 8> dd{};

using vf = hn::Vec<decltype(df)>;
using vi = hn::Vec<decltype(di)>;
using vd = hn::Vec<decltype(dd)>;
using mf = hn::Mask<decltype(df)>;
using mi = hn::Mask<decltype(di)>;

inline constexpr std::size_t lanes = hn::MaxLanes(df);
inline constexpr std::size_t lanes_d = hn::MaxLanes(dd);

// rounded() is an empty asm on the register, which GCC and clang respect on
// x86 and NEON targets; on HWY_SCALAR and EMU128 the quantizers are the
// references.
#if (HWY_ARCH_X86 && HWY_TARGET != HWY_SCALAR && HWY_TARGET != HWY_EMU128) || \
    (HWY_ARCH_ARM_A64 && HWY_TARGET == HWY_NEON)
inline constexpr bool can_round = true;
#else
inline constexpr bool can_round = false;
#endif

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2 && !defined(HWY_DISABLE_F16C)
inline constexpr bool native_f16 = true;
#else
inline constexpr bool native_f16 = false;
#endif

HWY_INLINE vf set_f(float x) { return hn::Set(df, x); }
HWY_INLINE vi set_i(std::int32_t x) { return hn::Set(di, x); }
HWY_INLINE vd set_d(double x) { return hn::Set(dd, x); }

HWY_INLINE vf load(const float* p) { return hn::LoadU(df, p); }
HWY_INLINE void store(vf v, float* p) { hn::StoreU(v, df, p); }
HWY_INLINE void store(vi v, std::int32_t* p) { hn::StoreU(v, di, p); }

HWY_INLINE vf load_partial(const float* p, std::size_t count, float fill) {
    HWY_ALIGN float buf[lanes];
    for (auto& b : buf) b = fill;
    std::memcpy(buf, p, count * sizeof(float));
    return hn::Load(df, buf);
}
HWY_INLINE void store_partial(vf v, float* p, std::size_t count) {
    HWY_ALIGN float buf[lanes];
    hn::Store(v, df, buf);
    std::memcpy(p, buf, count * sizeof(float));
}

// `lanes` narrow values, each in an int32 lane.
template <class T>
HWY_INLINE vi load_widened(const T* p) { return hn::PromoteTo(di, hn::LoadU(hn::Rebind<T, decltype(di)>(), p)); }
HWY_INLINE vi load_u8(const std::uint8_t* p) { return load_widened(p); }
HWY_INLINE vi load_i8(const std::int8_t* p) { return load_widened(p); }
HWY_INLINE vi load_u16(const std::uint16_t* p) {
    const hn::RebindToUnsigned<decltype(di)> du;
    return hn::BitCast(di, hn::PromoteTo(du, hn::LoadU(hn::Rebind<std::uint16_t, decltype(di)>(), p)));
}
HWY_INLINE vf load_f16(const fp16_t* p) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2 && !defined(HWY_DISABLE_F16C)
    const hn::Rebind<hwy::float16_t, decltype(df)> dh;
    return hn::PromoteTo(df, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p)));
#else
    (void)p;
    HWY_ABORT("load_f16 without native_f16"); // the kernels decode the bits instead
#endif
}
HWY_INLINE vi load_i32(const std::int32_t* p) { return hn::LoadU(di, p); }
HWY_INLINE float f16_to_f32(fp16_t h) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2 && !defined(HWY_DISABLE_F16C)
    return _cvtsh_ss(h.bits);
#else
    return fp16_to_fp32(h);
#endif
}
// The fp16 h converted, in every lane (with F16C one broadcast and one vector conversion).
HWY_INLINE vf set_f16(fp16_t h) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2 && !defined(HWY_DISABLE_F16C)
    const hn::Rebind<hwy::float16_t, decltype(df)> dh;
    return hn::PromoteTo(df, hn::BitCast(dh, hn::Set(hn::RebindToUnsigned<decltype(dh)>(), h.bits)));
#else
    return set_f(f16_to_f32(h));
#endif
}
HWY_INLINE vd load_f64(const float* p) { return hn::PromoteTo(dd, hn::LoadU(hn::Rebind<float, decltype(dd)>(), p)); }
HWY_INLINE void store_f32(vd v, float* p) {
    const hn::Rebind<float, decltype(dd)> dfd;
    hn::StoreU(hn::DemoteTo(dfd, v), dfd, p);
}
HWY_INLINE void store_low_bytes(vi v, std::uint8_t* p) {
    const hn::Rebind<std::uint8_t, decltype(di)> du8;
    hn::StoreU(hn::TruncateTo(du8, hn::BitCast(hn::RebindToUnsigned<decltype(di)>(), v)), du8, p);
}
HWY_INLINE void store_low_bytes(vi v, std::int8_t* p) { store_low_bytes(v, reinterpret_cast<std::uint8_t*>(p)); }

HWY_INLINE vi bits(vf v) { return hn::BitCast(di, v); }
HWY_INLINE vf from_bits(vi v) { return hn::BitCast(df, v); }
HWY_INLINE vf to_float(vi v) { return hn::ConvertTo(df, v); }
// x86's cvttps2dq without the fix-up Highway's ConvertTo adds for
// out-of-range lanes. (The zero-masked AVX-512 form, because GCC 12 warns
// about the plain one's undefined pass-through operand.)
HWY_INLINE vi truncate(vf v) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
    return vi{_mm512_maskz_cvttps_epi32(0xffff, v.raw)};
#elif HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
    return vi{_mm256_cvttps_epi32(v.raw)};
#else
    return hn::ConvertTo(di, v);
#endif
}
HWY_INLINE vi mask_vec(mf m) { return hn::VecFromMask(di, hn::RebindMask(di, m)); }

template <class V>
HWY_INLINE V min(V a, V b) { return hn::Min(a, b); }
template <class V>
HWY_INLINE V max(V a, V b) { return hn::Max(a, b); }
template <class V>
HWY_INLINE V neg(V a) { return hn::Neg(a); }
template <class V>
HWY_INLINE V mul_add(V a, V b, V c) { return hn::MulAdd(a, b, c); }
HWY_INLINE vd neg_mul_add(vd a, vd b, vd c) { return hn::NegMulAdd(a, b, c); }
HWY_INLINE vd round(vd v) { return hn::Round(v); }
HWY_INLINE vd floor(vd v) { return hn::Floor(v); }
template <int k>
HWY_INLINE vi shift_left(vi v) { return hn::ShiftLeft<k>(v); }
template <int k>
HWY_INLINE vi shift_right(vi v) { return hn::ShiftRight<k>(v); }
HWY_INLINE vi shift_left(vi v, int k) { return hn::ShiftLeftSame(v, k); }
HWY_INLINE vi shift_right(vi v, int k) { return hn::ShiftRightSame(v, k); }
HWY_INLINE vi shift_left(vi v, vi k) { return v << k; }
HWY_INLINE vi shift_right(vi v, vi k) { return v >> k; }

HWY_INLINE vf rounded(vf v) {
#if defined(__GNUC__) && HWY_ARCH_X86 && HWY_TARGET != HWY_SCALAR && HWY_TARGET != HWY_EMU128
    asm("" : "+v"(v.raw));
#elif defined(__GNUC__) && HWY_ARCH_ARM_A64 && HWY_TARGET == HWY_NEON
    asm("" : "+w"(v.raw));
#endif
    return v;
}

// Highway's Exp and Tanh map NaN to 0 or garbage (and on HWY_SCALAR cast it to
// int, which is undefined): feed them 0 there and give the NaN back.
HWY_INLINE vf exp(vf x) {
    const auto nan = hn::IsNaN(x);
    return hn::IfThenElse(nan, x, hn::Exp(df, hn::IfThenZeroElse(nan, x)));
}
HWY_INLINE vf tanh(vf x) {
    const auto nan = hn::IsNaN(x);
    return hn::IfThenElse(nan, x, hn::Tanh(df, hn::IfThenZeroElse(nan, x)));
}

#if HWY_ARCH_ARM_V7 // Highway's Sqrt there is an estimate refined by Newton steps, not IEEE's
HWY_INLINE vf sqrt(vf x) {
    HWY_ALIGN float lane[lanes];
    hn::Store(x, df, lane);
    for (float& v : lane) v = std::sqrt(v);
    return hn::Load(df, lane);
}
#else
HWY_INLINE vf sqrt(vf x) { return hn::Sqrt(x); }
#endif

template <class M, class V>
HWY_INLINE V select(M m, V a, V b) { return hn::IfThenElse(m, a, b); }
template <class M>
HWY_INLINE M mask_or(M a, M b) { return hn::Or(a, b); }
template <class M>
HWY_INLINE M mask_and(M a, M b) { return hn::And(a, b); }
template <class M>
HWY_INLINE M mask_and_not(M a, M b) { return hn::AndNot(b, a); }
HWY_INLINE bool all_false(mf m) { return hn::AllFalse(df, m); }
HWY_INLINE bool all_false(mi m) { return hn::AllFalse(di, m); }

template <class D, class M>
HWY_INLINE std::uint64_t mask_bits_of(D d, M m) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
    (void)d;
    return static_cast<std::uint64_t>(m.raw); // already a bit mask register
#else
    std::uint8_t out[8] = {};
    hn::StoreMaskBits(d, m, out);
    return out[0] | std::uint64_t{out[1]} << 8;
#endif
}
HWY_INLINE std::uint64_t mask_bits(mf m) { return mask_bits_of(df, m); }
HWY_INLINE std::uint64_t mask_bits(mi m) { return mask_bits_of(di, m); }
HWY_INLINE int first_true(mi m) { return static_cast<int>(hn::FindFirstTrue(di, m)); }

HWY_INLINE float reduce_sum(vf v) { return hn::GetLane(hn::SumOfLanes(df, v)); }
HWY_INLINE std::int32_t reduce_sum(vi v) { return hn::GetLane(hn::SumOfLanes(di, v)); }
HWY_INLINE float reduce_max(vf v) { return hn::GetLane(hn::MaxOfLanes(df, v)); }
HWY_INLINE std::int32_t reduce_max(vi v) { return hn::GetLane(hn::MaxOfLanes(di, v)); }
#if HWY_TARGET == HWY_SCALAR // one lane: lo's, hi's
template <class V>
HWY_INLINE V concat_even(V, V lo) { return lo; }
template <class V>
HWY_INLINE V concat_odd(V hi, V) { return hi; }
#else
HWY_INLINE vf concat_even(vf hi, vf lo) { return hn::ConcatEven(df, hi, lo); }
HWY_INLINE vi concat_even(vi hi, vi lo) { return hn::ConcatEven(di, hi, lo); }
HWY_INLINE vf concat_odd(vf hi, vf lo) { return hn::ConcatOdd(df, hi, lo); }
HWY_INLINE vi concat_odd(vi hi, vi lo) { return hn::ConcatOdd(di, hi, lo); }
#endif

// ---- bytes: the integer dot products ----------------------------------------------
// x86 from SSSE3 on has the byte instructions (pmaddubsw, pabsb, psignb);
// AVX-512 VNNI's vpdpbusd/vpdpwssd are not in Highway 1.0.3's AVX3 target, so
// they are inline assembly after a run-time check of the CPU. Other targets
// take ops::portable.

HWY_INLINE vi load_bytes(const void* p) { return hn::LoadU(di, static_cast<const std::int32_t*>(p)); }
HWY_INLINE void store_bytes(vi v, void* p) { hn::StoreU(v, di, static_cast<std::int32_t*>(p)); }
HWY_INLINE vi gather_bytes(const std::byte* base, vi offset) {
    return hn::GatherOffset(di, reinterpret_cast<const std::int32_t*>(base), offset);
}
HWY_INLINE vi lookup(vi table, const std::int32_t* index) {
    return hn::TableLookupLanes(table, hn::SetTableIndices(di, index));
}

#include "qtensor/kernels/detail/generic/byte_ops-inl.hpp"

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_SSSE3
#if HWY_TARGET <= HWY_AVX3
HWY_INLINE vi abs_i8(vi w) { return vi{_mm512_abs_epi8(w.raw)}; }
HWY_INLINE vi sign_i8(vi s, vi w) {
    const __mmask64 neg = _mm512_movepi8_mask(w.raw);
    const __mmask64 zero = _mm512_testn_epi8_mask(w.raw, w.raw);
    const __m512i flipped = _mm512_mask_sub_epi8(s.raw, neg, _mm512_setzero_si512(), s.raw);
    return vi{_mm512_maskz_mov_epi8(static_cast<__mmask64>(~zero), flipped)};
}
HWY_INLINE vi pair_sums(vi u, vi s) { return vi{_mm512_maddubs_epi16(u.raw, s.raw)}; }
HWY_INLINE vi madd16(vi x, vi y) { return vi{_mm512_madd_epi16(x.raw, y.raw)}; }
#elif HWY_TARGET <= HWY_AVX2
HWY_INLINE vi abs_i8(vi w) { return vi{_mm256_abs_epi8(w.raw)}; }
HWY_INLINE vi sign_i8(vi s, vi w) { return vi{_mm256_sign_epi8(s.raw, w.raw)}; }
HWY_INLINE vi pair_sums(vi u, vi s) { return vi{_mm256_maddubs_epi16(u.raw, s.raw)}; }
HWY_INLINE vi madd16(vi x, vi y) { return vi{_mm256_madd_epi16(x.raw, y.raw)}; }
#else
HWY_INLINE vi abs_i8(vi w) { return vi{_mm_abs_epi8(w.raw)}; }
HWY_INLINE vi sign_i8(vi s, vi w) { return vi{_mm_sign_epi8(s.raw, w.raw)}; }
HWY_INLINE vi pair_sums(vi u, vi s) { return vi{_mm_maddubs_epi16(u.raw, s.raw)}; }
HWY_INLINE vi madd16(vi x, vi y) { return vi{_mm_madd_epi16(x.raw, y.raw)}; }
#endif

// pmaddubsw, then pmaddwd by ones: exact while the pair sums fit int16.
struct byte_dot_maddubs {
    static constexpr bool full_range = false;
    HWY_INLINE vi operator()(vi acc, vi u, vi s) const { return acc + madd16(pair_sums(u, s), set_i(0x00010001)); }
    HWY_INLINE vi pairs(vi acc, vi x, vi y) const { return acc + madd16(x, y); }
};

#if HWY_TARGET <= HWY_AVX3
struct byte_dot_vnni {
    static constexpr bool full_range = true;
    HWY_INLINE vi operator()(vi acc, vi u, vi s) const {
        __m512i r = acc.raw;
        asm("vpdpbusd %2, %1, %0" : "+v"(r) : "v"(u.raw), "v"(s.raw));
        return vi{r};
    }
    HWY_INLINE vi pairs(vi acc, vi x, vi y) const {
        __m512i r = acc.raw;
        asm("vpdpwssd %2, %1, %0" : "+v"(r) : "v"(x.raw), "v"(y.raw));
        return vi{r};
    }
};
#endif

// Defining QTENSOR_KERNELS_NO_VNNI forces pmaddubsw, to test that path on a VNNI CPU.
template <class F>
HWY_INLINE void with_byte_dot(F&& f) {
#if HWY_TARGET <= HWY_AVX3 && !defined(QTENSOR_KERNELS_NO_VNNI)
    if (__builtin_cpu_supports("avx512vnni")) return f(byte_dot_vnni{});
#endif
    f(byte_dot_maddubs{});
}
template <class F>
HWY_INLINE void with_full_range_byte_dot(F&& f) {
#if HWY_TARGET <= HWY_AVX3 && !defined(QTENSOR_KERNELS_NO_VNNI)
    if (__builtin_cpu_supports("avx512vnni")) return f(byte_dot_vnni{});
#endif
    f(portable::byte_dot{});
}
#else
using portable::abs_i8;
using portable::pair_sums;
using portable::sign_i8;
using portable::with_byte_dot;
template <class F>
HWY_INLINE void with_full_range_byte_dot(F&& f) { f(portable::byte_dot{}); }
#endif

// ---- quads ------------------------------------------------------------------------------

#if HWY_TARGET != HWY_SCALAR
HWY_INLINE vi load_dup_quad(const void* p) { return hn::LoadDup128(di, static_cast<const std::int32_t*>(p)); }
#else
using portable::load_dup_quad;
#endif
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
HWY_INLINE vi load_dup_32(const void* p) {
    return vi{_mm512_broadcast_i64x4(_mm256_loadu_si256(static_cast<const __m256i*>(p)))};
}
#else
using portable::load_dup_32;
#endif

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
HWY_INLINE vi load_quads(const std::byte* const* p, std::size_t offset) {
    const auto at = [&](std::size_t k) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p[k] + offset)); };
#if HWY_TARGET <= HWY_AVX3
    __m512i z = _mm512_zextsi128_si512(at(0));
    z = _mm512_inserti32x4(z, at(1), 1);
    z = _mm512_inserti32x4(z, at(2), 2);
    return vi{_mm512_inserti32x4(z, at(3), 3)};
#else
    return vi{_mm256_inserti128_si256(_mm256_zextsi128_si256(at(0)), at(1), 1)};
#endif
}

// The fp16 of each quad repeated over its 4 lanes by a byte shuffle, then widened.
HWY_INLINE vf load_quad_f16(const std::byte* const* p, std::size_t offset) {
    const hn::Rebind<hwy::float16_t, decltype(df)> dh;
    const auto bits = [&](std::size_t k) {
        std::uint16_t h;
        std::memcpy(&h, p[k] + offset, 2);
        return static_cast<std::uint64_t>(h) << (16 * k);
    };
#if HWY_TARGET <= HWY_AVX3
    const __m256i halves = _mm256_set1_epi64x(static_cast<long long>(bits(0) | bits(1) | bits(2) | bits(3)));
    const __m256i spread = _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3,   //
                                            4, 5, 4, 5, 4, 5, 4, 5, 6, 7, 6, 7, 6, 7, 6, 7);
    return hn::PromoteTo(df, hn::Vec<decltype(dh)>{_mm256_shuffle_epi8(halves, spread)});
#else
    const __m128i halves = _mm_cvtsi32_si128(static_cast<int>(bits(0) | bits(1)));
    const __m128i spread = _mm_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3);
    return hn::PromoteTo(df, hn::Vec<decltype(dh)>{_mm_shuffle_epi8(halves, spread)});
#endif
}
#else
using portable::load_quad_f16;
using portable::load_quads;
#endif

} // namespace ops
