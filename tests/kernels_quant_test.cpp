// Conformance of the quantize and dequantize kernels with their scalar twins in
// scheme/, bit for bit, on every target compiled in and supported by this CPU,
// forced one by one; and with ggml's own bytes (tests/data/ggml_golden).
//
// Quantizers: golden rows, then generated rows whose blocks are the cases the
// reference's rounding is sensitive to (exact .5 ties and one ulp either side,
// +m and -m in one block, zeros of both signs, float subnormals, the largest
// scale fp16 holds), odd block counts, one-block rows; and the same
// qtensor::error message as the reference for NaN, Inf and fp16 scale overflow.
// Dequantizers: golden blocks, blocks of random bytes (every fp16 scale
// pattern, NaN and Inf included), and all 65536 f16 and bf16 patterns.
#include <doctest/doctest.h>

#include "test_util.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "qtensor/kernels/kernels.hpp"
#include "qtensor/scheme/registry.hpp"
#include "qtensor/scheme/static_activation.hpp"
#include "qtensor/tensor/tensor_view.hpp"

using namespace qtensor;

namespace {

constexpr std::size_t golden_row = 256; // the golden files' row length

// The schemes to test, from the registry's kernel flags: a scheme given a
// kernel there is tested here without a line of its own.
template <class S>
struct has_quantize_kernel : std::bool_constant<has_kernels(simd_kernels_of<S>, simd_kernels::quantize)> {};
template <class S>
struct has_block_dequantize_kernel
    : std::bool_constant<(S::block_elems > 1) && has_kernels(simd_kernels_of<S>, simd_kernels::dequantize)> {};
template <class S>
struct has_fake_quant_kernel : std::bool_constant<has_kernels(simd_kernels_of<S>, simd_kernels::fake_quant)> {};
using with_quantize_kernel = all_schemes::filter<has_quantize_kernel>::apply<std::tuple>;
using with_fake_quant_kernel = all_schemes::filter<has_fake_quant_kernel>::apply<std::tuple>;
using with_block_dequantize_kernel = all_schemes::filter<has_block_dequantize_kernel>::apply<std::tuple>;
using all_registered = all_schemes::apply<std::tuple>;

std::vector<unsigned char> read_golden(const std::string& name) {
    const std::string path = std::string(QTENSOR_TEST_DATA_DIR) + "/ggml_golden/" + name;
    std::ifstream in(path, std::ios::binary);
    REQUIRE_MESSAGE(in.is_open(), "missing golden file " << path);
    std::vector<unsigned char> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    REQUIRE_MESSAGE(!bytes.empty(), "empty golden file " << path);
    return bytes;
}

std::vector<float> read_golden_floats(const std::string& name) {
    const auto bytes = read_golden(name);
    REQUIRE(bytes.size() % sizeof(float) == 0);
    std::vector<float> v(bytes.size() / sizeof(float));
    std::memcpy(v.data(), bytes.data(), bytes.size());
    return v;
}

template <class B>
std::vector<B> blocks_from_bytes(const std::vector<unsigned char>& bytes) {
    REQUIRE(bytes.size() % sizeof(B) == 0);
    std::vector<B> out(bytes.size() / sizeof(B));
    std::memcpy(static_cast<void*>(out.data()), bytes.data(), bytes.size());
    return out;
}

// Index of the first differing byte of two block arrays, or -1 if equal.
template <class B>
long first_diff(const std::vector<B>& a, const std::vector<B>& b) {
    REQUIRE(a.size() == b.size());
    const auto* pa = reinterpret_cast<const unsigned char*>(a.data());
    const auto* pb = reinterpret_cast<const unsigned char*>(b.data());
    for (std::size_t i = 0; i < a.size() * sizeof(B); ++i)
        if (pa[i] != pb[i]) return static_cast<long>(i);
    return -1;
}

// Index of the first float whose bits differ, or -1 if all are equal.
long first_diff_bits(const std::vector<float>& a, const float* b) {
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::bit_cast<std::uint32_t>(a[i]) != std::bit_cast<std::uint32_t>(b[i])) return static_cast<long>(i);
    return -1;
}

// The largest block magnitude each quantizer can store: its fp16 scale
// (max / 8 for Q4_0, amax / 127 for Q8_0) must stay <= 65504. Q8_K's scale is fp32.
template <class S>
constexpr float magnitude_limit() {
    if constexpr (std::is_same_v<S, q4_0>) return 8.0f * 65504.0f;
    else if constexpr (std::is_same_v<S, q8_0>) return 127.0f * 65504.0f;
    else return std::numeric_limits<float>::max();
}

// The code that maps the block max onto the end of the range: x * id is
// k + 0.5 exactly for x = (k + 0.5) * 2^e when the max is top * 2^e.
template <class S>
constexpr int tie_top() {
    return std::is_same_v<S, q4_0> ? 8 : 127;
}

// The multiplier each reference applies to x before rounding (q4_0/q8_0: id,
// q8_k: iscale) for a block whose signed max is `max`, computed as it does.
template <class S>
float code_multiplier(float max) {
    if constexpr (std::is_same_v<S, q4_0>) return qtensor::detail::code_reciprocal(max / -8.0f);
    else if constexpr (std::is_same_v<S, q8_0>) return qtensor::detail::code_reciprocal(std::fabs(max) / 127.0f);
    else return -127.0f / max;
}

