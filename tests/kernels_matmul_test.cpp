// Conformance of the dot and matmul kernels on every target compiled in and
// supported by this CPU: within the error budgets of kernels/matmul.hpp of an
// exact (double) sum of the dequantized products, against the scalar
// reference, bit-identical for every thread count and, from 4 tokens on, for
// the GGUF and interleaved layouts (within the budget below that); the
// interleaved layout converts back bit for bit. gemm and gemv take every
// weight form and check every size.
#include <doctest/doctest.h>

#include "test_util.hpp"

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "qtensor/kernels/kernels.hpp"
#include "qtensor/scheme/float.hpp"
#include "qtensor/scheme/q2_k.hpp"
#include "qtensor/scheme/tq2_0.hpp"
#include "qtensor/scheme/q3_k.hpp"
#include "qtensor/scheme/q4_k.hpp"
#include "qtensor/scheme/q5_k.hpp"
#include "qtensor/scheme/q6_k.hpp"
#include "qtensor/scheme/registry.hpp"
#include "qtensor/tensor/tensor.hpp"
#include "qtensor/tensor/tensor_view.hpp"

using namespace qtensor;

namespace {

constexpr double u = 0x1p-24;

struct exact_value {
    double sum = 0.0;
    double magnitude = 0.0; // what the budget is relative to
};

// A weight matrix [rows, cols] of scheme S, stored with `pad` spare bytes
// after each row (a non-contiguous view when pad > 0).
template <class S>
struct weights {
    std::size_t rows, cols, stride;
    std::vector<std::byte> bytes;

    weights(std::size_t r, std::size_t c, std::size_t pad, std::mt19937& rng)
        : rows(r), cols(c), stride(row_bytes<S>(c) + pad), bytes(r * stride + 64) {
        for (std::size_t i = 0; i < rows; ++i) {
            const auto x = qtensor_test::spread_blocks(cols, cols % 32 == 0 ? 32 : 1, rng, -2.0f, 2.0f, 0.5f);
            S::quantize_row(x.data(), row(i), cols);
        }
    }
    block_of<S>* row(std::size_t i) { return reinterpret_cast<block_of<S>*>(data() + i * stride); }
    std::byte* data() {
        // 64-byte aligned start, as a model's tensors would be.
        const auto p = reinterpret_cast<std::uintptr_t>(bytes.data());
        return bytes.data() + ((64 - p % 64) % 64);
    }
    tensor_view<const S, 2> view() {
        return {std::span<const std::byte>(data(), rows * stride), extents<2>{rows, cols}, stride};
    }
};

template <class S>
std::vector<float> dequantized_row(const block_of<S>* row, std::size_t n) {
    std::vector<float> out(n);
    S::dequantize_row(row, out.data(), n);
    return out;
}

// The two parts of weight i of a K-quant block, d * s_j * (c - offset) and
// dmin * m_j (zero where the scheme has no mins), each exact in double.
template <class S>
std::pair<double, double> k_quant_parts(const block_of<S>& b, std::size_t i) {
    const double d = fp16_to_fp32(b.d);
    const int c = S::code_at(b, i);
    if constexpr (std::is_same_v<S, tq2_0>) // GGUF's TQ2_0: (c - 1) * d
        return {d * (c - 1), 0.0};
    else if constexpr (std::is_same_v<S, q2_k>)
        return {d * q2_k::scale_of(b, i / 16) * c, fp16_to_fp32(b.dmin) * static_cast<double>(q2_k::min_of(b, i / 16))};
    else if constexpr (std::is_same_v<S, q3_k>)
        return {d * q3_k::scale_of(b, i / 16) * (c - q3_k::code_offset), 0.0};
    else if constexpr (std::is_same_v<S, q6_k>)
        return {d * q6_k::scale_of(b, i / 16) * (c - q6_k::code_offset), 0.0};
    else // q4_k, q5_k
        return {d * detail::k4_scale(b.scales, i / 32) * c,
                fp16_to_fp32(b.dmin) * static_cast<double>(detail::k4_min(b.scales, i / 32))};
}

template <class S>
concept k_quant = has_dot_partner<S> && std::same_as<typename S::dot_partner, q8_k>;

// Exact W[r] . a for a K-quant, from the block fields, and the magnitude of
// matmul.hpp's K-quant budget: both parts of every weight count.
template <class S>
exact_value exact_k_quant(const block_of<S>* w, const block_q8_k* a, std::size_t n) {
    exact_value e;
    for (std::size_t b = 0; b < n / 256; ++b)
        for (std::size_t i = 0; i < 256; ++i) {
            const auto [wd, wm] = k_quant_parts<S>(w[b], i);
            const double x = static_cast<double>(a[b].d) * a[b].qs[i];
            e.sum += (wd - wm) * x;
            e.magnitude += (std::fabs(wd) + std::fabs(wm)) * std::fabs(x);
        }
    return e;
}

// Row r of W against activation row t, exactly, and the kernel's budget.
template <class S>
struct oracle {
    // Dequantized activations as the kernel sees them (quantized to the dot
    // partner by its reference quantizer), and the partner blocks themselves.
    std::vector<float> act;
    std::vector<unsigned char> partner_bytes;
    std::size_t n, T;

