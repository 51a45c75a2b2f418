// nn::linear, nn::geglu_mlp and nn::embedding take a weight as tensor<S, 2>,
// tensor_view<S, 2> or tensor_view<const S, 2> (none of the three needs a
// cast), with the same results, and linear stays within matmul.hpp's budget
// of the scalar reference. A mixed_weight gives its typed view's results.
#include <doctest/doctest.h>

#include "test_util.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "qtensor/nn/embedding.hpp"
#include "qtensor/nn/linear.hpp"
#include "qtensor/nn/mixed_weight.hpp"
#include "qtensor/nn/mlp.hpp"
#include "qtensor/nn/moe.hpp"
#include "qtensor/nn/packed_weight.hpp"
#include "qtensor/scheme/float.hpp"
#include "qtensor/scheme/q4_0.hpp"
#include "qtensor/scheme/q6_k.hpp"
#include "qtensor/scheme/q8_0.hpp"
#include "qtensor/scheme/static_activation.hpp"
#include "qtensor/scheme/tq2_0.hpp"
#include "qtensor/tensor/tensor.hpp"

using namespace qtensor;

namespace {

template <class S>
tensor<S, 2> random_matrix(std::size_t rows, std::size_t cols, std::mt19937& rng) {
    return tensor<S, 2>::quantize(qtensor_test::spread_blocks(rows * cols, 32, rng, -2.0f, 2.0f), extents<2>{rows, cols});
}

} // namespace

TEST_CASE_TEMPLATE("nn::linear takes a tensor, a view and a const view, within budget of the reference", S, q4_0,
                   bf16) {
    std::mt19937 rng(21);
    const std::size_t rows = 23, cols = 128, T = 2;
    tensor<S, 2> w = random_matrix<S>(rows, cols, rng);
    const auto x = qtensor_test::spread_blocks(T * cols, 32, rng, -1.0f, 1.0f);
    std::vector<float> y(T * rows), y_view(T * rows), y_const(T * rows);
    nn::linear(w, x, y);
    nn::linear(w.view(), x, y_view);
    nn::linear(std::as_const(w).view(), x, y_const);
    CHECK(y_view == y);
    CHECK(y_const == y);

    // The reference: each row's dot with the activations as the kernel sees
    // them (quantized to Q8_0 for Q4_0), within twice the budget of
    // kernels/matmul.hpp (both are within it of the exact sum).
    for (std::size_t t = 0; t < T; ++t) {
        std::vector<float> act(x.begin() + static_cast<std::ptrdiff_t>(t * cols),
                               x.begin() + static_cast<std::ptrdiff_t>((t + 1) * cols));
        std::vector<block_q8_0> a(cols / 32);
        if constexpr (std::is_same_v<S, q4_0>) {
            q8_0::quantize_row(act.data(), a.data(), cols);
            q8_0::dequantize_row(a.data(), act.data(), cols);
        }
        for (std::size_t r = 0; r < rows; ++r) {
            std::vector<float> wr(cols);
            S::dequantize_row(w.blocks(r).data(), wr.data(), cols);
            const auto e = qtensor_test::exact_dot_of(wr, act);
            double ref = e.sum, per_term = cols + 1;
            if constexpr (std::is_same_v<S, q4_0>) {
                ref = q4_0::dot_row(w.blocks(r).data(), a.data(), cols);
                per_term = cols / 32 + 17;
            }
            INFO(S::name << " t=" << t << " r=" << r);
            CHECK(std::fabs(y[t * rows + r] - ref) <= 2 * per_term * 0x1p-24 * e.magnitude);
        }
    }

    // Sizes are checked, naming nn::linear.
    std::vector<float> short_y(rows);
    CHECK(qtensor_test::message_of([&] { nn::linear(w, x, short_y); }).find("nn::linear: y has 23 elements") !=
          std::string::npos);
}

TEST_CASE("nn::geglu_mlp and nn::embedding take every weight form") {
    std::mt19937 rng(22);
    const std::size_t D = 64, F = 96, T = 3;
    tensor<q4_0, 2> gate = random_matrix<q4_0>(F, D, rng), up = random_matrix<q4_0>(F, D, rng);
    tensor<q8_0, 2> down = random_matrix<q8_0>(D, F, rng);
    const auto x = qtensor_test::spread_blocks(T * D, 32, rng, -1.0f, 1.0f);
    std::vector<float> want(T * D), got(T * D);
    nn::geglu_mlp(std::as_const(gate).view(), std::as_const(up).view(), std::as_const(down).view(), x, want);
    nn::geglu_mlp(gate, up.view(), down, x, got);
    CHECK(got == want);

    const std::vector<std::int32_t> ids{3, 0, 3};
    std::vector<float> e_tensor(ids.size() * D), e_view(ids.size() * D), e_const(ids.size() * D);
    nn::embedding(gate, ids, 2.0f, e_tensor);
    nn::embedding(gate.view(), ids, 2.0f, e_view);
    nn::embedding(std::as_const(gate).view(), ids, 2.0f, e_const);
    CHECK(e_view == e_tensor);
    CHECK(e_const == e_tensor);
    std::vector<float> row(D);
    q4_0::dequantize_row(gate.blocks(3).data(), row.data(), D);
    for (std::size_t i = 0; i < D; ++i) REQUIRE(e_tensor[i] == row[i] * 2.0f);
}

