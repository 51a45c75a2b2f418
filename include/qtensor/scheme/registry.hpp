// qtensor/scheme/registry.hpp: every scheme qtensor has, in one list, and the
// one table of ggml tensor types derived from it (ggml's type_traits[]).
//
// A new scheme is its header, its line in `registry` below (with the SIMD
// kernels kernels/ gives it, or reference_only) and its tests. Everything
// that walks the schemes reads this list: the GGUF reader and writer (block
// geometry), the Gemma 4 loader (which file types it widens), the kernels
// (SIMD or reference, per scheme), the CLI (its -t types) and the tests.
//
//   all_schemes                 scheme_list<q4_0, q8_0, ...>, in registry order
//   for_each_scheme(f)          f(S{}) for every scheme, in that order
//   visit_scheme(id, f)         f(S{}) for the scheme whose type_id is id, or false
//   visit_scheme(name, f)       the same by name, ASCII case-insensitive ("Q4_K")
//   simd_kernels_of<S>          which SIMD kernels kernels/ has for S; ask with
//                               has_kernels(simd_kernels_of<S>, simd_kernels::gemm)
//   find_ggml_type(id)          name and block geometry of any ggml type qtensor
//   type_name(id)               knows, with or without a scheme for it
//
// Names and geometry of the registered schemes come from each scheme's own
// constants (S::name, S::block_elems, sizeof(block_of<S>)); only the ggml
// types without a scheme (q8_1, the other i-quants, ...) are written out
// here, so a GGUF reader can walk past their tensors.
#pragma once

#include <array>
#include <concepts>
#include <cstddef>
#include <string_view>
#include <type_traits>

#include "qtensor/core/config.hpp"
#include "qtensor/scheme/float.hpp"
#include "qtensor/scheme/iq4_nl.hpp"
#include "qtensor/scheme/iq4_xs.hpp"
#include "qtensor/scheme/tq2_0.hpp"
#include "qtensor/scheme/q2_k.hpp"
#include "qtensor/scheme/q3_k.hpp"
#include "qtensor/scheme/q4_0.hpp"
#include "qtensor/scheme/q4_1.hpp"
#include "qtensor/scheme/q4_k.hpp"
#include "qtensor/scheme/q5_0.hpp"
#include "qtensor/scheme/q5_1.hpp"
#include "qtensor/scheme/q5_k.hpp"
#include "qtensor/scheme/q6_k.hpp"
#include "qtensor/scheme/q8_0.hpp"
#include "qtensor/scheme/q8_k.hpp"
#include "qtensor/scheme/scheme.hpp"

QTENSOR_BEGIN_NAMESPACE

// ---- scheme lists ----------------------------------------------------------------

template <scheme... S>
struct scheme_list;