    oracle(const std::vector<float>& x, std::size_t cols, std::size_t tokens) : n(cols), T(tokens) {
        if constexpr (has_dot_partner<S>) {
            using P = typename S::dot_partner;
            const std::size_t nb = n / P::block_elems;
            partner_bytes.resize(T * nb * sizeof(block_of<P>));
            auto* blocks = reinterpret_cast<block_of<P>*>(partner_bytes.data());
            act.resize(T * n);
            for (std::size_t t = 0; t < T; ++t) {
                P::quantize_row(x.data() + t * n, blocks + t * nb, n);
                P::dequantize_row(blocks + t * nb, act.data() + t * n, n);
            }
        } else {
            act = x;
        }
    }

    template <class P>
    const block_of<P>* partner(std::size_t t) const {
        return reinterpret_cast<const block_of<P>*>(partner_bytes.data()) + t * (n / P::block_elems);
    }

    exact_value exact(weights<S>& w, std::size_t r, std::size_t t) const {
        if constexpr (k_quant<S>) {
            return exact_k_quant<S>(w.row(r), partner<q8_k>(t), n);
        } else {
            const auto wr = dequantized_row<S>(w.row(r), n);
            const auto [sum, magnitude] = qtensor_test::exact_dot_of(
                wr, std::vector<float>(act.begin() + static_cast<std::ptrdiff_t>(t * n),
                                       act.begin() + static_cast<std::ptrdiff_t>((t + 1) * n)));
            return {sum, magnitude};
        }
    }

    static double budget(std::size_t n, double magnitude) {
        if constexpr (k_quant<S>) return static_cast<double>(n / 256 + 24) * u * magnitude;
        else if constexpr (has_dot_partner<S>) return static_cast<double>(n / 32 + 17) * u * magnitude;
        else return static_cast<double>(n + 1) * u * magnitude;
    }

    // The scalar reference of one output.
    float reference(weights<S>& w, std::size_t r, std::size_t t, const std::vector<float>& x) const {
        if constexpr (has_dot_partner<S>) return S::dot_row(w.row(r), partner<typename S::dot_partner>(t), n);
        else if constexpr (std::is_same_v<S, f32>) return kernels::reference::dot_f32_f32(w.row(r), x.data() + t * n, n);
        else return kernels::reference::dot_bf16_f32(w.row(r), x.data() + t * n, n);
    }
};

std::vector<float> activations(std::size_t T, std::size_t n, std::mt19937& rng) {
    std::vector<float> x;
    for (std::size_t t = 0; t < T; ++t) {
        auto row = qtensor_test::spread_blocks(n, n % 32 == 0 ? 32 : 1, rng, -1.0f, 1.0f);
        x.insert(x.end(), row.begin(), row.end());
    }
    return x;
}

struct shape {
    std::size_t rows, cols, T;
};

// cols: one block, odd block counts, not a multiple of 256 where the format
// allows; rows: 1 and not multiples of 16; T: 1, 2, 3, 7 and one of 64.
template <class S>
std::vector<shape> shapes() {
    if constexpr (k_quant<S>)
        return {{1, 256, 1}, {17, 256, 2}, {33, 768, 3}, {5, 512, 7}, {18, 256, 64}};
    else if constexpr (has_dot_partner<S>)
        return {{1, 32, 1}, {17, 96, 2}, {33, 800, 3}, {5, 4128, 7}, {40, 64, 1}, {18, 64, 64}};
    else
        return {{1, 1, 1}, {17, 95, 2}, {33, 800, 3}, {5, 4100, 7}, {18, 64, 64}};
}

// y[T, rows] = x W^T from one target against the exact sums and the scalar
// reference, each output within the budget.
template <class S>
void check_outputs(weights<S>& w, const std::vector<float>& x, const oracle<S>& o, const std::vector<float>& y,
                   std::size_t T) {
    for (std::size_t tok = 0; tok < T; ++tok)
        for (std::size_t r = 0; r < w.rows; ++r) {
            const auto e = o.exact(w, r, tok);
            const double budget = oracle<S>::budget(w.cols, e.magnitude);
            const float got = y[tok * w.rows + r];
            const float ref = o.reference(w, r, tok, x);
            INFO("r=" << r << " t=" << tok << " exact=" << e.sum << " got=" << got << " ref=" << ref);
            REQUIRE(std::fabs(got - e.sum) <= budget);
            REQUIRE(std::fabs(static_cast<double>(ref) - e.sum) <= budget);
            REQUIRE(std::fabs(static_cast<double>(got) - ref) <= 2 * budget);
        }
}

template <class S>
void check_gemm_on_every_target() {
    std::mt19937 rng(11);
    kernels::thread_pool pool2(2), pool3(3);
    for (const shape sh : shapes<S>()) {
        const std::size_t rows = sh.rows, cols = sh.cols, T = sh.T; // not a structured binding: INFO captures them
        for (const std::size_t pad : {std::size_t{0}, std::size_t{36}}) {
            weights<S> w(rows, cols, pad, rng);
            const auto x = activations(T, cols, rng);
            const oracle<S> o(x, cols, T);
            for (const auto t : kernels::compiled_targets()) {
                std::vector<float> y(T * rows, -1.0f);
                kernels::gemm(w.view(), x, y, {}, t);
                INFO(S::name << " " << t.name() << " rows=" << rows << " cols=" << cols << " T=" << T << " pad=" << pad);
                check_outputs(w, x, o, y, T);
                // Threads split rows only; every output is bit-identical.
                for (auto* pool : {&pool2, &pool3}) {
                    std::vector<float> yt(T * rows, -1.0f);
                    kernels::gemm(w.view(), x, yt, pool->get_executor(), t);
                    INFO(S::name << " " << t.name() << " threads=" << pool->size());
                    REQUIRE(std::memcmp(yt.data(), y.data(), y.size() * sizeof(float)) == 0);
                }
            }
        }
    }
}

// K-quant blocks of random bytes, but for finite scales d and dmin: every bit
// pattern of the codes, scales and mins reaches the kernels (Q6_K's scale
// -128, Q3_K's high scale bits, the top bits of every scale word), which
// quantized weights need not produce.
template <class S>
void check_random_blocks() {
    std::mt19937 rng(23);
    const std::size_t rows = 9, cols = 512, T = 2;
    weights<S> w(rows, cols, 0, rng);
    std::uniform_int_distribution<int> byte(0, 255);
    std::uniform_real_distribution<float> scale(-1.0f, 1.0f);
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t b = 0; b < cols / 256; ++b) {
            block_of<S>& block = w.row(r)[b];
            auto* p = reinterpret_cast<unsigned char*>(&block);
            for (std::size_t i = 0; i < sizeof block; ++i) p[i] = static_cast<unsigned char>(byte(rng));
            block.d = fp32_to_fp16(scale(rng));
            if constexpr (requires { block.dmin; }) block.dmin = fp32_to_fp16(scale(rng));
        }
    const auto x = activations(T, cols, rng);
    const oracle<S> o(x, cols, T);
    for (const auto t : kernels::compiled_targets()) {
        std::vector<float> y(T * rows, -1.0f);
        kernels::gemm(w.view(), x, y, {}, t);
        INFO(S::name << " " << t.name());
        check_outputs(w, x, o, y, T);
    }
}

