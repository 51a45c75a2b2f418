// tensor_view: views over external bytes, element and row access, slices,
// strides, and the checks that guard them.
#include <doctest/doctest.h>

#include "test_util.hpp"

#include <cstddef>
#include <cstring>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "qtensor/scheme/registry.hpp"
#include "qtensor/tensor/tensor_view.hpp"

using namespace qtensor;
using qtensor_test::message_of;

namespace {

// Distinct, finite, exactly representable test values: k / 8 - 4 for k < 64,
// repeating. Every scheme here can quantize them.
std::vector<float> ramp(std::size_t n) {
    std::vector<float> x(n);
    for (std::size_t i = 0; i < n; ++i) x[i] = static_cast<float>((i * 7) % 64) / 8.0f - 4.0f;
    return x;
}

// `rows` rows of `cols` elements quantized with S, each row at a multiple of
// `stride` bytes; the padding holds 0xAB so reading it would show.
template <class S>
std::vector<std::byte> quantized_bytes(const std::vector<float>& x, std::size_t rows,
                                       std::size_t cols, std::size_t stride) {
    std::vector<std::byte> bytes(rows * stride, std::byte{0xAB});
    for (std::size_t r = 0; r < rows; ++r)
        S::quantize_row(x.data() + r * cols, reinterpret_cast<block_of<S>*>(bytes.data() + r * stride),
                        cols);
    return bytes;
}

template <class S>
std::vector<float> dequantized_row(std::span<const std::byte> bytes, std::size_t stride,
                                   std::size_t r, std::size_t cols) {
    std::vector<float> y(cols);
    S::dequantize_row(reinterpret_cast<const block_of<S>*>(bytes.data() + r * stride), y.data(), cols);
    return y;
}


} // namespace

// Every registered scheme whose rows of 64 and 96 elements are whole blocks,
// and the 256-element ones apart.
template <class S>
struct small_blocks : std::bool_constant<(S::block_elems <= 32)> {};
template <class S>
struct k_blocks : std::bool_constant<(S::block_elems == 256)> {};
using small_block_schemes = all_schemes::filter<small_blocks>::apply<std::tuple>;
using k_quant_schemes = all_schemes::filter<k_blocks>::apply<std::tuple>;

TEST_CASE_TEMPLATE_DEFINE("tensor_view: a view over a vector's bytes never copies", S, no_copy) {
    constexpr std::size_t rows = 3, cols = 64;
    const std::size_t rb = row_bytes<S>(cols);
    std::vector<std::byte> bytes = quantized_bytes<S>(ramp(rows * cols), rows, cols, rb);

    const tensor_view<S, 2> v(bytes, {rows, cols});
    CHECK(v.data_handle() == bytes.data());
    CHECK(v.row(1).data_handle() == bytes.data() + rb);
    CHECK(reinterpret_cast<const std::byte*>(v.blocks(2).data()) == bytes.data() + 2 * rb);
    CHECK(reinterpret_cast<const std::byte*>(&v.block(2, 1)) ==
          bytes.data() + 2 * rb + S::block_bytes);

    // A change to the bytes shows through the view.
    const float before = v(1, 0);
    std::vector<float> other(cols, 0.5f);
    S::quantize_row(other.data(), reinterpret_cast<block_of<S>*>(bytes.data() + rb), cols);
    CHECK(v(1, 0) != before);
    CHECK(v(1, 0) == dequantized_row<S>(bytes, rb, 1, cols)[0]);
}
TEST_CASE_TEMPLATE_APPLY(no_copy, small_block_schemes);

TEST_CASE_TEMPLATE_DEFINE("tensor_view: an element reads as S::dequantize_row of its row", S, element_reads) {
    constexpr std::size_t rows = 4, cols = 96;
    const std::size_t rb = row_bytes<S>(cols);
    const auto bytes = quantized_bytes<S>(ramp(rows * cols), rows, cols, rb);
    const tensor_view<const S, 2> v(bytes, {rows, cols});
    CHECK(v.size() == rows * cols);
    CHECK(v.num_rows() == rows);
    CHECK(v.cols() == cols);
    CHECK(v.is_contiguous());
    for (std::size_t r = 0; r < rows; ++r) {
        const auto y = dequantized_row<S>(bytes, rb, r, cols);
        for (std::size_t c = 0; c < cols; ++c) {
            CHECK(v(r, c) == y[c]);
            CHECK(v[{r, c}] == y[c]);
            CHECK(v.row(r)(c) == y[c]);
        }
    }
    const std::vector<float> all = v.dequantize();
    REQUIRE(all.size() == rows * cols);
    CHECK(all[2 * cols + 5] == dequantized_row<S>(bytes, rb, 2, cols)[5]);
}
TEST_CASE_TEMPLATE_APPLY(element_reads, small_block_schemes);