namespace detail {

template <class... L>
struct concat_schemes {
    using type = scheme_list<>;
};
template <class... A>
struct concat_schemes<scheme_list<A...>> {
    using type = scheme_list<A...>;
};
template <class... A, class... B, class... Rest>
struct concat_schemes<scheme_list<A...>, scheme_list<B...>, Rest...>
    : concat_schemes<scheme_list<A..., B...>, Rest...> {};

constexpr bool ascii_iequal(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    for (std::size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

} // namespace detail

// A compile-time list of schemes. f is called as f(S{}) (schemes are empty
// structs), so a generic lambda `[](auto s) { using S = decltype(s); ... }`
// sees each one as a type.
template <scheme... S>
struct scheme_list {
    static constexpr std::size_t size = sizeof...(S);

    template <class T>
    static constexpr bool contains = (std::same_as<T, S> || ...);

    // L<S...>: e.g. all_schemes::apply<std::tuple> for doctest's
    // TEST_CASE_TEMPLATE_APPLY.
    template <template <class...> class L>
    using apply = L<S...>;

    // The schemes T with Keep<T>::value, in order.
    template <template <class> class Keep>
    using filter = typename detail::concat_schemes<
        std::conditional_t<Keep<S>::value, scheme_list<S>, scheme_list<>>...>::type;

    template <class F>
    static constexpr void for_each(F&& f) {
        (static_cast<void>(f(S{})), ...);
    }

    // f(T{}) for the first T with pred(T{}); false when there is none.
    template <class Pred, class F>
    static constexpr bool visit_if(Pred&& pred, F&& f) {
        return ((pred(S{}) ? (static_cast<void>(f(S{})), true) : false) || ...);
    }
};

// ---- the registry ----------------------------------------------------------------

// The dedicated kernels kernels/ has for a scheme (SIMD on the Highway and
// xsimd backends); what a scheme lacks runs its scalar reference
// (kernels::quantize_row<S>, dequantize_row<S>) or is not offered (gemm).
// kernels/quant.hpp and kernels/matmul.hpp pick their kernel from these flags
// and static_assert that each flag has its kernel and each kernel its flag,
// so no kernel is left unused or a scheme on the slow path by mistake.
enum class simd_kernels : unsigned {
    none = 0,
    quantize = 1,     // kernels::quantize_row<S>
    dequantize = 2,   // kernels::dequantize_row<S>
    gemm = 4,         // kernels::gemm<S> (and so a Gemma 4 weight role)
    interleaved = 8,  // kernels::interleaved<S>
    fake_quant = 16,  // kernels::fake_quant_row<S>
};

constexpr simd_kernels operator|(simd_kernels a, simd_kernels b) noexcept {
    return static_cast<simd_kernels>(static_cast<unsigned>(a) | static_cast<unsigned>(b));
}

// Whether `set` holds every kernel of `k`.
constexpr bool has_kernels(simd_kernels set, simd_kernels k) noexcept {
    return (static_cast<unsigned>(set) & static_cast<unsigned>(k)) == static_cast<unsigned>(k);
}

// A scheme whose every operation is its scalar reference.
inline constexpr simd_kernels reference_only = simd_kernels::none;

// One registry line: scheme S and its kernels.
template <scheme S, simd_kernels K>
struct registered {
    using type = S;
    static constexpr simd_kernels kernels = K;
};

namespace detail {

template <class... R>
struct scheme_table {
    using schemes = scheme_list<typename R::type...>;

    template <class S>
    static constexpr simd_kernels kernels_of() noexcept {
        simd_kernels k = simd_kernels::none;
        (static_cast<void>(std::same_as<S, typename R::type> ? (k = R::kernels, 0) : 0), ...);
        return k;
    }
};

constexpr simd_kernels q_all = simd_kernels::quantize | simd_kernels::dequantize | simd_kernels::gemm |
                               simd_kernels::interleaved;

// Quantized formats first, then the float formats; the CLI lists them in
// this order.
using registry = scheme_table<
    registered<q4_0, q_all | simd_kernels::fake_quant>,
    registered<q8_0, q_all>,
    registered<q4_1, reference_only>,
    registered<q5_0, reference_only>,
    registered<q5_1, reference_only>,
    registered<q2_k, simd_kernels::dequantize | simd_kernels::gemm>,
    registered<tq2_0, simd_kernels::gemm>,
    registered<q3_k, simd_kernels::gemm>,
    registered<q4_k, simd_kernels::gemm>,
    registered<q5_k, simd_kernels::gemm>,
    registered<q6_k, simd_kernels::gemm>,
    registered<iq4_nl, reference_only>,
    registered<iq4_xs, reference_only>,
    registered<q8_k, simd_kernels::quantize>,
    registered<f32, simd_kernels::gemm>,
    registered<f16, simd_kernels::dequantize>,
    registered<bf16, simd_kernels::dequantize | simd_kernels::gemm>>;

} // namespace detail

using all_schemes = detail::registry::schemes;

template <class S>
concept registered_scheme = all_schemes::contains<S>;

template <registered_scheme S>
inline constexpr simd_kernels simd_kernels_of = detail::registry::kernels_of<S>();

// A scheme ggml has no to_float for, only ever an activation format (q8_k):
// no file should hold it, and a model loader may refuse it.
template <class S>
concept activation_only_scheme = registered_scheme<S> && requires { requires S::activation_only; };

template <class F>
constexpr void for_each_scheme(F&& f) {
    all_schemes::for_each(f);
}

// Calls f(S{}) for the registered scheme S with S::type_id == t and returns
// true; returns false, calling nothing, when qtensor has no scheme for t (a
// type such as q8_1, or an id ggml does not define). f's result is dropped.
template <class F>
constexpr bool visit_scheme(ggml_type t, F&& f) {
    return all_schemes::visit_if([t](auto s) { return decltype(s)::type_id == t; }, f);
}

// The same for the scheme named `name`, ASCII case-insensitive (so GGUF's and
// ggml's "Q4_0" and "q4_K" work too).
template <class F>
constexpr bool visit_scheme(std::string_view name, F&& f) {
    return all_schemes::visit_if([name](auto s) { return detail::ascii_iequal(decltype(s)::name, name); }, f);
}

// ---- ggml types ------------------------------------------------------------------

// A ggml tensor type as a file stores it: rows are whole blocks of
// block_elems elements in block_bytes bytes (ggml's blck_size, type_size).
struct ggml_type_info {
    ggml_type id = ggml_type::f32;
    std::string_view name;
    std::size_t block_elems = 0;
    std::size_t block_bytes = 0;
    bool has_scheme = false; // visit_scheme reaches it
};

template <scheme S>
constexpr ggml_type_info type_info_of() noexcept {
    return {S::type_id, S::name, S::block_elems, sizeof(block_of<S>), true};
}

namespace detail {

// The ggml types (of the ggml_type enum) that qtensor has no scheme for:
// ggml's published geometry (ggml.c type_traits, ggml-common.h blocks), so a
// GGUF file holding them opens, lists them, and is refused by name where a
// tensor's values are needed. A type that gets a scheme leaves this table
// for the registry.
inline constexpr auto foreign_types = std::to_array<ggml_type_info>({
    {ggml_type::q8_1, "q8_1", 32, 36, false},
    {ggml_type::iq2_xxs, "iq2_xxs", 256, 66, false},
    {ggml_type::iq2_xs, "iq2_xs", 256, 74, false},
    {ggml_type::iq3_xxs, "iq3_xxs", 256, 98, false},
    {ggml_type::iq1_s, "iq1_s", 256, 50, false},
    {ggml_type::iq3_s, "iq3_s", 256, 110, false},
    {ggml_type::iq2_s, "iq2_s", 256, 82, false},
    {ggml_type::i8, "i8", 1, 1, false},
    {ggml_type::i16, "i16", 1, 2, false},
    {ggml_type::i32, "i32", 1, 4, false},
    {ggml_type::i64, "i64", 1, 8, false},
    {ggml_type::f64, "f64", 1, 8, false},
    {ggml_type::iq1_m, "iq1_m", 256, 56, false},
    {ggml_type::tq1_0, "tq1_0", 256, 54, false},
    {ggml_type::mxfp4, "mxfp4", 32, 17, false},
});

constexpr auto make_ggml_types() noexcept {
    std::array<ggml_type_info, all_schemes::size + foreign_types.size()> out{};
    std::size_t i = 0;
    for_each_scheme([&](auto s) { out[i++] = type_info_of<decltype(s)>(); });
    for (const ggml_type_info& f : foreign_types) out[i++] = f;
    return out;
}

} // namespace detail

// Every ggml type qtensor knows: the registered schemes, in order, then the
// foreign types.
inline constexpr auto ggml_types = detail::make_ggml_types();

// The entry of type t, or nullptr for an id not in the table.
constexpr const ggml_type_info* find_ggml_type(ggml_type t) noexcept {
    for (const ggml_type_info& i : ggml_types)
        if (i.id == t) return &i;
    return nullptr;
}

// The lower-case name of a type ("q4_0", "bf16"), or "" for an unknown id.
constexpr std::string_view type_name(ggml_type t) noexcept {
    const ggml_type_info* i = find_ggml_type(t);
    return i != nullptr ? i->name : std::string_view{};
}

namespace detail {
constexpr bool ggml_types_unique() noexcept {
    for (std::size_t i = 0; i < ggml_types.size(); ++i)
        for (std::size_t j = i + 1; j < ggml_types.size(); ++j)
            if (ggml_types[i].id == ggml_types[j].id || ggml_types[i].name == ggml_types[j].name) return false;
    return true;
}
} // namespace detail
static_assert(detail::ggml_types_unique(),
              "a ggml type is listed twice: a type with a scheme must leave detail::foreign_types");

QTENSOR_END_NAMESPACE