// K-quant blocks whose every byte but d and dmin is one value (codes, scales
// and mins at their extremes: all zero, all ones, Q6_K's scale -128, ...)
// against Q8_K blocks whose every byte is -128 or 127, which the reference
// quantizer never makes: the kernels' integer sums at their largest (a lane's
// four (c - offset) a up to 4 * 32 * 128 for Q6_K), through gemv's partner-block
// form on every target.
template <class S>
void check_extreme_blocks() {
    constexpr std::size_t cols = 512, nb = cols / 256;
    const std::vector<unsigned char> fills{0x00, 0x55, 0x80, 0xaa, 0xff};
    std::mt19937 rng(29);
    weights<S> w(fills.size(), cols, 0, rng);
    for (std::size_t r = 0; r < fills.size(); ++r)
        for (std::size_t b = 0; b < nb; ++b) {
            block_of<S>& block = w.row(r)[b];
            std::memset(&block, fills[r], sizeof block);
            block.d = fp32_to_fp16(b == 0 ? 1.0f : -0.5f);
            if constexpr (requires { block.dmin; }) block.dmin = fp32_to_fp16(0.25f);
        }
    for (const int q : {-128, 127}) {
        std::vector<block_q8_k> a(nb);
        for (std::size_t b = 0; b < nb; ++b) {
            a[b].d = b == 0 ? 0.125f : 1.0f;
            a[b].qs.fill(static_cast<std::int8_t>(q));
            a[b].bsums.fill(static_cast<std::int16_t>(16 * q));
        }
        for (const auto t : kernels::compiled_targets()) {
            std::vector<float> y(fills.size(), -1.0f);
            kernels::gemv(w.view(), std::span<const block_q8_k>(a), y, {}, t);
            for (std::size_t r = 0; r < fills.size(); ++r) {
                const auto e = exact_k_quant<S>(w.row(r), a.data(), cols);
                INFO(S::name << " " << t.name() << " fill=" << int{fills[r]} << " q=" << q << " exact=" << e.sum
                             << " got=" << y[r]);
                REQUIRE(std::fabs(y[r] - e.sum) <= oracle<S>::budget(cols, e.magnitude));
            }
        }
    }
}

template <class S>
struct has_interleaved_kernel : std::bool_constant<kernels::interleavable_scheme<S>> {};
using gemm_schemes = kernels::gemm_scheme_list::apply<std::tuple>;
using interleaved_schemes = all_schemes::filter<has_interleaved_kernel>::apply<std::tuple>;

} // namespace

