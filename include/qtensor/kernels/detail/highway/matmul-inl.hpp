// qtensor/kernels/detail/highway/matmul-inl.hpp: SIMD bodies of the dot and matmul
// kernels, compiled once per Highway target (re-included by foreach_target.h
// through highway/all-inl.hpp; do not include it yourself). Each stays within
// the error budget stated in matmul.hpp of the exact sum.
//
// The row dots of Q4_0/Q8_0 are written for any lane count N (1 on
// HWY_SCALAR); the float kernels are generic (generic/matmul-inl.hpp). The integer matmul kernels (Q4_0, Q8_0,
// Q2_K, plain and interleaved) rest on x86 byte dot products that Highway
// 1.0.3 does not offer (pmaddubsw, and AVX-512 VNNI's vpdpbusd/vpdpwssd), so
// they are SIMD on AVX2 and AVX-512 and run the scalar reference on the other
// targets.
//
// Byte dot products. vpdpbusd adds to each int32 lane the four products of
// unsigned bytes u by signed bytes s. Signed weights are made unsigned by an
// offset that the activation block sums take back out: Q4_0 codes are 0..15
// (value code - 8: subtract 8 * sum(a)); Q8_0 codes c become c ^ 0x80 = c + 128
// (subtract 128 * sum(a)). Every integer sum is exact, so the result of each
// block is the same integer on every path. VNNI is not part of Highway 1.0.3's
// AVX3 target, so it is used through inline assembly after a run-time check
// of the CPU; without it, pmaddubsw + pmaddwd do the same (Q8_0 then uses the
// sign trick, |w| * sign(a, w), because w + 128 could saturate pmaddubsw).

// Per-target include guard (Highway's toggle idiom).
#if defined(QTENSOR_KERNELS_HIGHWAY_MATMUL_INL_HPP_) == defined(HWY_TARGET_TOGGLE)
#ifdef QTENSOR_KERNELS_HIGHWAY_MATMUL_INL_HPP_
#undef QTENSOR_KERNELS_HIGHWAY_MATMUL_INL_HPP_
#else
#define QTENSOR_KERNELS_HIGHWAY_MATMUL_INL_HPP_
#endif

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "hwy/highway.h"
#include "qtensor/kernels/abi.hpp"
#include "qtensor/kernels/reference/matmul.hpp"
#include "qtensor/scheme/q2_k.hpp"
#include "qtensor/scheme/q4_0.hpp"
#include "qtensor/scheme/q8_0.hpp"
#include "qtensor/scheme/q8_k.hpp"

#if HWY_ARCH_X86
#include <immintrin.h>
#endif

// Fully unrolled small loops keep arrays of vectors in registers.
#ifndef QTENSOR_UNROLL
#if defined(__clang__)
#define QTENSOR_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define QTENSOR_UNROLL _Pragma("GCC unroll 16")
#else
#define QTENSOR_UNROLL
#endif
#endif

#undef QTENSOR_MATMUL_INT8_SIMD
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
#define QTENSOR_MATMUL_INT8_SIMD 1
#endif

