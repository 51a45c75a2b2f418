// A config.json that gives every key of gemma4::config_fields, and the same
// with one key changed: the tests that config.json, the config and GGUF
// metadata agree on every row of the table (gemma4_config_test.cpp,
// gemma4_gguf_test.cpp). A new row with a default is covered without editing
// this file; a new required row, or a new kind of string, needs its key here.
#pragma once

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace qtensor_test {

// (sliding, sliding, full) repeated over `layers` layers.
inline nlohmann::json every_field_layer_types(std::size_t layers) {
    nlohmann::json types = nlohmann::json::array();
    for (std::size_t l = 0; l < layers; ++l) types.push_back(l % 3 == 2 ? "full_attention" : "sliding_attention");
    return types;
}

// 6 layers with everything a field switches on (per-layer inputs, KV sharing,
// a double-wide MLP, MoE, an untied head), so that every field matters, and
// values that stay valid when any one of them changes. The sliding layers'
// RoPE is the one GGUF can write (default, every pair); the full layers'
// rotates half their pairs.
inline nlohmann::json every_field_json() {
    nlohmann::json j = {
        {"model_type", "gemma4_text"}, {"vocab_size", 512}, {"hidden_size", 64}, {"num_hidden_layers", 6},
        {"num_attention_heads", 4}, {"num_key_value_heads", 1}, {"head_dim", 32}, {"global_head_dim", 64},
        {"intermediate_size", 128}, {"max_position_embeddings", 4096}, {"attention_k_eq_v", false},
        {"sliding_window", 16}, {"num_kv_shared_layers", 2}, {"use_double_wide_mlp", true},
        {"hidden_size_per_layer_input", 8}, {"vocab_size_per_layer_input", 256}, {"enable_moe_block", true},
        {"num_experts", 4}, {"top_k_experts", 2}, {"moe_intermediate_size", 32}, {"rms_norm_eps", 1e-6},
        {"final_logit_softcapping", 30.0}, {"tie_word_embeddings", false},
        {"rope_parameters",
         {{"sliding_attention",
           {{"rope_type", "default"}, {"rope_theta", 10000.0}, {"partial_rotary_factor", 1.0}, {"factor", 1.0}}},
          {"full_attention",
           {{"rope_type", "proportional"}, {"rope_theta", 1000000.0}, {"partial_rotary_factor", 0.5}, {"factor", 1.0}}}}}};
    j["layer_types"] = every_field_layer_types(6);
    return j;
}

// A dotted config_fields key as a JSON pointer: "a.b" -> "/a/b".
inline nlohmann::json::json_pointer pointer_to(std::string_view dotted) {
    std::string pointer = "/";
    pointer += dotted;
    std::replace(pointer.begin(), pointer.end(), '.', '/');
    return nlohmann::json::json_pointer(pointer);
}

// Another value of v's JSON type: a flag flipped, a count plus one, a float
// halved, the other RoPE type (the only strings in the table).
inline nlohmann::json changed(const nlohmann::json& v) {
    if (v.is_boolean()) return !v.get<bool>();
    if (v.is_number_integer()) return v.get<std::int64_t>() + 1;
    if (v.is_number_float()) return v.get<double>() / 2;
    if (v == "default") return "proportional";
    if (v == "proportional") return "default";
    throw std::logic_error("no other value for " + v.dump());
}

// `j` with the key of `row` changed (from the row's default when j lacks
// it), and layer_types as long as num_hidden_layers says.
template <class Row>
nlohmann::json with_changed(nlohmann::json j, const Row& row) {
    nlohmann::json& v = j[pointer_to(row.hf_key)];
    if (v.is_null() && row.hf_default) v = typename Row::value_type(*row.hf_default);
    v = changed(v);
    j["layer_types"] = every_field_layer_types(j.at("num_hidden_layers").get<std::size_t>());
    return j;
}

} // namespace qtensor_test