// Every scheme the registry gives a gemm kernel (kernels::gemm_scheme).
TEST_CASE_TEMPLATE_DEFINE("kernels: gemm within budget on every target, any thread count", S, gemm_each) {
    check_gemm_on_every_target<S>();
}
TEST_CASE_TEMPLATE_APPLY(gemm_each, gemm_schemes);

TEST_CASE_TEMPLATE("kernels: K-quant gemm on blocks of random bytes, every target", S, tq2_0, q2_k, q3_k, q4_k, q5_k, q6_k) {
    check_random_blocks<S>();
}

TEST_CASE_TEMPLATE("kernels: K-quant gemv at the extremes of codes, scales and activations, every target", S, tq2_0, q2_k,
                   q3_k, q4_k, q5_k, q6_k) {
    check_extreme_blocks<S>();
}

TEST_CASE_TEMPLATE_DEFINE("kernels: interleaved layout converts back bit for bit and gives the same outputs from 4 tokens on", S,
                          interleaved_each) {
    std::mt19937 rng(12);
    for (const shape sh : std::vector<shape>{{1, 32, 4}, {16, 64, 2}, {17, 96, 3}, {33, 160, 7}}) {
        const std::size_t rows = sh.rows, cols = sh.cols, T = sh.T; // not a structured binding: INFO captures them
        weights<S> w(rows, cols, 2 * S::block_bytes, rng);
        const kernels::interleaved<S> iw(w.view());
        CHECK(iw.rows() == rows);
        CHECK(iw.cols() == cols);
        CHECK(iw.groups() == (rows + 15) / 16);
        std::vector<block_of<S>> back(rows * (cols / 32));
        std::memset(back.data(), 0xab, back.size() * sizeof(block_of<S>));
        iw.copy_to(tensor_view<S, 2>(std::as_writable_bytes(std::span(back)), extents<2>{rows, cols}));
        for (std::size_t r = 0; r < rows; ++r)
            REQUIRE(std::memcmp(back.data() + r * (cols / 32), w.row(r), row_bytes<S>(cols)) == 0);

        const auto x = activations(T, cols, rng);
        kernels::thread_pool pool(3);
        for (const auto t : kernels::compiled_targets()) {
            std::vector<float> plain(T * rows), inter(T * rows, -1.0f), inter3(T * rows, -2.0f);
            kernels::gemm(w.view(), x, plain, {}, t);
            kernels::gemm(iw, x, inter, {}, t);
            kernels::gemm(iw, x, inter3, pool.get_executor(), t);
            INFO(S::name << " " << t.name() << " rows=" << rows << " cols=" << cols << " T=" << T);
            REQUIRE(std::memcmp(inter.data(), inter3.data(), inter.size() * sizeof(float)) == 0);
            // From 4 tokens on, GGUF-layout rows are regrouped and run the
            // interleaved kernel itself (below that they have their own GEMV,
            // within the budget: the next test case).
            if (T >= 4) REQUIRE(std::memcmp(plain.data(), inter.data(), plain.size() * sizeof(float)) == 0);
            const oracle<S> o(x, cols, T);
            for (std::size_t tok = 0; tok < T; ++tok) {
                // Interleaved GEMM equals one GEMV per token, bit for bit.
                std::vector<float> y1(rows);
                kernels::gemv(iw, std::span(o.template partner<q8_0>(tok), cols / 32), y1, {}, t);
                REQUIRE(std::memcmp(y1.data(), inter.data() + tok * rows, rows * sizeof(float)) == 0);
                for (std::size_t r = 0; r < rows; ++r) {
                    const auto e = o.exact(w, r, tok);
                    REQUIRE(std::fabs(inter[tok * rows + r] - e.sum) <= oracle<S>::budget(cols, e.magnitude));
                }
            }
        }
    }
    // Interleaving with threads gives the same bytes.
    weights<S> w(40, 64, 0, rng);
    kernels::thread_pool pool(2);
    const kernels::interleaved<S> a(w.view()), b(w.view(), pool.get_executor());
    REQUIRE(a.size_bytes() == b.size_bytes());
    CHECK(std::memcmp(a.data(), b.data(), a.size_bytes()) == 0);
}
TEST_CASE_TEMPLATE_APPLY(interleaved_each, interleaved_schemes);

