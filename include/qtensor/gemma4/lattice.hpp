// qtensor/gemma4/lattice.hpp: lattice alignment for a Gemma 4 checkpoint
// (docs/qat.md). For the tensors a policy packs as Q4_0:
//   lattice_reports(c, src, names)    per tensor, how its blocks sit on Q4_0
//                                     grids and what ggml's rule does to them
//   aligned_source<P, Source>         the checkpoint with those tensors already
//                                     packed on their grids (scheme/lattice.hpp),
//                                     for write_gguf: `qtensor convert --lattice`
// The values are read as the file stores them; the tolerance of "on a grid"
// follows the stored format (bf16: 2^-8 of the block's largest, times 3).
#pragma once

#include <cstddef>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/gemma4/config.hpp"
#include "qtensor/gemma4/parameters.hpp"
#include "qtensor/gemma4/qat.hpp"
#include "qtensor/gemma4/weights.hpp"
#include "qtensor/io/gguf_value.hpp"
#include "qtensor/io/tensor_entry.hpp"
#include "qtensor/scheme/lattice.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace gemma4 {

// The unit roundoff of values stored as t; quantized types unpack exactly in f32.
inline float stored_precision(ggml_type t) noexcept {
    if (t == ggml_type::bf16) return lattice::unit_roundoff_bf16;
    if (t == ggml_type::f16) return lattice::unit_roundoff_f16;
    return lattice::unit_roundoff_f32;
}

// Whether policy P stores any role as Q4_0.
template <typed_policy P>
inline constexpr bool q4_0_parameters_possible =
    std::is_same_v<typename P::attention, q4_0> || std::is_same_v<typename P::mlp, q4_0> ||
    std::is_same_v<typename P::experts, q4_0> || std::is_same_v<typename P::embedding, q4_0> ||
    std::is_same_v<typename P::per_layer, q4_0>;

// The parameters policy P stores as Q4_0.
template <typed_policy P>
std::vector<parameter_shape> q4_0_parameters(const config& c) {
    std::vector<parameter_shape> out;
    for (parameter_shape& s : parameter_shapes(c))
        with_role_scheme<P>(s.role, [&]<class S>(S) {
            if constexpr (std::is_same_v<S, q4_0>) out.push_back(std::move(s));
        });
    return out;
}

namespace detail {

// fn(row[cols], precision) for each row of the tensor s in src, widened to
// float32; precision: the stored format's unit roundoff. Returns its type.
template <io::tensor_source Source, class Fn>
ggml_type for_each_row(const Source& src, const name_map& names, const parameter_shape& s, Fn&& fn) {
    const std::string file_name = names ? names(s.name) : s.name;
    const io::tensor_entry* e = src.find(file_name);
    if (e == nullptr) throw error(src.path() + ": no tensor " + file_name);
    const std::size_t cols = s.shape.back(), rows = s.elements() / cols;
    if (e->shape != s.shape) throw error(src.path() + ": " + file_name + " does not have the config's shape");
    std::vector<float> row(cols);
    const bool readable = with_file_scheme(e->type, [&](auto f) {
        using F = decltype(f);
        if (cols % F::block_elems != 0 || e->data.size() != rows * row_bytes<F>(cols))
            throw error(src.path() + ": " + file_name + ": its bytes do not hold its shape");
        std::vector<block_of<F>> scratch;
        for (std::size_t r = 0; r < rows; ++r) {
            widen_row<F>(e->data, r, cols, row.data(), scratch);
            fn(row.data(), cols, stored_precision(e->type));
        }
    });
    if (!readable) throw error(src.path() + ": " + file_name + " has type " + std::string(type_name(e->type)) +
                               ", which cannot be read");
    return e->type;
}

} // namespace detail

struct tensor_lattice {
    std::string name; // Hugging Face name
    ggml_type stored; // as the file stores it
    lattice::report report;
};

// For each tensor q4_0_policy packs as Q4_0 (attention, MLP, experts).
template <io::tensor_source Source>
std::vector<tensor_lattice> lattice_reports(const config& c, const Source& src, const name_map& names = {}) {
    std::vector<tensor_lattice> out;
    for (const parameter_shape& s : q4_0_parameters<q4_0_policy>(c)) {
        tensor_lattice t{.name = s.name, .stored = ggml_type::f32, .report = {}};
        t.stored = detail::for_each_row(src, names, s, [&](const float* row, std::size_t cols, float precision) {
            for (std::size_t i = 0; i < cols; i += q4_0::block_elems) t.report.add(row + i, precision);
        });
        out.push_back(std::move(t));
    }
    return out;
}

// src, with every tensor that P stores as Q4_0 handed out already packed:
// blocks on a grid on it, the others by ggml's rule. write_gguf<P> then
// writes those bytes as they are. Packs each tensor once, when first asked.
template <typed_policy P, io::tensor_source Source>
class aligned_source {
public:
    aligned_source(const config& c, const Source& src, const name_map& names = {}) : src_(src), names_(names) {
        for (parameter_shape& s : q4_0_parameters<P>(c)) shapes_.emplace(names ? names(s.name) : s.name, std::move(s));
        if (shapes_.empty())
            throw error("gemma4::aligned_source: policy " + std::string(P::name) + " stores no tensor as q4_0");
    }

    std::string path() const { return src_.path(); }
    std::vector<std::string_view> tensor_names() const { return src_.tensor_names(); }
    // The source's tokenizer, for write_gguf to carry over.
    std::vector<io::gguf_kv> tokenizer_metadata() const
        requires requires(const Source& s) { s.tokenizer_metadata(); }
    {
        return src_.tokenizer_metadata();
    }

    const io::tensor_entry* find(std::string_view name) const {
        const auto shape = shapes_.find(name);
        if (shape == shapes_.end()) return src_.find(name);
        const auto done = packed_.find(name);
        if (done != packed_.end()) return &done->second.entry;
        packed& p = packed_[std::string(name)];
        const parameter_shape& s = shape->second;
        const std::size_t blocks = s.elements() / q4_0::block_elems;
        p.bytes.resize(blocks);
        block_q4_0* out = p.bytes.data();
        detail::for_each_row(src_, names_, s, [&](const float* row, std::size_t cols, float precision) {
            lattice::quantize_row_aligned(row, out, cols, precision);
            out += cols / q4_0::block_elems;
        });
        p.entry = {std::string(name), ggml_type::q4_0, s.shape, std::as_bytes(std::span(p.bytes))};
        return &p.entry;
    }

private:
    struct packed {
        std::vector<block_q4_0> bytes;
        io::tensor_entry entry;
    };
    const Source& src_;
    name_map names_;
    std::map<std::string, parameter_shape, std::less<>> shapes_; // by file name
    mutable std::map<std::string, packed, std::less<>> packed_;
};

} // namespace gemma4
QTENSOR_END_NAMESPACE