HWY_BEFORE_NAMESPACE();
QTENSOR_KERNELS_BEGIN_NAMESPACE
namespace detail {
namespace HWY_NAMESPACE {
namespace {
namespace hn = hwy::HWY_NAMESPACE;

// ---- row dots ------------------------------------------------------------------

// Row w[n / 32] . row a[n / 32]. Per block, codes - 8 and the activations are
// widened to int16 and multiplied pairwise into int32 lanes (pmaddwd), exactly;
// then one FMA per block adds the lanes, times dw * da, to a float accumulator;
// one horizontal sum at the end. HWY_SCALAR has one lane: there the scalar
// reference is the kernel.
float dot_q4_0_q8_0(const block_q4_0* w, const block_q8_0* a, std::size_t n) {
#if HWY_TARGET == HWY_SCALAR
    return q4_0::dot_row(w, a, n);
#else
    const hn::CappedTag<std::int16_t, 16> d16;       // 16 lanes (AVX2+) or 8 (SSE)
    const hn::Repartition<std::int32_t, decltype(d16)> d32;
    const hn::Rebind<float, decltype(d32)> df;
    const hn::Rebind<std::uint8_t, decltype(d16)> du8;
    const hn::Rebind<std::int8_t, decltype(d16)> di8;
    const std::size_t N = hn::Lanes(d16);
    const auto eight = hn::Set(d16, 8);
    const auto low_nibble = hn::Set(du8, std::uint8_t{0x0f});
    auto total = hn::Zero(df);
    for (std::size_t b = 0; b < n / 32; ++b) {
        auto sum0 = hn::Zero(d32);
        auto sum1 = hn::Zero(d32);
        for (std::size_t j = 0; j < 16; j += N) {
            const auto bytes = hn::LoadU(du8, w[b].qs.data() + j);
            const auto lo = hn::Sub(hn::PromoteTo(d16, hn::And(bytes, low_nibble)), eight);
            const auto hi = hn::Sub(hn::PromoteTo(d16, hn::ShiftRight<4>(bytes)), eight);
            const auto a_lo = hn::PromoteTo(d16, hn::LoadU(di8, a[b].qs.data() + j));
            const auto a_hi = hn::PromoteTo(d16, hn::LoadU(di8, a[b].qs.data() + 16 + j));
            sum0 = hn::ReorderWidenMulAccumulate(d32, lo, a_lo, sum0, sum1);
            sum0 = hn::ReorderWidenMulAccumulate(d32, hi, a_hi, sum0, sum1);
        }
        const float dd = fp16_to_fp32(w[b].d) * fp16_to_fp32(a[b].d);
        total = hn::MulAdd(hn::ConvertTo(df, hn::Add(sum0, sum1)), hn::Set(df, dd), total);
    }
    return hn::GetLane(hn::SumOfLanes(df, total));
#endif
}

// Row w[n / 32] . row a[n / 32], both Q8_0: as dot_q4_0_q8_0 with the codes
// widened directly.
float dot_q8_0_q8_0(const block_q8_0* w, const block_q8_0* a, std::size_t n) {
#if HWY_TARGET == HWY_SCALAR
    return q8_0::dot_row(w, a, n);
#else
    const hn::CappedTag<std::int16_t, 16> d16;
    const hn::Repartition<std::int32_t, decltype(d16)> d32;
    const hn::Rebind<float, decltype(d32)> df;
    const hn::Rebind<std::int8_t, decltype(d16)> di8;
    const std::size_t N = hn::Lanes(d16);
    auto total = hn::Zero(df);
    for (std::size_t b = 0; b < n / 32; ++b) {
        auto sum0 = hn::Zero(d32);
        auto sum1 = hn::Zero(d32);
        for (std::size_t j = 0; j < 32; j += N) {
            const auto x = hn::PromoteTo(d16, hn::LoadU(di8, w[b].qs.data() + j));
            const auto y = hn::PromoteTo(d16, hn::LoadU(di8, a[b].qs.data() + j));
            sum0 = hn::ReorderWidenMulAccumulate(d32, x, y, sum0, sum1);
        }
        const float dd = fp16_to_fp32(w[b].d) * fp16_to_fp32(a[b].d);
        total = hn::MulAdd(hn::ConvertTo(df, hn::Add(sum0, sum1)), hn::Set(df, dd), total);
    }
    return hn::GetLane(hn::SumOfLanes(df, total));
#endif
}

// ---- integer matmul kernels (x86, AVX2 and AVX-512) -------------------------

#if defined(QTENSOR_MATMUL_INT8_SIMD)

using DI = hn::ScalableTag<std::int32_t>;
using DF = hn::ScalableTag<float>;
using DU8 = hn::Repartition<std::uint8_t, DI>;
using DI8 = hn::Repartition<std::int8_t, DI>;
using DU16 = hn::Repartition<std::uint16_t, DI>;
using VI = hn::Vec<DI>;
using VF = hn::Vec<DF>;
using VU8 = hn::Vec<DU8>;
using VI8 = hn::Vec<DI8>;
using VH = hn::Vec<hn::Rebind<hwy::float16_t, DF>>;

// acc + per int32 lane, the sum of the four products u[k] * s[k] (u unsigned,
// s signed bytes). The pmaddubsw form is exact while each pair sum fits int16.
#if HWY_TARGET <= HWY_AVX3
struct dot_vnni {
    static constexpr bool vnni = true;
    HWY_INLINE VI operator()(VI acc, VU8 u, VI8 s) const {
        __m512i r = acc.raw;
        asm("vpdpbusd %2, %1, %0" : "+v"(r) : "v"(u.raw), "v"(s.raw));
        return VI{r};
    }
    // acc + per int32 lane, x_lo * y_lo + x_hi * y_hi over its int16 halves
    // (vpdpwssd); with y_hi = 0 and |x| < 2^15 that is the product x * y.
    HWY_INLINE VI mul_small(VI acc, VI x, VI y) const {
        __m512i r = acc.raw;
        asm("vpdpwssd %2, %1, %0" : "+v"(r) : "v"(x.raw), "v"(y.raw));
        return VI{r};
    }
};
#endif

struct dot_maddubs {
    static constexpr bool vnni = false;
    HWY_INLINE VI operator()(VI acc, VU8 u, VI8 s) const {
#if HWY_TARGET <= HWY_AVX3
        const __m512i pairs = _mm512_maddubs_epi16(u.raw, s.raw);
        return hn::Add(acc, VI{_mm512_madd_epi16(pairs, _mm512_set1_epi16(1))});
#else
        const __m256i pairs = _mm256_maddubs_epi16(u.raw, s.raw);
        return hn::Add(acc, VI{_mm256_madd_epi16(pairs, _mm256_set1_epi16(1))});
#endif
    }
    HWY_INLINE VI mul_small(VI acc, VI x, VI y) const {
#if HWY_TARGET <= HWY_AVX3
        return hn::Add(acc, VI{_mm512_madd_epi16(x.raw, y.raw)});
#else
        return hn::Add(acc, VI{_mm256_madd_epi16(x.raw, y.raw)});
#endif
    }
};

// int16 lanes: u[2i] * s[2i] + u[2i+1] * s[2i+1] (pmaddubsw; exact while the
// sums fit int16).
HWY_INLINE VI maddubs(VU8 u, VI8 s) {
#if HWY_TARGET <= HWY_AVX3
    return VI{_mm512_maddubs_epi16(u.raw, s.raw)};
#else
    return VI{_mm256_maddubs_epi16(u.raw, s.raw)};
#endif
}

// |w| and sign(s, w) (s negated where w < 0, zeroed where w == 0): the sign
// trick that turns signed x signed into unsigned x signed.
HWY_INLINE VU8 abs_i8(VU8 w) {
#if HWY_TARGET <= HWY_AVX3
    return VU8{_mm512_abs_epi8(w.raw)};
#else
    return VU8{_mm256_abs_epi8(w.raw)};
#endif
}
HWY_INLINE VI8 sign_i8(VI8 s, VU8 w) {
#if HWY_TARGET <= HWY_AVX3
    const __mmask64 neg = _mm512_movepi8_mask(w.raw);
    const __mmask64 zero = _mm512_testn_epi8_mask(w.raw, w.raw);
    const __m512i flipped = _mm512_mask_sub_epi8(s.raw, neg, _mm512_setzero_si512(), s.raw);
    return VI8{_mm512_maskz_mov_epi8(static_cast<__mmask64>(~zero), flipped)};
#else
    return VI8{_mm256_sign_epi8(s.raw, w.raw)};
#endif
}

// Runs f(dot) with the best byte dot product of this CPU. Defining
// QTENSOR_KERNELS_NO_VNNI forces pmaddubsw, to test that path on a VNNI CPU.
template <class F>
HWY_INLINE void with_byte_dot(F&& f) {
#if HWY_TARGET <= HWY_AVX3 && !defined(QTENSOR_KERNELS_NO_VNNI)
    if (__builtin_cpu_supports("avx512vnni")) {
        f(dot_vnni{});
        return;
    }
#endif
    f(dot_maddubs{});
}

// The four activation bytes at p in every int32 lane.
HWY_INLINE VI8 broadcast4(const std::int8_t* p) {
    std::int32_t v;
    std::memcpy(&v, p, 4);
    return hn::BitCast(DI8(), hn::Set(DI(), v));
}


// Bytes ahead of the current block that GEMV asks the memory system for: the
// hardware prefetcher alone leaves Q4_0 GEMV at ~19 GB/s out of cache on Zen 5,
// software prefetch 8 KiB ahead brings it to ~24 (a quarter more).
constexpr std::size_t prefetch_distance = 8192;

// One interleaved group (16 rows) of Q4_0 or Q8_0 against TT tokens
// t0 .. t0 + TT - 1: out[t][i] = row i . token t, for all 16 rows. The 16 rows
// take 16 / N vectors; each pass over the blocks serves one of them, with
// the codes of a block unpacked once for all TT tokens.
template <class S, std::size_t TT, class Dot>
HWY_INLINE void group_tile(const std::byte* group, std::size_t nb, const q8_0_rows& a, std::size_t t0,
                           float* out, Dot dot) {
    constexpr std::size_t R = interleave_rows;
    const DI di;
    const DF df;
    const DU8 du8;
    const DU16 du16;
    const hn::Rebind<hwy::float16_t, DF> df16;
    const std::size_t N = hn::Lanes(di);
    const auto codes = reinterpret_cast<const std::uint8_t*>(group);
    const auto scales = reinterpret_cast<const hwy::float16_t*>(group + nb * R * interleaved_code_bytes<S>);
    const auto low_nibble = hn::Set(du8, std::uint8_t{0x0f});
    const auto top_bit = hn::Set(du8, std::uint8_t{0x80});
    constexpr bool is_q4 = std::is_same_v<S, q4_0>;
    // The offset of the unsigned codes: 8 for Q4_0; 128 for Q8_0 with VNNI
    // (w ^ 0x80); none for Q8_0's sign trick.
    constexpr int offset_shift = is_q4 ? 3 : 7;
    constexpr bool offset = is_q4 || Dot::vnni;
    for (std::size_t rv = 0; rv < R; rv += N) {
        VF acc[TT];
        QTENSOR_UNROLL
        for (std::size_t t = 0; t < TT; ++t) acc[t] = hn::Zero(df);
        for (std::size_t b = 0; b < nb; ++b) {
            const std::uint8_t* p = codes + b * R * interleaved_code_bytes<S> + rv * 4;
            QTENSOR_UNROLL
            for (std::size_t c = 0; c < interleaved_code_bytes<S> / 4; ++c)
                __builtin_prefetch(p + prefetch_distance + c * 64);
            // w[c] meets activation word c (elements 4c .. 4c + 3): for Q4_0
            // the low nibbles of words 0..3, then their high nibbles.
            VU8 w[8];
            if constexpr (is_q4) {
                QTENSOR_UNROLL
                for (std::size_t c = 0; c < 4; ++c) {
                    const auto v = hn::LoadU(du8, p + c * R * 4);
                    w[c] = hn::And(v, low_nibble);
                    w[c + 4] = hn::And(hn::BitCast(du8, hn::ShiftRight<4>(hn::BitCast(du16, v))), low_nibble);
                }
            } else {
                QTENSOR_UNROLL
                for (std::size_t c = 0; c < 8; ++c) {
                    const auto v = hn::LoadU(du8, p + c * R * 4);
                    w[c] = Dot::vnni ? hn::Xor(v, top_bit) : v;
                }
            }
            const VF dw = hn::PromoteTo(df, hn::LoadU(df16, scales + b * R + rv));
            QTENSOR_UNROLL
            for (std::size_t t = 0; t < TT; ++t) {
                const std::size_t ab = (t0 + t) * nb + b;
                const std::int8_t* q = a.blocks[ab].qs.data();
                // The offset correction starts the sum (scalar work, not a vector op).
                VI s0 = offset ? hn::Set(di, -(a.sums[ab] << offset_shift)) : hn::Zero(di);
                VI s1 = hn::Zero(di);
                QTENSOR_UNROLL
                for (std::size_t c = 0; c < 8; c += 2) {
                    if constexpr (is_q4 || Dot::vnni) {
                        s0 = dot(s0, w[c], broadcast4(q + 4 * c));
                        s1 = dot(s1, w[c + 1], broadcast4(q + 4 * c + 4));
                    } else {
                        s0 = dot(s0, abs_i8(w[c]), sign_i8(broadcast4(q + 4 * c), w[c]));
                        s1 = dot(s1, abs_i8(w[c + 1]), sign_i8(broadcast4(q + 4 * c + 4), w[c + 1]));
                    }
                }
                const VI isum = hn::Add(s0, s1);
                acc[t] = hn::MulAdd(hn::ConvertTo(df, isum), hn::Mul(dw, hn::Set(df, a.scales[ab])), acc[t]);
            }
        }
        QTENSOR_UNROLL
        for (std::size_t t = 0; t < TT; ++t) hn::StoreU(acc[t], df, out + t * R + rv);
    }
}

// All groups of `w` against all tokens, in token tiles of 8, 4, 2, 1 (the
// arithmetic of one output does not depend on its tile).
template <class S, class Dot>
void groups_matmul(interleaved_rows w, q8_0_rows a, output_rows y, Dot dot) {
    constexpr std::size_t R = interleave_rows;
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

template <class S>
void interleaved_matmul(interleaved_rows w, q8_0_rows a, output_rows y) {
    with_byte_dot([&](auto dot) { groups_matmul<S>(w, a, y, dot); });
}

// 16 GGUF-layout rows at `rows` + i * stride -> one interleaved group, as
// reference::interleave_group: per block, one gather per code word (word c
// of all 16 rows) and one for the scales (the low half of the first word of
// each block). Byte offsets i * stride must fit int32.
template <class S>
HWY_INLINE void gather_group(const std::byte* rows, std::size_t stride, std::size_t nb, std::byte* group) {
    constexpr std::size_t R = interleave_rows;
    constexpr std::size_t qb = interleaved_code_bytes<S>;
    const DI di;
    const hn::Rebind<std::uint16_t, DI> du16;
    const std::size_t N = hn::Lanes(di);
    std::byte* scales = group + nb * R * qb;
    for (std::size_t rv = 0; rv < R; rv += N) {
        const VI offsets = hn::Mul(hn::Add(hn::Iota(di, 0), hn::Set(di, static_cast<std::int32_t>(rv))),
                                   hn::Set(di, static_cast<std::int32_t>(stride)));
        for (std::size_t b = 0; b < nb; ++b) {
            const std::byte* block = rows + b * S::block_bytes;
            for (std::size_t c = 0; c < qb / 4; ++c) {
                const auto words = hn::GatherOffset(di, reinterpret_cast<const std::int32_t*>(block + 2 + 4 * c), offsets);
                hn::StoreU(words, di, reinterpret_cast<std::int32_t*>(group + b * R * qb + (c * R + rv) * 4));
            }
            const auto first = hn::GatherOffset(di, reinterpret_cast<const std::int32_t*>(block), offsets);
            const auto d = hn::DemoteTo(du16, hn::And(first, hn::Set(di, 0xffff)));
            hn::StoreU(d, du16, reinterpret_cast<std::uint16_t*>(scales + (b * R + rv) * 2));
        }
    }
}

// GGUF-layout rows for GEMV (and T < 4): each vector holds 16 code bytes of
// rows_per_vec rows, one row per 128-bit chunk, so no regrouping is needed.
// Each int32 lane then sums part of one row's block; the lanes are scaled by
// their row's dw * da and accumulated per lane, and each row's 4 lanes are
// added at the end. Tiles of 4 vectors (16 rows on AVX-512, 8 on AVX2) share
// the activation loads and the offset correction.
#if HWY_TARGET <= HWY_AVX3
constexpr std::size_t rows_per_vec = 4;
#else
constexpr std::size_t rows_per_vec = 2;
#endif

// Chunk k: the 16 bytes at p[k] + offset.
HWY_INLINE VU8 load_row_chunks(const std::byte* const* p, std::size_t offset) {
    const auto at = [&](std::size_t k) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p[k] + offset)); };
#if HWY_TARGET <= HWY_AVX3
    __m512i z = _mm512_zextsi128_si512(at(0));
    z = _mm512_inserti32x4(z, at(1), 1);
    z = _mm512_inserti32x4(z, at(2), 2);
    return VU8{_mm512_inserti32x4(z, at(3), 3)};
#else
    return VU8{_mm256_inserti128_si256(_mm256_zextsi128_si256(at(0)), at(1), 1)};
#endif
}

// Chunk k: fp32 of the fp16 at p[k] + offset, in all 4 lanes.
HWY_INLINE VF load_row_scales(const std::byte* const* p, std::size_t offset) {
    const auto bits = [&](std::size_t k) {
        std::uint16_t h;
        std::memcpy(&h, p[k] + offset, 2);
        return static_cast<std::uint64_t>(h) << (16 * k);
    };
    // Each fp16 repeated over 4 lanes by a byte shuffle, then widened.
#if HWY_TARGET <= HWY_AVX3
    const __m256i halves = _mm256_set1_epi64x(static_cast<long long>(bits(0) | bits(1) | bits(2) | bits(3)));
    const __m256i spread = _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3,   //
                                            4, 5, 4, 5, 4, 5, 4, 5, 6, 7, 6, 7, 6, 7, 6, 7);
    return hn::PromoteTo(DF(), VH{_mm256_shuffle_epi8(halves, spread)});
#else
    const __m128i halves = _mm_cvtsi32_si128(static_cast<int>(bits(0) | bits(1)));
    const __m128i spread = _mm_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3);
    return hn::PromoteTo(DF(), VH{_mm_shuffle_epi8(halves, spread)});