TEST_CASE("kernels: interleaved hands back each slab of rows once copied, in order, then all of them") {
    std::mt19937 rng(31);
    const std::size_t rows = kernels::interleaved<q4_0>::slab_rows + 21, cols = 64;
    weights<q4_0> w(rows, cols, q4_0::block_bytes, rng); // a row stride past the row: the last span ends at its data
    const std::size_t stride = w.stride;
    std::vector<std::span<const std::byte>> slabs;
    kernels::thread_pool pool(3);
    const kernels::interleaved<q4_0> iw(w.view(), pool.get_executor(),
                                        [&](std::span<const std::byte> s) { slabs.push_back(s); });
    const auto* first = reinterpret_cast<const std::byte*>(w.row(0));
    REQUIRE(slabs.size() == 3); // two slabs, then the whole matrix (the pages the slabs share)
    CHECK(slabs[0].data() == first);
    CHECK(slabs[0].size() == (kernels::interleaved<q4_0>::slab_rows - 1) * stride + row_bytes<q4_0>(cols));
    CHECK(slabs[1].data() == first + kernels::interleaved<q4_0>::slab_rows * stride);
    CHECK(slabs[1].data() + slabs[1].size() == reinterpret_cast<const std::byte*>(w.row(rows - 1)) + row_bytes<q4_0>(cols));
    CHECK(slabs[2].data() == first);
    CHECK(slabs[2].data() + slabs[2].size() == slabs[1].data() + slabs[1].size());
    std::vector<block_q4_0> back(rows * (cols / 32));
    iw.copy_to(tensor_view<q4_0, 2>(std::as_writable_bytes(std::span(back)), extents<2>{rows, cols}));
    for (std::size_t r = 0; r < rows; ++r)
        REQUIRE(std::memcmp(back.data() + r * (cols / 32), w.row(r), row_bytes<q4_0>(cols)) == 0);
}

// matmul.hpp's promise for T < 4, where the GGUF layout has its own GEMV:
// both layouts within the budget of the exact sum (so of each other), and
// how many outputs differ, for the record.
TEST_CASE_TEMPLATE_DEFINE("kernels: below 4 tokens the GGUF and interleaved layouts agree within the budget", S,
                          layouts_few_tokens) {
    std::mt19937 rng(16);
    const std::size_t rows = 2048, cols = 4096;
    weights<S> w(rows, cols, 0, rng);
    const kernels::interleaved<S> iw(w.view());
    for (std::size_t T = 1; T < 4; ++T) {
        const auto x = activations(T, cols, rng);
        const oracle<S> o(x, cols, T);
        std::vector<exact_value> exact(T * rows);
        for (std::size_t tok = 0; tok < T; ++tok)
            for (std::size_t r = 0; r < rows; ++r) exact[tok * rows + r] = o.exact(w, r, tok);
        for (const auto t : kernels::compiled_targets()) {
            std::vector<float> plain(T * rows), inter(T * rows);
            kernels::gemm(w.view(), x, plain, {}, t);
            kernels::gemm(iw, x, inter, {}, t);
            std::size_t differ = 0;
            double worst = 0.0; // largest |plain - inter| in budgets
            for (std::size_t i = 0; i < plain.size(); ++i) {
                const double budget = oracle<S>::budget(cols, exact[i].magnitude);
                INFO(S::name << " " << t.name() << " T=" << T << " output " << i);
                REQUIRE(std::fabs(plain[i] - exact[i].sum) <= budget);
                REQUIRE(std::fabs(inter[i] - exact[i].sum) <= budget);
                if (plain[i] != inter[i]) ++differ;
                worst = std::max(worst, std::fabs(static_cast<double>(plain[i]) - inter[i]) / budget);
            }
            MESSAGE(S::name << " " << t.name() << " T=" << T << ": " << differ << " of " << plain.size()
                            << " outputs differ between the layouts, by at most " << worst << " budgets");
        }
    }
}
TEST_CASE_TEMPLATE_APPLY(layouts_few_tokens, interleaved_schemes);

TEST_CASE("kernels: the row dots stay within budget on every target") {
    std::mt19937 rng(13);
    for (const std::size_t n : {std::size_t{256}, std::size_t{768}, std::size_t{4096}}) {
        weights<q4_0> w4(1, n, 0, rng);
        weights<q8_0> w8(1, n, 0, rng);
        weights<q2_k> w2(1, n, 0, rng);
        weights<f32> wf(1, n + 3, 0, rng);
        weights<bf16> wb(1, n + 3, 0, rng);
        const auto x = activations(1, n + 32, rng);
        const std::vector<float> xs(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(n));
        const oracle<q4_0> o4(xs, n, 1);
        const oracle<q8_0> o8(xs, n, 1);
        const oracle<q2_k> o2(xs, n, 1);
        const std::vector<float> xf(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(n + 3));
        const oracle<f32> of(xf, n + 3, 1);
        const oracle<bf16> ob(xf, n + 3, 1);
        for (const auto t : kernels::compiled_targets()) {
            INFO(t.name() << " n=" << n);
            const auto e4 = o4.exact(w4, 0, 0), e8 = o8.exact(w8, 0, 0), e2 = o2.exact(w2, 0, 0);
            const auto ef = of.exact(wf, 0, 0), eb = ob.exact(wb, 0, 0);
            CHECK(std::fabs(kernels::dot_q4_0_q8_0({w4.row(0), n / 32}, {o4.partner<q8_0>(0), n / 32}, t) - e4.sum) <=
                  oracle<q4_0>::budget(n, e4.magnitude));
            CHECK(std::fabs(kernels::dot_q8_0_q8_0({w8.row(0), n / 32}, {o8.partner<q8_0>(0), n / 32}, t) - e8.sum) <=
                  oracle<q8_0>::budget(n, e8.magnitude));
            CHECK(std::fabs(kernels::dot_q2_k_q8_k({w2.row(0), n / 256}, {o2.partner<q8_k>(0), n / 256}, t) - e2.sum) <=
                  oracle<q2_k>::budget(n, e2.magnitude));
            CHECK(std::fabs(kernels::dot_f32_f32({wf.row(0), n + 3}, xf, t) - ef.sum) <=
                  oracle<f32>::budget(n + 3, ef.magnitude));
            CHECK(std::fabs(kernels::dot_bf16_f32({wb.row(0), n + 3}, xf, t) - eb.sum) <=
                  oracle<bf16>::budget(n + 3, eb.magnitude));
        }
    }
}

