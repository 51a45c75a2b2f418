// qtensor/kernels/detail/generic/quant-inl.hpp: the quantize and dequantize kernels,
// written once over the vector vocabulary `ops` (scalar/ops.hpp defines every
// op on one lane). Each gives the same bits as its scalar twin in scheme/, and
// the quantizers throw the same qtensor::error for the same input: any
// non-finite element or fp16 scale overflow hands the whole row to the
// reference, which throws it.
//
// The quantizers must round every product before the add that follows, as
// the references do; where ops::rounded() cannot force that (ops::can_round
// false), they are the references.
//
// No include guard and no namespace on purpose: a backend includes this file
// once per instruction set, inside that set's namespace, where `ops` is that
// set's vocabulary (generic/kernels-inl.hpp; do not include it yourself).

namespace quant_impl {

constexpr std::uint32_t nonfinite_bits = 0x7f800000u;

// |x| as int32 bits: for finite x they order as |x| does, and they are
// >= 0x7f800000 exactly for Inf and NaN. So one integer max gives both the
// block's largest magnitude and whether the block is finite.
QTENSOR_OPS_INLINE ops::vi abs_bits(ops::vi bits) { return bits & ops::set_i(0x7fffffff); }

// x[n] (n a multiple of N) -> the largest abs_bits.
QTENSOR_OPS_INLINE std::uint32_t max_abs_bits(const float* x, std::size_t n) {
    auto m = ops::set_i(0);
    for (std::size_t j = 0; j < n; j += ops::lanes) m = ops::max(m, abs_bits(ops::bits(ops::load(x + j))));
    return static_cast<std::uint32_t>(ops::reduce_max(m));
}

// Lane k of the result = op over all lanes of v[k], for k < N (v is
// clobbered). Pairwise: each level halves the vectors, and concat_even /
// concat_odd keep block k's partial results in lanes k * width .. so they end
// in lane k. About 3 instructions per vector, against about 9 for a
// horizontal reduction of each.
template <class V, class Op>
QTENSOR_OPS_INLINE V reduce_each(V* v, Op op) {
#pragma GCC unroll 16
    for (std::size_t count = ops::lanes; count > 1; count /= 2) {
#pragma GCC unroll 16
        for (std::size_t i = 0; i < count / 2; ++i)
            v[i] = op(ops::concat_even(v[2 * i + 1], v[2 * i]), ops::concat_odd(v[2 * i + 1], v[2 * i]));
    }
    return v[0];
}

struct max_op {
    template <class V>
    QTENSOR_OPS_INLINE V operator()(V a, V b) const { return ops::max(a, b); }
};
struct min_op {
    template <class V>
    QTENSOR_OPS_INLINE V operator()(V a, V b) const { return ops::min(a, b); }
};

// x[count] -> the references' signed max: the first element whose magnitude
// is amax (given as bits), or +0 for an all-zero block (even if it holds -0).
// Up to 64 elements, without a branch: the sign bit of the first match, from
// bit masks of the matches and of the negative elements.
template <std::size_t count>
QTENSOR_OPS_INLINE float signed_max(const float* x, std::uint32_t amax) {
    constexpr std::size_t N = ops::lanes;
    const auto want = ops::set_i(static_cast<std::int32_t>(amax));
    if constexpr (count <= 64) {
        std::uint64_t match = 0, negative = 0;
        for (std::size_t j = 0; j < count; j += N) {
            const auto v = ops::bits(ops::load(x + j));
            match |= ops::mask_bits(abs_bits(v) == want) << j;
            negative |= ops::mask_bits(v < ops::set_i(0)) << j;
        }
        const std::uint32_t sign = (negative & match & (~match + 1)) != 0 ? 0x80000000u : 0u;
        return amax == 0 ? 0.0f : std::bit_cast<float>(amax | sign);
    } else {
        if (amax == 0) return 0.0f;
        for (std::size_t j = 0;; j += N) {
            const int i = ops::first_true(abs_bits(ops::bits(ops::load(x + j))) == want);
            if (i >= 0) return x[j + static_cast<std::size_t>(i)];
        }
    }
}

// qtensor::detail::code_reciprocal on every lane: 1/d, or 0 where d is 0 or
// 1/d overflows.
QTENSOR_OPS_INLINE ops::vf code_reciprocal(ops::vf d) {
    const auto one = ops::set_f(1.0f);
    const auto zero = d == ops::set_f(0.0f);
    const auto r = one / ops::select(zero, one, d);
    const float inf = std::numeric_limits<float>::infinity();
    const auto overflow = ops::mask_or(r == ops::set_f(inf), r == ops::set_f(-inf));
    return ops::select(ops::mask_or(zero, overflow), ops::set_f(0.0f), r);
}

// fp32_to_fp16 on every lane, as int32 lanes holding the fp16 bits: the same
// rounding (to nearest, ties to even) in integer steps, except that fp16
// subnormals come from |f| + 0.5f, whose float rounding is that rounding.
QTENSOR_OPS_INLINE ops::vi fp16_bits(ops::vf f) {
    const auto x = ops::bits(f);
    const auto sign = ops::shift_right<16>(x) & ops::set_i(0x8000);
    const auto ax = abs_bits(x);
    const auto odd = ops::shift_right<13>(ax) & ops::set_i(1);
    const auto normal = ops::shift_right<13>(ax + ops::set_i(0xfff) + odd - ops::set_i(0x38000000));
    const auto subnormal = ops::bits(ops::from_bits(ax) + ops::set_f(0.5f)) - ops::set_i(0x3f000000);
    auto h = ops::select(ax < ops::set_i(0x38800000), subnormal, normal);
    h = ops::select(ax > ops::set_i(0x477fefff), ops::set_i(0x7c00), h);
    h = ops::select(ax > ops::set_i(0x7f800000), ops::set_i(0x7e00), h);
    return sign | h;
}

// True if any lane of fp16 bits h is +-inf (an fp16 scale overflow).
QTENSOR_OPS_INLINE bool any_fp16_inf(ops::vi h) {
    const auto exp = ops::set_i(0x7c00);
    return !ops::all_false((h & exp) == exp);
}

// Per-block scales of N blocks of 32 at x (`group` of them real, the rest
// zero): the fp16 bits of d = max / divisor into d16[N] and id = 1/d into
// id[N], with max the signed max (q4_0, divisor -8) or the largest magnitude
// (q8_0, divisor 127). False where a block is not finite or d overflows fp16.
//   1. per block, N-lane partials of max |x| (as abs_bits), and for the
//      signed max of max x and min x; reduce_each turns them into vectors
//      over the N blocks;
//   2. the signed max is +amax if max x == amax, -amax if min x == -amax;
//      only blocks holding both (rare) search for the first one.
template <bool is_signed>
QTENSOR_OPS_INLINE bool block_scales(const float* x, std::size_t group, float divisor, std::int32_t* d16,
                                     float* id) {
    constexpr std::size_t N = ops::lanes;
    ops::vi abs_part[N];
    ops::vf max_part[N], min_part[N];
    for (std::size_t k = 0; k < N; ++k) {
        const float* xb = x + 32 * k;
        auto v = k < group ? ops::load(xb) : ops::set_f(0.0f);
        auto a = abs_bits(ops::bits(v));
        auto hi = v, lo = v;
        for (std::size_t j = N; j < 32; j += N) {
            v = k < group ? ops::load(xb + j) : ops::set_f(0.0f);
            a = ops::max(a, abs_bits(ops::bits(v)));
            if constexpr (is_signed) hi = ops::max(hi, v), lo = ops::min(lo, v);
        }
        abs_part[k] = a;
        if constexpr (is_signed) max_part[k] = hi, min_part[k] = lo;
    }
    const auto amax_bits = reduce_each(abs_part, max_op{});
    if (!ops::all_false(amax_bits > ops::set_i(static_cast<std::int32_t>(nonfinite_bits - 1)))) return false;
    auto max = ops::from_bits(amax_bits);
    if constexpr (is_signed) {
        const auto amax = max;
        const auto pos = reduce_each(max_part, max_op{}) == amax;
        const auto neg = reduce_each(min_part, min_op{}) == ops::neg(amax);
        max = ops::select(ops::mask_and_not(neg, pos), ops::neg(amax), amax);
        const auto both = ops::mask_and_not(ops::mask_and(pos, neg), amax == ops::set_f(0.0f));
        if (!ops::all_false(both)) {
            alignas(64) float m[N];
            ops::store(max, m);
            const std::uint64_t tied = ops::mask_bits(both);
            for (std::size_t k = 0; k < group; ++k)
                if ((tied >> k) & 1) m[k] = signed_max<32>(x + 32 * k, std::bit_cast<std::uint32_t>(std::fabs(m[k])));
            max = ops::load(m);
        }
    }
    const auto d = max / ops::set_f(divisor);
    const auto h = fp16_bits(d);
    if (any_fp16_inf(h)) return false;
    ops::store(h, d16);
    ops::store(code_reciprocal(d), id);
    return true;
}

// Q4_0's steps, shared by quantize_q4_0 and fake_quant_q4_0 below: each
// block b of x[n] with its scale d (fp16) and id = 1/d from block_scales, N
// blocks at a time (one lane per block), given to f(b, d, id). False, and
// stopped, at a group where a block is not finite or d overflows fp16.
template <class F>
QTENSOR_OPS_INLINE bool for_each_q4_0_block(const float* x, std::size_t n, F&& f) {
    constexpr std::size_t N = ops::lanes;
    const std::size_t blocks = n / 32;
    alignas(64) float id[N];
    alignas(64) std::int32_t d16[N];
    for (std::size_t b0 = 0; b0 < blocks; b0 += N) {
        const std::size_t group = std::min(N, blocks - b0);
        if (!block_scales<true>(x + 32 * b0, group, -8.0f, d16, id)) return false;
        for (std::size_t k = 0; k < group; ++k)
            f(b0 + k, fp16_t{static_cast<std::uint16_t>(d16[k])}, ops::set_f(id[k]));
    }
    return true;
}

// The codes of x[0, N) before the clamp to 15: trunc(x * id + 8.5), the
// product rounded before the add.
QTENSOR_OPS_INLINE ops::vi q4_0_unclamped(const float* x, ops::vf id) {
    return ops::truncate(ops::rounded(ops::load(x) * id) + ops::set_f(8.5f));
}

} // namespace quant_impl