TEST_CASE_TEMPLATE_DEFINE("tensor_view: K-quant rows of 256-element blocks", S, k_quant_views) {
    constexpr std::size_t rows = 3, cols = 512;
    const std::size_t rb = row_bytes<S>(cols);
    const auto bytes = quantized_bytes<S>(ramp(rows * cols), rows, cols, rb);
    const tensor_view<const S, 2> v(bytes, {rows, cols});
    CHECK(v.blocks_per_row() == 2);
    for (std::size_t r = 0; r < rows; ++r) {
        const auto y = dequantized_row<S>(bytes, rb, r, cols);
        for (std::size_t c = 0; c < cols; c += 7) CHECK(v(r, c) == y[c]);
    }
    // 384 columns are one and a half blocks.
    CHECK(message_of([&] { (void)tensor_view<const S, 2>(bytes, {rows, 384}); }).find("256") !=
          std::string::npos);
    // block_q8_k starts with a float: its views need 4-byte alignment.
    if constexpr (std::is_same_v<S, q8_k>) {
        const std::span<const std::byte> shifted(bytes.data() + 2, bytes.size() - 2);
        CHECK(message_of([&] { (void)tensor_view<const S, 2>(shifted, {1, 256}); }).find("aligned") !=
              std::string::npos);
    }
}
TEST_CASE_TEMPLATE_APPLY(k_quant_views, k_quant_schemes);

TEST_CASE("tensor_view: a hand-built q4_0 block reads as (code - 8) * d") {
    // d = fp16 1.0 (0x3C00); byte 0 = 0x9A: element 0 has code 0xA -> 2,
    // element 16 has code 0x9 -> 1; byte 15 = 0x0F: element 15 -> 7, element 31 -> -8.
    block_q4_0 b{};
    b.d = fp16_t{0x3C00};
    for (auto& q : b.qs) q = 0x88; // code 8 -> 0
    b.qs[0] = 0x9A;
    b.qs[15] = 0x0F;
    const tensor_view<const q4_0, 1> v(std::as_bytes(std::span(&b, 1)), {32});
    CHECK(v(0) == 2.0f);
    CHECK(v(16) == 1.0f);
    CHECK(v(15) == 7.0f);
    CHECK(v(31) == -8.0f);
    CHECK(v(1) == 0.0f);
}

TEST_CASE("tensor_view: an f32 view reads the stored floats") {
    const std::vector<float> x = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f, -0.125f};
    const tensor_view<const f32, 2> v(std::as_bytes(std::span(x)), {2, 3});
    CHECK(v(0, 2) == 3.25f);
    CHECK(v(1, 2) == -0.125f);
    CHECK(v.row(1)(0) == 0.0f);
    CHECK(v.blocks(1)[1] == 7.0f);
}

TEST_CASE_TEMPLATE_DEFINE("tensor_view: row_slice views rows in place", S, row_slice) {
    constexpr std::size_t rows = 5, cols = 64;
    const std::size_t rb = row_bytes<S>(cols);
    const auto bytes = quantized_bytes<S>(ramp(rows * cols), rows, cols, rb);
    const tensor_view<const S, 2> v(bytes, {rows, cols});

    const auto s = v.row_slice(1, 3);
    CHECK(s.extents() == extents<2>{3, cols});
    CHECK(s.data_handle() == bytes.data() + rb);
    for (std::size_t r = 0; r < 3; ++r)
        for (std::size_t c = 0; c < cols; c += 7) CHECK(s(r, c) == v(r + 1, c));
    CHECK(v.row_slice(5, 0).num_rows() == 0);
    CHECK_THROWS_AS(v.row_slice(3, 3), qtensor::error);
    CHECK_THROWS_AS(v.row_slice(6, 0), qtensor::error);
    CHECK_THROWS_AS(s(3, 0), qtensor::error); // the slice has its own bounds
}
TEST_CASE_TEMPLATE_APPLY(row_slice, small_block_schemes);

TEST_CASE_TEMPLATE_DEFINE("tensor_view: a padded row stride skips the padding", S, padded_stride) {
    constexpr std::size_t rows = 3, cols = 64;
    const std::size_t rb = row_bytes<S>(cols);
    const std::size_t stride = rb + 12; // a multiple of every block alignment here (2 and 4)
    auto bytes = quantized_bytes<S>(ramp(rows * cols), rows, cols, stride);
    // The last row needs no padding after it.
    bytes.resize(2 * stride + rb);

    const tensor_view<const S, 2> v(bytes, {rows, cols}, stride);
    CHECK(v.row_stride_bytes() == stride);
    CHECK(!v.is_contiguous());
    for (std::size_t r = 0; r < rows; ++r) {
        const auto y = dequantized_row<S>(bytes, stride, r, cols);
        for (std::size_t c = 0; c < cols; ++c) CHECK(v(r, c) == y[c]);
    }
    CHECK(v.row_slice(1, 2).row_stride_bytes() == stride);
    CHECK(v.row_slice(1, 2)(1, 3) == v(2, 3));
    const auto all = v.dequantize();
    CHECK(all[2 * cols + 9] == v(2, 9));

    const std::string m = message_of([&] { tensor_view<const S, 2>(bytes, {rows, cols}, rb - 1); });
    CHECK(m.find("shorter than a row") != std::string::npos);
}
TEST_CASE_TEMPLATE_APPLY(padded_stride, small_block_schemes);