TEST_CASE("kernels: Q8_0 weights of -128 and full-range codes multiply exactly") {
    // Extreme codes stress the unsigned offset (c ^ 0x80) and the sign trick:
    // every integer block sum must be exact, so with unit scales the result
    // is the exact integer dot.
    const std::size_t rows = 16, n = 64;
    std::vector<block_q8_0> w(rows * 2), a(2);
    std::mt19937 rng(14);
    std::uniform_int_distribution<int> code(-128, 127), act(-127, 127);
    for (auto& b : w) {
        b.d = fp32_to_fp16(1.0f);
        for (auto& q : b.qs) q = static_cast<std::int8_t>(code(rng));
    }
    w[0].qs.fill(-128);
    for (auto& b : a) {
        b.d = fp32_to_fp16(1.0f);
        for (auto& q : b.qs) q = static_cast<std::int8_t>(act(rng));
    }
    a[0].qs.fill(-127);
    const tensor_view<const q8_0, 2> view(std::as_bytes(std::span(w)), extents<2>{rows, n});
    const kernels::interleaved<q8_0> iw(view);
    for (const auto t : kernels::compiled_targets()) {
        std::vector<float> y(rows), yi(rows);
        kernels::gemv(view, a, y, {}, t);
        kernels::gemv(iw, a, yi, {}, t);
        for (std::size_t r = 0; r < rows; ++r) {
            long exact = 0;
            for (std::size_t i = 0; i < n; ++i) exact += w[r * 2 + i / 32].qs[i % 32] * a[i / 32].qs[i % 32];
            INFO(t.name() << " r=" << r);
            CHECK(y[r] == static_cast<float>(exact));
            CHECK(yi[r] == static_cast<float>(exact));
        }
    }
}

TEST_CASE("kernels: dot_q8_0_q8_0 multiplies any codes exactly, -128 on both sides included") {
    // The row dot takes two Q8_0 rows, so unlike gemm's activations (which
    // the Q8_0 quantizer keeps in -127..127) either side may hold -128.
    const std::size_t n = 96;
    std::vector<block_q8_0> w(n / 32), a(n / 32);
    std::mt19937 rng(15);
    std::uniform_int_distribution<int> code(-128, 127);
    for (auto* row : {&w, &a})
        for (auto& b : *row) {
            b.d = fp32_to_fp16(1.0f);
            for (auto& q : b.qs) q = static_cast<std::int8_t>(code(rng));
        }
    w[0].qs.fill(-128);
    a[0].qs.fill(-128);
    a[1].qs.fill(-128);
    w[2].qs.fill(127);
    a[2].qs.fill(-128);
    long exact = 0;
    for (std::size_t i = 0; i < n; ++i) exact += w[i / 32].qs[i % 32] * a[i / 32].qs[i % 32];
    for (const auto t : kernels::compiled_targets()) {
        INFO(t.name());
        CHECK(kernels::dot_q8_0_q8_0(w, a, t) == static_cast<float>(exact));
    }
}