// x[n] -> y[n / 32], as q4_0::quantize_row: per block, code =
// min(15, q4_0_unclamped) and the nibbles packed.
inline void quantize_q4_0(const float* x, block_q4_0* y, std::size_t n) {
    if constexpr (!ops::can_round) return q4_0::quantize_row(x, y, n);
    constexpr std::size_t N = ops::lanes;
    const auto fifteen = ops::set_i(15);
    const bool done = quant_impl::for_each_q4_0_block(x, n, [&](std::size_t b, fp16_t d, ops::vf id) QTENSOR_OPS_LAMBDA {
        const float* xb = x + 32 * b;
        y[b].d = d;
        for (std::size_t j = 0; j < 16; j += N) {
            const auto lo = ops::min(quant_impl::q4_0_unclamped(xb + j, id), fifteen);
            const auto hi = ops::min(quant_impl::q4_0_unclamped(xb + 16 + j, id), fifteen);
            ops::store_low_bytes(lo | ops::shift_left<4>(hi), y[b].qs.data() + j);
        }
    });
    if (!done) q4_0::quantize_row(x, y, n);
}

// x[n] -> y[n] = dequantize(quantize(x)) and the clip mask saturated[n], as
// fake_quant<q4_0>::forward, whose Q4_0 steps are quantize_q4_0's above:
// y = (code - 8) * d, with d the scale as stored (fp16), and saturated = 1
// where the code was clamped (16 -> 15). y may be x. Rows that may throw go
// to the reference whole, before anything is written, so they fail as it
// does: NaN, Inf, and (conservatively) any magnitude from 8 * 65504 on, where
// d = max / -8 may round past fp16's largest value.
inline void fake_quant_q4_0(const float* x, float* y, std::uint8_t* saturated, std::size_t n) {
    const auto reference = [&] { fake_quant<q4_0>::forward({x, n}, {y, n}, {saturated, n}); };
    if constexpr (!ops::can_round) return reference();
    constexpr std::size_t N = ops::lanes;
    if (quant_impl::max_abs_bits(x, n) >= std::bit_cast<std::uint32_t>(8.0f * 65504.0f)) return reference();
    const auto eight = ops::set_i(8);
    const auto fifteen = ops::set_i(15);
    const bool done = quant_impl::for_each_q4_0_block(x, n, [&](std::size_t b, fp16_t d16, ops::vf id) QTENSOR_OPS_LAMBDA {
        const auto d = ops::set_f(fp16_to_fp32(d16));
        for (std::size_t at = 32 * b; at < 32 * b + 32; at += N) {
            const auto unclamped = quant_impl::q4_0_unclamped(x + at, id);
            const auto code = ops::min(unclamped, fifteen);
            ops::store_low_bytes(unclamped - code, saturated + at); // unclamped <= 16: 0 or 1
            ops::store(ops::to_float(code - eight) * d, y + at);
        }
    });
    if (!done) reference(); // not reached: the check above sent such rows to the reference
}

