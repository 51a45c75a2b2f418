// qtensor/io/tensor_entry.hpp: one tensor of a checkpoint file (safetensors or
// GGUF), as the readers hand it out: name, type, shape and the bytes inside
// the file's mapping. as_view() turns it into a typed tensor_view, in place.
#pragma once

#include <array>
#include <concepts>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qtensor/core/error.hpp"
#include "qtensor/scheme/registry.hpp"
#include "qtensor/scheme/scheme.hpp"
#include "qtensor/tensor/tensor_view.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace io {

struct tensor_entry {
    std::string name;
    ggml_type type = ggml_type::f32;
    // Outermost first, as PyTorch and numpy write it: a linear layer's weight
    // W[out, in] has shape {out, in}. (GGUF stores the reverse; the reader
    // turns it round.)
    std::vector<std::size_t> shape;
    std::span<const std::byte> data; // exactly the tensor's bytes

    std::size_t elements() const noexcept {
        std::size_t n = 1;
        for (std::size_t e : shape) n *= e;
        return n;
    }
};

// A file or checkpoint that hands out tensors by name: find() returns nullptr
// when the name is absent; path() names the file in messages.
template <class F>
concept tensor_source = requires(const F& f, std::string_view name) {
    { f.find(name) } -> std::same_as<const tensor_entry*>;
    { f.path() } -> std::convertible_to<std::string>;
};

// The tensor `name` of `file`; throws naming both when it is absent.
template <tensor_source F>
const tensor_entry& require(const F& file, std::string_view name) {
    if (const tensor_entry* e = file.find(name)) return *e;
    throw error(std::string(file.path()) + ": no tensor " + std::string(name));
}

// Views entry `e` (of file `path`, for messages) as a Rank-dimensional tensor
// of scheme S, without copying. The type must be S's and the rank must match
// (a 1-D vector is viewed with Rank 1).
template <scheme S, std::size_t Rank>
tensor_view<const S, Rank> as_view(const tensor_entry& e, std::string_view path) {
    const auto where = [&] { return std::string(path) + ": tensor " + e.name; };
    if (e.type != S::type_id)
        throw error(where() + " has type " + std::string(type_name(e.type)) + ", expected " +
                    std::string(S::name));
    if (e.shape.size() != Rank)
        throw error(where() + " has " + std::to_string(e.shape.size()) + " dimensions, expected " +
                    std::to_string(Rank));
    std::array<std::size_t, Rank> dims{};
    for (std::size_t i = 0; i < Rank; ++i) dims[i] = e.shape[i];
    try {
        return tensor_view<const S, Rank>(e.data, extents<Rank>(dims));
    } catch (const error& err) {
        throw error(where() + ": " + std::string(err.message()));
    }
}

} // namespace io
QTENSOR_END_NAMESPACE