TEST_CASE("tensor_view: a stride views a column range of a wider matrix") {
    // A [2, 128] q8_0 matrix; view columns [64, 128) as a [2, 64] matrix.
    constexpr std::size_t cols = 128;
    const std::size_t rb = row_bytes<q8_0>(cols);
    const auto bytes = quantized_bytes<q8_0>(ramp(2 * cols), 2, cols, rb);
    const tensor_view<const q8_0, 2> wide(bytes, {2, cols});
    const std::size_t offset = row_bytes<q8_0>(64);
    const std::span<const std::byte> all(bytes);
    const tensor_view<const q8_0, 2> right(all.subspan(offset), {2, 64}, rb);
    for (std::size_t r = 0; r < 2; ++r)
        for (std::size_t c = 0; c < 64; ++c) CHECK(right(r, c) == wide(r, c + 64));
}

TEST_CASE_TEMPLATE_DEFINE("tensor_view: rank 3 flattens the outer extents into rows", S, rank_3) {
    constexpr std::size_t a = 2, b = 3, cols = 32;
    const std::size_t rb = row_bytes<S>(cols);
    const auto bytes = quantized_bytes<S>(ramp(a * b * cols), a * b, cols, rb);
    const tensor_view<const S, 3> v(bytes, {a, b, cols});
    CHECK(v.rank() == 3);
    CHECK(v.extent(1) == b);
    CHECK(v.num_rows() == a * b);
    CHECK(v.size() == a * b * cols);
    // Element (1, 2, c) is in row 1 * 3 + 2 = 5.
    const auto y = dequantized_row<S>(bytes, rb, 5, cols);
    for (std::size_t c = 0; c < cols; ++c) {
        CHECK(v(1, 2, c) == y[c]);
        CHECK(v[{1, 2, c}] == y[c]);
        CHECK(v.row(5)(c) == y[c]);
    }
    CHECK(v.row_slice(4, 2)(1, 7) == v(1, 2, 7));
    CHECK_THROWS_AS(v.row(6), qtensor::error);

    const std::vector<std::byte> four(4 * rb * 2);
    const tensor_view<const S, 4> v4(four, {2, 2, 2, cols});
    CHECK(v4.num_rows() == 8);
}
TEST_CASE_TEMPLATE_APPLY(rank_3, small_block_schemes);

TEST_CASE("tensor_view: bounds errors name the index and the shape") {
    const std::vector<std::byte> bytes(2 * 2 * 18);
    const tensor_view<const q4_0, 2> v(bytes, {2, 64});

    std::string m = message_of([&] { (void)v(0, 64); });
    CHECK(m.find("index 64") != std::string::npos);
    CHECK(m.find("dimension 1") != std::string::npos);
    CHECK(m.find("q4_0 tensor of shape [2, 64]") != std::string::npos);

    m = message_of([&] { (void)v[{2, 0}]; });
    CHECK(m.find("index 2") != std::string::npos);
    CHECK(m.find("dimension 0") != std::string::npos);

    m = message_of([&] { (void)v(-1, 0); });
    CHECK(m.find("negative index -1") != std::string::npos);

    m = message_of([&] { (void)v.row(2); });
    CHECK(m.find("row 2") != std::string::npos);
    CHECK(m.find("[2, 64]") != std::string::npos);

    m = message_of([&] { (void)v.blocks(7); });
    CHECK(m.find("row 7") != std::string::npos);

    m = message_of([&] { (void)v.block(1, 2); });
    CHECK(m.find("block 2") != std::string::npos);
    CHECK(m.find("2 blocks per row") != std::string::npos);

    m = message_of([&] { (void)v.row(0)(64); });
    CHECK(m.find("shape [64]") != std::string::npos);
}