TEST_CASE("kernels: gemm and gemv take a tensor, a view and a const view, with the same results") {
    std::mt19937 rng(17);
    const std::size_t rows = 19, cols = 96;
    const auto values = qtensor_test::spread_blocks(rows * cols, 32, rng, -2.0f, 2.0f, 0.5f);
    auto w4 = tensor<q4_0, 2>::quantize(values, extents<2>{rows, cols});
    auto wf = tensor<f32, 2>::quantize(values, extents<2>{rows, cols});
    const auto x = activations(3, cols, rng);
    const std::span<const float> x1 = std::span(x).first(cols);
    const auto check = [&](auto& w, const auto& reference) {
        using S = typename std::remove_cvref_t<decltype(w)>::scheme_type;
        const tensor_view<const S, 2> cview = std::as_const(w).view();
        std::vector<float> want(3 * rows), got(3 * rows), want1(rows), one(rows);
        kernels::gemm(cview, x, want);
        kernels::gemm(cview, x1, want1);
        for (std::size_t tok = 0; tok < 3; ++tok)
            for (std::size_t r = 0; r < rows; ++r) {
                const auto [ref, budget] = reference(w.blocks(r).data(), x.data() + tok * cols);
                INFO(S::name << " r=" << r << " t=" << tok);
                REQUIRE(std::fabs(static_cast<double>(want[tok * rows + r]) - ref) <= budget);
            }
        kernels::gemm(w, x, got);
        CHECK(got == want);
        kernels::gemm(w.view(), x, got);
        CHECK(got == want);
        for (const auto* form : {"tensor", "view", "const view"}) {
            INFO(S::name << " gemv of a " << form);
            std::fill(one.begin(), one.end(), -1.0f);
            if (form[0] == 't') kernels::gemv(w, x1, one);
            else if (form[0] == 'v') kernels::gemv(w.view(), x1, one);
            else kernels::gemv(cview, x1, one);
            CHECK(one == want1);
        }
    };
    // The references: the scalar dot of a row with the activations as the
    // kernel sees them, and twice the budget of matmul.hpp (both are within it
    // of the exact sum).
    check(w4, [&](const block_q4_0* row, const float* xt) {
        std::vector<block_q8_0> a(cols / 32);
        q8_0::quantize_row(xt, a.data(), cols);
        const auto e = qtensor_test::exact_dot_of(dequantized_row<q4_0>(row, cols), dequantized_row<q8_0>(a.data(), cols));
        return std::pair{static_cast<double>(q4_0::dot_row(row, a.data(), cols)),
                         2 * oracle<q4_0>::budget(cols, e.magnitude)};
    });
    check(wf, [&](const float* row, const float* xt) {
        const auto e = qtensor_test::exact_dot_of(std::vector<float>(row, row + cols), std::vector<float>(xt, xt + cols));
        return std::pair{static_cast<double>(kernels::reference::dot_f32_f32(row, xt, cols)),
                         2 * oracle<f32>::budget(cols, e.magnitude)};
    });
    // interleaved<S> from each form, the same bytes.
    const kernels::interleaved<q4_0> from_tensor(w4), from_view(w4.view()), from_const(std::as_const(w4).view());
    CHECK(std::memcmp(from_tensor.data(), from_view.data(), from_view.size_bytes()) == 0);
    CHECK(std::memcmp(from_tensor.data(), from_const.data(), from_const.size_bytes()) == 0);
}

TEST_CASE_TEMPLATE("kernels: float gemm gives each token the bits gemv gives it, whatever tile it falls in", S, f32, bf16) {
    // 19 rows (tiles of 4 and 3 left over), 101 columns (a scalar tail), 5
    // tokens (pairs and one left over): every output's arithmetic is the
    // same as alone.
    std::mt19937 rng(23);
    const std::size_t rows = 19, cols = 101, T = 5;
    std::uniform_real_distribution<float> value(-1.0f, 1.0f);
    std::vector<float> values(rows * cols);
    for (float& v : values) v = value(rng);
    const auto w = tensor<S, 2>::quantize(values, extents<2>{rows, cols});
    std::vector<float> x(T * cols);
    for (float& v : x) v = value(rng);
    std::vector<float> all(T * rows), one(rows);
    kernels::gemm(w, x, all);
    for (std::size_t t = 0; t < T; ++t) {
        kernels::gemv(w, std::span<const float>(x).subspan(t * cols, cols), one);
        CHECK(std::memcmp(one.data(), all.data() + t * rows, rows * sizeof(float)) == 0);
    }
}

