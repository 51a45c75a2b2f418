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
#pragma once

#if !defined(QTENSOR_HAVE_JSON)
#error "qtensor/gemma4/config.hpp needs nlohmann-json: configure qtensor with QTENSOR_WITH_JSON=ON"
#endif

#include <cmath>
#include <cstddef>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/io/json.hpp"
#include "qtensor/io/mapped_file.hpp"
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
};

namespace detail {

// Typed field access with messages naming the field; JSON null counts as absent.
class json_fields {
public:
    explicit json_fields(const nlohmann::json& j) : j_(j) {}

    bool has(const char* key) const { return j_.contains(key) && !j_.at(key).is_null(); }
    const nlohmann::json& at(const char* key) const {
        if (!has(key)) throw error("config: missing field \"" + std::string(key) + "\"");
        return j_.at(key);
    }

    std::size_t count(const char* key) const { return as_count(at(key), key); }
    std::size_t count(const char* key, std::size_t fallback) const {
        return has(key) ? count(key) : fallback;
    }
    double number(const char* key, double fallback) const {
        if (!has(key)) return fallback;
        if (!j_.at(key).is_number()) fail(key, "a number");
        return j_.at(key).get<double>();
    }
    bool flag(const char* key, bool fallback) const {
        if (!has(key)) return fallback;
        if (!j_.at(key).is_boolean()) fail(key, "true or false");
        return j_.at(key).get<bool>();
    }
    std::string text(const char* key, std::string fallback) const {
        if (!has(key)) return fallback;
        if (!j_.at(key).is_string()) fail(key, "a string");
        return j_.at(key).get<std::string>();
    }

