// qtensor/gemma4/gguf.hpp: Gemma 4 checkpoints as GGUF files, the way
// llama.cpp writes and reads them (docs/gguf.md section 6): config ->
// gemma4.* keys for a writer, gemma4.* keys (plus what the tensors say) ->
// config for a reader, and write_gguf(), which converts a checkpoint to a
// GGUF file in a policy's schemes or in the types gguf_types.hpp chooses.
//
// Which config field has which key is config_fields (config.hpp). Not every
// field has one; llama.cpp derives these from tensors:
//   vocab sizes          the rows of token_embd / per_layer_token_embd
//   tied head            no output.weight
//   attention_k_eq_v     full layers with their own K but no attn_v
//   proportional RoPE    rope_freqs.weight: 1 for the rotated pairs, 1e30 after
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp> // write_metadata prints config values in messages

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/gemma4/config.hpp"
#include "qtensor/gemma4/gguf_types.hpp"
#include "qtensor/gemma4/names.hpp"
#include "qtensor/gemma4/policy.hpp"
#include "qtensor/gemma4/weights.hpp"
#include "qtensor/io/gguf.hpp"
#include "qtensor/io/tensor_entry.hpp"
#include "qtensor/scheme/float.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace gemma4 {

// What config_from_gguf reads: metadata by key and tensors by name.
// io::gguf_file is one; a test can hand in metadata without a file.
template <class F>
concept gguf_source = io::tensor_source<F> && requires(const F& f, std::string_view key) {
    { f.find_metadata(key) } -> std::same_as<const io::gguf_value*>;
};

namespace detail {

inline constexpr std::string_view gguf_arch = "gemma4";

inline std::string key(std::string_view k) { return std::string(gguf_arch) + "." + std::string(k); }

// f(value of key k), with errors naming the file and the key.
template <gguf_source F, class Fn>
auto read_key(const F& f, std::string_view k, Fn&& fn) -> std::invoke_result_t<Fn&, const io::gguf_value&> {
    const io::gguf_value* v = f.find_metadata(k);
    if (v == nullptr) throw error(std::string(f.path()) + ": no metadata key " + std::string(k));
    try {
        return fn(*v);
    } catch (const error& e) {
        throw error(std::string(f.path()) + ": metadata key " + std::string(k) + ": " + std::string(e.message()));
    }
}

inline std::size_t as_count(const io::gguf_value& v) {
    const std::int64_t n = v.to_integer();
    if (n < 0) throw error("negative value " + std::to_string(n));
    return static_cast<std::size_t>(n);
}

// A config field's value from GGUF: a count, or a float.
template <class T>
T from_gguf(const io::gguf_value& v) {
    if constexpr (std::floating_point<T>) return static_cast<T>(v.to_float());
    else return as_count(v);
}

// The value of key k, or `fallback` when the file has no such key.
template <class T, gguf_source F>
T read_or(const F& f, std::string_view k, T fallback) {
    return f.find_metadata(k) ? read_key(f, k, from_gguf<T>) : fallback;
}

// Reads a per-layer count stored as a scalar or an array of L integers.
template <gguf_source F>
std::vector<std::size_t> read_per_layer(const F& f, std::string_view k, std::size_t layers) {
    return read_key(f, k, [&](const io::gguf_value& v) {
        if (!v.is_array()) return std::vector<std::size_t>(layers, as_count(v));
        if (v.array_size() != layers)
            throw error("has " + std::to_string(v.array_size()) + " entries for " + std::to_string(layers) +
                        " layers");
        std::vector<std::size_t> out;
        for (std::size_t l = 0; l < layers; ++l) out.push_back(as_count(v.at(l)));
        return out;
    });
}

// `v` for a u32 field of GGUF; a value that does not fit is an error, never
// cut to its low bits (a context of 2^32 must not become 0).
inline std::uint32_t to_u32(std::size_t v, std::string_view k) {
    if (v > std::numeric_limits<std::uint32_t>::max())
        throw error("gemma4 GGUF: " + key(k) + " = " + std::to_string(v) + " does not fit the u32 field GGUF has for it");
    return static_cast<std::uint32_t>(v);
}

// `v` for an f32 field of GGUF; one that overflows float is an error.
inline float to_f32(double v, std::string_view k) {
    const auto f = static_cast<float>(v);
    if (!std::isfinite(f))
        throw error("gemma4 GGUF: " + key(k) + " = " + std::to_string(v) + " does not fit the f32 field GGUF has for it");
    return f;
}

// A config field as GGUF stores it: a count as u32, a float as f32.
template <class T>
io::gguf_value to_gguf(T v, std::string_view k) {
    static_assert(std::same_as<T, std::size_t> || std::floating_point<T>,
                  "GGUF keys in config_fields hold counts or floats");
    if constexpr (std::floating_point<T>) return io::gguf_value::f32(to_f32(v, k));
    else return io::gguf_value::u32(to_u32(v, k));
}

// A u32 scalar when every layer has the same value, else a per-layer array
// (llama.cpp reads either).
inline io::gguf_value per_layer_u32(const std::vector<std::size_t>& v, std::string_view k) {
    bool same = true;
    for (std::size_t x : v) same = same && x == v.front();
    if (same) return io::gguf_value::u32(to_u32(v.front(), k));
    std::vector<std::uint32_t> a;
    for (std::size_t x : v) a.push_back(to_u32(x, k));
    return io::gguf_value::array(std::move(a));
}

// The partial_rotary_factor p that makes rotated_pairs() give `rotated` for
// head size d: 2 rotated / d, nudged up when rounding would floor it one pair
// short (exact, so the published 0.25 comes back as 0.25, whenever d is a
// power of two).
inline double rotary_factor_for(std::size_t rotated, std::size_t d) {
    const double r = static_cast<double>(rotated), dd = static_cast<double>(d);
    double p = 2.0 * r / dd;
    while (std::floor(p * dd / 2.0) < r) p = std::nextafter(p, 2.0);
    return p;
}

} // namespace detail