// Quantizing the activations once for several weights changes nothing: the
// same bits as one nn::linear per weight.
TEST_CASE_TEMPLATE("nn::linear_each gives nn::linear's bits for every weight", S, q4_0, q8_0, f32, bf16) {
    std::mt19937 rng(22);
    const std::size_t cols = 96, T = 5;
    const auto a = random_matrix<S>(40, cols, rng), b = random_matrix<S>(8, cols, rng);
    const std::vector<float> x = qtensor_test::spread_blocks(T * cols, 32, rng, -3.0f, 3.0f);
    std::vector<float> ya(T * 40), yb(T * 8), want_a(ya.size()), want_b(yb.size());
    kernels::thread_pool pool(2);
    nn::linear_each<tensor_view<const S, 2>>(x, {{a.view(), ya}, {b.view(), yb}}, pool.get_executor());
    nn::linear(a.view(), x, want_a);
    nn::linear(b.view(), x, want_b);
    CHECK(ya == want_a);
    CHECK(yb == want_b);
    std::vector<float> short_y(3);
    const auto too_short = [&] { nn::linear_each<tensor_view<const S, 2>>(x, {{a.view(), ya}, {b.view(), short_y}}); };
    CHECK_THROWS_WITH(too_short(), doctest::Contains("y"));
    const auto narrow = random_matrix<S>(8, cols - 32, rng); // would read x with another row length: refused
    const auto mismatched = [&] { nn::linear_each<tensor_view<const S, 2>>(x, {{a.view(), ya}, {narrow.view(), yb}}); };
    CHECK_THROWS(mismatched());
}

// A mixed_weight dispatches to its scheme's own kernels: every op gives the
// bits the typed view gives, whatever mix of schemes meets in one call.
TEST_CASE("nn: a mixed_weight gives its typed view's bits in linear, linear_each, geglu_mlp, moe_forward, embedding") {
    std::mt19937 rng(23);
    const std::size_t D = 256, F = 512, T = 3;
    const auto gate = random_matrix<q6_k>(F, D, rng);
    const auto up = random_matrix<q4_0>(F, D, rng);
    const auto down = random_matrix<bf16>(D, F, rng);
    const nn::mixed_weight mg(gate.view()), mu(up.view()), md(down.view());
    CHECK(mg.type() == ggml_type::q6_k);
    CHECK(mu.type() == ggml_type::q4_0);
    CHECK(md.type() == ggml_type::bf16);
    CHECK((mg.num_rows() == F && mg.cols() == D && !mg.empty()));
    CHECK((nn::mixed_weight().empty() && nn::mixed_weight().type() == ggml_type::f32));
    const auto x = qtensor_test::spread_blocks(T * D, 32, rng, -1.0f, 1.0f);

    std::vector<float> want_g(T * F), want_u(T * F), g(T * F), u(T * F);
    nn::linear(gate.view(), x, want_g);
    nn::linear(up.view(), x, want_u);
    nn::linear(mg, x, g);
    CHECK(g == want_g);
    std::fill(g.begin(), g.end(), 0.0f);
    nn::linear_each<nn::mixed_weight>(x, {{mg, g}, {mu, u}});
    CHECK(g == want_g);
    CHECK(u == want_u);
    const nn::mixed_weight narrow(up.view().row_slice(0, 8)), wrong_cols(down.view()); // [8, D], [D, F]
    std::vector<float> y8(T * 8);
    CHECK_THROWS_WITH(nn::linear_each<nn::mixed_weight>(x, {{mg, g}, {wrong_cols, y8}}),
                      doctest::Contains("a weight's columns"));
    CHECK_THROWS_WITH(nn::linear_each<nn::mixed_weight>(x, {{mg, g}, {narrow, u}}), doctest::Contains("y"));

    std::vector<float> y(T * D), want_y(T * D);
    nn::geglu_mlp(gate.view(), up.view(), down.view(), x, want_y);
    nn::geglu_mlp(mg, mu, md, x, y);
    CHECK(y == want_y);

    std::vector<float> slice(T * 7), want_slice(T * 7);
    nn::linear(gate.view().row_slice(5, 7), x, want_slice);
    nn::linear(mg.row_slice(5, 7), x, slice);
    CHECK(slice == want_slice);
    CHECK_THROWS_WITH(mg.row_slice(F - 1, 2), doctest::Contains("rows"));

    const std::vector<std::int32_t> ids{3, 0, 3};
    std::vector<float> e(ids.size() * D), want_e(ids.size() * D);
    nn::embedding(gate.view(), ids, 2.0f, want_e);
    nn::embedding(mg, ids, 2.0f, e);
    CHECK(e == want_e);

    // Two experts of inner size 256, each token routed to both.
    const std::size_t E = 2, I = 256;
    const auto gate_up = random_matrix<q6_k>(E * 2 * I, D, rng);
    const auto experts_down = random_matrix<q6_k>(E * D, I, rng);
    const std::vector<std::size_t> route{0, 1, 1, 0, 0, 1};
    const std::vector<float> weights{0.75f, 0.25f, 0.5f, 0.5f, 1.0f, 0.0f};
    std::vector<float> m(T * D), want_m(T * D);
    nn::moe_forward<q6_k>({gate_up.view(), experts_down.view()}, x, route, weights, want_m);
    nn::moe_forward<nn::as_stored>({nn::mixed_weight(gate_up.view()), nn::mixed_weight(experts_down.view())}, x,
                                   route, weights, m);
    CHECK(m == want_m);
}

