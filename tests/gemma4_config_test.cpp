// Gemma 4 config: both config.json dialects (Google's published fields and
// transformers 5.17's per_layer_config) and the multimodal wrapper, checked
// against the per-size numbers of docs/gemma4.md §1, §3, §4 and the
// fixtures' configs; errors for missing and ill-typed fields; policy names.
#include <doctest/doctest.h>

#include "gemma4_every_field.hpp"
#include "test_util.hpp"

#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "qtensor/gemma4/config.hpp"
#include "qtensor/gemma4/policy.hpp"

namespace gemma4_config_test {

using namespace qtensor;
using qtensor_test::message_of;

namespace {

const std::string fixtures = std::string(QTENSOR_TEST_DATA_DIR) + "/gemma4";

// (n_sliding x sliding, 1 x full) repeated `groups` times.
nlohmann::json pattern(int n_sliding, int groups) {
    nlohmann::json types = nlohmann::json::array();
    for (int g = 0; g < groups; ++g) {
        for (int i = 0; i < n_sliding; ++i) types.push_back("sliding_attention");
        types.push_back("full_attention");
    }
    return types;
}

const nlohmann::json rope_parameters = nlohmann::json::parse(R"({
    "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
    "full_attention": {"rope_type": "proportional", "partial_rotary_factor": 0.25, "rope_theta": 1000000.0}})");

// E2B as Google publishes it (§1).
nlohmann::json e2b_json() {
    return {{"model_type", "gemma4_text"},
            {"vocab_size", 262144},
            {"hidden_size", 1536},
            {"num_hidden_layers", 35},
            {"num_attention_heads", 8},
            {"num_key_value_heads", 1},
            {"head_dim", 256},
            {"global_head_dim", 512},
            {"attention_k_eq_v", false},
            {"intermediate_size", 6144},
            {"use_double_wide_mlp", true},
            {"layer_types", pattern(4, 7)},
            {"sliding_window", 512},
            {"num_kv_shared_layers", 20},
            {"hidden_size_per_layer_input", 256},
            {"vocab_size_per_layer_input", 262144},
            {"final_logit_softcapping", 30.0},
            {"rms_norm_eps", 1e-6},
            {"tie_word_embeddings", true},
            {"hidden_activation", "gelu_pytorch_tanh"},
            {"rope_parameters", rope_parameters}};
}

// 26B-A4B (§1): k_eq_v with 2 global KV heads, MoE, no PLE; wrapped as the
// multimodal Gemma4Config does.
nlohmann::json moe_26b_wrapped_json() {
    nlohmann::json text = {{"model_type", "gemma4_text"},
                           {"vocab_size", 262144},
                           {"hidden_size", 2816},
                           {"num_hidden_layers", 30},
                           {"num_attention_heads", 16},
                           {"num_key_value_heads", 8},
                           {"num_global_key_value_heads", 2},
                           {"head_dim", 256},
                           {"global_head_dim", 512},
                           {"attention_k_eq_v", true},
                           {"intermediate_size", 2112},
                           {"layer_types", pattern(5, 5)},
                           {"sliding_window", 1024},
                           {"num_kv_shared_layers", 0},
                           {"hidden_size_per_layer_input", 0},
                           {"enable_moe_block", true},
                           {"num_experts", 128},
                           {"top_k_experts", 8},
                           {"moe_intermediate_size", 704},
                           {"final_logit_softcapping", 30.0},
                           {"rope_parameters", rope_parameters}};
    return {{"model_type", "gemma4"}, {"text_config", text}, {"vision_config", {{"hidden_size", 1152}}}};
}

float rope_freq(double theta, std::size_t i, std::size_t d) {
    return static_cast<float>(std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(d)));
}

} // namespace