// The gemma4.* keys (and general.architecture) for `c`. Throws for a config
// GGUF cannot express: head sizes that differ within an attention type, and
// the fields config_fields marks gguf_default_only (RoPE scaling factors, a
// proportional RoPE on the sliding layers) away from their default.
inline void write_metadata(const config& c, io::gguf_writer& w) {
    c.validate();
    using io::gguf_value;
    using detail::key;
    w.set("general.architecture", gguf_value::string(std::string(detail::gguf_arch)));
    for_each_config_field([&](const auto& row) {
        using Row = decltype(row);
        if (!row.applies(c)) return;
        if constexpr (gguf_keyed<Row>) {
            w.set(key(row.gguf), detail::to_gguf(row.of(c), row.gguf));
        } else if constexpr (gguf_tagged<Row, gguf_default_only_t>) {
            using T = typename std::remove_cvref_t<Row>::value_type;
            if (row.of(c) != T(*row.hf_default))
                throw error("gemma4 GGUF: " + std::string(row.hf_key) + " = " + nlohmann::json(row.of(c)).dump() +
                            " has no GGUF form (only " + nlohmann::json(T(*row.hf_default)).dump() + ")");
        }
    });
    // The per-layer fields, outside config_fields.
    std::vector<std::size_t> widths;
    for (const layer_info& li : c.layers()) widths.push_back(li.mlp_width);
    w.set(key("feed_forward_length"), detail::per_layer_u32(widths, "feed_forward_length"));
    w.set(key("attention.head_count_kv"), detail::per_layer_u32(c.layer_kv_heads, "attention.head_count_kv"));
    const std::size_t d_sliding = detail::head_dim_of(c, attention_type::sliding);
    const std::size_t d_full = detail::head_dim_of(c, attention_type::full);
    const std::size_t d_main = d_full ? d_full : d_sliding;
    const std::size_t d_swa = d_sliding ? d_sliding : d_main;
    const auto set_u32 = [&](std::string_view k, std::size_t v) { w.set(key(k), detail::to_gguf(v, k)); };
    set_u32("attention.key_length", d_main);
    set_u32("attention.value_length", d_main);
    set_u32("attention.key_length_swa", d_swa);
    set_u32("attention.value_length_swa", d_swa);
    set_u32("rope.dimension_count", d_main);
    set_u32("rope.dimension_count_swa", d_swa);
    // llama.cpp reads the vocabulary size from here when the file has no token list.
    set_u32("vocab_size", c.vocab_size);
    std::vector<bool> pattern;
    for (attention_type t : c.layer_types) pattern.push_back(t == attention_type::sliding);
    w.set(key("attention.sliding_window_pattern"), gguf_value::array(std::move(pattern)));
}