TEST_CASE_TEMPLATE("nn: a packed_weight gives its view's bits before repacking, the interleaved kernels' after", S, q4_0,
                   q8_0) {
    std::mt19937 rng(29);
    const std::size_t rows = 37, cols = 96; // groups of 16 and a padded one
    const tensor<S, 2> w = random_matrix<S>(rows, cols, rng), w2 = random_matrix<S>(rows, cols, rng);
    for (const std::size_t T : {std::size_t{1}, std::size_t{5}}) {
        CAPTURE(T);
        const auto x = qtensor_test::spread_blocks(T * cols, 32, rng, -1.0f, 1.0f);
        nn::packed_weight<S> p(w.view()), p2(w2.view());
        std::vector<float> want(T * rows), got(T * rows), got2(T * rows), want2(T * rows);
        nn::linear(w, x, want);
        nn::linear(p, x, got);
        CHECK(got == want);

        p.repack();
        p2.repack();
        CHECK(p.repacked());
        CHECK(p.num_rows() == rows);
        CHECK(p.cols() == cols);
        const kernels::interleaved<S> groups(w), groups2(w2);
        kernels::gemm(groups, x, want);
        kernels::gemm(groups2, x, want2);
        nn::linear(p, x, got);
        CHECK(got == want);
        nn::linear_each<nn::packed_weight<S>>(x, {{p, got}, {p2, got2}});
        CHECK(got == want);
        CHECK(got2 == want2);
        // From 4 tokens on, the interleaved kernels give the GGUF layout's bits.
        if (T >= 4) {
            nn::linear(w, x, want);
            CHECK(got == want);
        }
    }
}

// Static activations: with a scale, a quantized weight's product takes x as
// quantize_row_static's codes, the bits of the kernel fed those blocks; the
// input's largest magnitude is recorded; float weights keep f32 activations.
TEST_CASE_TEMPLATE("nn::linear with static activations gives the kernel's bits on quantize_row_static's blocks", S, q4_0,
                   q8_0, tq2_0) {
    std::mt19937 rng(24);
    const std::size_t cols = 512, rows = 24, T = 3;
    const auto w = tensor<S, 2>::quantize(qtensor_test::spread_blocks(rows * cols, 32, rng, -1.0f, 1.0f),
                                          extents<2>{rows, cols});
    std::vector<float> x = qtensor_test::spread_blocks(T * cols, 32, rng, -3.0f, 3.0f);
    float m = 0.0f;
    for (const float v : x) m = std::max(m, std::fabs(v));
    const float s = static_scale_fp16(0.5f * m); // the largest inputs saturate
    using P = typename S::dot_partner;
    std::vector<block_of<P>> a(T * cols / P::block_elems);
    quantize_row_static(x.data(), a.data(), x.size(), s);
    std::vector<float> want(T * rows), got(T * rows), each(T * rows), dynamic(T * rows);
    kernels::unchecked::gemm(w.view(), a.data(), T, want.data());
    float amax = 0.0f;
    nn::linear(w.view(), x, got, {}, {s, &amax});
    CHECK(got == want);
    CHECK(amax == m);
    nn::linear_each<tensor_view<const S, 2>>(x, {{w.view(), each}}, {}, {s, nullptr});
    CHECK(each == want);
    nn::linear(w.view(), x, dynamic);
    CHECK(dynamic != want); // a scale per block is another rounding
    if constexpr (kernels::interleavable_scheme<S>) {
        nn::packed_weight<S> p(w.view());
        p.repack();
        std::vector<float> packed(T * rows);
        nn::linear(p, x, packed, {}, {s, nullptr});
        std::vector<float> inter(T * rows);
        kernels::unchecked::gemm(*p.groups, a.data(), T, inter.data());
        CHECK(packed == inter);
    }
    // Float weights: f32 activations whatever the scale; the range is still recorded.
    const auto wf = tensor<bf16, 2>::quantize(qtensor_test::spread_blocks(rows * cols, 32, rng, -1.0f, 1.0f),
                                              extents<2>{rows, cols});
    std::vector<float> yf(T * rows), yf_static(T * rows);
    float famax = 0.0f;
    nn::linear(wf.view(), x, yf);
    nn::linear(wf.view(), x, yf_static, {}, {s, &famax});
    CHECK(yf == yf_static);
    CHECK(famax == m);
    x[9] = std::nanf("");
    CHECK_THROWS_AS(nn::linear(w.view(), x, got, {}, {s, nullptr}), error);
}