TEST_CASE("E2B, Google's form: full layers, KV sharing, double-wide MLP, proportional RoPE") {
    const gemma4::config c = gemma4::config::from_hf_json(e2b_json());
    const std::vector<gemma4::layer_info> layers = c.layers();
    REQUIRE(layers.size() == 35);
    CHECK(c.first_kv_shared_layer() == 15);
    for (std::size_t l = 0; l < 35; ++l) {
        CAPTURE(l);
        const gemma4::layer_info& li = layers[l];
        const bool full = l % 5 == 4; // 4, 9, ..., 34
        CHECK(li.is_sliding == !full);
        CHECK(li.head_dim == (full ? 512u : 256u));
        CHECK(li.kv_heads == 1);
        CHECK(li.has_v_proj); // k_eq_v off
        CHECK(li.has_kv == (l < 15));
        CHECK(li.kv_source_layer == (l < 15 ? l : full ? 14u : 13u));
        CHECK(li.mlp_width == (l < 15 ? 6144u : 12288u));
        REQUIRE(li.rope_freq.size() == li.head_dim / 2);
    }
    // Sliding: theta 1e4 over d = 256, every pair rotates.
    const std::vector<float>& fs = layers[0].rope_freq;
    CHECK(fs[0] == 1.0f);
    CHECK(fs[1] == rope_freq(1e4, 1, 256));
    CHECK(fs[127] == rope_freq(1e4, 127, 256));
    // Full: theta 1e6, exponent over the full d = 512, R = 64 pairs rotate.
    const std::vector<float>& ff = layers[4].rope_freq;
    CHECK(ff[0] == 1.0f);
    CHECK(ff[63] == rope_freq(1e6, 63, 512));
    CHECK(ff[64] == 0.0f);
    CHECK(ff[255] == 0.0f);
    CHECK(c.final_logit_softcapping == 30.0f);
    CHECK(c.hidden_size_per_layer_input == 256);
}

TEST_CASE("26B-A4B in the multimodal wrapper: k_eq_v, global KV heads, MoE") {
    const gemma4::config c = gemma4::config::from_hf_json(moe_26b_wrapped_json());
    const std::vector<gemma4::layer_info> layers = c.layers();
    REQUIRE(layers.size() == 30);
    for (std::size_t l = 0; l < 30; ++l) {
        CAPTURE(l);
        const bool full = l % 6 == 5; // 5, 11, ..., 29
        CHECK(layers[l].is_sliding == !full);
        CHECK(layers[l].head_dim == (full ? 512u : 256u));
        CHECK(layers[l].kv_heads == (full ? 2u : 8u));
        CHECK(layers[l].has_v_proj == !full);
        CHECK(layers[l].has_kv);
        CHECK(layers[l].kv_source_layer == l);
        CHECK(layers[l].mlp_width == 2112);
    }
    CHECK(c.enable_moe_block);
    CHECK(c.num_experts == 128);
    CHECK(c.top_k_experts == 8);
    CHECK(c.moe_intermediate_size == 704);
    CHECK(!c.has_per_layer_input());
    CHECK(c.sliding_window == 1024);
}

TEST_CASE("num_global_key_value_heads only applies with attention_k_eq_v") {
    nlohmann::json j = e2b_json();
    j["num_global_key_value_heads"] = 4; // ignored: k_eq_v is off (E2B/E4B use num_key_value_heads)
    CHECK(gemma4::config::from_hf_json(j).layers()[4].kv_heads == 1);
}

TEST_CASE("transformers 5.17 form: the fixtures' per_layer_config") {
    SUBCASE("tiny-e2b: head_dim 32 / 64, KV sharing of the last two layers") {
        const gemma4::config c = gemma4::config::from_hf_file(fixtures + "/tiny-e2b");
        const auto layers = c.layers();
        REQUIRE(layers.size() == 6);
        const std::size_t dims[] = {32, 32, 64, 32, 32, 64};
        const std::size_t sources[] = {0, 1, 2, 3, 3, 2};
        for (std::size_t l = 0; l < 6; ++l) {
            CAPTURE(l);
            CHECK(layers[l].head_dim == dims[l]);
            CHECK(layers[l].kv_heads == 2);
            CHECK(layers[l].has_kv == (l < 4));
            CHECK(layers[l].kv_source_layer == sources[l]);
            CHECK(layers[l].mlp_width == 256);
        }
        // Proportional RoPE, d = 64: floor(0.25 * 64 / 2) = 8 pairs rotate.
        CHECK(layers[2].rope_freq[7] == rope_freq(1e6, 7, 64));
        CHECK(layers[2].rope_freq[8] == 0.0f);
        CHECK(c.sliding_window == 8);
        CHECK(c.hidden_size_per_layer_input == 16);
        CHECK(c.vocab_size_per_layer_input == 512);
    }
    SUBCASE("tiny-moe: 1 KV head of 48 on full layers, k_eq_v") {
        const gemma4::config c = gemma4::config::from_hf_file(fixtures + "/tiny-moe/config.json");
        const auto layers = c.layers();
        REQUIRE(layers.size() == 4);
        for (std::size_t l = 0; l < 4; ++l) {
            CAPTURE(l);
            const bool full = l % 2 == 1;
            CHECK(layers[l].head_dim == (full ? 48u : 24u));
            CHECK(layers[l].kv_heads == (full ? 1u : 2u));
            CHECK(layers[l].has_v_proj == !full);
        }
        // d = 48: floor(0.25 * 48 / 2) = 6 pairs rotate.
        CHECK(layers[1].rope_freq[5] == rope_freq(1e6, 5, 48));
        CHECK(layers[1].rope_freq[6] == 0.0f);
        CHECK(c.enable_moe_block);
        CHECK(c.top_k_experts == 2);
        CHECK(!c.has_per_layer_input());
    }
}