#endif
}

template <class S, class Dot>
void plain_rows_matmul(weight_rows w, q8_0_rows a, output_rows y, Dot dot) {
    constexpr std::size_t Q = 4;                  // vectors per tile (measured: 4 > 2 > 1)
    constexpr std::size_t tile = Q * rows_per_vec; // rows per tile
    constexpr bool is_q4 = std::is_same_v<S, q4_0>;
    const DI di;
    const DF df;
    const DU8 du8;
    const DI8 di8;
    const DU16 du16;
    const std::size_t nb = a.n / S::block_elems;
    const auto low_nibble = hn::Set(du8, std::uint8_t{0x0f});
    const auto top_bit = hn::Set(du8, std::uint8_t{0x80});
    // Weight code offset, in every byte: the activation dot with it is the correction.
    const auto offset = hn::Set(du8, std::uint8_t{is_q4 ? 8 : 0x80});
    constexpr bool use_offset = is_q4 || Dot::vnni;
    alignas(64) float lanes[Q][hn::MaxLanes(DF())];
    for (std::size_t r0 = 0; r0 < w.rows; r0 += tile) {
        // Rows past the end repeat the last row; their outputs are dropped.
        const std::byte* rows[tile];
        for (std::size_t i = 0; i < tile; ++i)
            rows[i] = w.data + std::min(r0 + i, w.rows - 1) * w.stride_bytes;
        for (std::size_t t = 0; t < a.T; ++t) {
            VF acc[Q];
            QTENSOR_UNROLL
            for (std::size_t q = 0; q < Q; ++q) acc[q] = hn::Zero(df);
            for (std::size_t b = 0; b < nb; ++b) {
                const std::size_t ab = t * nb + b;
                const std::int8_t* qa = a.blocks[ab].qs.data();
                const auto act_lo = hn::LoadDup128(di8, qa);
                const auto act_hi = hn::LoadDup128(di8, qa + 16);
                VI corr = hn::Zero(di);
                if constexpr (use_offset) corr = dot(dot(corr, offset, act_lo), offset, act_hi);
                const VF da = hn::Set(df, a.scales[ab]);
                const std::size_t off = b * S::block_bytes;
                QTENSOR_UNROLL
                for (std::size_t q = 0; q < Q; ++q) {
                    const std::byte* const* p = rows + q * rows_per_vec;
                    VI isum;
                    if constexpr (is_q4) {
                        const auto v = load_row_chunks(p, off + 2);
                        const auto lo = hn::And(v, low_nibble);
                        const auto hi = hn::And(hn::BitCast(du8, hn::ShiftRight<4>(hn::BitCast(du16, v))), low_nibble);
                        isum = dot(dot(hn::Zero(di), lo, act_lo), hi, act_hi);
                    } else {
                        const auto v0 = load_row_chunks(p, off + 2);
                        const auto v1 = load_row_chunks(p, off + 18);
                        if constexpr (Dot::vnni) {
                            isum = dot(dot(hn::Zero(di), hn::Xor(v0, top_bit), act_lo), hn::Xor(v1, top_bit), act_hi);
                        } else {
                            isum = dot(dot(hn::Zero(di), abs_i8(v0), sign_i8(act_lo, v0)), abs_i8(v1),
                                       sign_i8(act_hi, v1));
                        }
                    }
                    isum = hn::Sub(isum, corr);
                    acc[q] = hn::MulAdd(hn::ConvertTo(df, isum), hn::Mul(load_row_scales(p, off), da), acc[q]);
                }
            }
            QTENSOR_UNROLL
            for (std::size_t q = 0; q < Q; ++q) hn::Store(acc[q], df, lanes[q]);
            for (std::size_t i = 0; i < tile && r0 + i < w.rows; ++i) {
                const float* l = lanes[i / rows_per_vec] + 4 * (i % rows_per_vec);
                y.data[t * y.stride + r0 + i] = (l[0] + l[1]) + (l[2] + l[3]);
            }
        }
    }
}

