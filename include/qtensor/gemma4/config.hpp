// qtensor/gemma4/config.hpp: the hyperparameters of a Gemma 4 text decoder,
// read from a Hugging Face config.json, and the per-layer geometry derived
// from them (docs/gemma4.md §1, §3, §4).
//
// `config` is a plain struct so other readers (GGUF metadata) can fill it
// directly; head size and KV-head count are stored per layer because the two
// config.json dialects say them differently:
//   - Google's published form: head_dim (sliding layers), global_head_dim (full
//     layers), num_key_value_heads, and num_global_key_value_heads for full
//     layers when attention_k_eq_v is on;
//   - transformers 5.17: head_dim and num_key_value_heads, overridden per layer
//     by per_layer_config {"<layer>": {"head_dim": N, "num_key_value_heads": K}}.
// The multimodal wrapper (Gemma4Config) nests the text model under text_config.
//
// config_fields is the one list of the scalar fields: their config.json keys,
// defaults and GGUF keys. from_hf_json (config_impl.hpp) and write_metadata /
// config_from_gguf (gguf.hpp) walk it, so a new field is one row.
#pragma once

#if !defined(QTENSOR_HAVE_JSON)
#error "qtensor/gemma4/config.hpp needs nlohmann-json: configure qtensor with QTENSOR_WITH_JSON=ON"
#endif

#include <cmath>
#include <algorithm>
#include <cstddef>
#include <concepts>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/nn/rope_frequencies.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace gemma4 {

enum class attention_type { sliding, full };

struct rope_config {
    std::string type = "default"; // "default": every pair rotates; "proportional": see rotated_pairs
    double theta = 10000.0;
    double partial_rotary_factor = 1.0;
    double factor = 1.0; // frequencies are divided by it
};

// What one decoder layer looks like, derived from the config.
struct layer_info {
    bool is_sliding = false;
    std::size_t head_dim = 0;        // d_l
    std::size_t kv_heads = 0;        // K_l
    bool has_kv = true;              // projects and caches its own K/V (false: KV-shared layer)
    bool has_v_proj = true;          // false with attention_k_eq_v on full layers: V = raw K projection
    std::size_t kv_source_layer = 0; // the layer whose K/V it attends over (itself when has_kv)
    std::size_t mlp_width = 0;       // F_l: intermediate_size, doubled on shared layers with use_double_wide_mlp
    std::vector<float> rope_freq;    // [d_l / 2] per-pair frequencies, 0 = not rotated
};

// Upper bounds on the sizes a config may give, checked by validate() before
// anything is sized from them: far above every released Gemma 4 (at most 60
// layers, hidden 5376, 32 heads of 512, vocabulary 262144, MLP width 21504,
// 128 experts), low enough that a hostile config.json or GGUF header of a few
// bytes cannot make the loader allocate much before the tensors are checked.
struct config_limits {
    static constexpr std::size_t layers = 1024;
    static constexpr std::size_t hidden = std::size_t{1} << 16;
    static constexpr std::size_t heads = 1024;
    static constexpr std::size_t head_dim = 4096;
    static constexpr std::size_t vocab = std::size_t{1} << 24;
    static constexpr std::size_t mlp_width = std::size_t{1} << 20;
    static constexpr std::size_t experts = 4096;
};

// A config.json is a few kilobytes; these bound what reading one may cost.
inline constexpr std::size_t max_config_bytes = std::size_t{16} << 20;
inline constexpr int max_config_depth = 32;