TEST_CASE("config errors name the field") {
    SUBCASE("missing") {
        nlohmann::json j = e2b_json();
        j.erase("hidden_size");
        CHECK(message_of([&] { gemma4::config::from_hf_json(j); }).find("missing field \"hidden_size\"") !=
              std::string::npos);
        j = e2b_json();
        j.erase("layer_types");
        CHECK(message_of([&] { gemma4::config::from_hf_json(j); }).find("\"layer_types\"") != std::string::npos);
    }
    SUBCASE("ill-typed") {
        nlohmann::json j = e2b_json();
        j["hidden_size"] = "1536";
        CHECK(message_of([&] { gemma4::config::from_hf_json(j); })
                  .find("\"hidden_size\" must be a non-negative integer") != std::string::npos);
        j = e2b_json();
        j["num_attention_heads"] = -8;
        CHECK(message_of([&] { gemma4::config::from_hf_json(j); }).find("\"num_attention_heads\"") !=
              std::string::npos);
        j = e2b_json();
        j["attention_k_eq_v"] = 1;
        CHECK(message_of([&] { gemma4::config::from_hf_json(j); }).find("\"attention_k_eq_v\" must be true or false") !=
              std::string::npos);
        j = e2b_json();
        j["layer_types"][3] = "local";
        CHECK(message_of([&] { gemma4::config::from_hf_json(j); }).find("\"local\"") != std::string::npos);
    }
    SUBCASE("inconsistent") {
        nlohmann::json j = e2b_json();
        j["num_key_value_heads"] = 3; // 8 heads are not a multiple of 3
        CHECK(message_of([&] { gemma4::config::from_hf_json(j); }).find("3 KV heads") != std::string::npos);
        j = e2b_json();
        j["layer_types"].erase(0);
        CHECK(message_of([&] { gemma4::config::from_hf_json(j); }).find("34 entries for 35 layers") !=
              std::string::npos);
        j = e2b_json();
        j["rope_parameters"]["full_attention"]["rope_type"] = "yarn";
        CHECK(message_of([&] { gemma4::config::from_hf_json(j); }).find("\"yarn\" is not supported") !=
              std::string::npos);
        j = e2b_json();
        j["per_layer_config"] = {{"40", {{"head_dim", 64}}}};
        CHECK(message_of([&] { gemma4::config::from_hf_json(j); }).find("per_layer_config.40") !=
              std::string::npos);
        j = e2b_json();
        j["model_type"] = "llama";
        CHECK(message_of([&] { gemma4::config::from_hf_json(j); }).find("not a Gemma 4 model") !=
              std::string::npos);
    }
    SUBCASE("files") {
        const std::string missing = fixtures + "/no-such-dir/config.json";
        CHECK(message_of([&] { gemma4::config::from_hf_file(missing); }).find(missing + ": cannot open") !=
              std::string::npos);
        const std::string not_json = fixtures + "/tiny-e2b/model.safetensors";
        CHECK(message_of([&] { gemma4::config::from_hf_file(not_json); }).find("not valid JSON") !=
              std::string::npos);
    }
}