// GGUF-layout rows for GEMM (T >= 4): each run of 16 rows is interleaved
// into a scratch group, then computed as above, so the results equal those
// of interleaved<S>.
template <class S>
void plain_matmul(weight_rows w, q8_0_rows a, output_rows y) {
    if (a.T < 4) {
        with_byte_dot([&](auto dot) { plain_rows_matmul<S>(w, a, y, dot); });
        return;
    }
    constexpr std::size_t R = interleave_rows;
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
        interleaved_matmul<S>({group, group_bytes, count}, a, {y.data + r0, y.stride});
    }
}

// One Q8_K block rearranged once per call for q2_k_row: the activations of
// each vector v and bit plane s back to back, the block sums as int32.
struct q2_k_activation {
    alignas(64) std::int8_t qs[256];
    std::int32_t bsums[16];
    float d;
};

// One Q2_K row against prepared Q8_K rows. The 64 code bytes hold 4 bit
// planes; plane s of byte l in half h is element 128h + 32s + l, so the
// activations of a plane are two runs of 32 (one per half) and every int32
// lane of the byte dot lies in one 16-element sub-block, whose 4-bit scale a
// table lookup puts in that lane. The mins meet the activation's 16 block sums.
template <std::size_t R, class Dot>
HWY_INLINE void q2_k_rows(const block_q2_k* const* w, const q2_k_activation* a, std::size_t nb, Dot dot,
                          float* out) {
    const DI di;
    const DF df;
    const DU8 du8;
    const DU16 du16;
    const DI8 di8;
    constexpr std::size_t N = hn::MaxLanes(di);          // 16 (AVX3) or 8 (AVX2)
    constexpr std::size_t V = 4 * N;                     // code bytes per vector
    const hn::Rebind<std::uint8_t, DI> du8_n;
    // Lane p of vector v at plane s: byte B = V v + 4p, half h = B / 32,
    // sub-block 8h + 2s + (B % 32) / 16, relative to the N scales loaded for v.
    struct table {
        alignas(64) std::int32_t index[64 / V][4][N];
    };
    static constexpr table lanes = [] {
        table t{};
        for (std::size_t v = 0; v < 64 / V; ++v)
            for (std::size_t s = 0; s < 4; ++s)
                for (std::size_t p = 0; p < N; ++p) {
                    const std::size_t B = V * v + 4 * p;
                    t.index[v][s][p] = static_cast<std::int32_t>(8 * (B / 32) + 2 * s + (B % 32) / 16 - N * v);
                }
        return t;
    }();
    const auto three = hn::Set(du8, std::uint8_t{3});
    const auto low_nibble = hn::Set(di, 0x0f);
    VF acc[R], acc_min[R];
    QTENSOR_UNROLL
    for (std::size_t r = 0; r < R; ++r) acc[r] = acc_min[r] = hn::Zero(df);
    for (std::size_t b = 0; b < nb; ++b) {
        // Two partial sums per row halve the dependency chain of the scale products.
        VI sums[R][2], mins[R];
        QTENSOR_UNROLL
        for (std::size_t r = 0; r < R; ++r) sums[r][0] = sums[r][1] = mins[r] = hn::Zero(di);
        QTENSOR_UNROLL
        for (std::size_t v = 0; v < 64 / V; ++v) {
            QTENSOR_UNROLL
            for (std::size_t r = 0; r < R; ++r) {
                const auto bytes = hn::LoadU(du8, w[r][b].qs.data() + V * v);
                const VI sc = hn::PromoteTo(di, hn::LoadU(du8_n, w[r][b].scales.data() + N * v));
                const VI scale = hn::And(sc, low_nibble);
                // The scale in both int16 halves of its lane, for the pair products below.
                const VI scale2 = hn::Or(scale, hn::ShiftLeft<16>(scale));
                QTENSOR_UNROLL
                for (std::size_t s = 0; s < 4; ++s) {
                    const auto plane = hn::And(
                        hn::BitCast(du8, hn::ShiftRightSame(hn::BitCast(du16, bytes), static_cast<int>(2 * s))), three);
                    // int16 sums of byte pairs (at most 2 * 3 * 127), then
                    // each pair times its lane's scale, summed into int32.
                    const VI pairs = maddubs(plane, hn::Load(di8, a[b].qs + V * (4 * v + s)));
                    const VI lane_scale = hn::TableLookupLanes(scale2, hn::SetTableIndices(di, lanes.index[v][s]));
                    sums[r][s % 2] = dot.mul_small(sums[r][s % 2], pairs, lane_scale);
                }
                mins[r] = dot.mul_small(mins[r], hn::LoadU(di, a[b].bsums + N * v), hn::ShiftRight<4>(sc));
            }
        }
        QTENSOR_UNROLL
        for (std::size_t r = 0; r < R; ++r) {
            // d and dmin side by side: one conversion, one multiply by the activation's d.
            std::uint32_t scales;
            std::memcpy(&scales, &w[r][b].d, 4);
            const __m128 dd =
                _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(scales))), _mm_set1_ps(a[b].d));
            acc[r] = hn::MulAdd(hn::ConvertTo(df, hn::Add(sums[r][0], sums[r][1])), hn::Set(df, _mm_cvtss_f32(dd)),
                                acc[r]);
            acc_min[r] = hn::MulAdd(hn::ConvertTo(df, mins[r]), hn::Set(df, _mm_cvtss_f32(_mm_movehdup_ps(dd))),
                                    acc_min[r]);
        }
    }
    QTENSOR_UNROLL
    for (std::size_t r = 0; r < R; ++r)
        out[r] = hn::GetLane(hn::SumOfLanes(df, acc[r])) - hn::GetLane(hn::SumOfLanes(df, acc_min[r]));
}

