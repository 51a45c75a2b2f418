// qtensor/gemma4/config_impl.hpp: the bodies of config's members: the
// checks, the derived geometry and the config.json reader. config.hpp
// includes this file, except in the TUs of a separately compiled program
// (core/config.hpp) that only declare them.
#pragma once

#include <cmath>
#include <cstddef>
#include <concepts>
#include <exception>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/gemma4/config.hpp"
#include "qtensor/io/json.hpp"
#include "qtensor/io/mapped_file.hpp"
#include "qtensor/nn/rope_frequencies.hpp"

#if defined(QTENSOR_DECLARE_ONLY)
#error "qtensor/gemma4/config_impl.hpp is compiled by the QTENSOR_DEFINE TU only"
#endif

QTENSOR_BEGIN_NAMESPACE
namespace gemma4 {
namespace detail {

// Typed field access with messages naming the field; JSON null counts as absent.
class json_fields {
public:
    explicit json_fields(const nlohmann::json& j) : j_(j) {}

    bool has(const std::string& key) const { return j_.contains(key) && !j_.at(key).is_null(); }
    const nlohmann::json& at(const std::string& key) const {
        if (!has(key)) throw error("config: missing field \"" + key + "\"");
        return j_.at(key);
    }

    // T is std::size_t (a count), bool, float, double or std::string.
    template <class T>
    T get(const std::string& key) const { return as<T>(at(key), key); }
    template <class T>
    T get(const std::string& key, T fallback) const { return has(key) ? get<T>(key) : fallback; }