// The config of a Gemma 4 GGUF file (written by llama.cpp's converter or by
// write_metadata). Throws qtensor::error naming the file and the key.
template <gguf_source F>
config config_from_gguf(const F& f) {
    using detail::key;
    const std::string path(f.path());
    if (const std::string arch = detail::read_key(f, "general.architecture",
                                                  [](const io::gguf_value& v) { return v.as_string(); });
        arch != detail::gguf_arch)
        throw error(path + ": general.architecture is \"" + arch + "\", not \"gemma4\"");
    config c;
    for_each_config_field([&](const auto& row) {
        if constexpr (gguf_keyed<decltype(row)>) row.of(c) = detail::read_or(f, key(row.gguf), row.of(c));
    });
    const std::size_t L = c.num_hidden_layers;
    if (L == 0) throw error(path + ": metadata " + key("block_count") + " is missing or 0");
    if (L > config_limits::layers) // before anything is sized by it
        throw error(path + ": metadata " + key("block_count") + " = " + std::to_string(L) +
                    " is over qtensor's limit of " + std::to_string(config_limits::layers) + " layers");
    c.enable_moe_block = c.num_experts != 0;

    // The per-layer fields, outside config_fields.
    c.layer_kv_heads = detail::read_per_layer(f, key("attention.head_count_kv"), L);
    const std::vector<bool> sliding = detail::read_key(f, key("attention.sliding_window_pattern"),
                                                       [&](const io::gguf_value& v) {
        if (!v.is_array() || v.array_size() != L) throw error("must be " + std::to_string(L) + " booleans");
        std::vector<bool> out;
        for (std::size_t l = 0; l < L; ++l) out.push_back(v.at(l).as_bool());
        return out;
    });
    const std::size_t d_full = detail::read_or<std::size_t>(f, key("attention.key_length"), 0);
    const std::size_t d_sliding = detail::read_or(f, key("attention.key_length_swa"), d_full);
    if (detail::read_or(f, key("attention.value_length"), d_full) != d_full ||
        detail::read_or(f, key("attention.value_length_swa"), d_sliding) != d_sliding)
        throw error(path + ": Gemma 4 needs value_length == key_length");
    for (std::size_t l = 0; l < L; ++l) {
        c.layer_types.push_back(sliding[l] ? attention_type::sliding : attention_type::full);
        c.layer_head_dim.push_back(sliding[l] ? d_sliding : d_full);
    }

    // Vocabularies from the embedding tables; without per-layer inputs its
    // vocabulary is unused, and says the token table's (as HF configs do).
    const io::tensor_entry& embed = io::require(f, gguf_name("model.embed_tokens.weight"));
    if (embed.shape.size() != 2) throw error(path + ": token_embd.weight is not a matrix");
    c.vocab_size = embed.shape[0];
    if (const std::size_t v = detail::read_or<std::size_t>(f, key("vocab_size"), c.vocab_size); v != c.vocab_size)
        throw error(path + ": " + key("vocab_size") + " = " + std::to_string(v) + ", but token_embd.weight has " +
                    std::to_string(c.vocab_size) + " rows");
    c.vocab_size_per_layer_input = c.vocab_size;
    c.tie_word_embeddings = f.find(gguf_name("lm_head.weight")) == nullptr;
    if (c.hidden_size_per_layer_input != 0) {
        const io::tensor_entry& ple = io::require(f, gguf_name("model.embed_tokens_per_layer.weight"));
        if (ple.shape.size() != 2) throw error(path + ": per_layer_token_embd.weight is not a matrix");
        c.vocab_size_per_layer_input = ple.shape[0];
    }

    // MLP widths: one width, doubled on the KV-shared layers when double-wide.
    const std::vector<std::size_t> widths = detail::read_per_layer(f, key("feed_forward_length"), L);
    c.intermediate_size = widths.front();
    c.use_double_wide_mlp = c.num_kv_shared_layers != 0 && widths.back() == 2 * widths.front();
    for (std::size_t l = 0; l < L; ++l) {
        const bool doubled = c.use_double_wide_mlp && l >= c.first_kv_shared_layer();
        if (widths[l] != c.intermediate_size * (doubled ? 2 : 1))
            throw error(path + ": " + key("feed_forward_length") + " of layer " + std::to_string(l) +
                        " does not follow Gemma 4's pattern (one width, doubled on KV-shared layers)");
    }

    // k_eq_v: the full layers that project K have no V projection.
    bool any_full_kv = false, all_without_v = true;
    for (std::size_t l = 0; l < c.first_kv_shared_layer(); ++l)
        if (c.layer_types[l] == attention_type::full) {
            any_full_kv = true;
            all_without_v = all_without_v && !f.find("blk." + std::to_string(l) + ".attn_v.weight");
        }
    c.attention_k_eq_v = any_full_kv && all_without_v;

    // Proportional RoPE on the full layers, from llama.cpp's rope_freqs.
    c.rope_full.type = "default";
    c.rope_full.partial_rotary_factor = 1.0;
    if (const io::tensor_entry* rf = f.find(rope_freqs_name)) {
        const auto factors = io::as_view<f32, 1>(*rf, path);
        if (factors.extent(0) * 2 != d_full)
            throw error(path + ": rope_freqs.weight has " + std::to_string(factors.extent(0)) +
                        " entries, expected key_length / 2 = " + std::to_string(d_full / 2));
        std::size_t rotated = 0;
        while (rotated < factors.extent(0) && factors(rotated) == 1.0f) ++rotated;
        for (std::size_t i = rotated; i < factors.extent(0); ++i)
            if (!(factors(i) >= 1e20f))
                throw error(path + ": rope_freqs.weight entry " + std::to_string(i) +
                            " is neither 1 (rotated) nor >= 1e20 (not rotated): unsupported RoPE");
        if (rotated < factors.extent(0)) {
            c.rope_full.type = "proportional";
            c.rope_full.partial_rotary_factor = detail::rotary_factor_for(rotated, d_full);
        }
    }
    try {
        c.validate();
    } catch (const error& e) {
        throw error(path + ": " + std::string(e.message()));
    }
    return c;
}

