// Byte-exact agreement with ggml's reference quantizers, checked against golden
// vectors that ggml's own code produced (tests/data/ggml_golden/README.md says
// which functions, which commit, and how the input rows were made).
//
// Files, all little-endian, rows of 256 floats:
//   input.f32             rows x 256 float32
//   <type>.bin            ggml's blocks for every row, rows back to back
//   <type>.dequant.f32    ggml's dequantization of those blocks, rows x 256 float32
//   fp16_inf_nan.f32      ggml's fp16 -> fp32 of halves 0x7C00..0x7FFF, 0xFC00..0xFFFF
#include <doctest/doctest.h>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <iterator>
#include <sstream>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "qtensor/core/half.hpp"
#include "qtensor/scheme/registry.hpp"

using namespace qtensor;

namespace {

constexpr std::size_t row_elems = 256; // one K-quant super-block, eight 32-blocks

// Every quantized scheme of the registry has golden files, named by its
// lower-case type name (S::name), but TQ2_0, whose quantizer is qtensor's
// own (scheme/tq2_0.hpp; scheme_tq2_0_test.cpp checks its blocks by hand).
template <class S>
struct has_golden : std::bool_constant<(S::block_elems > 1) && !std::is_same_v<S, tq2_0>> {};
using golden_schemes = all_schemes::filter<has_golden>::apply<std::tuple>;

template <class S>
std::string golden_stem() {
    return std::string(S::name);
}

// A missing or unreadable file fails the test: the data is part of the suite.
std::vector<unsigned char> read_golden(const std::string& name) {
    const std::string path = std::string(QTENSOR_TEST_DATA_DIR) + "/ggml_golden/" + name;
    std::ifstream in(path, std::ios::binary);
    REQUIRE_MESSAGE(in.is_open(), "missing golden file " << path);
    std::vector<unsigned char> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    REQUIRE_MESSAGE(!bytes.empty(), "empty golden file " << path);
    return bytes;
}

std::vector<float> read_golden_floats(const std::string& name) {
    const std::vector<unsigned char> bytes = read_golden(name);
    REQUIRE_MESSAGE(bytes.size() % (row_elems * sizeof(float)) == 0,
                    name << " holds " << bytes.size() << " bytes, not whole rows of 256 floats");
    std::vector<float> v(bytes.size() / sizeof(float));
    std::memcpy(v.data(), bytes.data(), bytes.size());
    return v;
}

// Where ggml stores an fp16 inf, qtensor throws instead (scheme.hpp). Only
// the schemes with an fp16 block minimum (Q4_1, Q5_1) meet that in input.f32:
// the block minimum of rows 161 and 162 is below -65504, so ggml's m is -inf.
// Such rows must throw; every other row must match.
template <class S>
constexpr bool stores_block_min = requires(block_of<S> b) { b.m; };

template <class S>
bool ggml_stored_inf(const unsigned char* row, std::size_t row_size) {
    if constexpr (stores_block_min<S>) {
        using block = block_of<S>;
        for (std::size_t b = 0; b < row_size / sizeof(block); ++b) {
            block blk;
            std::memcpy(&blk, row + b * sizeof(block), sizeof(block));
            if (!detail::is_finite_bits(fp16_to_fp32(blk.d)) || !detail::is_finite_bits(fp16_to_fp32(blk.m)))
                return true;
        }
    }
    return false;
}

std::string hex(unsigned value, int width) {
    std::ostringstream os;
    os << "0x" << std::hex << std::setw(width) << std::setfill('0') << value;
    return os.str();
}

} // namespace

