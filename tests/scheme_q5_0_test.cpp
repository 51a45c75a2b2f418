// Q5_0 byte layout and reference rounding, from docs/schemes.md section 8, by
// hand. Byte-exactness against ggml is scheme_golden_test's job.
#include <doctest/doctest.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "qtensor/scheme/q5_0.hpp"
#include "test_util.hpp"

using namespace qtensor;

static_assert(scheme<q5_0> && quantized_scheme<q5_0> && has_dot_partner<q5_0>);
static_assert(std::is_same_v<q5_0::dot_partner, q8_0>);
static_assert(q5_0::block_elems == 32 && q5_0::block_bytes == 22);
static_assert(q5_0::type_id == ggml_type::q5_0 && static_cast<int>(q5_0::type_id) == 6);
static_assert(offsetof(block_q5_0, d) == 0 && offsetof(block_q5_0, qh) == 2 && offsetof(block_q5_0, qs) == 6);

namespace {

struct quantized {
    block_q5_0 block;
    std::array<std::uint8_t, 32> saturated;
    std::array<float, 32> y;
};

quantized run(const std::vector<float>& x) {
    REQUIRE(x.size() == 32);
    quantized r{};
    q5_0::quantize_row(x.data(), &r.block, 32, r.saturated.data());
    q5_0::dequantize_row(&r.block, r.y.data(), 32);
    return r;
}

} // namespace

TEST_CASE("q5_0: an all-zero block stores d = -0.0, every code 16: qh bytes 0xFF, qs bytes 0x00") {
    const auto r = run(std::vector<float>(32, 0.0f));
    CHECK(r.block.d.bits == 0x8000);
    for (auto q : r.block.qh) CHECK(q == 0xFF);
    for (auto q : r.block.qs) CHECK(q == 0x00);
    for (auto s : r.saturated) CHECK(s == 0);
    for (auto v : r.y) CHECK(v == 0.0f); // (16 - 16) * -0.0
}

TEST_CASE("q5_0: max maps to code 0, -max clamps to 31, ties round half up; the fifth bit goes to qh") {
    // max = +16 (first), so d = -1 and id = -1: code = min(31, trunc(-x + 16.5)).
    std::vector<float> x(32, 0.0f); // zeros: 16.5 -> 16 = 0b10000 (qs nibble 0, qh bit 1)
    x[0] = 16.0f;   // -16 + 16.5 = 0.5   -> 0
    x[1] = -16.0f;  // 16 + 16.5 = 32.5   -> 32 -> clamped to 31
    x[2] = 0.5f;    // -0.5 + 16.5 = 16.0 -> 16
    x[3] = -0.5f;   // 0.5 + 16.5 = 17.0  -> 17 (half up)
    x[4] = 1.5f;    // -1.5 + 16.5 = 15.0 -> 15
    x[5] = -15.5f;  // 15.5 + 16.5 = 32.0 -> 32 -> clamped to 31 (a tie rounded up past the end)
    x[16] = 3.0f;   // 13.5 -> 13
    x[17] = -3.5f;  // 20.0 -> 20 (half up)
    x[31] = -7.0f;  // 23.5 -> 23
    const auto r = run(x);
    CHECK(r.block.d.bits == 0xBC00); // fp16(-1.0)
    // qs[j] = (code[j] & 15) | (code[j + 16] & 15) << 4:
    //   qs[0] = 0 | 13 << 4, qs[1] = 15 | (20 & 15) << 4, qs[2] = 0 | 0, qs[3] = 1 | 0,
    //   qs[4] = 15 | 0, qs[5] = 15 | 0, qs[15] = 0 | (23 & 15) << 4; the others 0.
    const std::array<std::uint8_t, 16> qs{0xD0, 0x4F, 0x00, 0x01, 0x0F, 0x0F, 0x00, 0x00,
                                          0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x70};
    for (std::size_t j = 0; j < 16; ++j) CHECK(r.block.qs[j] == qs[j]);
    // qh bit j = code[j] >> 4: 0 for codes 0 (element 0), 15 (element 4) and 13
    // (element 16), 1 for every other code (16, 17, 20, 23, 31).
    //   bits 0..7 = 0,1,1,1,0,1,1,1 -> 0xEE; bits 8..15 -> 0xFF; bits 16..23 = 0,1,...,1 -> 0xFE.
    CHECK(r.block.qh[0] == 0xEE);
    CHECK(r.block.qh[1] == 0xFF);
    CHECK(r.block.qh[2] == 0xFE);
    CHECK(r.block.qh[3] == 0xFF);
    for (std::size_t j = 0; j < 32; ++j) CHECK(r.saturated[j] == (j == 1 || j == 5 ? 1 : 0));
    // w = (code - 16) * -1.
    CHECK(r.y[0] == 16.0f);
    CHECK(r.y[1] == -15.0f);
    CHECK(r.y[3] == -1.0f);
    CHECK(r.y[4] == 1.0f);
    CHECK(r.y[5] == -15.0f);
    CHECK(r.y[16] == 3.0f);
    CHECK(r.y[17] == -4.0f);
    CHECK(r.y[31] == -7.0f);
}