struct config {
    std::size_t vocab_size = 0;          // V
    std::size_t hidden_size = 0;         // D
    std::size_t num_hidden_layers = 0;   // L
    std::size_t num_attention_heads = 0; // H
    std::size_t intermediate_size = 0;
    std::size_t max_position_embeddings = 131072; // the trained context (GGUF context_length)
    std::vector<attention_type> layer_types; // [L]
    std::vector<std::size_t> layer_head_dim; // [L] d_l
    std::vector<std::size_t> layer_kv_heads; // [L] K_l
    bool attention_k_eq_v = false;
    std::size_t sliding_window = 512;
    std::size_t num_kv_shared_layers = 0;
    bool use_double_wide_mlp = false;
    std::size_t hidden_size_per_layer_input = 0; // P; 0 = no per-layer embeddings
    std::size_t vocab_size_per_layer_input = 0;
    bool enable_moe_block = false;
    std::size_t num_experts = 0;
    std::size_t top_k_experts = 0;
    std::size_t moe_intermediate_size = 0;
    float rms_norm_eps = 1e-6f;
    float final_logit_softcapping = 0.0f; // 0: none
    bool tie_word_embeddings = true;
    rope_config rope_sliding{"default", 10000.0, 1.0, 1.0};
    rope_config rope_full{"proportional", 1000000.0, 0.25, 1.0};

    bool has_per_layer_input() const noexcept { return hidden_size_per_layer_input != 0; }

    // Token ids below this have an embedding row (and a per-layer one).
    std::size_t input_vocab() const noexcept {
        return has_per_layer_input() ? std::min(vocab_size, vocab_size_per_layer_input) : vocab_size;
    }

    // Layers [first_kv_shared_layer(), L) reuse another layer's K/V.
    std::size_t first_kv_shared_layer() const noexcept {
        return num_kv_shared_layers < num_hidden_layers ? num_hidden_layers - num_kv_shared_layers : 0;
    }

    // Throws qtensor::error naming the first inconsistent field.
    void validate() const;

    // The derived geometry of every layer; validates first.
    std::vector<layer_info> layers() const;

    // From a parsed config.json (either dialect, or the multimodal wrapper).
    static config from_hf_json(const nlohmann::json& j);
    // From a config.json file, or a directory holding one.
    static config from_hf_file(const std::filesystem::path& path);
    // The parsed config.json (`path` is the file or its directory), size- and
    // depth-checked, for readers of keys beyond the architecture's
    // (quantization_config).
    static nlohmann::json hf_json(const std::filesystem::path& path);
};

// ---------------------------------------------------------------------------
// The field table
//
// One row per scalar field of `config` (or of one of its two rope_config):
//   config field   a member pointer; RoPE rows name the rope_config first
//   config.json    the key, dotted when nested ("rope_parameters.full_attention.rope_theta")
//   if absent      what a config.json without the key means: `required` (an
//                  error) or transformers' Gemma4TextConfig default. An absent
//                  rope_parameters.<type> keeps config's whole RoPE of that type;
//                  the RoPE rows' values fill a key missing inside a present one.
//                  (GGUF metadata without a key keeps the struct's own initial
//                  value instead, which can differ: no per-layer input there.)
//   GGUF           the key after "gemma4." (counts as u32, floats as f32); GGUF
//                  metadata without it keeps config's default. Or a tag:
//                  gguf_derived       config_from_gguf derives it (the row says from what)
//                  gguf_default_only  GGUF cannot say it; write_metadata refuses
//                                     any value but the config.json default
//   only with      (optional) a flag the field exists under: config.json's key is
//                  read, and the GGUF key written, only when it is on
//
// Not in the table, because they are per layer and each format spells them
// its own way (see from_hf_json, write_metadata, config_from_gguf):
// layer_types (GGUF attention.sliding_window_pattern), layer_head_dim
// (head_dim, global_head_dim, per_layer_config; GGUF attention.key_length and
// *_swa) and layer_kv_heads (num_key_value_heads, num_global_key_value_heads,
// per_layer_config; GGUF attention.head_count_kv).

inline constexpr std::nullopt_t required = std::nullopt;
struct gguf_derived_t {};
struct gguf_default_only_t {};
inline constexpr gguf_derived_t gguf_derived;
inline constexpr gguf_default_only_t gguf_default_only;

// One row. Part is config, or rope_config for a member of `rope`; Gguf is
// const char* (a key) or one of the tags above.
template <class Part, class T, class Gguf>
struct config_field {
    using value_type = T;
    using gguf_type = Gguf;
    // config.json spells a RoPE type as a string: a string_view keeps the default constexpr.
    using json_default = std::optional<std::conditional_t<std::same_as<T, std::string>, std::string_view, T>>;

