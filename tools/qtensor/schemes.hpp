// tools/qtensor/schemes.hpp: the schemes the tool knows, and the one place a
// type name from the command line becomes a scheme type.
//
// Adding a scheme to every subcommand is one entry in `schemes` (and its
// include). Commands are written once as templates over a scheme S and
// reached through with_scheme().
#pragma once

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>

#include "cli.hpp"
#include "qtensor/scheme/float.hpp"
#include "qtensor/scheme/q2_k.hpp"
#include "qtensor/scheme/q4_0.hpp"
#include "qtensor/scheme/q4_1.hpp"
#include "qtensor/scheme/q4_k.hpp"
#include "qtensor/scheme/q6_k.hpp"
#include "qtensor/scheme/q8_0.hpp"
#include "qtensor/scheme/q8_k.hpp"

namespace qtensor::cli {

template <qtensor::scheme... S>
struct scheme_list {
    // Calls fn.template operator()<S>() for the scheme named `name` (ASCII
    // case-insensitive, so GGUF's "Q4_0" works too). Returns false when no
    // scheme has that name.
    template <class F>
    static bool visit(std::string_view name, F&& fn) {
        const auto same = [name](std::string_view candidate) {
            return std::ranges::equal(name, candidate, [](char a, char b) {
                return std::tolower(static_cast<unsigned char>(a)) ==
                       std::tolower(static_cast<unsigned char>(b));
            });
        };
        return ((same(S::name) ? (fn.template operator()<S>(), true) : false) || ...);
    }

    // "q4_0, q8_0, ..." for error messages.
    static std::string names() {
        std::string out;
        ((out += (out.empty() ? "" : ", ") + std::string(S::name)), ...);
        return out;
    }

    // One help line per scheme: name, block elements, block bytes.
    static std::string table(std::string_view indent) {
        std::string out;
        const auto line = [&]<class T>() {
            std::string name(T::name);
            name.resize(std::max<std::size_t>(name.size(), 6), ' ');
            out += std::string(indent) + name + " blocks of " + std::to_string(T::block_elems) +
                   (T::block_elems == 1 ? " element" : " elements") + " in " +
                   std::to_string(T::block_bytes) + " bytes\n";
        };
        (line.template operator()<S>(), ...);
        return out;
    }
};

// Quantized formats first, then the float formats (which are free: a
// "quantize" to f16 is a conversion, and "dequantize" from bf16 widens).
using schemes = scheme_list<q4_0, q8_0, q4_1, q2_k, q4_k, q6_k, q8_k, f32, f16, bf16>;

// Runs fn for the scheme named `name`; an unknown name is a usage error that
// lists the valid ones.
template <class F>
void with_scheme(std::string_view name, F&& fn) {
    if (!schemes::visit(name, fn))
        usage_error("unknown type " + in_quotes(name) + " (valid: " + schemes::names() + ")");
}

} // namespace qtensor::cli