// Writes the Gemma 4 checkpoint `src` (tensors found by Hugging Face name
// through `names`) as a GGUF file: llama.cpp's tensor names, the gemma4.*
// metadata and rope_freqs, the tokenizer's keys, and every tensor in the type
// `types` gives it. A tensor the source holds in that type is copied as it
// is; any other is widened to float32 and quantized, row by row, exactly as
// load_weights converts it. `on_tensor` (optional) sees each tensor, under
// its GGUF name, as it is converted. The file is written to `out` and
// committed (io::output_file: a regular file appears under its path only
// once complete).
template <io::tensor_source Source>
void write_gguf(const config& c, const Source& src, io::output_file& out, const gguf_types& types,
                const name_map& names = {}, const tensor_callback& on_tensor = {}) {
    check_sizes(c, src, names);
    io::gguf_writer w;
    write_metadata(c, w);
    w.set("general.file_type", io::gguf_value::u32(types.file_type));
    w.set("general.quantization_version", io::gguf_value::u32(2));
    // llama.cpp loads no file without a tokenizer model: the source's
    // tokenizer, or "no_vocab" (token ids in, token ids out).
    if constexpr (requires { src.tokenizer_metadata(); })
        for (io::gguf_kv& kv : src.tokenizer_metadata()) w.set(std::move(kv.key), std::move(kv.value));
    if (std::ranges::none_of(w.metadata(), [](const io::gguf_kv& kv) { return kv.key == "tokenizer.ggml.model"; }))
        w.set("tokenizer.ggml.model", io::gguf_value::string("no_vocab"));
    const std::vector<float> rope_factors = rope_freq_factors(c);
    if (!rope_factors.empty()) {
        const auto bytes = std::as_bytes(std::span(rope_factors));
        w.add_tensor(std::string(rope_freqs_name), ggml_type::f32, {rope_factors.size()}, bytes);
        if (on_tensor) on_tensor(io::tensor_entry{std::string(rope_freqs_name), ggml_type::f32, {rope_factors.size()}, bytes});
    }
    // `storage` owns the converted tensors until write().
    std::vector<aligned_buffer> storage;
    byte_counts bytes;
    const tensor_callback add = [&](const io::tensor_entry& e) {
        io::tensor_entry named = e;
        named.name = gguf_name(e.name);
        w.add_tensor(named);
        if (on_tensor) on_tensor(named);
    };
    detail::weight_loader<Source> ld(src, names, storage, bytes, add);
    for (const parameter_shape& p : parameter_shapes(c)) {
        if (!p.trainable && !ld.contains(p.name)) continue; // layer_scalar: a checkpoint may lack it
        const ggml_type t = types.of(p.name);
        if (!visit_scheme(t, [&](auto s) { ld.template matrix<decltype(s)>(p.name, p.shape); }))
            throw error("write_gguf: " + p.name + ": qtensor has no scheme for type " + std::string(type_name(t)));
    }
    detail::refuse_unused(src, ld.used());
    w.write(out);
}

// The same in policy P's schemes, exactly: the file holds what load_weights<P>
// hands model<P>, so model<P> loaded from the file computes what model<P>
// loaded from src does, bit for bit (and throws where a row does not fit P).
template <class P, io::tensor_source Source>
    requires typed_policy<P>
void write_gguf(const config& c, const Source& src, io::output_file& out, const name_map& names = {},
                const tensor_callback& on_tensor = {}) {
    write_gguf(c, src, out, gguf_types::for_policy<P>(c), names, on_tensor);
}

// The same, to the file at `path`.
template <class P, io::tensor_source Source>
    requires typed_policy<P>
void write_gguf(const config& c, const Source& src, const std::string& path, const name_map& names = {},
                const tensor_callback& on_tensor = {}) {
    io::output_file out(path);
    write_gguf<P>(c, src, out, names, on_tensor);
}

} // namespace gemma4
QTENSOR_END_NAMESPACE
