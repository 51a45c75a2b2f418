// TQ2_0: the block layout and dequantization as GGUF publishes them (ggml's
// dequantize_row_tq2_0, written out here as its loops run), the bytes ggml's
// ternary quantizer writes for ternary input, and qtensor's four-level rule
// (scheme/tq2_0.hpp): grid blocks pack exactly, the least-error step wins,
// the clip mask, bad input, and the Q8_K dot product within its budget.
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "qtensor/scheme/fake_quant.hpp"
#include "qtensor/scheme/tq2_0.hpp"

using namespace qtensor;

static_assert(scheme<tq2_0> && quantized_scheme<tq2_0> && has_dot_partner<tq2_0>);
static_assert(tq2_0::block_elems == 256 && tq2_0::block_bytes == 66);
static_assert(static_cast<int>(tq2_0::type_id) == 35);
static_assert(offsetof(block_tq2_0, qs) == 0 && offsetof(block_tq2_0, d) == 64);

namespace {

// GGUF's dequantization of one TQ2_0 block, in its own loop order: for j in
// 0, 32, for l in 0..3, for m in 0..31 the next output is
// ((qs[j + m] >> 2l) & 3) - 1, times d.
std::array<float, 256> gguf_dequantize(const block_tq2_0& b) {
    std::array<float, 256> y{};
    std::size_t out = 0;
    const float d = fp16_to_fp32(b.d);
    for (std::size_t j = 0; j < 64; j += 32)
        for (std::size_t l = 0; l < 4; ++l)
            for (std::size_t m = 0; m < 32; ++m) y[out++] = static_cast<float>(((b.qs[j + m] >> (2 * l)) & 3) - 1) * d;
    return y;
}

struct packed {
    block_tq2_0 block;
    std::array<std::uint8_t, 256> saturated;
    std::array<float, 256> y;
};

packed pack(const std::vector<float>& x) {
    REQUIRE(x.size() == 256);
    packed p{};
    tq2_0::quantize_row(x.data(), &p.block, 256, p.saturated.data());
    tq2_0::dequantize_row(&p.block, p.y.data(), 256);
    return p;
}

std::vector<float> gaussian_block(std::mt19937& rng, float sigma) {
    std::normal_distribution<float> dist(0.0f, sigma);
    std::vector<float> x(256);
    for (float& v : x) v = dist(rng);
    return x;
}

} // namespace

TEST_CASE("tq2_0: dequantization is GGUF's, every code at every position") {
    std::mt19937 rng(1);
    std::uniform_int_distribution<int> byte(0, 255);
    for (float d : {0.5f, -0.375f, 0.0f, 3.0e-5f}) {
        block_tq2_0 b{};
        for (auto& q : b.qs) q = static_cast<std::uint8_t>(byte(rng));
        b.d = fp32_to_fp16(d);
        std::array<float, 256> y{};
        tq2_0::dequantize_row(&b, y.data(), 256);
        CHECK(y == gguf_dequantize(b));
    }
}

TEST_CASE("tq2_0: ternary input gets the bytes of ggml's ternary quantizer") {
    // ggml: d = max|x|, code = round(x / d) + 1. With the first largest
    // element positive, qtensor's rule picks the same d (t = 1, error 0).
    std::mt19937 rng(2);
    std::uniform_int_distribution<int> tern(-1, 1);
    const float a = 0.0625f;
    std::vector<float> x(256);
    for (float& v : x) v = a * static_cast<float>(tern(rng));
    x[3] = a; // the first largest element, positive
    for (std::size_t i = 0; i < 3; ++i) x[i] = 0.0f;
    const packed p = pack(x);
    block_tq2_0 want{};
    want.d = fp32_to_fp16(a);
    for (std::size_t j = 0; j < 64; j += 32)
        for (std::size_t l = 0; l < 4; ++l)
            for (std::size_t m = 0; m < 32; ++m) {
                const int code = static_cast<int>(std::lround(x[4 * j + 32 * l + m] / a)) + 1;
                want.qs[j + m] = static_cast<std::uint8_t>(want.qs[j + m] | (code << (2 * l)));
            }
    CHECK(std::memcmp(&p.block, &want, sizeof want) == 0);
    for (std::size_t i = 0; i < 256; ++i) CHECK(p.y[i] == x[i]);
}

TEST_CASE("tq2_0: a block on a four-level grid packs exactly, d of the largest element's sign") {
    std::mt19937 rng(3);
    std::uniform_int_distribution<int> code(0, 3);
    for (const float d : {0.25f, -0.125f, 0x1p-10f}) {
        std::vector<float> x(256);
        for (float& v : x) v = d * static_cast<float>(code(rng) - 1);
        x[17] = 2 * d; // the largest magnitude, once at least
        x[18] = -d;    // a negative level, so the ternary grid (t = 1) does not fit
        const packed p = pack(x);
        INFO("d = " << d);
        CHECK(fp16_to_fp32(p.block.d) == d);
        for (std::size_t i = 0; i < 256; ++i) {
            CHECK(p.y[i] == x[i]);
            CHECK(p.saturated[i] == 0);
        }
    }
}