// x[n] -> y[n / 32], as q8_0::quantize_row, N blocks at a time as above (only
// amax is needed): code = round(x * id), half away from zero, as truncation
// plus one where the (exact) remainder is >= 0.5 in magnitude.
inline void quantize_q8_0(const float* x, block_q8_0* y, std::size_t n) {
    if constexpr (!ops::can_round) return q8_0::quantize_row(x, y, n);
    constexpr std::size_t N = ops::lanes;
    const auto half = ops::set_f(0.5f);
    const auto minus_half = ops::set_f(-0.5f);
    const std::size_t blocks = n / 32;
    alignas(64) float id[N];
    alignas(64) std::int32_t d16[N];
    for (std::size_t b0 = 0; b0 < blocks; b0 += N) {
        const std::size_t group = std::min(N, blocks - b0);
        if (!quant_impl::block_scales<false>(x + 32 * b0, group, 127.0f, d16, id)) return q8_0::quantize_row(x, y, n);
        for (std::size_t k = 0; k < group; ++k) {
            const float* xb = x + 32 * (b0 + k);
            block_q8_0& out = y[b0 + k];
            out.d = fp16_t{static_cast<std::uint16_t>(d16[k])};
            const auto idk = ops::set_f(id[k]);
            for (std::size_t j = 0; j < 32; j += N) {
                const auto p = ops::rounded(ops::load(xb + j) * idk);
                const auto t = ops::truncate(p);
                const auto frac = p - ops::to_float(t); // exact: p's bits below the integer part
                // A true mask is -1 as an integer: t - (-1) rounds up, t + (-1) down.
                const auto up = ops::mask_vec(frac >= half);
                const auto down = ops::mask_vec(frac <= minus_half);
                ops::store_low_bytes(t - up + down, out.qs.data() + j);
            }
        }
    }
}