TEST_CASE("q5_0: the worked example of docs/schemes.md section 8") {
    // max = -2.0 at index 2 (the +2.0 at index 9 comes later): d = 0.125, id = 8,
    // code = min(31, trunc(8x + 16.5)); 2.0 needs 32 and is clamped.
    const std::vector<float> x{0.0f,  0.125f, -2.0f, -0.125f, 0.3f,  1.0f,  -1.0f, 0.375f,
                               -0.375f, 2.0f, 1.9f,  1.8f,    -1.9f, 0.5f,  -0.6f, 0.7f,
                               0.25f, -0.25f, 0.875f, -0.875f, 1.5f, -1.5f, 0.05f, -0.05f,
                               1.2f,  -1.2f,  0.1f,  -0.7f,   1.1f,  -1.75f, 1.75f, -0.3f};
    const std::array<int, 32> codes{16, 17, 0,  15, 18, 24, 8,  19, 13, 31, 31, 30, 1,  20, 11, 22,
                                    18, 14, 23, 9,  28, 4,  16, 16, 26, 6,  17, 10, 25, 2,  30, 14};
    const auto r = run(x);
    CHECK(r.block.d.bits == 0x3000); // fp16(0.125)
    for (std::size_t j = 0; j < 32; ++j) {
        INFO("element " << j);
        CHECK(detail::five_bit_code(r.block.qs, r.block.qh, j) == codes[j]);
        CHECK(r.y[j] == static_cast<float>(codes[j] - 16) * 0.125f);
        CHECK(r.saturated[j] == (j == 9 ? 1 : 0));
    }
    // qh: bit j = code[j] >> 4, e.g. elements 0..7 (16 17 0 15 18 24 8 19) give
    // 1 1 0 0 1 1 0 1 from bit 0 up: 0xB3. qs[j] = (code[j] & 15) | (code[j + 16] & 15) << 4,
    // e.g. qs[0] = 0 | 2 << 4, qs[9] = 15 | 6 << 4.
    const std::array<std::uint8_t, 4> qh{0xB3, 0xAE, 0xD5, 0x55};
    const std::array<std::uint8_t, 16> qs{0x20, 0xE1, 0x70, 0x9F, 0xC2, 0x48, 0x08, 0x03,
                                          0xAD, 0x6F, 0x1F, 0xAE, 0x91, 0x24, 0xEB, 0xE6};
    CHECK(r.block.qh == qh);
    CHECK(r.block.qs == qs);
}

TEST_CASE("q5_0: rejects NaN, infinity and a scale past the fp16 range") {
    std::vector<float> x(64, 1.0f);
    const auto quantize_x = [&] { (void)quantize<q5_0>(x); };
    x[40] = std::numeric_limits<float>::quiet_NaN();
    CHECK(qtensor_test::message_of(quantize_x) ==
          "qtensor: q5_0: element 40 is NaN; quantized schemes need finite input");
    x[40] = -std::numeric_limits<float>::infinity();
    CHECK(qtensor_test::message_of(quantize_x) ==
          "qtensor: q5_0: element 40 is infinite; quantized schemes need finite input");
    x[40] = 1.1e6f; // d = -68750 does not fit fp16 (65520 and above round to inf)
    CHECK(qtensor_test::message_of(quantize_x).find("qtensor: q5_0: block 1 needs scale -68750") == 0);
    x[40] = 1.0e6f; // d = -62500 fits
    CHECK(quantize<q5_0>(x)[1].d.bits == fp32_to_fp16(-62500.0f).bits);
}