// A product x * m that rounds exactly onto a rounding boundary of the step
// after it, so only a product rounded before that step gives the reference's
// code (an FMA, or a product kept in higher precision, would not):
//   q4_0: x * id + 8.5 lands halfway between a float below an integer K and K;
//   q8_0 / q8_k: x * id lands on k + 0.5 (ties, away from zero / to even).
template <class S>
double boundary_product(std::mt19937& rng) {
    if constexpr (std::is_same_v<S, q4_0>) {
        const float k = static_cast<float>(std::uniform_int_distribution<int>(1, 16)(rng));
        const double half_ulp = (static_cast<double>(k) - std::nextafter(k, 0.0f)) / 2.0;
        return static_cast<double>(k) - half_ulp - 8.5;
    } else {
        return std::uniform_int_distribution<int>(-127, 126)(rng) + 0.5;
    }
}

// A float x with fl(x * m) == target and x * m itself inexact, if one lies
// within 64 ulps of target / m.
std::optional<float> inexact_preimage(double target, float m) {
    const float t = static_cast<float>(target);
    if (static_cast<double>(t) != target || m == 0.0f) return std::nullopt;
    float x = static_cast<float>(target / m);
    for (int k = 0; k < 32; ++k) x = std::nextafter(x, -std::numeric_limits<float>::infinity());
    for (int k = 0; k < 64; ++k, x = std::nextafter(x, std::numeric_limits<float>::infinity()))
        if (qtensor::detail::fmul(x, m) == t && static_cast<double>(x) * m != target) return x;
    return std::nullopt;
}

// n floats in blocks of S::block_elems, each block one of the hard cases.
template <class S>
std::vector<float> hard_row(std::size_t n, std::mt19937& rng) {
    constexpr std::size_t B = S::block_elems;
    std::normal_distribution<float> gauss(0.0f, 1.0f);
    std::uniform_int_distribution<int> kind_of(0, 13), pos(0, static_cast<int>(B) - 1), coin(0, 1);
    const int top = tie_top<S>();
    std::uniform_int_distribution<int> tie_code(-top, top - 1);
    std::vector<float> x(n);
    for (std::size_t b = 0; b < n / B; ++b) {
        float* v = x.data() + b * B;
        const int e = std::uniform_int_distribution<int>(-30, 10)(rng);
        const float s = std::ldexp(1.0f, e);
        switch (kind_of(rng)) {
        case 0: // Gaussian over many magnitudes
            for (std::size_t j = 0; j < B; ++j) v[j] = std::pow(10.0f, static_cast<float>(e) / 5.0f) * gauss(rng);
            break;
        case 1: // zeros of both signs
            for (std::size_t j = 0; j < B; ++j) v[j] = coin(rng) ? -0.0f : 0.0f;
            break;
        case 2: // float subnormals, some beside a tiny normal
            for (std::size_t j = 0; j < B; ++j) v[j] = 1e-40f * gauss(rng);
            if (coin(rng)) v[pos(rng)] = 2e-38f;
            break;
        case 3: // exact .5 ties of the code rounding
        case 4: // ... and one ulp either side of them
            for (std::size_t j = 0; j < B; ++j) v[j] = (static_cast<float>(tie_code(rng)) + 0.5f) * s;
            v[pos(rng)] = (coin(rng) ? -1.0f : 1.0f) * static_cast<float>(top) * s;
            if (kind_of(rng) % 2)
                for (std::size_t j = 0; j < B; ++j)
                    if (std::fabs(v[j]) != static_cast<float>(top) * s)
                        v[j] = std::nextafter(v[j], coin(rng) ? 1e30f : -1e30f);
            break;
        case 5: // +m and -m in one block, in either order (first one sets the sign)
            for (std::size_t j = 0; j < B; ++j) v[j] = 0.5f * s * gauss(rng);
            for (int k = 0; k < 3; ++k) v[pos(rng)] = (coin(rng) ? -4.0f : 4.0f) * s;
            break;
        case 6: // the largest magnitude the scale can store, both signs
            for (std::size_t j = 0; j < B; ++j) v[j] = magnitude_limit<S>() * (0.075f * gauss(rng));
            v[pos(rng)] = (coin(rng) ? -1.0f : 1.0f) * magnitude_limit<S>();
            break;
        case 7: // one non-zero element
            for (std::size_t j = 0; j < B; ++j) v[j] = 0.0f;
            v[pos(rng)] = s * gauss(rng);
            break;
        case 8: // constant
            std::fill(v, v + B, s * gauss(rng));
            break;
        case 9: // tiny: Q8_K's iscale overflows below 127 / FLT_MAX
            for (std::size_t j = 0; j < B; ++j) v[j] = 1e-37f * gauss(rng);
            break;
        case 11: { // products that round onto the next step's boundary
            const float max = (coin(rng) ? -1.0f : 1.0f) * s * std::uniform_real_distribution<float>(1.0f, 2.0f)(rng);
            const float m = code_multiplier<S>(max);
            for (std::size_t j = 0; j < B; ++j) v[j] = inexact_preimage(boundary_product<S>(rng), m).value_or(0.0f);
            v[pos(rng)] = max;
            break;
        }
        case 12: { // a scale d anywhere in the fp16 range, half of them an fp16 rounding tie
            auto d_bits = std::uniform_int_distribution<std::uint32_t>(1, 0x477fe000u)(rng);
            if (coin(rng)) d_bits = (d_bits & ~0x1fffu) | 0x1000u;
            const float max = std::bit_cast<float>(d_bits) * (std::is_same_v<S, q4_0> ? 8.0f : 127.0f);
            for (std::size_t j = 0; j < B; ++j) v[j] = max * std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng);
            v[pos(rng)] = coin(rng) ? -max : max;
            break;
        }
        case 10: // an outlier
            for (std::size_t j = 0; j < B; ++j) v[j] = gauss(rng);
            v[pos(rng)] = 2000.0f * gauss(rng);
            break;
        default: // integers in the code range
            for (std::size_t j = 0; j < B; ++j) v[j] = static_cast<float>(tie_code(rng));
            break;
        }
    }
    return x;
}

