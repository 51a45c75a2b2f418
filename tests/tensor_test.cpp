// tensor: owning storage, quantize/dequantize factories, clone and move.
#include <doctest/doctest.h>

#include "test_util.hpp"

#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "qtensor/scheme/registry.hpp"
#include "qtensor/tensor/tensor.hpp"

using namespace qtensor;
using qtensor_test::message_of;

namespace {

std::vector<float> ramp(std::size_t n) {
    std::vector<float> x(n);
    for (std::size_t i = 0; i < n; ++i) x[i] = static_cast<float>((i * 5) % 48) / 4.0f - 6.0f;
    return x;
}

} // namespace

// Every registered scheme whose rows of 64 and 96 elements are whole blocks.
template <class S>
struct small_blocks : std::bool_constant<(S::block_elems <= 32)> {};
using small_block_schemes = all_schemes::filter<small_blocks>::apply<std::tuple>;

TEST_CASE_TEMPLATE_DEFINE("tensor: zeroed, 64-byte aligned rows back to back", S, zeroed) {
    tensor<S, 3> t({2, 3, 64});
    CHECK(t.num_rows() == 6);
    CHECK(t.size() == 2 * 3 * 64);
    CHECK(t.size_bytes() == 6 * 64 / S::block_elems * S::block_bytes);
    CHECK(t.row_stride_bytes() == row_bytes<S>(64));
    CHECK(reinterpret_cast<std::uintptr_t>(t.data_handle()) % 64 == 0);
    for (std::size_t i = 0; i < t.size_bytes(); ++i) REQUIRE(t.data_handle()[i] == std::byte{0});
    CHECK(t(1, 2, 63) == 0.0f);
    CHECK(t.view().data_handle() == t.data_handle());
    CHECK(t.row(5).data_handle() == t.data_handle() + 5 * t.row_stride_bytes());
}
TEST_CASE_TEMPLATE_APPLY(zeroed, small_block_schemes);

TEST_CASE_TEMPLATE_DEFINE("tensor: quantize and dequantize agree with S's row functions", S, quantize_rows) {
    constexpr std::size_t rows = 4, cols = 96;
    const std::vector<float> x = ramp(rows * cols);
    const auto t = tensor<S, 2>::quantize(x, {rows, cols});

    std::vector<block_of<S>> expected(cols / S::block_elems);
    std::vector<float> y(cols);
    const std::vector<float> all = t.dequantize();
    REQUIRE(all.size() == rows * cols);
    for (std::size_t r = 0; r < rows; ++r) {
        S::quantize_row(x.data() + r * cols, expected.data(), cols);
        CHECK(std::memcmp(t.blocks(r).data(), expected.data(), row_bytes<S>(cols)) == 0);
        S::dequantize_row(expected.data(), y.data(), cols);
        for (std::size_t c = 0; c < cols; ++c) {
            CHECK(all[r * cols + c] == y[c]);
            CHECK(t(r, c) == y[c]);
        }
    }
}
TEST_CASE_TEMPLATE_APPLY(quantize_rows, small_block_schemes);

TEST_CASE("tensor: f16 quantize stores the IEEE half patterns") {
    // 1.0 = 0x3C00, -2.0 = 0xC000, 0.5 = 0x3800, 65504 = 0x7BFF (largest finite).
    const std::vector<float> x = {1.0f, -2.0f, 0.5f, 65504.0f};
    const auto t = tensor<f16, 2>::quantize(x, {2, 2});
    CHECK(t.block(0, 0).bits == 0x3C00);
    CHECK(t.block(0, 1).bits == 0xC000);
    CHECK(t.block(1, 0).bits == 0x3800);
    CHECK(t.block(1, 1).bits == 0x7BFF);
    CHECK(t(1, 1) == 65504.0f);
}

TEST_CASE("tensor: shape errors name the shape") {
    std::string m = message_of([] { tensor<q4_0, 2>::quantize(std::vector<float>(100), {2, 64}); });
    CHECK(m.find("q4_0 tensor of shape [2, 64]") != std::string::npos);
    CHECK(m.find("128 elements, got 100") != std::string::npos);

    m = message_of([] { tensor<q4_0, 2>({3, 48}); });
    CHECK(m.find("[3, 48]") != std::string::npos);
    CHECK(m.find("block size 32") != std::string::npos);

    m = message_of([] { tensor<q8_0, 2>({-1, 32}); });
    CHECK(m.find("negative extent -1") != std::string::npos);

    const tensor<q8_0, 2> t({2, 32});
    m = message_of([&] { (void)t(0, 32); });
    CHECK(m.find("index 32") != std::string::npos);
    CHECK(m.find("[2, 32]") != std::string::npos);
}

TEST_CASE("tensor: a bad value is reported with its row and the shape") {
    std::vector<float> x = ramp(4 * 64);
    x[2 * 64 + 5] = std::numeric_limits<float>::quiet_NaN();
    const std::string m = message_of([&] { (void)tensor<q4_0, 2>::quantize(x, {4, 64}); });
    CHECK(m.find("q4_0 tensor of shape [4, 64], row 2: q4_0: element 5 is NaN") != std::string::npos);
}

TEST_CASE("tensor: clone copies, move hands the storage over") {
    static_assert(!std::is_copy_constructible_v<tensor<q4_0, 2>>);
    static_assert(std::is_nothrow_move_constructible_v<tensor<q4_0, 2>>);

    auto a = tensor<q4_0, 2>::quantize(ramp(2 * 64), {2, 64});
    const auto b = a.clone();
    CHECK(b.data_handle() != a.data_handle());
    CHECK(b.extents() == a.extents());
    CHECK(std::memcmp(b.data_handle(), a.data_handle(), a.size_bytes()) == 0);

    const std::byte* storage = a.data_handle();
    tensor<q4_0, 2> c = std::move(a);
    CHECK(c.data_handle() == storage);
    CHECK(c.extents() == extents<2>{2, 64});
    CHECK(a.empty()); // NOLINT(bugprone-use-after-move): the moved-from state is specified
    CHECK(a.num_rows() == 0);
    CHECK(a.size_bytes() == 0);

    tensor<q4_0, 2> d;
    d = std::move(c);
    CHECK(d.data_handle() == storage);
    CHECK(d(1, 5) == b(1, 5));
}

TEST_CASE("tensor: views of a tensor") {
    using T = tensor<q8_0, 2>;
    static_assert(std::is_same_v<decltype(std::declval<const T&>().view()), tensor_view<const q8_0, 2>>);
    static_assert(std::is_same_v<decltype(std::declval<T&>().view()), tensor_view<q8_0, 2>>);
    static_assert(std::is_same_v<decltype(std::declval<const T&>().blocks(0)), std::span<const block_q8_0>>);
    static_assert(std::is_convertible_v<const T&, const_tensor_view<q8_0, 2>>);
    static_assert(!std::is_convertible_v<const T&, tensor_view<q8_0, 2>>);

    T t({3, 64});
    const std::vector<float> x(64, 127.0f); // amax 127: d = 1, every code 127
    quantize<q8_0>(x, t.view().blocks(2));
    CHECK(t.block(2, 1).d.bits == 0x3C00);
    CHECK(t(2, 40) == 127.0f);

    const const_tensor_view<q8_0, 2> v = t;
    CHECK(v.data_handle() == t.data_handle());
    CHECK(v.row_slice(2, 1)(0, 63) == 127.0f);
    CHECK(t.row_slice(1, 2).data_handle() == t.data_handle() + t.row_stride_bytes());
}