TEST_CASE("config_fields: each row's config.json key is read into its field, and into no other") {
    // Both RoPEs proportional over every pair, so that each RoPE key can change alone.
    nlohmann::json base = qtensor_test::every_field_json();
    base["rope_parameters"]["sliding_attention"]["rope_type"] = "proportional";
    base["rope_parameters"]["full_attention"]["partial_rotary_factor"] = 1.0;
    const gemma4::config before = gemma4::config::from_hf_json(base);
    gemma4::for_each_config_field([&](const auto& row) {
        INFO("row ", std::string(row.hf_key));
        const gemma4::config after = gemma4::config::from_hf_json(qtensor_test::with_changed(base, row));
        CHECK(row.of(after) != row.of(before));
        gemma4::for_each_config_field([&](const auto& other) {
            if (std::string_view(other.hf_key) == row.hf_key || !other.applies(after)) return;
            INFO("other row ", std::string(other.hf_key));
            CHECK(other.of(after) == other.of(before));
        });
    });
}

TEST_CASE("config_fields: a missing key takes the row's default, or is an error when required") {
    const nlohmann::json base = qtensor_test::every_field_json();
    gemma4::for_each_config_field([&](const auto& row) {
        INFO("row ", std::string(row.hf_key));
        nlohmann::json j = base;
        j.at(qtensor_test::pointer_to(row.hf_key)) = nullptr; // null counts as absent
        if (row.hf_default) {
            using T = typename std::remove_cvref_t<decltype(row)>::value_type;
            gemma4::config c;
            const std::string refused = message_of([&] { c = gemma4::config::from_hf_json(j); });
            if (refused == "(no qtensor::error thrown)") CHECK(row.of(c) == T(*row.hf_default));
            else CHECK(refused.find("RoPE") != std::string::npos); // a default RoPE type with a partial factor
        } else {
            CHECK(message_of([&] { gemma4::config::from_hf_json(j); }) ==
                  "qtensor: config: missing field \"" + std::string(row.hf_key) + "\"");
        }
    });
}

static_assert(gemma4::model_policy<gemma4::f32_policy>);
static_assert(gemma4::model_policy<gemma4::q4_0_policy>);
static_assert(gemma4::model_policy<gemma4::policy<q2_k, q4_0, q4_0, q8_0, q8_0>>);
static_assert(!gemma4::model_policy<gemma4::policy<q4_0, q4_0, q4_0, q4_0, q4_0>>); // no Q4_0 KV cache
static_assert(!gemma4::model_policy<gemma4::policy<q8_k, q4_0, q4_0, q4_0, f32>>);  // Q8_K is an activation format

TEST_CASE("policies by name") {
    for (std::string_view name : gemma4::policy_names)
        CHECK(gemma4::with_policy(name, [](auto p) { return std::string(decltype(p)::name); }) == name);
    CHECK(gemma4::with_policy("q4_0", [](auto p) {
        return std::is_same_v<typename decltype(p)::attention, q4_0> &&
               std::is_same_v<typename decltype(p)::embedding, q8_0>;
    }));
    const std::string msg = message_of([] { gemma4::with_policy("q3_k", [](auto) { return 0; }); });
    CHECK(msg.find("unknown policy \"q3_k\"") != std::string::npos);
    CHECK(msg.find("f32, bf16, q8_0, q4_0, q2_k") != std::string::npos);
}

// The defaults of Hugging Face transformers' Gemma4TextConfig
// (configuration_gemma4.py), written here, not read from the table, so that a
// wrong default in config_fields fails.
TEST_CASE("config.json without the optional keys gets transformers' defaults") {
    nlohmann::json j = qtensor_test::every_field_json();
    for (const char* key : {"max_position_embeddings", "sliding_window", "hidden_size_per_layer_input",
                            "vocab_size_per_layer_input", "rms_norm_eps", "final_logit_softcapping",
                            "tie_word_embeddings", "attention_k_eq_v", "use_double_wide_mlp", "enable_moe_block",
                            "num_kv_shared_layers", "num_experts", "top_k_experts", "moe_intermediate_size"})
        j.erase(key);
    const gemma4::config c = gemma4::config::from_hf_json(j);
    CHECK(c.max_position_embeddings == 131072);
    CHECK(c.sliding_window == 512);
    CHECK(c.hidden_size_per_layer_input == 256);
    CHECK(c.vocab_size_per_layer_input == 262144);
    CHECK(c.rms_norm_eps == 1e-6f); // stored as float
    CHECK(c.final_logit_softcapping == 0.0); // None: no softcap
    CHECK(c.tie_word_embeddings);
    CHECK_FALSE(c.attention_k_eq_v);
    CHECK_FALSE(c.use_double_wide_mlp);
    CHECK_FALSE(c.enable_moe_block);
    CHECK(c.num_kv_shared_layers == 0);
}

} // namespace gemma4_config_test