template <class S>
std::vector<std::size_t> row_lengths() {
    constexpr std::size_t B = S::block_elems;
    return {0, B, 3 * B, 5 * B, 129 * B}; // none, one block, odd counts, a long row
}

} // namespace

TEST_CASE_TEMPLATE_DEFINE("quantize kernels give the reference's and ggml's bytes on the golden rows", S,
                          quantize_golden) {
    REQUIRE(std::endian::native == std::endian::little);
    const auto x = read_golden_floats("input.f32");
    const auto want = blocks_from_bytes<block_of<S>>(read_golden(std::string(S::name) + ".bin"));
    REQUIRE(want.size() == x.size() / S::block_elems);
    std::vector<block_of<S>> ref(want.size());
    S::quantize_row(x.data(), ref.data(), x.size());
    CHECK(first_diff(ref, want) == -1);
    for (const auto t : kernels::compiled_targets()) {
        INFO(S::name << " on " << t.name());
        std::vector<block_of<S>> got(want.size());
        kernels::quantize_row<S>(x, got, t); // all 199 rows as one
        CHECK(first_diff(got, want) == -1);
        std::vector<block_of<S>> row(golden_row / S::block_elems);
        for (std::size_t r = 0; r < x.size() / golden_row; ++r) {
            kernels::quantize_row<S>(std::span(x).subspan(r * golden_row, golden_row), row, t);
            INFO("row " << r);
            REQUIRE(std::memcmp(row.data(), want.data() + r * row.size(), row.size() * sizeof(row[0])) == 0);
        }
    }
}
TEST_CASE_TEMPLATE_APPLY(quantize_golden, with_quantize_kernel);

TEST_CASE_TEMPLATE_DEFINE("quantize kernels equal the reference bit for bit on hard rows", S, quantize_hard) {
    std::mt19937 rng(11);
    const int reps = std::is_same_v<S, q8_k> ? 6 : 20;
    for (const std::size_t n : row_lengths<S>()) {
        for (int rep = 0; rep < reps; ++rep) {
            const auto x = hard_row<S>(n, rng);
            std::vector<block_of<S>> want(n / S::block_elems);
            S::quantize_row(x.data(), want.data(), n);
            for (const auto t : kernels::compiled_targets()) {
                std::vector<block_of<S>> got(want.size());
                kernels::quantize_row<S>(x, got, t);
                const long k = first_diff(got, want);
                INFO(S::name << " on " << t.name() << ", n=" << n << ", rep " << rep << ": block "
                             << k / static_cast<long>(S::block_bytes) << ", byte " << k % static_cast<long>(S::block_bytes));
                REQUIRE(k == -1);
            }
        }
    }
}
TEST_CASE_TEMPLATE_APPLY(quantize_hard, with_quantize_kernel);

TEST_CASE_TEMPLATE_DEFINE("quantize kernels throw the reference's error for NaN, Inf and fp16 scale overflow", S,
                          quantize_errors) {
    constexpr std::size_t B = S::block_elems;
    const std::size_t n = 5 * B;
    std::mt19937 rng(13);
    std::normal_distribution<float> gauss(0.0f, 1.0f);
    std::vector<float> clean(n);
    for (auto& v : clean) v = gauss(rng);
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const float inf = std::numeric_limits<float>::infinity();
    // Past the fp16 range: the scale rounds to inf (Q8_K's fp32 scale never does).
    const float overflow = magnitude_limit<S>() * 1.001f;

    std::vector<std::vector<float>> bad;
    for (const std::size_t at : {std::size_t{0}, 2 * B + 7, n - 1}) {
        for (const float v : {nan, -nan, inf, -inf, std::bit_cast<float>(0x7f800001u)}) {
            bad.push_back(clean);
            bad.back()[at] = v;
        }
    }
    if (!std::is_same_v<S, q8_k>) {
        bad.push_back(clean);
        bad.back()[B + 3] = -overflow; // alone
        bad.push_back(bad.back());
        bad.back()[4 * B] = nan; // a later NaN: the reference's finiteness check runs first
    }
    for (const auto& x : bad) {
        std::vector<block_of<S>> y(n / B);
        const std::string want = qtensor_test::message_of([&] { S::quantize_row(x.data(), y.data(), n); });
        REQUIRE(want != "(no qtensor::error thrown)");
        for (const auto t : kernels::compiled_targets()) {
            INFO(S::name << " on " << t.name());
            CHECK(qtensor_test::message_of([&] { kernels::quantize_row<S>(x, y, t); }) == want);
        }
    }
}
TEST_CASE_TEMPLATE_APPLY(quantize_errors, with_quantize_kernel);

