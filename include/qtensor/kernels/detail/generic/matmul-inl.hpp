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

// R rows w[r][n] against one activation row a[n]: out[r] = w[r] . a. Two
// FMA accumulators per row over N lanes, a tail in scalar order, one
// horizontal sum. The arithmetic of a row does not depend on R, so a row's
// result does not depend on which other rows share its tile.
template <std::size_t R, class W>
QTENSOR_OPS_INLINE void float_rows_dot(const W* const* w, const float* a, std::size_t n, float* out) {
    constexpr std::size_t N = ops::lanes;
    ops::vf acc0[R], acc1[R];
    for (std::size_t r = 0; r < R; ++r) acc0[r] = acc1[r] = ops::set_f(0.0f);
    std::size_t i = 0;
    for (; i + 2 * N <= n; i += 2 * N) {
        const auto x0 = ops::load(a + i);
        const auto x1 = ops::load(a + i + N);
        for (std::size_t r = 0; r < R; ++r) {
            acc0[r] = ops::mul_add(load_weights(w[r] + i), x0, acc0[r]);
            acc1[r] = ops::mul_add(load_weights(w[r] + i + N), x1, acc1[r]);
        }
    }
    for (std::size_t r = 0; r < R; ++r) {
        float tail = 0.0f;
        for (std::size_t j = i; j < n; ++j) tail += qtensor::detail::fmul(weight_to_float(w[r][j]), a[j]);
        out[r] = ops::reduce_sum(acc0[r] + acc1[r]) + tail;
    }
}

// Rows in tiles of 4 (each activation load serves 4 rows), then one by one.
template <class W>
QTENSOR_OPS_INLINE void matmul_float(weight_rows w, f32_rows a, output_rows y) {
    constexpr std::size_t R = 4;
    for (std::size_t r0 = 0; r0 < w.rows; r0 += R) {
        const W* rows[R];
        const std::size_t count = w.rows - r0 < R ? w.rows - r0 : R;
        for (std::size_t i = 0; i < count; ++i)
            rows[i] = reinterpret_cast<const W*>(w.data + (r0 + i) * w.stride_bytes);
        for (std::size_t t = 0; t < a.T; ++t) {
            float* out = y.data + t * y.stride + r0;
            if (count == R) {
                float_rows_dot<R>(rows, a.x + t * a.n, a.n, out);
            } else {
                for (std::size_t i = 0; i < count; ++i) float_rows_dot<1>(rows + i, a.x + t * a.n, a.n, out + i);
            }
        }
    }
}

} // namespace matmul_impl

// w[n] . a[n].
inline float dot_f32_f32(const float* w, const float* a, std::size_t n) {
    float out;
    matmul_impl::float_rows_dot<1>(&w, a, n, &out);
    return out;
}

inline float dot_bf16_f32(const bf16_t* w, const float* a, std::size_t n) {
    float out;
    matmul_impl::float_rows_dot<1>(&w, a, n, &out);
    return out;
}

// y[t, r] = w[r] . a[t] over the rows and tokens given.
inline void matmul_f32(weight_rows w, f32_rows a, output_rows y) { matmul_impl::matmul_float<float>(w, a, y); }
inline void matmul_bf16(weight_rows w, f32_rows a, output_rows y) { matmul_impl::matmul_float<bf16_t>(w, a, y); }