TEST_CASE_TEMPLATE_DEFINE("golden: quantize_row gives ggml's bytes", S, golden_quantize) {
    REQUIRE(std::endian::native == std::endian::little); // the files are little-endian
    using block = block_of<S>;
    const std::string stem = golden_stem<S>();
    const std::vector<float> x = read_golden_floats("input.f32");
    const std::vector<unsigned char> want = read_golden(stem + ".bin");
    const std::size_t rows = x.size() / row_elems;
    const std::size_t row_size = row_bytes<S>(row_elems);
    REQUIRE_MESSAGE(want.size() == rows * row_size,
                    stem << ".bin holds " << want.size() << " bytes, expected " << rows << " rows of "
                         << row_size);

    std::vector<block> ours(blocks_per_row<S>(row_elems));
    std::vector<unsigned char> got(row_size);
    std::size_t bad_rows = 0;
    std::size_t rejected = 0;
    std::string first;
    for (std::size_t r = 0; r < rows; ++r) {
        const unsigned char* ref = want.data() + r * row_size;
        const bool must_throw = ggml_stored_inf<S>(ref, row_size);
        std::memset(static_cast<void*>(ours.data()), 0, row_size);
        try {
            S::quantize_row(x.data() + r * row_elems, ours.data(), row_elems);
        } catch (const error& e) {
            if (must_throw) {
                ++rejected;
            } else if (bad_rows++ == 0) {
                first = "row " + std::to_string(r) + " threw: " + e.what();
            }
            continue;
        }
        if (must_throw) {
            if (bad_rows++ == 0)
                first = "row " + std::to_string(r) + ": ggml stored an fp16 inf, but we did not throw";
            continue;
        }
        std::memcpy(got.data(), ours.data(), row_size);
        if (std::memcmp(got.data(), ref, row_size) == 0) continue;
        if (bad_rows++ != 0) continue;
        std::size_t k = 0;
        while (got[k] == ref[k]) ++k;
        std::size_t differing = 0;
        for (std::size_t i = 0; i < row_size; ++i) differing += got[i] != ref[i];
        first = "row " + std::to_string(r) + ", block " + std::to_string(k / S::block_bytes) +
                ", byte " + std::to_string(k % S::block_bytes) + " of the block: ours " +
                hex(got[k], 2) + ", ggml " + hex(ref[k], 2) + " (" + std::to_string(differing) +
                " differing bytes in the row)";
    }
    INFO(stem << ": " << bad_rows << " of " << rows << " rows differ; first: " << first);
    CHECK(bad_rows == 0);
    CHECK(rejected == (stores_block_min<S> ? 2 : 0));
}
TEST_CASE_TEMPLATE_APPLY(golden_quantize, golden_schemes);

TEST_CASE_TEMPLATE_DEFINE("golden: dequantize_row of ggml's blocks gives ggml's floats", S, golden_dequantize) {
    REQUIRE(std::endian::native == std::endian::little);
    using block = block_of<S>;
    const std::string stem = golden_stem<S>();
    const std::vector<unsigned char> blocks = read_golden(stem + ".bin");
    const std::vector<float> want = read_golden_floats(stem + ".dequant.f32");
    const std::size_t rows = want.size() / row_elems;
    const std::size_t row_size = row_bytes<S>(row_elems);
    REQUIRE_MESSAGE(blocks.size() == rows * row_size,
                    stem << ".bin holds " << blocks.size() << " bytes, expected " << rows
                         << " rows of " << row_size);

    std::vector<block> in(blocks_per_row<S>(row_elems));
    std::vector<float> y(row_elems);
    std::size_t bad_rows = 0;
    std::string first;
    for (std::size_t r = 0; r < rows; ++r) {
        std::memcpy(static_cast<void*>(in.data()), blocks.data() + r * row_size, row_size);
        S::dequantize_row(in.data(), y.data(), row_elems);
        const float* ref = want.data() + r * row_elems;
        std::size_t i = 0;
        while (i < row_elems && std::bit_cast<std::uint32_t>(y[i]) == std::bit_cast<std::uint32_t>(ref[i])) ++i;
        if (i == row_elems || bad_rows++ != 0) continue;
        std::ostringstream os;
        os << std::setprecision(9) << "row " << r << ", element " << i << " (block " << i / S::block_elems
           << "): ours " << y[i] << " " << hex(std::bit_cast<std::uint32_t>(y[i]), 8) << ", ggml "
           << ref[i] << " " << hex(std::bit_cast<std::uint32_t>(ref[i]), 8);
        first = os.str();
    }
    INFO(stem << ": " << bad_rows << " of " << rows << " rows differ; first: " << first);
    CHECK(bad_rows == 0);
}
TEST_CASE_TEMPLATE_APPLY(golden_dequantize, golden_schemes);

// ggml widens fp16 with integer bit tricks and one float multiply, which quiets
// a signalling NaN (F16C's vcvtph2ps does the same). Finite halves are covered
// by core_half_test; this file holds the all-ones-exponent patterns.
TEST_CASE("golden: fp16_to_fp32 of inf and NaN halves matches ggml") {
    REQUIRE(std::endian::native == std::endian::little);
    const std::vector<float> want = read_golden_floats("fp16_inf_nan.f32");
    REQUIRE(want.size() == 2048);
    std::size_t bad = 0;
    std::string first;
    for (std::size_t i = 0; i < want.size(); ++i) {
        const auto h = static_cast<std::uint16_t>((i < 1024 ? 0x7C00u : 0xFC00u) + i % 1024);
        const auto ours = std::bit_cast<std::uint32_t>(fp16_to_fp32(fp16_t{h}));
        const auto ref = std::bit_cast<std::uint32_t>(want[i]);
        if (ours != ref && bad++ == 0)
            first = "half " + hex(h, 4) + ": ours " + hex(ours, 8) + ", ggml " + hex(ref, 8);
    }
    INFO(bad << " of 2048 halves differ; first: " << first);
    CHECK(bad == 0);
}