// The block max at which the fp16 scale overflows (d = 65520 rounds to inf),
// and the floats around it: the kernels must agree with the reference on
// which blocks throw, with the same message, and on the bytes of the others.
TEST_CASE_TEMPLATE("quantize kernels agree with the reference at the fp16 scale limit", S, q4_0, q8_0) {
    const float edge = (std::is_same_v<S, q4_0> ? 8.0f : 127.0f) * 65520.0f; // exact in float
    std::mt19937 rng(23);
    std::normal_distribution<float> gauss(0.0f, 1.0f);
    std::vector<float> x(3 * 32);
    for (auto& v : x) v = gauss(rng);
    for (const float sign : {1.0f, -1.0f}) {
        float max = edge;
        for (int k = 0; k < 16; ++k) max = std::nextafter(max, 0.0f);
        for (int k = 0; k < 32; ++k, max = std::nextafter(max, 1e30f)) {
            x[32 + 5] = sign * max;
            std::vector<block_of<S>> want(3), got(3);
            const std::string want_error = qtensor_test::message_of([&] { S::quantize_row(x.data(), want.data(), 96); });
            for (const auto t : kernels::compiled_targets()) {
                INFO(S::name << " on " << t.name() << ", max " << sign * max);
                const std::string got_error =
                    qtensor_test::message_of([&] { kernels::quantize_row<S>(x, got, t); });
                CHECK(got_error == want_error);
                if (want_error == "(no qtensor::error thrown)") CHECK(first_diff(got, want) == -1);
            }
        }
    }
}

// The fake-quant kernels against fake_quant<S>::forward (itself quantize_row
// then dequantize_row): the same floats and clip mask on the hard rows, into
// another array and in place. A row whose largest magnitude reaches
// magnitude_limit goes to the reference whole (its scale could overflow), so
// every other row has those magnitudes brought one ulp below it and runs on
// the kernel, long rows included.
TEST_CASE_TEMPLATE_DEFINE("fake_quant kernels equal fake_quant<S>::forward bit for bit, the clip mask included", S,
                          fake_quant_hard) {
    std::mt19937 rng(29);
    std::size_t clipped = 0, below_limit = 0;
    for (const std::size_t n : {std::size_t{0}, S::block_elems, 5 * S::block_elems, 35 * S::block_elems,
                                129 * S::block_elems}) {
        for (int rep = 0; rep < 20; ++rep) {
            auto x = hard_row<S>(n, rng);
            if (rep % 2 == 0)
                for (float& v : x)
                    if (std::fabs(v) >= magnitude_limit<S>()) v = std::nextafter(v, 0.0f);
            const bool on_kernel =
                std::all_of(x.begin(), x.end(), [](float v) { return std::fabs(v) < magnitude_limit<S>(); });
            if (n > 0 && on_kernel) ++below_limit;
            std::vector<float> want(n);
            std::vector<std::uint8_t> want_mask(n);
            fake_quant<S>::forward(x, want, want_mask);
            clipped += static_cast<std::size_t>(std::count(want_mask.begin(), want_mask.end(), 1));
            for (const auto t : kernels::compiled_targets()) {
                INFO(S::name << " on " << t.name() << ", n=" << n << ", rep " << rep);
                std::vector<float> got(n);
                std::vector<std::uint8_t> mask(n, 2);
                kernels::fake_quant_row<S>(x, got, mask, t);
                CHECK(first_diff_bits(want, got.data()) == -1);
                CHECK(mask == want_mask);
                std::vector<float> in_place = x;
                std::fill(mask.begin(), mask.end(), 2);
                kernels::fake_quant_row<S>(in_place, in_place, mask, t);
                CHECK(first_diff_bits(want, in_place.data()) == -1);
                CHECK(mask == want_mask);
            }
        }
    }
    CHECK(clipped > 100);     // the rows clip: the mask is tested where it is 1
    CHECK(below_limit >= 40); // and half the rows, long ones too, run on the kernel
}
TEST_CASE_TEMPLATE_APPLY(fake_quant_hard, with_fake_quant_kernel);