// x[n] -> y[n / 256], as q8_k::quantize_row: code = min(127, nearest_int(iscale * x))
// with nearest_int's own "+ 1.5 * 2^23" bit trick, and the 16 bsums from the
// int32 codes before they are narrowed.
inline void quantize_q8_k(const float* x, block_q8_k* y, std::size_t n) {
    if constexpr (!ops::can_round) return q8_k::quantize_row(x, y, n);
    constexpr std::size_t N = ops::lanes;
    const auto magic = ops::set_f(12582912.0f);
    const auto mantissa = ops::set_i(0x007fffff);
    const auto bias = ops::set_i(0x00400000);
    const auto code_max = ops::set_i(127);
    for (std::size_t b = 0; b < n / 256; ++b) {
        const float* xb = x + 256 * b;
        const std::uint32_t amax = quant_impl::max_abs_bits(xb, 256);
        if (amax >= quant_impl::nonfinite_bits) return q8_k::quantize_row(x, y, n);
        const float max = quant_impl::signed_max<256>(xb, amax);
        const float iscale = max != 0.0f ? -127.0f / max : 0.0f;
        if (!qtensor::detail::is_finite_bits(iscale)) {
            // |max| < 127 / FLT_MAX: the reference's zero codes.
            y[b].qs.fill(0);
            y[b].bsums.fill(0);
        } else {
            const auto scale = ops::set_f(iscale);
            for (std::size_t g = 0; g < 16; ++g) {
                auto sum = ops::set_i(0);
                for (std::size_t j = 16 * g; j < 16 * (g + 1); j += N) {
                    const auto biased = ops::rounded(scale * ops::load(xb + j)) + magic;
                    const auto code = ops::min((ops::bits(biased) & mantissa) - bias, code_max);
                    sum = sum + code;
                    ops::store_low_bytes(code, y[b].qs.data() + j);
                }
                y[b].bsums[g] = static_cast<std::int16_t>(ops::reduce_sum(sum));
            }
        }
        y[b].d = max != 0.0f ? 1.0f / iscale : 0.0f;
    }
}

