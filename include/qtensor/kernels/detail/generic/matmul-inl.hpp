// qtensor/kernels/detail/generic/matmul-inl.hpp: the float dot and matmul
// kernels (f32 weights, and bf16 weights widened exactly), written once over
// the vector vocabulary `ops`; each within the error budget stated in
// matmul.hpp. (The quantized ones: matmul_int8-inl.hpp, matmul_k_quant-inl.hpp.)
//
// No include guard and no namespace on purpose: included by
// generic/kernels-inl.hpp inside each instruction set's namespace.

namespace matmul_impl {

// N weights at p as floats: f32 as they are, bf16 as the top half of a float.
template <class W>
QTENSOR_OPS_INLINE ops::vf load_weights(const W* p) {
    if constexpr (std::is_same_v<W, float>) return ops::load(p);
    else return ops::from_bits(ops::shift_left<16>(ops::load_u16(reinterpret_cast<const std::uint16_t*>(p))));
}

template <class W>
float weight_to_float(W w) noexcept {
    if constexpr (std::is_same_v<W, float>) return w;
    else return bf16_to_fp32(w);
}

// R rows w[r][n] against TT activation rows a + t * a_stride, t < TT:
// out[t * out_stride + r] = w[r] . a_t. Two FMA accumulators per output over
// N lanes, a tail in scalar order, one horizontal sum; each weight load
// serves TT tokens, each activation load R rows. The arithmetic of an output
// does not depend on R or TT, so its result does not depend on which rows and
// tokens share its tile.
template <std::size_t R, std::size_t TT, class W>
QTENSOR_OPS_INLINE void float_tile_dot(const W* const* w, const float* a, std::size_t a_stride, std::size_t n,
                                       float* out, std::size_t out_stride) {
    constexpr std::size_t N = ops::lanes;
    ops::vf acc0[R][TT], acc1[R][TT];
    QTENSOR_UNROLL
    for (std::size_t r = 0; r < R; ++r) {
        QTENSOR_UNROLL
        for (std::size_t t = 0; t < TT; ++t) acc0[r][t] = acc1[r][t] = ops::set_f(0.0f);
    }
    std::size_t i = 0;
    for (; i + 2 * N <= n; i += 2 * N) {
        ops::vf x0[TT], x1[TT];
        QTENSOR_UNROLL
        for (std::size_t t = 0; t < TT; ++t) {
            x0[t] = ops::load(a + t * a_stride + i);
            x1[t] = ops::load(a + t * a_stride + i + N);
        }
        QTENSOR_UNROLL
        for (std::size_t r = 0; r < R; ++r) {
            const auto w0 = load_weights(w[r] + i), w1 = load_weights(w[r] + i + N);
            QTENSOR_UNROLL
            for (std::size_t t = 0; t < TT; ++t) {
                acc0[r][t] = ops::mul_add(w0, x0[t], acc0[r][t]);
                acc1[r][t] = ops::mul_add(w1, x1[t], acc1[r][t]);
            }
        }
    }
    for (std::size_t r = 0; r < R; ++r)
        for (std::size_t t = 0; t < TT; ++t) {
            float tail = 0.0f;
            for (std::size_t j = i; j < n; ++j)
                tail += qtensor::detail::fmul(weight_to_float(w[r][j]), a[t * a_stride + j]);
            out[t * out_stride + r] = ops::reduce_sum(acc0[r][t] + acc1[r][t]) + tail;
        }
}

// Rows in tiles of 4 by tokens in pairs (each activation load serves 4 rows,
// each weight load 2 tokens), the rest one by one.
template <class W>
QTENSOR_OPS_INLINE void matmul_float(weight_rows w, f32_rows a, output_rows y) {
    constexpr std::size_t R = 4;
    for (std::size_t r0 = 0; r0 < w.rows; r0 += R) {
        const W* rows[R];
        const std::size_t count = w.rows - r0 < R ? w.rows - r0 : R;
        for (std::size_t i = 0; i < count; ++i)
            rows[i] = reinterpret_cast<const W*>(w.data + (r0 + i) * w.stride_bytes);
        for (std::size_t t = 0; t < a.T;) {
            const float* x = a.x + t * a.n;
            float* out = y.data + t * y.stride + r0;
            const bool pair = a.T - t >= 2;
            if (count == R && pair) float_tile_dot<R, 2>(rows, x, a.n, a.n, out, y.stride);
            else if (count == R) float_tile_dot<R, 1>(rows, x, a.n, a.n, out, y.stride);
            else
                for (std::size_t i = 0; i < count; ++i)
                    for (std::size_t k = 0; k < (pair ? 2 : 1); ++k)
                        float_tile_dot<1, 1>(rows + i, x + k * a.n, a.n, a.n, out + k * y.stride + i, y.stride);
            t += pair ? 2 : 1;
        }
    }
}

} // namespace matmul_impl

// w[n] . a[n].
inline float dot_f32_f32(const float* w, const float* a, std::size_t n) {
    float out;
    matmul_impl::float_tile_dot<1, 1>(&w, a, n, n, &out, 1);
    return out;
}

inline float dot_bf16_f32(const bf16_t* w, const float* a, std::size_t n) {
    float out;
    matmul_impl::float_tile_dot<1, 1>(&w, a, n, n, &out, 1);
    return out;
}

// y[t, r] = w[r] . a[t] over the rows and tokens given.
inline void matmul_f32(weight_rows w, f32_rows a, output_rows y) { matmul_impl::matmul_float<float>(w, a, y); }
inline void matmul_bf16(weight_rows w, f32_rows a, output_rows y) { matmul_impl::matmul_float<bf16_t>(w, a, y); }