// Rows the reference refuses: the same message, and nothing written in place
// for NaN and Inf (the reference looks for them before writing).
TEST_CASE_TEMPLATE_DEFINE("fake_quant kernels throw the reference's error and write nothing for NaN or Inf", S,
                          fake_quant_errors) {
    constexpr std::size_t B = S::block_elems;
    const std::size_t n = 5 * B;
    std::mt19937 rng(31);
    std::normal_distribution<float> gauss(0.0f, 1.0f);
    std::vector<float> clean(n);
    for (auto& v : clean) v = gauss(rng);
    for (const std::size_t at : {std::size_t{0}, 2 * B + 7, n - 1}) {
        for (const float v : {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::infinity(),
                              magnitude_limit<S>() * 1.001f}) {
            std::vector<float> x = clean;
            x[at] = v;
            std::vector<float> y(n);
            std::vector<std::uint8_t> mask(n);
            const std::string want = qtensor_test::message_of([&] { fake_quant<S>::forward(x, y, mask); });
            REQUIRE(want != "(no qtensor::error thrown)");
            for (const auto t : kernels::compiled_targets()) {
                INFO(S::name << " on " << t.name() << ": " << want);
                CHECK(qtensor_test::message_of([&] { kernels::fake_quant_row<S>(x, y, mask, t); }) == want);
                std::vector<float> in_place = x;
                CHECK(qtensor_test::message_of([&] { kernels::fake_quant_row<S>(in_place, in_place, mask, t); }) ==
                      want);
                if (std::isnan(v) || std::isinf(v)) CHECK(first_diff_bits(x, in_place.data()) == -1);
            }
        }
    }
    std::vector<float> y(n);
    std::vector<std::uint8_t> mask(n);
    CHECK_THROWS_AS(kernels::fake_quant_row<S>(std::span(clean).first(n - 1), std::span(y).first(n - 1),
                                               std::span(mask).first(n - 1)), qtensor::error);
    CHECK_THROWS_AS(kernels::fake_quant_row<S>(clean, y, std::span(mask).first(B)), qtensor::error);
    const std::span<float> all(clean); // y overlapping x, one block on
    CHECK_THROWS_AS(kernels::fake_quant_row<S>(all.first(4 * B), all.subspan(B), std::span(mask).first(4 * B)),
                    qtensor::error);
}
TEST_CASE_TEMPLATE_APPLY(fake_quant_errors, with_fake_quant_kernel);

TEST_CASE_TEMPLATE_DEFINE("dequantize kernels give ggml's floats for the golden blocks", S, dequantize_golden) {
    REQUIRE(std::endian::native == std::endian::little);
    const auto q = blocks_from_bytes<block_of<S>>(read_golden(std::string(S::name) + ".bin"));
    const auto want = read_golden_floats(std::string(S::name) + ".dequant.f32");
    REQUIRE(want.size() == q.size() * S::block_elems);
    for (const auto t : kernels::compiled_targets()) {
        std::vector<float> got(want.size());
        kernels::dequantize_row<S>(q, got, t);
        INFO(S::name << " on " << t.name());
        CHECK(first_diff_bits(got, want.data()) == -1);
    }
}
TEST_CASE_TEMPLATE_APPLY(dequantize_golden, with_block_dequantize_kernel);

TEST_CASE_TEMPLATE_DEFINE("dequantize kernels equal the reference bit for bit on random bytes", S,
                          dequantize_random) {
    std::mt19937 rng(17);
    std::uniform_int_distribution<int> byte(0, 255);
    // Enough blocks that every fp16 pattern shows up as a scale several times.
    for (const std::size_t n : {S::block_elems, 3 * S::block_elems, 4099 * S::block_elems}) {
        std::vector<unsigned char> bytes(n / S::block_elems * S::block_bytes);
        for (auto& b : bytes) b = static_cast<unsigned char>(byte(rng));
        const auto q = blocks_from_bytes<block_of<S>>(bytes);
        std::vector<float> want(n);
        S::dequantize_row(q.data(), want.data(), n);
        for (const auto t : kernels::compiled_targets()) {
            std::vector<float> got(n);
            kernels::dequantize_row<S>(q, got, t);
            INFO(S::name << " on " << t.name() << ", n=" << n);
            CHECK(first_diff_bits(got, want.data()) == -1);
        }
    }
}
TEST_CASE_TEMPLATE_APPLY(dequantize_random, with_block_dequantize_kernel);

TEST_CASE_TEMPLATE("dequantize_f16 / dequantize_bf16 equal the reference on all 65536 patterns", S, f16, bf16) {
    using H = block_of<S>;
    std::vector<H> all(65536 + 7); // every pattern, then an odd tail
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = H{static_cast<std::uint16_t>(i % 65536)};
    std::vector<float> want(all.size());
    S::dequantize_row(all.data(), want.data(), all.size());
    for (const auto t : kernels::compiled_targets()) {
        INFO(S::name << " on " << t.name());
        std::vector<float> got(all.size());
        kernels::dequantize_row<S>(all, got, t);
        const long i = first_diff_bits(got, want.data());
        INFO("first differing pattern " << (i < 0 ? -1 : static_cast<long>(all[static_cast<std::size_t>(i)].bits)));
        CHECK(i == -1);
        // Short and misaligned rows: every tail length.
        for (std::size_t n = 0; n < 40; ++n) {
            std::vector<float> part(n);
            kernels::dequantize_row<S>(std::span(all).subspan(1000 + n, n), part, t);
            CHECK(first_diff_bits(part, want.data() + 1000 + n) == -1);
        }
    }
}