TEST_CASE("tensor_view: a buffer too short says how many bytes it needs") {
    // [3, 64] q4_0: 3 rows of 2 blocks of 18 bytes = 108 bytes.
    std::vector<std::byte> bytes(107);
    std::string m = message_of([&] { tensor_view<const q4_0, 2>(bytes, {3, 64}); });
    CHECK(m.find("[3, 64]") != std::string::npos);
    CHECK(m.find("needs 108 bytes") != std::string::npos);
    CHECK(m.find("has 107") != std::string::npos);

    // With a 40-byte stride: 2 * 40 + 36 = 116.
    bytes.resize(115);
    m = message_of([&] { tensor_view<const q4_0, 2>(bytes, {3, 64}, 40); });
    CHECK(m.find("needs 116 bytes") != std::string::npos);
    bytes.resize(116);
    CHECK_NOTHROW(tensor_view<const q4_0, 2>(bytes, {3, 64}, 40));

    // Longer is fine: a view into a larger file.
    bytes.resize(4096);
    CHECK_NOTHROW(tensor_view<const q4_0, 2>(bytes, {3, 64}));

    // An address space's worth of rows is refused, not wrapped around.
    const std::size_t huge = std::size_t{1} << 40;
    m = message_of([&] { tensor_view<const f32, 3>(bytes, {huge, huge, 4}); });
    CHECK(m.find("too large") != std::string::npos);
}

TEST_CASE("tensor_view: misaligned data or stride is refused") {
    std::vector<std::byte> bytes(256);
    // vector storage comes from operator new: aligned for any block type.
    const std::span<const std::byte> all(bytes);
    std::string m = message_of([&] {
        tensor_view<const q4_0, 1>(all.subspan(1), {32});
    });
    CHECK(m.find("not aligned to 2 bytes") != std::string::npos);
    CHECK(m.find("[32]") != std::string::npos);

    m = message_of([&] { tensor_view<const f32, 1>(all.subspan(2), {8}); });
    CHECK(m.find("not aligned to 4 bytes") != std::string::npos);

    // A q4_0 row is 18 bytes; a 19-byte stride would misalign row 1.
    m = message_of([&] { tensor_view<const q4_0, 2>(bytes, {2, 32}, 19); });
    CHECK(m.find("row stride 19") != std::string::npos);
    CHECK_NOTHROW(tensor_view<const q4_0, 2>(bytes, {2, 32}, 20));
}

TEST_CASE("tensor_view: the row must be whole blocks") {
    std::vector<std::byte> bytes(1024);
    const std::string m = message_of([&] { tensor_view<const q4_0, 2>(bytes, {2, 48}); });
    CHECK(m.find("q4_0 tensor of shape [2, 48]") != std::string::npos);
    CHECK(m.find("block size 32") != std::string::npos);
    CHECK_NOTHROW(tensor_view<const f16, 2>(bytes, {2, 48}));
}

TEST_CASE("tensor_view: const and mutable views") {
    using view = tensor_view<q4_0, 2>;
    using cview = const_tensor_view<q4_0, 2>;
    static_assert(std::is_convertible_v<view, cview>);
    static_assert(!std::is_convertible_v<cview, view>);
    static_assert(!std::is_constructible_v<view, cview>);
    static_assert(!std::is_constructible_v<view, std::span<const std::byte>, extents<2>>);
    static_assert(std::is_constructible_v<cview, std::span<std::byte>, extents<2>>);
    static_assert(std::is_same_v<decltype(std::declval<cview>().blocks(0)), std::span<const block_q4_0>>);
    static_assert(std::is_same_v<decltype(std::declval<cview>().block(0, 0)), const block_q4_0&>);
    static_assert(std::is_same_v<decltype(std::declval<cview>().data_handle()), const std::byte*>);
    static_assert(std::is_same_v<decltype(std::declval<cview>().row(0)), tensor_view<const q4_0, 1>>);
    static_assert(std::is_same_v<decltype(std::declval<cview>().row_slice(0, 1)), cview>);
    static_assert(std::is_same_v<decltype(std::declval<view>().blocks(0)), std::span<block_q4_0>>);
    static_assert(std::is_same_v<decltype(std::declval<view>().row(0)), tensor_view<q4_0, 1>>);
    static_assert(std::is_same_v<decltype(std::declval<view>()(0, 0)), float>);

    // A mutable view writes in place; the const view made from it sees the write.
    std::vector<std::byte> bytes(2 * 18);
    const view v(bytes, {2, 32});
    const cview c = v;
    CHECK(c.data_handle() == v.data_handle());
    const std::vector<float> x(32, -8.0f); // max -8: d = 1, every code 0
    quantize<q4_0>(x, v.blocks(1));
    CHECK(reinterpret_cast<const block_q4_0*>(bytes.data() + 18)->d.bits == 0x3C00);
    CHECK(c(1, 31) == -8.0f);
    v.block(0, 0).d = fp16_t{0x3C00}; // codes still 0 -> (0 - 8) * 1
    CHECK(c(0, 0) == -8.0f);
}