TEST_CASE("kernels: gemm, gemv and the row dots refuse sizes that do not agree, naming the argument and both sizes") {
    using qtensor_test::message_of;
    const std::string none = "(no qtensor::error thrown)";
    std::mt19937 rng(15);
    weights<q4_0> w(3, 64, 0, rng);
    const kernels::interleaved<q4_0> iw(w.view());
    std::vector<float> x(2 * 64), y(2 * 3);
    std::vector<block_q8_0> a(2 * 2);
    const auto x1 = std::span(x).first(64);
    const auto y1 = std::span(y).first(3);
    const auto a1 = std::span(a).first(2);
    // gemm: x whole rows of cols, y [T, rows]; both layouts, float or quantized activations.
    CHECK(message_of([&] { kernels::gemm(w.view(), std::span(x).first(100), y); }) ==
          "qtensor: kernels::gemm<q4_0>: x has 100 elements, not whole rows of 64");
    CHECK(message_of([&] { kernels::gemm(w.view(), x, y1); }) ==
          "qtensor: kernels::gemm<q4_0>: y has 3 elements, expected 6 (x has 128 elements)");
    CHECK(message_of([&] { kernels::gemm(iw, x, y1); }) ==
          "qtensor: kernels::gemm<q4_0>: y has 3 elements, expected 6 (x has 128 elements)");
    CHECK(message_of([&] { kernels::gemm(w.view(), std::span(a).first(3), y); }) ==
          "qtensor: kernels::gemm<q4_0>: a has 3 blocks, not whole rows of 2");
    CHECK(message_of([&] { kernels::gemm(iw, a, y1); }) ==
          "qtensor: kernels::gemm<q4_0>: y has 3 elements, expected 6 (a has 4 blocks)");
    // gemv: x [cols], y [rows].
    CHECK(message_of([&] { kernels::gemv(w.view(), x, y1); }) ==
          "qtensor: kernels::gemv<q4_0>: x has 128 elements, expected 64 (w has 64 columns)");
    CHECK(message_of([&] { kernels::gemv(iw, x1, y); }) ==
          "qtensor: kernels::gemv<q4_0>: y has 6 elements, expected 3 (w has 3 rows)");
    CHECK(message_of([&] { kernels::gemv(iw, a, y1); }) ==
          "qtensor: kernels::gemv<q4_0>: a has 4 blocks, expected 2 (w has 64 columns)");
    CHECK(message_of([&] { kernels::gemv(w.view(), a1, y); }) ==
          "qtensor: kernels::gemv<q4_0>: y has 6 elements, expected 3 (w has 3 rows)");
    // Row dots: w and a of the same number of elements.
    const std::span<const block_q4_0> row(w.row(0), 2);
    CHECK(message_of([&] { kernels::dot_q4_0_q8_0(row, std::span(a).first(3)); }) ==
          "qtensor: kernels::dot_q4_0_q8_0: a has 96 elements, expected 64 (w has 64 elements)");
    CHECK(message_of([&] { kernels::dot_f32_f32(x1, std::span(x).first(63)); }) ==
          "qtensor: kernels::dot_f32_f32: a has 63 elements, expected 64 (w has 64 elements)");
    std::vector<block_q8_0> q8(2);
    std::vector<block_q2_k> q2(1);
    std::vector<block_q8_k> qk(2);
    std::vector<bf16_t> h(64);
    CHECK_THROWS_AS(kernels::dot_q8_0_q8_0(q8, a), qtensor::error);
    CHECK_THROWS_AS(kernels::dot_q2_k_q8_k(q2, qk), qtensor::error);
    CHECK_THROWS_AS(kernels::dot_bf16_f32(h, x), qtensor::error);
    // Right sizes pass; T = 0 does nothing.
    CHECK(message_of([&] {
              kernels::gemm(w.view(), x, y);
              kernels::gemm(iw, a, y);
              kernels::gemm(w.view(), std::span<const float>(), std::span<float>());
              kernels::gemv(w.view(), x1, y1);
              kernels::gemv(iw, a1, y1);
              kernels::dot_q4_0_q8_0(row, a1);
              kernels::dot_q8_0_q8_0(q8, a1);
              kernels::dot_q2_k_q8_k(q2, std::span(qk).first(1));
              kernels::dot_bf16_f32(h, x1);
              kernels::dot_f32_f32(x1, x1);
          }) == none);
    std::vector<block_q4_0> out(4 * 2);
    CHECK(message_of([&] {
              iw.copy_to(tensor_view<q4_0, 2>(std::as_writable_bytes(std::span(out)), extents<2>{4, 64}));
          }).find("expected [3, 64]") != std::string::npos);
    CHECK(message_of([] { kernels::thread_pool p(0); }).find("at least 1 thread") != std::string::npos);
}

TEST_CASE("kernels: thread_pool runs every task once, again and again, and passes exceptions on") {
    for (const std::size_t threads : {std::size_t{1}, std::size_t{2}, std::size_t{3}}) {
        kernels::thread_pool pool(threads);
        CHECK(pool.size() == threads);
        const auto ex = pool.get_executor();
        CHECK(ex.concurrency() == threads);
        for (int call = 0; call < 200; ++call) {
            const std::size_t count = static_cast<std::size_t>(call % 7) + 1;
            std::vector<std::atomic<int>> hits(count);
            ex.run(count, [&](std::size_t i) { hits[i].fetch_add(1); });
            for (auto& h : hits) REQUIRE(h.load() == 1);
        }
        CHECK_THROWS_WITH_AS(ex.run(5, [](std::size_t i) { if (i == 3) throw std::runtime_error("task 3"); }),
                             "task 3", std::runtime_error);
        std::atomic<int> after{0};
        ex.run(4, [&](std::size_t) { after.fetch_add(1); });
        CHECK(after.load() == 4);
        if (threads >= 2) {
            // The tasks really run side by side: task 0 waits (up to 10 s) for
            // task 1 to start, which only another thread can do.
            std::atomic<bool> started{false};
            std::atomic<bool> saw{false};
            std::thread::id ids[2];
            ex.run(2, [&](std::size_t i) {
                ids[i] = std::this_thread::get_id();
                if (i == 1) started = true;
                const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
                while (i == 0 && !started && std::chrono::steady_clock::now() < until) std::this_thread::yield();
                if (i == 0) saw = started.load();
            });
            CHECK(saw.load());
            CHECK(ids[0] != ids[1]);
        }
    }
}
