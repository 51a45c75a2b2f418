// qtensor/kernels/detail/xsimd/matmul.hpp: the quantized dot and matmul kernels of the xsimd
// backend, each within the error budget stated in matmul.hpp of the exact
// sum. Included by backend.hpp.
//
// Integer block sums: codes and activations are widened to int16 lanes and
// multiplied pairwise into int32 lanes (madd, pmaddwd on x86), exactly for
// every code (Q8_0's -128 included). Q4_0/Q8_0 row loops take 16 elements
// per step, so they run on at most 256-bit vectors (at_most_256).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "qtensor/core/float_bits.hpp"
#include "qtensor/core/half.hpp"
#include "qtensor/kernels/reference/matmul.hpp"
#include "qtensor/kernels/detail/xsimd/ops.hpp"
#include "qtensor/scheme/q2_k.hpp"
#include "qtensor/scheme/q4_0.hpp"
#include "qtensor/scheme/q8_0.hpp"
#include "qtensor/scheme/q8_k.hpp"

QTENSOR_KERNELS_BEGIN_NAMESPACE
namespace detail::xsimd_matmul {

using namespace xsimd_ops;

// ---- Q4_0 / Q8_0 rows ------------------------------------------------------------

// The 32 activation codes of a Q8_0 block as int16 lanes.
template <class C>
struct q8_0_act {
    static constexpr std::size_t N16 = vec<std::int16_t, C>::size;
    static_assert(16 % N16 == 0);
    vec<std::int16_t, C> v[32 / N16];
    explicit q8_0_act(const block_q8_0& a) {
        for (std::size_t k = 0; k < 32 / N16; ++k) v[k] = load_i8_i16<C>(a.qs.data() + k * N16);
    }
};

// Per int32 lane, part of the exact sum over block w of (code - 8) * a
// (Q4_0: low nibbles meet a[0..15], high nibbles a[16..31]) or code * a (Q8_0).
template <class C>
vec<std::int32_t, C> block_sum(const block_q4_0& w, const q8_0_act<C>& a) {
    using V16 = vec<std::int16_t, C>;
    constexpr std::size_t N16 = V16::size;
    vec<std::int32_t, C> sum(0);
    for (std::size_t j = 0; j < 16; j += N16) {
        const V16 codes = load_u8_i16<C>(w.qs.data() + j);
        sum += madd((codes & V16(0x0f)) - V16(8), a.v[j / N16]);
        sum += madd((codes >> 4) - V16(8), a.v[(16 + j) / N16]);
    }
    return sum;
}

template <class C>
vec<std::int32_t, C> block_sum(const block_q8_0& w, const q8_0_act<C>& a) {
    constexpr std::size_t N16 = vec<std::int16_t, C>::size;
    vec<std::int32_t, C> sum(0);
    for (std::size_t j = 0; j < 32; j += N16) sum += madd(load_i8_i16<C>(w.qs.data() + j), a.v[j / N16]);
    return sum;
}

// R weight rows w[r][nb] against one activation row a[nb]: out[r] = w[r] . a.
// Per block, the exact int32 lanes, then one FMA adds them, times dw * da
// (exact: two fp16), to a float accumulator; one horizontal sum at the end.
// A row's arithmetic does not depend on R (nor on the other rows of its tile).
template <std::size_t R, class C, class B>
void rows_dot(const B* const* w, const block_q8_0* a, const float* a_scales, std::size_t nb, float* out) {
    using VF = vec<float, C>;
    VF acc[R];
    for (auto& v : acc) v = VF(0.0f);
    for (std::size_t b = 0; b < nb; ++b) {
        const q8_0_act<C> act(a[b]);
        const float da = a_scales ? a_scales[b] : fp16_to_fp32(a[b].d);
        for (std::size_t r = 0; r < R; ++r) {
            const float dd = fp16_to_fp32(w[r][b].d) * da;
            acc[r] = xsimd::fma(xsimd::batch_cast<float>(block_sum<C>(w[r][b], act)), VF(dd), acc[r]);
        }
    }
    for (std::size_t r = 0; r < R; ++r) out[r] = hsum(acc[r]);
}

// ---- interleaved Q4_0 / Q8_0 -----------------------------------------------------------

// The 8 activation words (bytes 4c .. 4c + 3) of a Q8_0 block as int16 pairs
// for int32 lanes: (a[4c], a[4c + 2]) in even[c], (a[4c + 1], a[4c + 3]) in odd[c].
struct act_pairs {
    std::int32_t even[8], odd[8];
    void set(const std::int8_t* a) {
        const auto pair = [](std::int8_t lo, std::int8_t hi) {
            return static_cast<std::int32_t>(static_cast<std::uint16_t>(lo) |
                                             static_cast<std::uint32_t>(static_cast<std::uint16_t>(hi)) << 16);
        };
        for (std::size_t c = 0; c < 8; ++c) {
            even[c] = pair(a[4 * c], a[4 * c + 2]);
            odd[c] = pair(a[4 * c + 1], a[4 * c + 3]);
        }
    }
};

// Activation word c of p in every int32 lane.
template <class A>
struct act_word {
    vec<std::int16_t, A> even, odd;
    act_word(const act_pairs& p, std::size_t c)
        : even(bits<std::int16_t>(vec<std::int32_t, A>(p.even[c]))),
          odd(bits<std::int16_t>(vec<std::int32_t, A>(p.odd[c]))) {}
};

// Per int32 lane holding 4 code bytes w[0..3] of one row: sum w[k] * a[k].
// `even` and `odd` are those bytes as int16 (bytes 0 and 2, bytes 1 and 3).
template <class A>
vec<std::int32_t, A> word_dot(const vec<std::int16_t, A>& even, const vec<std::int16_t, A>& odd,
                              const act_word<A>& a) {
    return madd(even, a.even) + madd(odd, a.odd);
}

// One interleaved group (16 rows, nb blocks) against tokens t0 .. t0 + TT - 1:
// out[k][i] = row i . token t0 + k, each int32 lane one row. Per block the
// exact integer sums of N rows (the code words split once for all TT
// tokens), minus 8 * sum(a) for Q4_0's offset, then one FMA with the N rows'
// scales times da. A token's arithmetic does not depend on TT.
template <class S, class A, std::size_t TT>
void group_tile(const std::byte* group, std::size_t nb, const q8_0_rows& a, std::size_t t0,
                float (*out)[interleave_rows]) {
    using VI = vec<std::int32_t, A>;
    using V16 = vec<std::int16_t, A>;
    using VF = vec<float, A>;
    constexpr std::size_t R = interleave_rows;
    constexpr std::size_t N = VI::size;
    static_assert(R % N == 0);
    constexpr std::size_t qb = interleaved_code_bytes<S>;
    constexpr bool is_q4 = std::is_same_v<S, q4_0>;
    const auto* scales = reinterpret_cast<const fp16_t*>(group + nb * R * qb);
    for (std::size_t rv = 0; rv < R; rv += N) {
        VF acc[TT];
        for (auto& v : acc) v = VF(0.0f);
        for (std::size_t b = 0; b < nb; ++b) {
            const std::byte* codes = group + b * R * qb;
            VI isum[TT];
            for (auto& v : isum) v = VI(0);
            act_pairs act[TT];
            for (std::size_t k = 0; k < TT; ++k) act[k].set(a.blocks[(t0 + k) * nb + b].qs.data());
            for (std::size_t c = 0; c < qb / 4; ++c) {
                const V16 w = bits<std::int16_t>(VI::load_unaligned(reinterpret_cast<const std::int32_t*>(codes + (c * R + rv) * 4)));
                if constexpr (is_q4) {
                    const V16 lo = w & V16(0x0f0f), hi = (w >> 4) & V16(0x0f0f);
                    const V16 lo_even = lo & V16(0xff), lo_odd = lo >> 8, hi_even = hi & V16(0xff), hi_odd = hi >> 8;
                    for (std::size_t k = 0; k < TT; ++k) {
                        isum[k] += word_dot(lo_even, lo_odd, act_word<A>(act[k], c));
                        isum[k] += word_dot(hi_even, hi_odd, act_word<A>(act[k], 4 + c));
                    }
                } else {
                    const V16 even = (w << 8) >> 8, odd = w >> 8;
                    for (std::size_t k = 0; k < TT; ++k) isum[k] += word_dot(even, odd, act_word<A>(act[k], c));
                }
            }
            const VF dw = load_f16<A>(scales + b * R + rv);
            for (std::size_t k = 0; k < TT; ++k) {
                const std::size_t ab = (t0 + k) * nb + b;
                if constexpr (is_q4) isum[k] -= VI(8 * a.sums[ab]);
                acc[k] = xsimd::fma(xsimd::batch_cast<float>(isum[k]), dw * VF(a.scales[ab]), acc[k]);
            }
        }
        for (std::size_t k = 0; k < TT; ++k) acc[k].store_unaligned(out[k] + rv);
    }
}

template <class S, class A>
void interleaved_matmul(interleaved_rows w, q8_0_rows a, output_rows y) {
    constexpr std::size_t R = interleave_rows;
    constexpr std::size_t TT = 4;
    const std::size_t nb = a.n / S::block_elems;
    float tile[TT][R];
    for (std::size_t g = 0; g * R < w.rows; ++g) {
        const std::byte* group = w.data + g * w.group_bytes;
        const std::size_t valid = w.rows - g * R < R ? w.rows - g * R : R;
        for (std::size_t t0 = 0; t0 < a.T;) {
            const std::size_t count = a.T - t0 >= TT ? TT : 1;
            if (count == TT)
                group_tile<S, A, TT>(group, nb, a, t0, tile);
            else
                group_tile<S, A, 1>(group, nb, a, t0, tile);
            for (std::size_t k = 0; k < count; ++k)
                std::memcpy(y.data + (t0 + k) * y.stride + g * R, tile[k], valid * sizeof(float));
            t0 += count;
        }
    }
}

// GGUF-layout rows. GEMV (T < 4): tiles of 4 rows share each activation
// block's widening. GEMM (T >= 4): each run of 16 rows is interleaved into a
// scratch group and computed as above, so the results equal those of
// interleaved<S>, bit for bit.
template <class S, class A>
void plain_matmul(weight_rows w, q8_0_rows a, output_rows y) {
    using B = block_of<S>;
    using C = at_most_256<A>;
    constexpr std::size_t R = interleave_rows;
    const std::size_t nb = a.n / S::block_elems;
    const auto row = [&](std::size_t r) { return reinterpret_cast<const B*>(w.data + r * w.stride_bytes); };
    if (a.T < 4) {
        constexpr std::size_t tile = 4;
        for (std::size_t t = 0; t < a.T; ++t) {
            const block_q8_0* act = a.blocks + t * nb;
            const float* act_scales = a.scales + t * nb;
            float* out = y.data + t * y.stride;
            std::size_t r = 0;
            for (; r + tile <= w.rows; r += tile) {
                const B* rows[tile] = {row(r), row(r + 1), row(r + 2), row(r + 3)};
                rows_dot<tile, C>(rows, act, act_scales, nb, out + r);
            }
            for (; r < w.rows; ++r) {
                const B* one = row(r);
                rows_dot<1, C>(&one, act, act_scales, nb, out + r);
            }
        }
        return;
    }
    const std::size_t group_bytes = interleaved_group_bytes<S>(nb);
    std::vector<std::byte> group(group_bytes);
    for (std::size_t r0 = 0; r0 < w.rows; r0 += R) {
        const std::size_t count = w.rows - r0 < R ? w.rows - r0 : R;
        const B* rows[R];
        for (std::size_t i = 0; i < count; ++i) rows[i] = row(r0 + i);
        reference::interleave_group<S>(rows, count, nb, group.data());
        interleaved_matmul<S, A>({group.data(), group_bytes, count}, a, {y.data + r0, y.stride});
    }
}

// ---- Q2_K ------------------------------------------------------------------------------

// One Q2_K row against one Q8_K row. Per 16-element sub-block j: the 2-bit
// codes (bit plane 2s of bytes qs[32h + l ..], elements 128h + 32s + l) times
// their 4-bit scale s_j, still in int16 (at most 45), meet the activations in
// madd; the mins meet the activation's 16 block sums. Both sums are exact
// integers; each block adds them, times d * da and dmin * da, once.
template <class C>
float q2_k_row(const block_q2_k* w, const block_q8_k* a, std::size_t nb) {
    using V16 = vec<std::int16_t, C>;
    using VF = vec<float, C>;
    constexpr std::size_t N16 = V16::size;
    static_assert(16 % N16 == 0);
    VF acc(0.0f);
    float acc_min = 0.0f;
    for (std::size_t b = 0; b < nb; ++b) {
        vec<std::int32_t, C> isum(0);
        for (std::size_t h = 0; h < 2; ++h)
            for (int s = 0; s < 4; ++s)
                for (std::size_t l = 0; l < 32; l += 16) {
                    const std::size_t j = 8 * h + 2 * static_cast<std::size_t>(s) + l / 16;
                    const V16 scale(static_cast<std::int16_t>(q2_k::scale_of(w[b], j)));
                    for (std::size_t i = 0; i < 16; i += N16) {
                        const V16 q = (load_u8_i16<C>(w[b].qs.data() + 32 * h + l + i) >> (2 * s)) & V16(3);
                        const V16 x = load_i8_i16<C>(a[b].qs.data() + 128 * h + 32 * static_cast<std::size_t>(s) + l + i);
                        isum += madd(q * scale, x);
                    }
                }
        std::int32_t mins = 0;
        for (std::size_t j = 0; j < 16; ++j) mins += q2_k::min_of(w[b], j) * a[b].bsums[j];
        acc = xsimd::fma(xsimd::batch_cast<float>(isum), VF(a[b].d * fp16_to_fp32(w[b].d)), acc);
        acc_min += qtensor::detail::fmul(a[b].d * fp16_to_fp32(w[b].dmin), static_cast<float>(mins));
    }
    return hsum(acc) - acc_min;
}

} // namespace detail::xsimd_matmul