TEST_CASE("dequantize_f16 of inf and NaN halves gives ggml's floats") {
    const auto want = read_golden_floats("fp16_inf_nan.f32");
    REQUIRE(want.size() == 2048);
    std::vector<fp16_t> h(2048);
    for (std::size_t i = 0; i < h.size(); ++i)
        h[i] = fp16_t{static_cast<std::uint16_t>((i < 1024 ? 0x7C00u : 0xFC00u) + i % 1024)};
    for (const auto t : kernels::compiled_targets()) {
        std::vector<float> got(h.size());
        kernels::dequantize_f16(h, got, t);
        INFO("on " << t.name());
        CHECK(first_diff_bits(got, want.data()) == -1);
    }
}

// Every registered scheme, kernel or not: kernels::quantize_row<S> and
// dequantize_row<S> give the reference's bits on the best target.
TEST_CASE_TEMPLATE_DEFINE("quantize_row / dequantize_row<S> give the reference's bits for every scheme", S,
                          rows_any_scheme) {
    std::mt19937 rng(19);
    const std::size_t n = 3 * S::block_elems * (S::block_elems == 1 ? 37 : 1);
    const auto x = qtensor_test::spread_blocks(n, S::block_elems, rng);
    std::vector<block_of<S>> want(n / S::block_elems), got(want.size());
    S::quantize_row(x.data(), want.data(), n);
    kernels::quantize_row<S>(x, got);
    CHECK(first_diff(got, want) == -1);
    std::vector<float> y_want(n), y_got(n);
    S::dequantize_row(want.data(), y_want.data(), n);
    kernels::dequantize_row<S>(want, y_got);
    CHECK(first_diff_bits(y_got, y_want.data()) == -1);
    if constexpr (S::block_elems > 1) {
        CHECK_THROWS_AS(kernels::quantize_row<S>(std::span(x).first(n - 1), got), qtensor::error);
        CHECK_THROWS_AS(kernels::dequantize_row<S>(want, std::span(y_got).first(n - 1)), qtensor::error);
    }
}
TEST_CASE_TEMPLATE_APPLY(rows_any_scheme, all_registered);

TEST_CASE("quantize and dequantize kernels reject rows that are not whole blocks") {
    std::vector<float> x(512, 1.0f);
    std::vector<block_q4_0> q4(16);
    std::vector<block_q8_0> q8(16);
    std::vector<block_q8_k> qk(2);
    std::vector<block_q2_k> q2(2);
    CHECK_THROWS_AS(kernels::quantize_q4_0(std::span(x).first(48), q4), qtensor::error);
    CHECK_THROWS_AS(kernels::quantize_q8_0(std::span(x).first(33), q8), qtensor::error);
    CHECK_THROWS_AS(kernels::quantize_q8_k(std::span(x).first(384), qk), qtensor::error);
    CHECK_THROWS_AS(kernels::dequantize_q8_0(q8, std::span(x).first(40)), qtensor::error);
    CHECK_THROWS_AS(kernels::dequantize_q2_k(q2, std::span(x).first(300)), qtensor::error);
    CHECK(qtensor_test::message_of([&] { kernels::quantize_q4_0(std::span(x).first(48), q4); }) ==
          "qtensor: kernels::quantize_q4_0: x has 48 elements, not whole q4_0 blocks of 32");
    CHECK(qtensor_test::message_of([&] { kernels::dequantize_row<q2_k>(q2, std::span(x).first(300)); }) ==
          "qtensor: kernels::dequantize_row<q2_k>: y has 300 elements, not whole q2_k blocks of 256");
}

TEST_CASE("quantize and dequantize kernels refuse spans of different sizes, naming the function, argument and sizes") {
    using qtensor_test::message_of;
    std::vector<float> x(512, 1.0f);
    std::vector<block_q4_0> q4(16);
    std::vector<block_q8_0> q8(16);
    std::vector<block_q8_k> qk(2);
    std::vector<block_q2_k> q2(2);
    std::vector<fp16_t> h(512);
    std::vector<bf16_t> b(512);
    const auto x3 = std::span(x).first(3 * 32);
    CHECK(message_of([&] { kernels::quantize_q4_0(x3, q4); }) ==
          "qtensor: kernels::quantize_q4_0: y has 16 blocks, expected 3 (x has 96 elements)");
    CHECK(message_of([&] { kernels::quantize_q8_0(x3, q8); }) ==
          "qtensor: kernels::quantize_q8_0: y has 16 blocks, expected 3 (x has 96 elements)");
    CHECK(message_of([&] { kernels::quantize_q8_k(std::span(x).first(256), qk); }) ==
          "qtensor: kernels::quantize_q8_k: y has 2 blocks, expected 1 (x has 256 elements)");
    CHECK(message_of([&] { kernels::dequantize_q4_0(q4, x3); }) ==
          "qtensor: kernels::dequantize_q4_0: x has 16 blocks, expected 3 (y has 96 elements)");
    CHECK(message_of([&] { kernels::dequantize_q8_0(q8, x3); }) ==
          "qtensor: kernels::dequantize_q8_0: x has 16 blocks, expected 3 (y has 96 elements)");
    CHECK(message_of([&] { kernels::dequantize_q2_k(q2, std::span(x).first(256)); }) ==
          "qtensor: kernels::dequantize_q2_k: x has 2 blocks, expected 1 (y has 256 elements)");
    CHECK(message_of([&] { kernels::dequantize_f16(h, x3); }) ==
          "qtensor: kernels::dequantize_f16: x has 512 elements, expected 96 (y has 96 elements)");
    CHECK(message_of([&] { kernels::dequantize_bf16(b, x3); }) ==
          "qtensor: kernels::dequantize_bf16: x has 512 elements, expected 96 (y has 96 elements)");
    CHECK(message_of([&] { kernels::quantize_row<q4_0>(x3, q4); }) ==
          "qtensor: kernels::quantize_row<q4_0>: y has 16 blocks, expected 3 (x has 96 elements)");
    CHECK(message_of([&] { kernels::dequantize_row<q2_k>(q2, std::span(x).first(256)); }) ==
          "qtensor: kernels::dequantize_row<q2_k>: x has 2 blocks, expected 1 (y has 256 elements)");
    // A scheme without a kernel (its reference) is checked the same way.
    std::vector<block_q4_1> q41(16);
    CHECK_THROWS_AS(kernels::quantize_row<q4_1>(x3, q41), qtensor::error);
    // Right sizes pass.
    CHECK(message_of([&] {
              kernels::quantize_q4_0(x, q4);
              kernels::quantize_q8_0(x, q8);
              kernels::quantize_q8_k(x, qk);
              kernels::dequantize_q4_0(q4, x);
              kernels::dequantize_q8_0(q8, x);
              kernels::dequantize_q2_k(q2, x);
              kernels::dequantize_f16(h, x);
              kernels::dequantize_bf16(b, x);
              kernels::quantize_row<q4_1>(x, q41);
          }) == "(no qtensor::error thrown)");
}