    static std::size_t as_count(const nlohmann::json& v, const std::string& key) {
        if (!v.is_number_integer() || (!v.is_number_unsigned() && v.get<long long>() < 0))
            fail(key, "a non-negative integer, got " + io::json_excerpt(v));
        return v.get<std::size_t>();
    }
    [[noreturn]] static void fail(const std::string& key, const std::string& want) {
        throw error("config: field \"" + key + "\" must be " + want);
    }

private:
    const nlohmann::json& j_;
};

inline rope_config parse_rope(const nlohmann::json& j, const std::string& key, rope_config fallback) {
    if (j.is_null()) return fallback;
    if (!j.is_object()) json_fields::fail(key, "an object");
    const json_fields f(j);
    rope_config r;
    r.type = f.text("rope_type", "default");
    r.theta = f.number("rope_theta", fallback.theta);
    r.partial_rotary_factor = f.number("partial_rotary_factor", 1.0);
    r.factor = f.number("factor", 1.0);
    return r;
}

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

inline void config::validate() const {
    const auto need = [](bool ok, const std::string& what) {
        if (!ok) throw error("config: " + what);
    };
    need(vocab_size > 0, "vocab_size must be positive");
    need(hidden_size > 0, "hidden_size must be positive");
    need(num_hidden_layers > 0, "num_hidden_layers must be positive");
    need(num_attention_heads > 0, "num_attention_heads must be positive");
    need(intermediate_size > 0, "intermediate_size must be positive");
    const auto at_most = [&](std::size_t v, std::size_t limit, const char* what) {
        need(v <= limit, std::string(what) + " " + std::to_string(v) + " is over qtensor's limit of " +
                             std::to_string(limit) + " (config_limits)");
    };
    using lim = config_limits;
    at_most(num_hidden_layers, lim::layers, "num_hidden_layers");
    at_most(hidden_size, lim::hidden, "hidden_size");
    at_most(num_attention_heads, lim::heads, "num_attention_heads");
    at_most(vocab_size, lim::vocab, "vocab_size");
    at_most(vocab_size_per_layer_input, lim::vocab, "vocab_size_per_layer_input");
    at_most(hidden_size_per_layer_input, lim::hidden, "hidden_size_per_layer_input");
    at_most(intermediate_size, lim::mlp_width, "intermediate_size");
    at_most(moe_intermediate_size, lim::mlp_width, "moe_intermediate_size");
    at_most(num_experts, lim::experts, "num_experts");
    const std::size_t n = num_hidden_layers;
    need(layer_types.size() == n, "layer_types has " + std::to_string(layer_types.size()) +
                                      " entries for " + std::to_string(n) + " layers");
    need(layer_head_dim.size() == n && layer_kv_heads.size() == n,
         "per-layer head dims / KV heads need one entry per layer");
    for (std::size_t l = 0; l < n; ++l) {
        const std::string at = "layer " + std::to_string(l) + ": ";
        at_most(layer_head_dim[l], lim::head_dim, (at + "head_dim").c_str());
        need(layer_head_dim[l] > 0 && layer_head_dim[l] % 2 == 0,
             at + "head_dim " + std::to_string(layer_head_dim[l]) + " must be positive and even (RoPE pairs)");
        need(layer_kv_heads[l] > 0 && num_attention_heads % layer_kv_heads[l] == 0,
             at + std::to_string(num_attention_heads) + " attention heads are not a multiple of " +
                 std::to_string(layer_kv_heads[l]) + " KV heads");
        const bool sliding = layer_types[l] == attention_type::sliding;
        detail::rotated_pairs(sliding ? rope_sliding : rope_full, layer_head_dim[l],
                              sliding ? "sliding_attention" : "full_attention");
    }
    need(num_kv_shared_layers < n, "num_kv_shared_layers " + std::to_string(num_kv_shared_layers) +
                                       " leaves no layer with its own K/V");
    for (std::size_t l = first_kv_shared_layer(); num_kv_shared_layers != 0 && l < n; ++l) {
        bool found = false;
        for (std::size_t j = 0; j < first_kv_shared_layer(); ++j) found = found || layer_types[j] == layer_types[l];
        need(found, "KV-shared layer " + std::to_string(l) +
                        " has no earlier non-shared layer of its attention type to read");
    }
    for (attention_type t : layer_types)
        need(t == attention_type::full || sliding_window > 0, "sliding_window must be positive");
    need(!has_per_layer_input() || vocab_size_per_layer_input > 0,
         "vocab_size_per_layer_input must be positive with per-layer inputs");
    need(!enable_moe_block || (num_experts > 0 && top_k_experts > 0 &&
                               top_k_experts <= num_experts && moe_intermediate_size > 0),
         "enable_moe_block needs num_experts > 0, 0 < top_k_experts <= num_experts and "
         "moe_intermediate_size > 0");
    need(std::isfinite(rms_norm_eps) && rms_norm_eps > 0.0f, "rms_norm_eps must be positive and finite");
    need(std::isfinite(final_logit_softcapping) && final_logit_softcapping >= 0.0f,
         "final_logit_softcapping must be finite and not negative");
    for (const auto& [r, name] : {std::pair{&rope_sliding, "sliding_attention"}, std::pair{&rope_full, "full_attention"}})
        need(std::isfinite(r->theta) && r->theta > 0.0 && std::isfinite(r->factor) && r->factor > 0.0,
             std::string(name) + " RoPE: rope_theta and factor must be positive and finite");
}

inline std::vector<layer_info> config::layers() const {
    validate();
    const std::size_t n = num_hidden_layers, first_shared = first_kv_shared_layer();
    std::vector<layer_info> out(n);
    for (std::size_t l = 0; l < n; ++l) {
        layer_info& li = out[l];
        li.is_sliding = layer_types[l] == attention_type::sliding;
        li.head_dim = layer_head_dim[l];
        li.kv_heads = layer_kv_heads[l];
        li.has_kv = num_kv_shared_layers == 0 || l < first_shared;
        li.has_v_proj = !(attention_k_eq_v && !li.is_sliding);
        li.kv_source_layer = l;
        if (!li.has_kv) // the last non-shared layer of the same type
            for (std::size_t j = 0; j < first_shared; ++j)
                if (layer_types[j] == layer_types[l]) li.kv_source_layer = j;
        li.mlp_width = intermediate_size * (use_double_wide_mlp && !li.has_kv ? 2 : 1);
        const rope_config& r = li.is_sliding ? rope_sliding : rope_full;
        li.rope_freq = nn::rope_frequencies(
            li.head_dim, r.theta,
            detail::rotated_pairs(r, li.head_dim, li.is_sliding ? "sliding_attention" : "full_attention"),
            r.factor);
    }
    for (const layer_info& li : out) {
        const layer_info& src = out[li.kv_source_layer];
        if (src.head_dim != li.head_dim || src.kv_heads != li.kv_heads)
            throw error("config: a KV-shared layer's head_dim / KV heads differ from its source layer " +
                        std::to_string(li.kv_source_layer));
    }
    return out;
}

inline config config::from_hf_json(const nlohmann::json& root) {
    if (!root.is_object()) throw error("config: expected a JSON object");
    const nlohmann::json& j =
        root.contains("text_config") && root.at("text_config").is_object() ? root.at("text_config") : root;
    const detail::json_fields f(j);
    const std::string model_type = f.text("model_type", "gemma4_text");
    if (model_type.rfind("gemma4", 0) != 0)
        throw error("config: model_type \"" + model_type + "\" is not a Gemma 4 model");
    if (f.flag("attention_bias", false)) throw error("config: attention_bias = true is not supported");
    if (const std::string act = f.text("hidden_activation", "gelu_pytorch_tanh"); act != "gelu_pytorch_tanh")
        throw error("config: hidden_activation \"" + act + "\" is not supported (only gelu_pytorch_tanh)");
    if (f.has("use_bidirectional_attention") && f.text("use_bidirectional_attention", "") == "all")
        throw error("config: use_bidirectional_attention = \"all\" is not supported");

    config c;
    c.vocab_size = f.count("vocab_size");
    c.hidden_size = f.count("hidden_size");
    c.num_hidden_layers = f.count("num_hidden_layers");
    c.num_attention_heads = f.count("num_attention_heads");
    c.intermediate_size = f.count("intermediate_size");
    c.max_position_embeddings = f.count("max_position_embeddings", c.max_position_embeddings);
    // Defaults below are transformers' Gemma4TextConfig defaults.
    c.attention_k_eq_v = f.flag("attention_k_eq_v", false);
    c.sliding_window = f.count("sliding_window", 512);
    c.num_kv_shared_layers = f.count("num_kv_shared_layers", 0);
    c.use_double_wide_mlp = f.flag("use_double_wide_mlp", false);
    c.hidden_size_per_layer_input = f.count("hidden_size_per_layer_input", 256);
    c.vocab_size_per_layer_input = f.count("vocab_size_per_layer_input", 262144);
    c.enable_moe_block = f.flag("enable_moe_block", false);
    if (c.enable_moe_block) {
        c.num_experts = f.count("num_experts");
        c.top_k_experts = f.count("top_k_experts");
        c.moe_intermediate_size = f.count("moe_intermediate_size");
    }
    c.rms_norm_eps = static_cast<float>(f.number("rms_norm_eps", 1e-6));
    c.final_logit_softcapping = static_cast<float>(f.number("final_logit_softcapping", 0.0));
    c.tie_word_embeddings = f.flag("tie_word_embeddings", true);

    const nlohmann::json& types = f.at("layer_types");
    if (!types.is_array()) detail::json_fields::fail("layer_types", "an array");
    for (const nlohmann::json& t : types) {
        if (t == "sliding_attention") c.layer_types.push_back(attention_type::sliding);
        else if (t == "full_attention") c.layer_types.push_back(attention_type::full);
        else throw error("config: layer_types entry " + io::json_excerpt(t) +
                         " is neither \"sliding_attention\" nor \"full_attention\"");
    }

    // Head geometry: Google's form first, then per_layer_config overrides.
    const std::size_t head_dim = f.count("head_dim", 256);
    const std::size_t kv_heads = f.count("num_key_value_heads");
    const bool per_layer = f.has("per_layer_config");
    const std::size_t global_head_dim = f.count("global_head_dim", per_layer ? head_dim : 512);
    const std::size_t global_kv_heads =
        c.attention_k_eq_v ? f.count("num_global_key_value_heads", kv_heads) : kv_heads;
    for (attention_type t : c.layer_types) {
        c.layer_head_dim.push_back(t == attention_type::full ? global_head_dim : head_dim);
        c.layer_kv_heads.push_back(t == attention_type::full ? global_kv_heads : kv_heads);
    }
    if (per_layer) {
        const nlohmann::json& plc = f.at("per_layer_config");
        if (!plc.is_object()) detail::json_fields::fail("per_layer_config", "an object");
        for (const auto& [key, entry] : plc.items()) {
            const std::string where = "per_layer_config." + key;
            std::size_t l = 0;
            try {
                std::size_t used = 0;
                l = std::stoul(key, &used);
                if (used != key.size()) throw std::invalid_argument(key);
            } catch (const std::exception&) {
                throw error("config: " + where + ": the key is not a layer index");
            }
            if (l >= c.layer_types.size())
                throw error("config: " + where + ": no layer " + key + " in layer_types");
            if (!entry.is_object()) detail::json_fields::fail(where, "an object");
            if (entry.contains("head_dim"))
                c.layer_head_dim[l] = detail::json_fields::as_count(entry.at("head_dim"), where + ".head_dim");
            if (entry.contains("num_key_value_heads"))
                c.layer_kv_heads[l] = detail::json_fields::as_count(entry.at("num_key_value_heads"),
                                                                     where + ".num_key_value_heads");
        }
    }

    if (f.has("rope_parameters")) {
        const nlohmann::json& rp = f.at("rope_parameters");
        if (!rp.is_object()) detail::json_fields::fail("rope_parameters", "an object");
        if (rp.contains("sliding_attention"))
            c.rope_sliding = detail::parse_rope(rp.at("sliding_attention"), "rope_parameters.sliding_attention",
                                                c.rope_sliding);
        if (rp.contains("full_attention"))
            c.rope_full = detail::parse_rope(rp.at("full_attention"), "rope_parameters.full_attention",
                                             c.rope_full);
    }
    c.validate();
    return c;
}

inline config config::from_hf_file(const std::filesystem::path& path) {
    const std::filesystem::path file =
        std::filesystem::is_directory(path) ? path / "config.json" : path;
    const io::mapped_file text(file.string());
    if (text.size() > max_config_bytes)
        throw error(file.string() + ": " + std::to_string(text.size()) + " bytes is too large for a config.json " +
                    "(at most " + std::to_string(max_config_bytes) + ")");
    const nlohmann::json j = io::parse_json(
        std::string_view(reinterpret_cast<const char*>(text.bytes().data()), text.size()), max_config_depth,
        file.string());
    try {
        return from_hf_json(j);
    } catch (const error& e) {
        throw error(file.string() + ": " + (e.what() + std::string_view("qtensor: ").size()));
    }
}

} // namespace gemma4
QTENSOR_END_NAMESPACE