    template <class T>
    static T as(const nlohmann::json& v, const std::string& key) {
        if constexpr (std::same_as<T, std::size_t>) {
            if (!v.is_number_integer() || (!v.is_number_unsigned() && v.get<long long>() < 0))
                fail(key, "a non-negative integer, got " + io::json_excerpt(v));
        } else if constexpr (std::same_as<T, bool>) {
            if (!v.is_boolean()) fail(key, "true or false");
        } else if constexpr (std::floating_point<T>) {
            if (!v.is_number()) fail(key, "a number");
            return static_cast<T>(v.get<double>());
        } else {
            static_assert(std::same_as<T, std::string>);
            if (!v.is_string()) fail(key, "a string");
        }
        return v.get<T>();
    }
    [[noreturn]] static void fail(const std::string& key, const std::string& want) {
        throw error("config: field \"" + key + "\" must be " + want);
    }

private:
    const nlohmann::json& j_;
};

// The object that holds a dotted key's last part (the object at
// "rope_parameters.full_attention" for "rope_parameters.full_attention.rope_theta",
// j itself for a plain key), or nullptr when an object on the way is absent or null.
inline const nlohmann::json* enclosing_object(const nlohmann::json& j, std::string_view key) {
    const nlohmann::json* o = &j;
    for (std::size_t from = 0, dot = key.find('.'); dot != std::string_view::npos;
         from = dot + 1, dot = key.find('.', from)) {
        const std::string name(key.substr(from, dot - from));
        if (!json_fields(*o).has(name)) return nullptr;
        o = &o->at(name);
        if (!o->is_object()) json_fields::fail(std::string(key.substr(0, dot)), "an object");
    }
    return o;
}

} // namespace detail

QTENSOR_INLINE void config::validate() const {
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

QTENSOR_INLINE std::vector<layer_info> config::layers() const {
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

QTENSOR_INLINE config config::from_hf_json(const nlohmann::json& root) {
    if (!root.is_object()) throw error("config: expected a JSON object");
    const nlohmann::json& j =
        root.contains("text_config") && root.at("text_config").is_object() ? root.at("text_config") : root;
    using detail::json_fields;
    const json_fields f(j);
    const std::string model_type = f.get<std::string>("model_type", "gemma4_text");
    if (model_type.rfind("gemma4", 0) != 0)
        throw error("config: model_type \"" + model_type + "\" is not a Gemma 4 model");
    if (f.get<bool>("attention_bias", false)) throw error("config: attention_bias = true is not supported");
    if (const std::string act = f.get<std::string>("hidden_activation", "gelu_pytorch_tanh"); act != "gelu_pytorch_tanh")
        throw error("config: hidden_activation \"" + act + "\" is not supported (only gelu_pytorch_tanh)");
    if (f.has("use_bidirectional_attention") && f.get<std::string>("use_bidirectional_attention") == "all")
        throw error("config: use_bidirectional_attention = \"all\" is not supported");

    config c;
    for_each_config_field([&](const auto& row) {
        using T = typename std::remove_cvref_t<decltype(row)>::value_type;
        if (!row.applies(c)) return;
        const nlohmann::json* o = detail::enclosing_object(j, row.hf_key);
        if (o == nullptr) return; // no rope_parameters.<type>: config's RoPE stays
        const std::string_view key(row.hf_key);
        if (const std::string last(key.substr(key.rfind('.') + 1)); json_fields(*o).has(last))
            row.of(c) = json_fields::as<T>(o->at(last), row.hf_key);
        else if (row.hf_default) row.of(c) = T(*row.hf_default);
        else throw error("config: missing field \"" + std::string(key) + "\"");
    });

    const nlohmann::json& types = f.at("layer_types");
    if (!types.is_array()) json_fields::fail("layer_types", "an array");
    for (const nlohmann::json& t : types) {
        if (t == "sliding_attention") c.layer_types.push_back(attention_type::sliding);
        else if (t == "full_attention") c.layer_types.push_back(attention_type::full);
        else throw error("config: layer_types entry " + io::json_excerpt(t) +
                         " is neither \"sliding_attention\" nor \"full_attention\"");
    }

    // Head geometry: Google's form first, then per_layer_config overrides.
    const std::size_t head_dim = f.get<std::size_t>("head_dim", 256);
    const std::size_t kv_heads = f.get<std::size_t>("num_key_value_heads");
    const bool per_layer = f.has("per_layer_config");
    const std::size_t global_head_dim = f.get<std::size_t>("global_head_dim", per_layer ? head_dim : 512);
    const std::size_t global_kv_heads =
        c.attention_k_eq_v ? f.get<std::size_t>("num_global_key_value_heads", kv_heads) : kv_heads;
    for (attention_type t : c.layer_types) {
        c.layer_head_dim.push_back(t == attention_type::full ? global_head_dim : head_dim);
        c.layer_kv_heads.push_back(t == attention_type::full ? global_kv_heads : kv_heads);
    }
    if (per_layer) {
        const nlohmann::json& plc = f.at("per_layer_config");
        if (!plc.is_object()) json_fields::fail("per_layer_config", "an object");
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
            if (!entry.is_object()) json_fields::fail(where, "an object");
            if (entry.contains("head_dim"))
                c.layer_head_dim[l] = json_fields::as<std::size_t>(entry.at("head_dim"), where + ".head_dim");
            if (entry.contains("num_key_value_heads"))
                c.layer_kv_heads[l] =
                    json_fields::as<std::size_t>(entry.at("num_key_value_heads"), where + ".num_key_value_heads");
        }
    }
    c.validate();
    return c;
}

QTENSOR_INLINE nlohmann::json config::hf_json(const std::filesystem::path& path) {
    const std::filesystem::path file =
        std::filesystem::is_directory(path) ? path / "config.json" : path;
    const io::mapped_file text(file.string());
    if (text.size() > max_config_bytes)
        throw error(file.string() + ": " + std::to_string(text.size()) + " bytes is too large for a config.json " +
                    "(at most " + std::to_string(max_config_bytes) + ")");
    return io::parse_json(std::string_view(reinterpret_cast<const char*>(text.bytes().data()), text.size()),
                          max_config_depth, file.string());
}

QTENSOR_INLINE config config::from_hf_file(const std::filesystem::path& path) {
    const std::filesystem::path file =
        std::filesystem::is_directory(path) ? path / "config.json" : path;
    const nlohmann::json j = hf_json(file);
    try {
        return from_hf_json(j);
    } catch (const error& e) {
        throw error(file.string() + ": " + std::string(e.message()));
    }
}

} // namespace gemma4
QTENSOR_END_NAMESPACE