// Static activations (scheme/static_activation.hpp): 16 codes
// nearest_int(clamp(x * inv, -127, 127)) into out[16], by nearest_int's own
// "+ 1.5 * 2^23" bit trick (exact once clamped); returns their sum.
QTENSOR_OPS_INLINE std::int32_t static_codes_16(const float* x, std::int8_t* out, float inv) {
    constexpr std::size_t N = ops::lanes;
    static_assert(16 % N == 0);
    const auto scale = ops::set_f(inv);
    const auto lo = ops::set_f(-static_code_max), hi = ops::set_f(static_code_max);
    const auto magic = ops::set_f(12582912.0f);
    const auto mantissa = ops::set_i(0x007fffff);
    const auto bias = ops::set_i(0x00400000);
    auto sum = ops::set_i(0);
    for (std::size_t j = 0; j < 16; j += N) {
        const auto p = ops::min(ops::max(ops::rounded(ops::load(x + j) * scale), lo), hi);
        const auto code = (ops::bits(p + magic) & mantissa) - bias;
        sum = sum + code;
        ops::store_low_bytes(code, out + j);
    }
    return ops::reduce_sum(sum);
}

// x[n] -> y[n / 32] with the fixed scale s (an fp16 value), as
// quantize_row_static; inv = 1 / s, checked by the caller.
inline void quantize_static_q8_0(const float* x, block_q8_0* y, std::size_t n, float s, float inv) {
    if constexpr (!ops::can_round) return quantize_row_static(x, y, n, s);
    for (std::size_t b = 0; b < n / 32; ++b) {
        y[b].d = fp32_to_fp16(s);
        static_codes_16(x + 32 * b, y[b].qs.data(), inv);
        static_codes_16(x + 32 * b + 16, y[b].qs.data() + 16, inv);
    }
}

// x[n] -> y[n / 256] with the fixed scale s, as quantize_row_static.
inline void quantize_static_q8_k(const float* x, block_q8_k* y, std::size_t n, float s, float inv) {
    if constexpr (!ops::can_round) return quantize_row_static(x, y, n, s);
    for (std::size_t b = 0; b < n / 256; ++b) {
        y[b].d = s;
        for (std::size_t g = 0; g < 16; ++g)
            y[b].bsums[g] = static_cast<std::int16_t>(static_codes_16(x + 256 * b + 16 * g, y[b].qs.data() + 16 * g, inv));
    }
}

// x[n / 32] -> y[n]: y[j] = (code[j] - 8) * d, as q4_0::dequantize_row.
inline void dequantize_q4_0(const block_q4_0* x, float* y, std::size_t n) {
    constexpr std::size_t N = ops::lanes;
    const auto eight = ops::set_i(8);
    const auto low_nibble = ops::set_i(0x0f);
    for (std::size_t b = 0; b < n / 32; ++b, y += 32) {
        const auto d = ops::set_f(fp16_to_fp32(x[b].d));
        for (std::size_t j = 0; j < 16; j += N) {
            const auto bytes = ops::load_u8(x[b].qs.data() + j);
            ops::store(ops::to_float((bytes & low_nibble) - eight) * d, y + j);
            ops::store(ops::to_float(ops::shift_right<4>(bytes) - eight) * d, y + 16 + j);
        }
    }
}

// x[n / 32] -> y[n]: y[j] = qs[j] * d, as q8_0::dequantize_row.
inline void dequantize_q8_0(const block_q8_0* x, float* y, std::size_t n) {
    constexpr std::size_t N = ops::lanes;
    for (std::size_t b = 0; b < n / 32; ++b, y += 32) {
        const auto d = ops::set_f(fp16_to_fp32(x[b].d));
        for (std::size_t j = 0; j < 32; j += N) ops::store(ops::to_float(ops::load_i8(x[b].qs.data() + j)) * d, y + j);
    }
}