namespace detail::entry {

inline float dot_q4_0_q8_0(target t, const block_q4_0* w, const block_q8_0* a, std::size_t n) {
    return run_on(t,
                  [&](auto arch) {
                      float out;
                      xsimd_matmul::rows_dot<1, xsimd_ops::at_most_256<decltype(arch)>>(&w, a, nullptr, n / 32, &out);
                      return out;
                  },
                  [&] { return q4_0::dot_row(w, a, n); });
}
inline float dot_q8_0_q8_0(target t, const block_q8_0* w, const block_q8_0* a, std::size_t n) {
    return run_on(t,
                  [&](auto arch) {
                      float out;
                      xsimd_matmul::rows_dot<1, xsimd_ops::at_most_256<decltype(arch)>>(&w, a, nullptr, n / 32, &out);
                      return out;
                  },
                  [&] { return q8_0::dot_row(w, a, n); });
}
inline float dot_q2_k_q8_k(target t, const block_q2_k* w, const block_q8_k* a, std::size_t n) {
    return run_on(t, [&](auto arch) { return xsimd_matmul::q2_k_row<xsimd_ops::at_most_256<decltype(arch)>>(w, a, n / 256); },
                  [&] { return q2_k::dot_row(w, a, n); });
}

inline void matmul_q4_0(target t, weight_rows w, q8_0_rows a, output_rows y) {
    run_on(t, [&](auto arch) { xsimd_matmul::plain_matmul<q4_0, decltype(arch)>(w, a, y); },
           [&] { reference::matmul_q4_0(w, a, y); });
}
inline void matmul_q8_0(target t, weight_rows w, q8_0_rows a, output_rows y) {
    run_on(t, [&](auto arch) { xsimd_matmul::plain_matmul<q8_0, decltype(arch)>(w, a, y); },
           [&] { reference::matmul_q8_0(w, a, y); });
}
inline void matmul_q2_k(target t, weight_rows w, q8_k_rows a, output_rows y) {
    run_on(t,
           [&](auto arch) {
               const std::size_t nb = a.n / q2_k::block_elems;
               for (std::size_t r = 0; r < w.rows; ++r) {
                   const auto row = reinterpret_cast<const block_q2_k*>(w.data + r * w.stride_bytes);
                   for (std::size_t tok = 0; tok < a.T; ++tok)
                       y.data[tok * y.stride + r] =
                           xsimd_matmul::q2_k_row<xsimd_ops::at_most_256<decltype(arch)>>(row, a.blocks + tok * nb, nb);
               }
           },
           [&] { reference::matmul_q2_k(w, a, y); });
}
inline void matmul_q4_0x16(target t, interleaved_rows w, q8_0_rows a, output_rows y) {
    run_on(t, [&](auto arch) { xsimd_matmul::interleaved_matmul<q4_0, decltype(arch)>(w, a, y); },
           [&] { reference::matmul_q4_0x16(w, a, y); });
}
inline void matmul_q8_0x16(target t, interleaved_rows w, q8_0_rows a, output_rows y) {
    run_on(t, [&](auto arch) { xsimd_matmul::interleaved_matmul<q8_0, decltype(arch)>(w, a, y); },
           [&] { reference::matmul_q8_0x16(w, a, y); });
}

} // namespace detail::entry
QTENSOR_KERNELS_END_NAMESPACE
