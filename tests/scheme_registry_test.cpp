// The scheme registry (scheme/registry.hpp) against ggml's own table of types:
// every registered scheme has a unique id and name, its geometry is what ggml
// publishes, and visit_scheme reaches it by id and by name and nothing else.
#include <doctest/doctest.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <vector>

#include "qtensor/scheme/fake_quant.hpp"
#include "qtensor/scheme/registry.hpp"

using namespace qtensor;

namespace {

// The external oracle: ggml's type_traits[] (ggml/src/ggml.c): id, type_name,
// blck_size, type_size, for every type of the ggml_type enum up to mxfp4 (the
// block sizes are the sizeof of ggml-common.h's block structs). ggml spells
// the K-quants "q4_K"; qtensor's names are all lower case.
struct ggml_published {
    std::uint32_t id;
    std::string_view name;
    std::size_t blck_size;
    std::size_t type_size;
};
constexpr std::array<ggml_published, 32> ggml_table{{
    {0, "f32", 1, 4},         {1, "f16", 1, 2},         {2, "q4_0", 32, 18},      {3, "q4_1", 32, 20},
    {6, "q5_0", 32, 22},      {7, "q5_1", 32, 24},      {8, "q8_0", 32, 34},      {9, "q8_1", 32, 36},
    {10, "q2_K", 256, 84},    {11, "q3_K", 256, 110},   {12, "q4_K", 256, 144},   {13, "q5_K", 256, 176},
    {14, "q6_K", 256, 210},   {15, "q8_K", 256, 292},   {16, "iq2_xxs", 256, 66}, {17, "iq2_xs", 256, 74},
    {18, "iq3_xxs", 256, 98}, {19, "iq1_s", 256, 50},   {20, "iq4_nl", 32, 18},   {21, "iq3_s", 256, 110},
    {22, "iq2_s", 256, 82},   {23, "iq4_xs", 256, 136}, {24, "i8", 1, 1},         {25, "i16", 1, 2},
    {26, "i32", 1, 4},        {27, "i64", 1, 8},        {28, "f64", 1, 8},        {29, "iq1_m", 256, 56},
    {30, "bf16", 1, 2},       {34, "tq1_0", 256, 54},   {35, "tq2_0", 256, 66},   {39, "mxfp4", 32, 17},
}};

const ggml_published* published(ggml_type t) {
    for (const ggml_published& p : ggml_table)
        if (p.id == static_cast<std::uint32_t>(t)) return &p;
    return nullptr;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

std::string upper(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    return out;
}

using every_scheme = all_schemes::apply<std::tuple>;

// Ids no ggml_type_info has: a gap in ggml's numbering and ids past its end.
constexpr std::array<std::uint32_t, 6> unknown_ids{4, 31, 36, 40, 99, 0xffffffffu};

} // namespace

TEST_CASE("registry: ids and names are unique, and every ggml type is in the table") {
    std::set<std::uint32_t> ids;
    std::set<std::string_view> names;
    for (const ggml_type_info& t : ggml_types) {
        INFO("type " << t.name);
        CHECK(ids.insert(static_cast<std::uint32_t>(t.id)).second);
        CHECK(names.insert(t.name).second);
        CHECK(t.name == lower(t.name));
    }
    CHECK(ggml_types.size() == ggml_table.size());
    std::size_t with_scheme = 0;
    for (const ggml_type_info& t : ggml_types) with_scheme += t.has_scheme;
    CHECK(with_scheme == all_schemes::size);
}

TEST_CASE("registry: names and block geometry are ggml's published ones") {
    for (const ggml_published& p : ggml_table) {
        INFO("ggml type " << p.name << " (" << p.id << ")");
        const ggml_type_info* t = find_ggml_type(static_cast<ggml_type>(p.id));
        REQUIRE(t != nullptr);
        CHECK(t->name == lower(p.name));
        CHECK(type_name(t->id) == lower(p.name));
        CHECK(t->block_elems == p.blck_size);
        CHECK(t->block_bytes == p.type_size);
    }
    for (const std::uint32_t id : unknown_ids) {
        CHECK(find_ggml_type(static_cast<ggml_type>(id)) == nullptr);
        CHECK(type_name(static_cast<ggml_type>(id)).empty());
    }
}

TEST_CASE_TEMPLATE_DEFINE("registry: a scheme's constants agree with its table entry and ggml's", S, each_scheme) {
    INFO("scheme " << S::name);
    const ggml_type_info* t = find_ggml_type(S::type_id);
    REQUIRE(t != nullptr);
    CHECK(t->has_scheme);
    CHECK(t->name == S::name);
    CHECK(t->block_elems == S::block_elems);
    CHECK(t->block_bytes == sizeof(block_of<S>));
    const ggml_published* p = published(S::type_id);
    REQUIRE(p != nullptr);
    CHECK(lower(p->name) == S::name);
    CHECK(S::block_elems == p->blck_size);
    CHECK(sizeof(block_of<S>) == p->type_size);
}
TEST_CASE_TEMPLATE_APPLY(each_scheme, every_scheme);

TEST_CASE_TEMPLATE_DEFINE("registry: visit_scheme reaches each scheme by id and by name, once", S, visit_each) {
    INFO("scheme " << S::name);
    int calls = 0;
    bool right = false;
    const auto count = [&](auto s) {
        ++calls;
        right = std::is_same_v<decltype(s), S>;
    };
    CHECK(visit_scheme(S::type_id, count));
    CHECK(calls == 1);
    CHECK(right);
    CHECK(visit_scheme(S::name, count));
    CHECK(visit_scheme(upper(S::name), count)); // GGUF and ggml spell some upper case
    CHECK(calls == 3);
    CHECK(right);
}
TEST_CASE_TEMPLATE_APPLY(visit_each, every_scheme);

TEST_CASE("registry: visit_scheme refuses ids and names without a scheme, calling nothing") {
    int calls = 0;
    const auto count = [&](auto) { ++calls; };
    for (const ggml_type_info& t : ggml_types) {
        if (t.has_scheme) continue;
        INFO("type " << t.name);
        CHECK_FALSE(visit_scheme(t.id, count));
        CHECK_FALSE(visit_scheme(t.name, count));
    }
    for (const std::uint32_t id : unknown_ids) CHECK_FALSE(visit_scheme(static_cast<ggml_type>(id), count));
    for (const std::string_view name : {"", "q4", "q4_0 ", "f64", "q8_1"})
        CHECK_FALSE(visit_scheme(name, count));
    CHECK(calls == 0);
}

TEST_CASE("registry: for_each_scheme walks all_schemes in order") {
    std::vector<std::string_view> seen;
    for_each_scheme([&](auto s) { seen.push_back(decltype(s)::name); });
    REQUIRE(seen.size() == all_schemes::size);
    for (std::size_t i = 0; i < seen.size(); ++i) CHECK(ggml_types[i].name == seen[i]);
}

// What a library user writes to widen any GGUF tensor: no switch of their own.
TEST_CASE_TEMPLATE_DEFINE("registry: visit_scheme dequantizes bytes of a type id like S::dequantize_row", S,
                          dequantize_each) {
    INFO("scheme " << S::name);
    std::mt19937 rng(7);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    const std::size_t n = 2 * (S::block_elems == 1 ? 32 : S::block_elems);
    std::vector<float> x(n);
    for (float& v : x) v = dist(rng);
    std::vector<block_of<S>> blocks(n / S::block_elems);
    S::quantize_row(x.data(), blocks.data(), n);
    std::vector<std::byte> bytes(blocks.size() * sizeof(block_of<S>));
    std::memcpy(bytes.data(), blocks.data(), bytes.size());

    std::vector<float> want(n), got(n);
    S::dequantize_row(blocks.data(), want.data(), n);
    const bool found = visit_scheme(S::type_id, [&](auto s) {
        using T = decltype(s);
        std::vector<block_of<T>> b(bytes.size() / sizeof(block_of<T>));
        std::memcpy(static_cast<void*>(b.data()), bytes.data(), bytes.size());
        T::dequantize_row(b.data(), got.data(), n);
    });
    REQUIRE(found);
    CHECK(std::memcmp(got.data(), want.data(), n * sizeof(float)) == 0);
}
TEST_CASE_TEMPLATE_APPLY(dequantize_each, every_scheme);

// The kernels' choice reads these flags; the kernels headers static_assert that
// each flag has its kernel. Here: the flags make sense for the scheme.
TEST_CASE_TEMPLATE_DEFINE("registry: kernel flags fit the scheme", S, flags_each) {
    INFO("scheme " << S::name);
    constexpr simd_kernels k = simd_kernels_of<S>;
    if constexpr (has_kernels(k, simd_kernels::gemm) && S::block_elems > 1) CHECK(has_dot_partner<S>);
    if constexpr (has_kernels(k, simd_kernels::interleaved)) CHECK(has_kernels(k, simd_kernels::gemm));
    if constexpr (has_dot_partner<S>) {
        // A gemm's activations are quantized by the partner's kernel.
        if constexpr (has_kernels(k, simd_kernels::gemm))
            CHECK(has_kernels(simd_kernels_of<typename S::dot_partner>, simd_kernels::quantize));
    }
    CHECK(activation_only_scheme<S> == (S::type_id == ggml_type::q8_k)); // ggml has no to_float for it
}
TEST_CASE_TEMPLATE_APPLY(flags_each, every_scheme);

static_assert(registered_scheme<q4_0> && !registered_scheme<fake_quant<q4_0>>);
static_assert(has_kernels(simd_kernels::quantize | simd_kernels::gemm, simd_kernels::gemm));
static_assert(!has_kernels(reference_only, simd_kernels::quantize));