// x[n / 256] -> y[n], as q2_k::dequantize_row: per sub-block j of 16,
// y = (d * s_j) * q - dmin * m_j. Both products are exact (11-bit fp16 times
// 4-bit s_j times 2-bit q), so an FMA of dl * q with the subtraction gives
// the same bits (and the same NaN while at most one of d, dmin is NaN; with
// both, which payload wins depends on the FMA form the compiler picks, and
// the random-bytes test holds every form seen so far). ml is rounded on its
// own (fmul): fused the other way, as dl * q - dmin * m_j, a NaN in dmin
// would come out with its sign flipped.
// The 2-bit plane at shift 2s of bytes
// qs[32h .. 32h + 31] holds elements 128h + 32s + l, l = 0..31: sub-blocks
// 8h + 2s and 8h + 2s + 1.
inline void dequantize_q2_k(const block_q2_k* x, float* y, std::size_t n) {
    constexpr std::size_t N = ops::lanes;
    const auto three = ops::set_i(3);
    for (std::size_t b = 0; b < n / 256; ++b) {
        const float d = fp16_to_fp32(x[b].d);
        const float dmin = fp16_to_fp32(x[b].dmin);
        for (std::size_t h = 0; h < 2; ++h) {
            for (int s = 0; s < 4; ++s) {
                for (std::size_t l = 0; l < 32; l += 16, y += 16) {
                    const std::size_t j = 8 * h + 2 * static_cast<std::size_t>(s) + l / 16;
                    const auto dl = ops::set_f(d * static_cast<float>(q2_k::scale_of(x[b], j)));
                    const float m = static_cast<float>(q2_k::min_of(x[b], j));
                    const auto ml = ops::set_f(qtensor::detail::fmul(dmin, m));
                    for (std::size_t i = 0; i < 16; i += N) {
                        const auto bytes = ops::load_u8(x[b].qs.data() + 32 * h + l + i);
                        const auto q = ops::to_float(ops::shift_right(bytes, 2 * s) & three);
                        ops::store(dl * q - ml, y + i);
                    }
                }
            }
        }
    }
}

// `lanes` fp16 at p as floats, as fp16_to_fp32 (exact; NaN keeps sign and
// payload and comes out quiet): the instruction set's conversion where it has
// one (F16C's vcvtph2ps), otherwise integer bit moves, with fp16 subnormals as
// m * 2^-24 (an exact convert and multiply).
QTENSOR_OPS_INLINE ops::vf load_halves(const fp16_t* p) {
    if constexpr (ops::native_f16) {
        return ops::load_f16(p);
    } else {
        const auto exp_field = ops::set_i(0x1f), mant_field = ops::set_i(0x3ff), zero = ops::set_i(0);
        const auto bits = ops::load_u16(reinterpret_cast<const std::uint16_t*>(p));
        const auto sign = ops::shift_left<16>(bits & ops::set_i(0x8000));
        const auto exp = ops::shift_right<10>(bits) & exp_field;
        const auto mant = bits & mant_field;
        const auto normal = ops::shift_left<23>(exp + ops::set_i(112)) | ops::shift_left<13>(mant);
        const auto subnormal = ops::bits(ops::to_float(mant) * ops::set_f(0x1p-24f));
        const auto quiet = ops::select(mant == zero, zero, ops::set_i(0x00400000));
        const auto special = ops::set_i(0x7f800000) | ops::shift_left<13>(mant) | quiet;
        const auto magnitude = ops::select(exp == zero, subnormal, ops::select(exp == exp_field, special, normal));
        return ops::from_bits(sign | magnitude);
    }
}

// x[n] -> y[n], as load_halves.
inline void dequantize_f16(const fp16_t* x, float* y, std::size_t n) {
    constexpr std::size_t N = ops::lanes;
    std::size_t i = 0;
    for (; i + N <= n; i += N) ops::store(load_halves(x + i), y + i);
    for (; i < n; ++i) y[i] = fp16_to_fp32(x[i]);
}

// x[n] -> y[n]: bf16 is the top half of a float.
inline void dequantize_bf16(const bf16_t* x, float* y, std::size_t n) {
    constexpr std::size_t N = ops::lanes;
    const auto* h = reinterpret_cast<const std::uint16_t*>(x);
    std::size_t i = 0;
    for (; i + N <= n; i += N) ops::store(ops::from_bits(ops::shift_left<16>(ops::load_u16(h + i))), y + i);
    for (; i < n; ++i) y[i] = bf16_to_fp32(x[i]);
}