TEST_CASE("tq2_0: the step is the candidate of least squared error, and saturation is the clamp") {
    std::mt19937 rng(4);
    for (int trial = 0; trial < 20; ++trial) {
        const std::vector<float> x = gaussian_block(rng, 0.02f);
        const packed p = pack(x);
        const double d = fp16_to_fp32(p.block.d);
        double got = 0;
        for (std::size_t i = 0; i < 256; ++i) got += (x[i] - p.y[i]) * static_cast<double>(x[i] - p.y[i]);
        // Every candidate of the banner's step 2, in double: none does better.
        float m = 0;
        for (float v : x)
            if (std::fabs(v) > std::fabs(m)) m = v;
        for (int k = 0; k < 13; ++k) {
            const double dk = fp16_to_fp32(fp32_to_fp16(m / (1.0f + 0.25f * static_cast<float>(k))));
            double err = 0;
            for (float v : x) {
                const double q = std::fmin(3, std::fmax(0, std::nearbyint(v / dk) + 1));
                err += (v - (q - 1) * dk) * (v - (q - 1) * dk);
            }
            CHECK(got <= err * (1 + 1e-5));
        }
        CHECK(got > 0);
        for (std::size_t i = 0; i < 256; ++i) {
            const double r = std::nearbyint(x[i] / d) + 1;
            const double frac = std::fabs(x[i] / d - std::trunc(x[i] / d));
            if (std::fabs(frac - 0.5) < 1e-3) continue; // near a tie, where fp32 and double may part
            CHECK(p.saturated[i] == (r < 0 || r > 3));
            CHECK(p.y[i] == static_cast<float>(std::fmin(3, std::fmax(0, r)) - 1) * static_cast<float>(d));
        }
    }
}

TEST_CASE("fake_quant<tq2_0>: forward packs and unpacks, backward passes dy where nothing clamped") {
    std::mt19937 rng(6);
    std::vector<float> x;
    for (int b = 0; b < 8; ++b) {
        const auto block = gaussian_block(rng, 0.03f);
        x.insert(x.end(), block.begin(), block.end());
    }
    std::vector<block_tq2_0> q(x.size() / 256);
    std::vector<std::uint8_t> saturated(x.size());
    tq2_0::quantize_row(x.data(), q.data(), x.size(), saturated.data());
    std::vector<float> want(x.size()), y(x.size()), dy(x.size()), dx(x.size());
    tq2_0::dequantize_row(q.data(), want.data(), x.size());
    fake_quant<tq2_0>::forward(x, y);
    CHECK(std::memcmp(y.data(), want.data(), y.size() * sizeof(float)) == 0);
    for (std::size_t i = 0; i < dy.size(); ++i) dy[i] = 0.5f + static_cast<float>(i % 7);
    fake_quant<tq2_0>::backward(x, dy, dx);
    std::size_t clipped = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        CHECK(dx[i] == (saturated[i] ? 0.0f : dy[i]));
        clipped += saturated[i];
    }
    CHECK(clipped > 0);                // the least-error steps give up the tails
    CHECK(clipped < x.size() / 10);
}

TEST_CASE("tq2_0: zero blocks, NaN, Inf and scales past fp16") {
    std::vector<float> x(256, 0.0f);
    packed p = pack(x);
    CHECK(fp16_to_fp32(p.block.d) == 0.0f);
    for (std::size_t i = 0; i < 256; ++i) CHECK(p.y[i] == 0.0f);
    block_tq2_0 b{};
    x[5] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_AS(tq2_0::quantize_row(x.data(), &b, 256), error);
    x[5] = std::numeric_limits<float>::infinity();
    CHECK_THROWS_AS(tq2_0::quantize_row(x.data(), &b, 256), error);
    x[5] = 70000.0f;
    CHECK_THROWS_AS(tq2_0::quantize_row(x.data(), &b, 256), error);
    x[5] = 60000.0f;
    CHECK_NOTHROW(tq2_0::quantize_row(x.data(), &b, 256));
}

TEST_CASE("tq2_0 . q8_k: within (n/256 + 2) * 2^-24 * sum |w a| of the exact sum") {
    std::mt19937 rng(5);
    for (const std::size_t n : {256u, 1024u, 4096u}) {
        std::vector<float> w(n), a(n);
        for (std::size_t b = 0; b < n / 256; ++b) {
            const auto wb = gaussian_block(rng, 0.05f), ab = gaussian_block(rng, 1.0f);
            std::copy(wb.begin(), wb.end(), w.begin() + static_cast<std::ptrdiff_t>(256 * b));
            std::copy(ab.begin(), ab.end(), a.begin() + static_cast<std::ptrdiff_t>(256 * b));
        }
        std::vector<block_tq2_0> wq(n / 256);
        std::vector<block_q8_k> aq(n / 256);
        tq2_0::quantize_row(w.data(), wq.data(), n);
        q8_k::quantize_row(a.data(), aq.data(), n);
        std::vector<float> wd(n), ad(n);
        tq2_0::dequantize_row(wq.data(), wd.data(), n);
        q8_k::dequantize_row(aq.data(), ad.data(), n);
        double exact = 0, magnitude = 0;
        for (std::size_t i = 0; i < n; ++i) {
            exact += static_cast<double>(wd[i]) * ad[i];
            magnitude += std::fabs(static_cast<double>(wd[i]) * ad[i]);
        }
        const float got = tq2_0::dot_row(wq.data(), aq.data(), n);
        INFO("n = " << n);
        CHECK(std::fabs(got - exact) <= (static_cast<double>(n) / 256 + 2) * 0x1p-24 * magnitude);
        CHECK(magnitude > 0);
    }
}