template <class Dot>
void q2_k_matmul(weight_rows w, q8_k_rows a, output_rows y, Dot dot) {
    constexpr std::size_t V = 4 * hn::MaxLanes(DI());
    const std::size_t nb = a.n / q2_k::block_elems;
    std::vector<q2_k_activation> act(a.T * nb);
    for (std::size_t i = 0; i < act.size(); ++i) {
        const block_q8_k& src = a.blocks[i];
        for (std::size_t v = 0; v < 64 / V; ++v)
            for (std::size_t s = 0; s < 4; ++s)
                for (std::size_t k = 0; k < V / 32; ++k) // the 32-byte runs of this vector: one per half
                    std::memcpy(act[i].qs + V * (4 * v + s) + 32 * k, src.qs.data() + 128 * (V * v / 32 + k) + 32 * s, 32);
        for (std::size_t g = 0; g < 16; ++g) act[i].bsums[g] = src.bsums[g];
        act[i].d = src.d;
    }
    // One row at a time: two rows side by side measured slower out of cache.
    for (std::size_t r = 0; r < w.rows; ++r) {
        const auto row = reinterpret_cast<const block_q2_k*>(w.data + r * w.stride_bytes);
        for (std::size_t t = 0; t < a.T; ++t) q2_k_rows<1>(&row, act.data() + t * nb, nb, dot, y.data + t * y.stride + r);
    }
}