// ---- static activations (scheme/static_activation.hpp) ------------------------------

TEST_CASE("static activations: codes by hand, half to even, clamped at 127, the clip mask, the fake-quant twin") {
    // s = 0.5: x * (1 / s) = 2x exactly, so x = k / 4 lands on k / 2, ties at odd k.
    std::vector<float> x(768);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = 0.25f * (static_cast<float>(i) - 384.0f);
    std::vector<block_q8_k> y(3);
    std::vector<std::uint8_t> saturated(768);
    quantize_row_static(x.data(), y.data(), x.size(), 0.5f, saturated.data());
    for (std::size_t i = 0; i < x.size(); ++i) {
        const double v = 2.0 * x[i];
        const double tie_even = std::nearbyint(v); // the default rounding mode: half to even
        const double want = std::clamp(tie_even, -127.0, 127.0);
        INFO("x = " << x[i]);
        CHECK(y[i / 256].qs[i % 256] == static_cast<int>(want));
        CHECK(saturated[i] == (std::fabs(v) > 127.0));
    }
    CHECK(y[1].qs[1] == -64); // x = -31.75, 2x = -63.5: the even neighbour, -64
    for (const block_q8_k& b : y) {
        CHECK(b.d == 0.5f);
        for (std::size_t g = 0; g < 16; ++g) {
            int sum = 0;
            for (std::size_t j = 16 * g; j < 16 * g + 16; ++j) sum += b.qs[j];
            CHECK(b.bsums[g] == sum);
        }
    }
    // Q8_0 blocks: the same codes, d the fp16 scale.
    std::vector<block_q8_0> z(24);
    quantize_row_static(x.data(), z.data(), x.size(), 0.5f);
    for (std::size_t i = 0; i < x.size(); ++i) CHECK(z[i / 32].qs[i % 32] == y[i / 256].qs[i % 256]);
    CHECK(fp16_to_fp32(z[0].d) == 0.5f);
    // The fake-quant twin (QAT): the codes times s, the same clip mask; in place too.
    std::vector<float> seen(x.size());
    std::vector<std::uint8_t> clipped(x.size(), 7);
    fake_quant_static(x.data(), seen.data(), x.size(), 0.5f, clipped.data());
    for (std::size_t i = 0; i < x.size(); ++i) {
        CHECK(seen[i] == 0.5f * static_cast<float>(y[i / 256].qs[i % 256]));
        CHECK(clipped[i] == saturated[i]);
    }
    fake_quant_static(x.data(), x.data(), x.size(), 0.5f);
    CHECK(x == seen);
    CHECK_THROWS_AS(fake_quant_static(x.data(), seen.data(), x.size(), 0.0f), error);
}

TEST_CASE("static activations: the kernels equal the reference bit for bit on every target") {
    std::mt19937 rng(41);
    std::normal_distribution<float> body(0.0f, 1.0f);
    std::vector<float> x(1024);
    for (float& v : x) v = body(rng);
    x[3] = 900.0f; // outliers far past the range: saturate
    x[700] = -1e30f;
    x[5] = 0.0f;
    x[6] = -0.0f;
    for (const float amax : {3.0f, 0.01f, 250.0f}) {
        const float s = static_scale_fp16(amax);
        CAPTURE(s);
        std::vector<block_q8_0> ref0(x.size() / 32), got0(x.size() / 32);
        std::vector<block_q8_k> refk(x.size() / 256), gotk(x.size() / 256);
        quantize_row_static(x.data(), ref0.data(), x.size(), s);
        quantize_row_static(x.data(), refk.data(), x.size(), s);
        for (const auto t : kernels::compiled_targets()) {
            INFO(t.name());
            std::memset(got0.data(), 0xa5, got0.size() * sizeof(block_q8_0));
            std::memset(gotk.data(), 0xa5, gotk.size() * sizeof(block_q8_k));
            kernels::quantize_static(std::span<const float>(x), std::span(got0), s, t);
            kernels::quantize_static(std::span<const float>(x), std::span(gotk), s, t);
            CHECK(std::memcmp(got0.data(), ref0.data(), got0.size() * sizeof(block_q8_0)) == 0);
            CHECK(std::memcmp(gotk.data(), refk.data(), gotk.size() * sizeof(block_q8_k)) == 0);
        }
    }
}

