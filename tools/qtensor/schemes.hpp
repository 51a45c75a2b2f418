// tools/qtensor/schemes.hpp: the schemes the tool knows (every scheme of
// qtensor/scheme/registry.hpp, in its order), and the one place a type name
// from the command line becomes a scheme type.
//
// Commands are written once as templates over a scheme S and reached through
// with_scheme(); a scheme added to the registry reaches every subcommand.
#pragma once

#include <algorithm>
#include <string>
#include <string_view>

#include "cli.hpp"
#include "qtensor/scheme/registry.hpp"

namespace qtensor::cli::schemes {

// "q4_0, q8_0, ..." for error messages.
inline std::string names() {
    std::string out;
    for_each_scheme([&](auto s) { out += (out.empty() ? "" : ", ") + std::string(decltype(s)::name); });
    return out;
}

// One help line per scheme: name, block elements, block bytes.
inline std::string table(std::string_view indent) {
    std::string out;
    for_each_scheme([&](auto s) {
        using T = decltype(s);
        std::string name(T::name);
        name.resize(std::max<std::size_t>(name.size(), 6), ' ');
        out += std::string(indent) + name + " blocks of " + std::to_string(T::block_elems) +
               (T::block_elems == 1 ? " element" : " elements") + " in " + std::to_string(T::block_bytes) +
               " bytes\n";
    });
    return out;
}

} // namespace qtensor::cli::schemes

namespace qtensor::cli {

// Runs fn.template operator()<S>() for the scheme named `name` (ASCII
// case-insensitive, so GGUF's "Q4_0" works too); an unknown name is a usage
// error that lists the valid ones.
template <class F>
void with_scheme(std::string_view name, F&& fn) {
    if (!visit_scheme(name, [&](auto s) { fn.template operator()<decltype(s)>(); }))
        usage_error("unknown type " + in_quotes(name) + " (valid: " + schemes::names() + ")");
}

} // namespace qtensor::cli