#endif // QTENSOR_MATMUL_INT8_SIMD

void matmul_q4_0(weight_rows w, q8_0_rows a, output_rows y) {
#if defined(QTENSOR_MATMUL_INT8_SIMD)
    plain_matmul<q4_0>(w, a, y);
#else
    reference::matmul_q4_0(w, a, y);
#endif
}

void matmul_q8_0(weight_rows w, q8_0_rows a, output_rows y) {
#if defined(QTENSOR_MATMUL_INT8_SIMD)
    plain_matmul<q8_0>(w, a, y);
#else
    reference::matmul_q8_0(w, a, y);
#endif
}

void matmul_q4_0x16(interleaved_rows w, q8_0_rows a, output_rows y) {
#if defined(QTENSOR_MATMUL_INT8_SIMD)
    interleaved_matmul<q4_0>(w, a, y);
#else
    reference::matmul_q4_0x16(w, a, y);
#endif
}

void matmul_q8_0x16(interleaved_rows w, q8_0_rows a, output_rows y) {
#if defined(QTENSOR_MATMUL_INT8_SIMD)
    interleaved_matmul<q8_0>(w, a, y);
#else
    reference::matmul_q8_0x16(w, a, y);
#endif
}

void matmul_q2_k(weight_rows w, q8_k_rows a, output_rows y) {
#if defined(QTENSOR_MATMUL_INT8_SIMD)
    with_byte_dot([&](auto dot) { q2_k_matmul(w, a, y, dot); });
#else
    reference::matmul_q2_k(w, a, y);
#endif
}

float dot_q2_k_q8_k(const block_q2_k* w, const block_q8_k* a, std::size_t n) {
    float out;
    matmul_q2_k({reinterpret_cast<const std::byte*>(w), 0, 1}, {a, n, 1}, {&out, 0});
    return out;
}

} // namespace
} // namespace HWY_NAMESPACE
} // namespace detail
QTENSOR_KERNELS_END_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif // per-target include guard