    rope_config config::* rope; // which RoPE, when Part is rope_config
    T Part::* member;
    const char* hf_key;
    json_default hf_default; // nullopt: required
    Gguf gguf;
    bool config::* only_with; // nullptr: always

    template <class C> // config or const config
    constexpr auto& of(C& c) const {
        if constexpr (std::same_as<Part, config>) return c.*member;
        else return (c.*rope).*member;
    }
    bool applies(const config& c) const { return only_with == nullptr || c.*only_with; }
};

template <class T, class Gguf>
constexpr config_field<config, T, Gguf> field(T config::* member, const char* hf_key,
                                              typename config_field<config, T, Gguf>::json_default hf_default,
                                              Gguf gguf, bool config::* only_with = nullptr) {
    return {nullptr, member, hf_key, hf_default, gguf, only_with};
}
template <class T, class Gguf>
constexpr config_field<rope_config, T, Gguf> field(rope_config config::* rope, T rope_config::* member,
                                                   const char* hf_key,
                                                   typename config_field<rope_config, T, Gguf>::json_default hf_default,
                                                   Gguf gguf) {
    return {rope, member, hf_key, hf_default, gguf, nullptr};
}

// clang-format off
inline constexpr std::tuple config_fields{
    //    config field                          config.json key                if absent  GGUF key (or tag)                        only with
    field(&config::vocab_size,                  "vocab_size",                  required,  gguf_derived),                          // V: rows of token_embd (written as vocab_size too, for llama.cpp)
    field(&config::hidden_size,                 "hidden_size",                 required,  "embedding_length"),                    // D
    field(&config::num_hidden_layers,           "num_hidden_layers",           required,  "block_count"),                         // L
    field(&config::num_attention_heads,         "num_attention_heads",         required,  "attention.head_count"),                // H
    field(&config::intermediate_size,           "intermediate_size",           required,  gguf_derived),                          // F: feed_forward_length of layer 0
    field(&config::max_position_embeddings,     "max_position_embeddings",     131072,    "context_length"),                      // tokens
    field(&config::attention_k_eq_v,            "attention_k_eq_v",            false,     gguf_derived),                          // full layers with attn_k, no attn_v
    field(&config::sliding_window,              "sliding_window",              512,       "attention.sliding_window"),            // W tokens
    field(&config::num_kv_shared_layers,        "num_kv_shared_layers",        0,         "attention.shared_kv_layers"),          // layers at the end
    field(&config::use_double_wide_mlp,         "use_double_wide_mlp",         false,     gguf_derived),                          // feed_forward_length 2F on shared layers
    field(&config::hidden_size_per_layer_input, "hidden_size_per_layer_input", 256,       "embedding_length_per_layer_input"),    // P
    field(&config::vocab_size_per_layer_input,  "vocab_size_per_layer_input",  262144,    gguf_derived),                          // rows of per_layer_token_embd
    field(&config::enable_moe_block,            "enable_moe_block",            false,     gguf_derived),                          // expert_count != 0
    field(&config::num_experts,                 "num_experts",                 required,  "expert_count",               &config::enable_moe_block), // E
    field(&config::top_k_experts,               "top_k_experts",               required,  "expert_used_count",          &config::enable_moe_block), // k of E
    field(&config::moe_intermediate_size,       "moe_intermediate_size",       required,  "expert_feed_forward_length", &config::enable_moe_block), // I
    field(&config::rms_norm_eps,                "rms_norm_eps",                1e-6,      "attention.layer_norm_rms_epsilon"),    // RMSNorm epsilon
    field(&config::final_logit_softcapping,     "final_logit_softcapping",     0.0,       "final_logit_softcapping"),             // c; 0: no softcap
    field(&config::tie_word_embeddings,         "tie_word_embeddings",         true,      gguf_derived),                          // no output.weight
    // llama.cpp keeps a theta per layer type, and says which pairs of the full
    // layers rotate with the rope_freqs.weight tensor; nothing else of RoPE.
    //    RoPE of             member                           config.json key                                            if absent  GGUF key (or tag)
    field(&config::rope_sliding, &rope_config::type,                  "rope_parameters.sliding_attention.rope_type",             "default", gguf_default_only),
    field(&config::rope_sliding, &rope_config::theta,                 "rope_parameters.sliding_attention.rope_theta",            10000.0,   "rope.freq_base_swa"),
    field(&config::rope_sliding, &rope_config::partial_rotary_factor, "rope_parameters.sliding_attention.partial_rotary_factor", 1.0,       gguf_default_only),
    field(&config::rope_sliding, &rope_config::factor,                "rope_parameters.sliding_attention.factor",                1.0,       gguf_default_only),
    field(&config::rope_full,    &rope_config::type,                  "rope_parameters.full_attention.rope_type",                "default", gguf_derived), // rope_freqs.weight
    field(&config::rope_full,    &rope_config::theta,                 "rope_parameters.full_attention.rope_theta",               1000000.0, "rope.freq_base"),
    field(&config::rope_full,    &rope_config::partial_rotary_factor, "rope_parameters.full_attention.partial_rotary_factor",    1.0,       gguf_derived), // rope_freqs.weight
    field(&config::rope_full,    &rope_config::factor,                "rope_parameters.full_attention.factor",                   1.0,       gguf_default_only),
};
// clang-format on