TEST_CASE("static activations: scales and input the quantizer refuses") {
    std::vector<float> x(256, 1.0f);
    std::vector<block_q8_k> yk(1);
    std::vector<block_q8_0> y0(8);
    for (const float s : {0.0f, -1.0f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                          1e-39f}) {
        CAPTURE(s);
        CHECK_THROWS_AS(kernels::quantize_static(std::span<const float>(x), std::span(yk), s), error);
    }
    CHECK_THROWS_WITH_AS(kernels::quantize_static(std::span<const float>(x), std::span(y0), 0.1f),
                         doctest::Contains("not an fp16 value"), error);
    CHECK_NOTHROW(kernels::quantize_static(std::span<const float>(x), std::span(yk), 0.1f)); // Q8_K: fp32 d
    x[9] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_AS(kernels::quantize_static(std::span<const float>(x), std::span(yk), 0.5f), error);
    CHECK_THROWS_AS(kernels::quantize_static(std::span<const float>(x).first(200), std::span(yk), 0.5f), error);
    // static_scale_fp16: the least fp16 value at least amax / 127.
    for (const float amax : {1.0f, 3.3f, 1000.0f, 0.01f}) {
        const float s = static_scale_fp16(amax);
        CHECK(s >= amax / 127.0f);
        CHECK(fp16_to_fp32(fp32_to_fp16(s)) == s);
        CHECK(fp16_to_fp32(fp16_t{static_cast<std::uint16_t>(fp32_to_fp16(s).bits - 1)}) < amax / 127.0f);
    }
    CHECK_THROWS_AS(static_scale_fp16(0.0f), error);
    CHECK_THROWS_AS(static_scale_fp16(1e7f), error);  // s past 65504
    CHECK_THROWS_AS(static_scale_fp16(1e-5f), error); // s below fp16's normal range
}

TEST_CASE("static activations run the integer products unchanged: w2a8 (tq2_0) and w4a8 (q4_0)") {
    std::mt19937 rng(43);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    const std::size_t rows = 20, cols = 512;
    std::vector<float> w(rows * cols), x(cols);
    for (float& v : w) v = 0.05f * dist(rng);
    for (float& v : x) v = dist(rng);
    const float s = static_scale_fp16(4.0f);
    std::vector<block_q8_k> ak(cols / 256);
    std::vector<block_q8_0> a0(cols / 32);
    quantize_row_static(x.data(), ak.data(), cols, s);
    quantize_row_static(x.data(), a0.data(), cols, s);
    std::vector<block_tq2_0> w2(rows * cols / 256);
    std::vector<block_q4_0> w4(rows * cols / 32);
    tq2_0::quantize_row(w.data(), w2.data(), w.size());
    q4_0::quantize_row(w.data(), w4.data(), w.size());
    const tensor_view<const tq2_0, 2> v2(std::as_bytes(std::span(w2)), extents<2>{rows, cols});
    const tensor_view<const q4_0, 2> v4(std::as_bytes(std::span(w4)), extents<2>{rows, cols});
    for (const auto t : kernels::compiled_targets()) {
        INFO(t.name());
        std::vector<float> y2(rows), y4(rows);
        kernels::gemv(v2, std::span<const block_q8_k>(ak), y2, {}, t);
        kernels::gemv(v4, std::span<const block_q8_0>(a0), y4, {}, t);
        for (std::size_t r = 0; r < rows; ++r) {
            // The exact sum of dequantized weights times s * code, and matmul.hpp's budgets.
            std::vector<float> wd2(cols), wd4(cols);
            tq2_0::dequantize_row(w2.data() + r * cols / 256, wd2.data(), cols);
            q4_0::dequantize_row(w4.data() + r * cols / 32, wd4.data(), cols);
            double e2 = 0, m2 = 0, e4 = 0, m4 = 0;
            for (std::size_t i = 0; i < cols; ++i) {
                const double a = static_cast<double>(s) * ak[i / 256].qs[i % 256];
                CHECK(a0[i / 32].qs[i % 32] == ak[i / 256].qs[i % 256]);
                e2 += wd2[i] * a;
                m2 += std::fabs(wd2[i] * a);
                e4 += wd4[i] * a;
                m4 += std::fabs(wd4[i] * a);
            }
            CHECK(std::fabs(y2[r] - e2) <= (cols / 256.0 + 24) * 0x1p-24 * m2);
            CHECK(std::fabs(y4[r] - e4) <= (cols / 32.0 + 17) * 0x1p-24 * m4);
            CHECK(m2 > 0);
        }
    }
}