// fn(row) for every row of config_fields, in order.
template <class Fn>
constexpr void for_each_config_field(Fn&& fn) {
    std::apply([&](const auto&... row) { (fn(row), ...); }, config_fields);
}

// Readers go through the rows in order and skip a row whose flag is off, so
// a flag's own row must come before the rows it gates.
constexpr bool flags_come_first() {
    bool ok = true;
    std::size_t seen_flags = 0;
    bool config::* flags[std::tuple_size_v<decltype(config_fields)>] = {};
    for_each_config_field([&](const auto& row) {
        if (row.only_with != nullptr) {
            bool seen = false;
            for (std::size_t i = 0; i < seen_flags; ++i) seen = seen || flags[i] == row.only_with;
            ok = ok && seen;
        }
        if constexpr (std::same_as<std::remove_cvref_t<decltype(row.member)>, bool config::*>)
            flags[seen_flags++] = row.member;
    });
    return ok;
}
static_assert(flags_come_first(), "config_fields: a row gated by a flag comes before the flag's own row");

// Whether a row's GGUF column is a key, or the tag G.
template <class Row>
concept gguf_keyed = std::same_as<typename std::remove_cvref_t<Row>::gguf_type, const char*>;
template <class Row, class G>
concept gguf_tagged = std::same_as<typename std::remove_cvref_t<Row>::gguf_type, G>;

namespace detail {

// Pairs a RoPE of head dim d rotates: all of them for "default"; for
// "proportional" floor(p * d / 2) (HF: int(p * d // 2)).
inline std::size_t rotated_pairs(const rope_config& r, std::size_t d, std::string_view where) {
    if (r.type == "default") {
        if (r.partial_rotary_factor != 1.0)
            throw error("config: " + std::string(where) +
                        " RoPE: partial_rotary_factor with rope_type \"default\" is not supported");
        return d / 2;
    }
    if (r.type == "proportional") {
        if (!(r.partial_rotary_factor > 0.0 && r.partial_rotary_factor <= 1.0))
            throw error("config: " + std::string(where) + " RoPE: partial_rotary_factor " +
                        std::to_string(r.partial_rotary_factor) + " is outside (0, 1]");
        return static_cast<std::size_t>(std::floor(r.partial_rotary_factor * static_cast<double>(d) / 2.0));
    }
    throw error("config: " + std::string(where) + " RoPE: rope_type \"" + r.type +
                "\" is not supported (only \"default\" and \"proportional\")");
}

} // namespace detail

} // namespace gemma4
QTENSOR_END_NAMESPACE

// config's members: compiled once in separate mode (core/config.hpp).
#if !defined(QTENSOR_DECLARE_ONLY)
#include "qtensor/gemma4/config_impl.hpp"
#endif
