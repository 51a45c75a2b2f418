// Gemma 4 as GGUF (qtensor/gemma4/gguf.hpp, checkpoint.hpp): config ->
// metadata -> config round trips, and checkpoints converted with write_gguf()
// on the Hugging Face fixtures (tests/data/gemma4), read back through the
// strict io::gguf_file reader and run.
//
// Expected names and keys are llama.cpp's (docs/gguf.md section 6).
// Logits of two runs over the same weight bytes with the same code are
// compared bit for bit; against the transformers reference with 1e-4 of the
// reference's max |logit| (see gemma4_model_test.cpp).
#include <doctest/doctest.h>

#include "gemma4_every_field.hpp"
#include "test_util.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "qtensor/gemma4/checkpoint.hpp"
#include "qtensor/gemma4/footprint.hpp"
#include "qtensor/gemma4/gguf.hpp"
#include "qtensor/gemma4/lattice.hpp"
#include "qtensor/gemma4/model.hpp"
#include "qtensor/io/gguf.hpp"
#include "qtensor/io/safetensors.hpp"
#include "qtensor/scheme/iq4_nl.hpp"
#include "qtensor/scheme/iq4_xs.hpp"
#include "qtensor/scheme/q3_k.hpp"
#include "qtensor/scheme/q4_1.hpp"
#include "qtensor/scheme/q5_0.hpp"
#include "qtensor/scheme/q5_k.hpp"
#include "qtensor/scheme/q5_1.hpp"
#include "qtensor/scheme/q6_k.hpp"

namespace gemma4_gguf_test {

using namespace qtensor;
using qtensor_test::max_abs;
using qtensor_test::max_diff;
using qtensor_test::message_of;

namespace {

const std::string fixtures = std::string(QTENSOR_TEST_DATA_DIR) + "/gemma4";

// A scratch directory, removed with its files at the end of the test.
struct scratch_dir {
    std::filesystem::path dir;
    scratch_dir() {
        static int n = 0;
        dir = std::filesystem::temp_directory_path() /
              ("qtensor_gemma4_gguf_test_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
        std::filesystem::create_directories(dir);
    }
    ~scratch_dir() {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
    std::string file(const std::string& name) const { return (dir / name).string(); }
};

struct fixture {
    std::string dir;
    io::safetensors_checkpoint weights;
    gemma4::config config;
    std::vector<std::int32_t> ids;
    std::vector<float> logits; // the transformers reference [T, V]

    explicit fixture(const std::string& name)
        : dir(fixtures + "/" + name), weights(dir), config(gemma4::config::from_hf_file(dir)) {
        const io::safetensors_file ref(dir + "/reference.safetensors");
        for (std::int64_t id : io::to_int64(ref.raw("input_ids"), ref.path())) ids.push_back(static_cast<std::int32_t>(id));
        logits = io::as_view<f32, 2>(ref.at("logits"), ref.path()).dequantize();
    }
};

const fixture& e2b() {
    static const fixture f("tiny-e2b");
    return f;
}
const fixture& moe() {
    static const fixture f("tiny-moe");
    return f;
}

// Google's published config of Gemma 4 E2B (text part), in its own dialect.
gemma4::config e2b_shaped() {
    nlohmann::json j = {
        {"model_type", "gemma4_text"}, {"vocab_size", 262144}, {"hidden_size", 1536},
        {"num_hidden_layers", 35}, {"num_attention_heads", 8}, {"num_key_value_heads", 1},
        {"head_dim", 256}, {"global_head_dim", 512}, {"intermediate_size", 6144},
        {"hidden_size_per_layer_input", 256}, {"vocab_size_per_layer_input", 262144},
        {"num_kv_shared_layers", 20}, {"use_double_wide_mlp", true}, {"sliding_window", 512},
        {"max_position_embeddings", 131072}, {"final_logit_softcapping", 30.0}, {"rms_norm_eps", 1e-6},
        {"rope_parameters",
         {{"sliding_attention", {{"rope_type", "default"}, {"rope_theta", 10000.0}}},
          {"full_attention", {{"rope_type", "proportional"}, {"partial_rotary_factor", 0.25}, {"rope_theta", 1000000.0}}}}}};
    nlohmann::json types = nlohmann::json::array();
    for (int l = 0; l < 35; ++l) types.push_back(l % 5 == 4 ? "full_attention" : "sliding_attention");
    j["layer_types"] = types;
    return gemma4::config::from_hf_json(j);
}

// A 31B-like variant: attention_k_eq_v with 4 KV heads on the full layers.
gemma4::config k_eq_v_shaped() {
    gemma4::config c = e2b_shaped();
    c.attention_k_eq_v = true;
    c.num_kv_shared_layers = 0;
    c.use_double_wide_mlp = false;
    c.hidden_size_per_layer_input = 0;
    for (std::size_t l = 0; l < c.num_hidden_layers; ++l)
        if (c.layer_types[l] == gemma4::attention_type::full) c.layer_kv_heads[l] = 4;
    return c;
}

// What config_from_gguf reads, without a file: a writer's metadata and the
// tensors llama.cpp derives fields from (shapes only; rope_freqs with values).
struct metadata_source {
    io::gguf_writer writer;
    std::vector<io::tensor_entry> tensors;
    std::vector<float> rope_factors;

    metadata_source(const metadata_source&) = delete; // tensors point into rope_factors
    explicit metadata_source(const gemma4::config& c) : rope_factors(gemma4::rope_freq_factors(c)) {
        gemma4::write_metadata(c, writer);
        tensors.push_back({"token_embd.weight", ggml_type::f32, {c.vocab_size, c.hidden_size}, {}});
        if (!c.tie_word_embeddings) tensors.push_back({"output.weight", ggml_type::f32, {c.vocab_size, c.hidden_size}, {}});
        if (c.has_per_layer_input())
            tensors.push_back({"per_layer_token_embd.weight", ggml_type::f32,
                               {c.vocab_size_per_layer_input, c.num_hidden_layers * c.hidden_size_per_layer_input}, {}});
        const auto layers = c.layers();
        for (std::size_t l = 0; l < layers.size(); ++l)
            if (layers[l].has_kv && layers[l].has_v_proj)
                tensors.push_back({"blk." + std::to_string(l) + ".attn_v.weight", ggml_type::f32, {1, 1}, {}});
        if (!rope_factors.empty())
            tensors.push_back({"rope_freqs.weight", ggml_type::f32, {rope_factors.size()},
                               std::as_bytes(std::span(rope_factors))});
    }
    std::string path() const { return "(metadata)"; }
    const io::gguf_value* find_metadata(std::string_view key) const {
        for (const io::gguf_kv& kv : writer.metadata())
            if (kv.key == key) return &kv.value;
        return nullptr;
    }
    const io::tensor_entry* find(std::string_view name) const {
        for (const io::tensor_entry& e : tensors)
            if (e.name == name) return &e;
        return nullptr;
    }
};

// Every field, and the derived per-layer geometry (rotated RoPE pairs included).
void check_same_config(const gemma4::config& a, const gemma4::config& b) {
    gemma4::for_each_config_field([&](const auto& row) {
        INFO("row ", std::string(row.hf_key));
        CHECK(row.of(a) == row.of(b));
    });
    CHECK(a.layer_types == b.layer_types);
    CHECK(a.layer_head_dim == b.layer_head_dim);
    CHECK(a.layer_kv_heads == b.layer_kv_heads);
    const auto la = a.layers(), lb = b.layers();
    REQUIRE(la.size() == lb.size());
    for (std::size_t l = 0; l < la.size(); ++l) {
        CAPTURE(l);
        CHECK(la[l].is_sliding == lb[l].is_sliding);
        CHECK(la[l].has_kv == lb[l].has_kv);
        CHECK(la[l].has_v_proj == lb[l].has_v_proj);
        CHECK(la[l].kv_source_layer == lb[l].kv_source_layer);
        CHECK(la[l].mlp_width == lb[l].mlp_width);
        CHECK(la[l].rope_freq == lb[l].rope_freq);
    }
}

std::size_t rotated_pairs(const std::vector<float>& freq) {
    return static_cast<std::size_t>(std::count_if(freq.begin(), freq.end(), [](float f) { return f != 0.0f; }));
}

template <class Policy>
std::vector<float> logits_of(const gemma4::config& c, const auto& src, const gemma4::name_map& names,
                             std::span<const std::int32_t> ids) {
    return gemma4::model<Policy>::load(c, src, names).forward(ids);
}

const io::tensor_entry& entry(const io::gguf_file& f, std::string_view name) {
    const io::tensor_entry* e = f.find(name);
    CAPTURE(name);
    REQUIRE(e != nullptr);
    return *e;
}

using shape = std::vector<std::size_t>;

// A source that replaces some tensors of another.
struct overlay_source {
    const io::safetensors_checkpoint& base;
    std::vector<io::tensor_entry> over;
    const io::tensor_entry* find(std::string_view n) const {
        for (const io::tensor_entry& e : over)
            if (e.name == n) return &e;
        return base.find(n);
    }
    std::string path() const { return base.path(); }
};

} // namespace

TEST_CASE("config -> GGUF metadata -> config gives the same config") {
    SUBCASE("tiny-e2b") { check_same_config(e2b().config, gemma4::config_from_gguf(metadata_source(e2b().config))); }
    SUBCASE("tiny-moe") { check_same_config(moe().config, gemma4::config_from_gguf(metadata_source(moe().config))); }
    SUBCASE("E2B-shaped: 35 layers, head dims 256 / 512, 20 KV-shared layers, double-wide MLP") {
        const gemma4::config c = e2b_shaped();
        const metadata_source src(c);
        const gemma4::config back = gemma4::config_from_gguf(src);
        check_same_config(c, back);
        // Hand-derived: proportional RoPE rotates floor(0.25 * 512 / 2) = 64
        // of the 256 pairs; llama.cpp's rope_freqs says so with 64 ones.
        CHECK(rotated_pairs(back.layers()[4].rope_freq) == 64);
        REQUIRE(src.rope_factors.size() == 256);
        CHECK(src.rope_factors[63] == 1.0f);
        CHECK(src.rope_factors[64] == 1e30f);
        CHECK(back.rope_full.partial_rotary_factor == 0.25);
        // Double-wide: the 20 shared layers have 2 x 6144.
        const io::gguf_value& widths = *src.find_metadata("gemma4.feed_forward_length");
        REQUIRE(widths.array_size() == 35);
        CHECK(widths.at(14).to_integer() == 6144);
        CHECK(widths.at(15).to_integer() == 12288);
        CHECK(src.find_metadata("gemma4.attention.key_length")->to_integer() == 512);
        CHECK(src.find_metadata("gemma4.attention.key_length_swa")->to_integer() == 256);
        CHECK(src.find_metadata("gemma4.attention.head_count_kv")->to_integer() == 1);
    }
    SUBCASE("k_eq_v with per-layer KV heads") {
        const gemma4::config c = k_eq_v_shaped();
        const metadata_source src(c);
        check_same_config(c, gemma4::config_from_gguf(src));
        CHECK(src.find_metadata("gemma4.attention.head_count_kv")->array_size() == 35);
    }
}

TEST_CASE("config_fields: config.json -> config -> GGUF metadata -> config keeps each row, changed in turn") {
    const nlohmann::json base = qtensor_test::every_field_json();
    const gemma4::config unchanged = gemma4::config::from_hf_json(base);
    check_same_config(unchanged, gemma4::config_from_gguf(metadata_source(unchanged)));
    gemma4::for_each_config_field([&](const auto& row) {
        using row_type = decltype(row);
        INFO("row ", std::string(row.hf_key));
        gemma4::config c;
        const std::string refused = message_of([&] { c = gemma4::config::from_hf_json(qtensor_test::with_changed(base, row)); });
        if (refused != "(no qtensor::error thrown)") {
            // A RoPE type or partial_rotary_factor cannot change alone here;
            // gemma4_config_test reads each key with a base where it can.
            CHECK(refused.find("RoPE") != std::string::npos);
            CHECK(!gemma4::gguf_keyed<row_type>);
            return;
        }
        if constexpr (gemma4::gguf_tagged<row_type, gemma4::gguf_default_only_t>) {
            io::gguf_writer w;
            CHECK(message_of([&] { gemma4::write_metadata(c, w); })
                      .find(std::string(row.hf_key) + " = ") != std::string::npos);
        } else {
            check_same_config(c, gemma4::config_from_gguf(metadata_source(c)));
        }
    });
}

TEST_CASE("configs GGUF cannot express, and metadata that does not make a config") {
    gemma4::config c = e2b().config;
    io::gguf_writer w;
    c.rope_full.factor = 8.0;
    CHECK(message_of([&] { gemma4::write_metadata(c, w); })
              .find("rope_parameters.full_attention.factor = 8.0 has no GGUF form (only 1.0)") != std::string::npos);
    c = e2b().config;
    c.layer_head_dim[1] = 64; // sliding layers 0 and 1 differ
    CHECK(message_of([&] { gemma4::write_metadata(c, w); }).find("different head sizes") != std::string::npos);

    metadata_source src(e2b().config);
    src.writer.set("gemma4.attention.sliding_window_pattern", io::gguf_value::array(std::vector<bool>{true, false}));
    CHECK(message_of([&] { gemma4::config_from_gguf(src); })
              .find("(metadata): metadata key gemma4.attention.sliding_window_pattern: must be 6 booleans") !=
          std::string::npos);
    metadata_source arch(e2b().config);
    arch.writer.set("general.architecture", io::gguf_value::string("llama"));
    CHECK(message_of([&] { gemma4::config_from_gguf(arch); }).find("\"llama\", not \"gemma4\"") != std::string::npos);
    metadata_source rope(e2b().config);
    rope.rope_factors[20] = 2.0f;
    CHECK(message_of([&] { gemma4::config_from_gguf(rope); }).find("rope_freqs.weight entry 20") != std::string::npos);
    metadata_source vocab(e2b().config);
    vocab.writer.set("gemma4.vocab_size", io::gguf_value::u32(511));
    CHECK(message_of([&] { gemma4::config_from_gguf(vocab); })
              .find("gemma4.vocab_size = 511, but token_embd.weight has 512 rows") != std::string::npos);
}

TEST_CASE("tiny-e2b converted with the f32 policy: llama.cpp's names, and the same logits as from Hugging Face") {
    const fixture& f = e2b();
    const scratch_dir tmp;
    const std::string path = tmp.file("e2b-f32.gguf");
    std::size_t reported = 0;
    gemma4::write_gguf<gemma4::f32_policy>(f.config, f.weights, path, {},
                                          [&](const io::tensor_entry&) { ++reported; });

    const io::gguf_file file(path);
    CHECK(file.metadata_string("general.architecture") == "gemma4");
    CHECK(file.metadata_integer("gemma4.block_count") == 6);
    CHECK(file.metadata_integer("gemma4.embedding_length") == 128);
    CHECK(file.metadata_integer("gemma4.embedding_length_per_layer_input") == 16);
    CHECK(file.metadata_integer("gemma4.attention.shared_kv_layers") == 2);
    CHECK(file.metadata_float("gemma4.final_logit_softcapping") == 30.0);
    // What llama.cpp needs to load a file without a tokenizer.
    CHECK(file.metadata_string("tokenizer.ggml.model") == "no_vocab");
    CHECK(file.metadata_integer("gemma4.vocab_size") == 512);
    // The 101 tensors of the Hugging Face file, renamed, and rope_freqs.
    CHECK(file.entries().size() == 102);
    CHECK(reported == 102);
    CHECK(entry(file, "token_embd.weight").shape == shape{512, 128});
    CHECK(entry(file, "per_layer_token_embd.weight").shape == shape{512, 96});
    CHECK(entry(file, "per_layer_model_proj.weight").shape == shape{96, 128});
    CHECK(entry(file, "per_layer_proj_norm.weight").shape == shape{16});
    CHECK(entry(file, "output_norm.weight").shape == shape{128});
    CHECK(entry(file, "blk.2.attn_k.weight").shape == shape{128, 128}); // 2 KV heads x 64
    CHECK(entry(file, "blk.0.attn_q_norm.weight").shape == shape{32});
    CHECK(entry(file, "blk.5.ffn_down.weight").shape == shape{128, 256});
    CHECK(entry(file, "blk.3.layer_output_scale.weight").shape == shape{1});
    CHECK(entry(file, "blk.1.inp_gate.weight").shape == shape{16, 128});
    CHECK(entry(file, "blk.1.proj.weight").shape == shape{128, 16});
    CHECK(entry(file, "blk.1.post_norm.weight").shape == shape{128});
    CHECK(file.find("output.weight") == nullptr); // tied head
    CHECK(file.find("blk.4.attn_k.weight") == nullptr); // KV-shared layer
    for (const io::tensor_entry& e : file.entries()) {
        CAPTURE(e.name);
        CHECK(e.type == ggml_type::f32);
        if (e.name == gemma4::rope_freqs_name) continue;
        // The same values as the Hugging Face tensor, byte for byte.
        const io::tensor_entry& hf = io::require(f.weights, gemma4::hf_name(e.name));
        CHECK(hf.shape == e.shape);
        REQUIRE(hf.data.size() == e.data.size());
        CHECK(std::memcmp(hf.data.data(), e.data.data(), e.data.size()) == 0);
    }
    // Full layers: head_dim 64, floor(0.25 * 64 / 2) = 8 rotated pairs of 32.
    const auto rope = io::as_view<f32, 1>(entry(file, "rope_freqs.weight"), path).dequantize();
    REQUIRE(rope.size() == 32);
    CHECK(std::count(rope.begin(), rope.end(), 1.0f) == 8);
    CHECK(rope[7] == 1.0f);
    CHECK(rope[8] == 1e30f);

    const gemma4::checkpoint ck(path);
    CHECK(ck.is_gguf());
    check_same_config(f.config, ck.config());
    const auto m = gemma4::model<gemma4::f32_policy>::load(ck.config(), ck, ck.names());
    CHECK(m.weight_bytes().owned == 0);
    const std::vector<float> from_gguf = m.forward(f.ids);
    CHECK(from_gguf == logits_of<gemma4::f32_policy>(f.config, f.weights, {}, f.ids));
    CHECK(max_diff(from_gguf, f.logits) <= 1e-4 * max_abs(f.logits));
}

TEST_CASE("convert carries a GGUF source's tokenizer over, key for key") {
    const fixture& f = e2b();
    const scratch_dir tmp;
    const std::string plain = tmp.file("plain.gguf"), with = tmp.file("tokenizer.gguf"), out = tmp.file("out.gguf");
    gemma4::write_gguf<gemma4::f32_policy>(f.config, f.weights, plain);
    // The same file with a tokenizer (a made-up one: 512 pieces).
    {
        const io::gguf_file p(plain);
        io::gguf_writer w;
        for (const io::gguf_kv& kv : p.metadata()) w.set(kv.key, kv.value);
        std::vector<std::string> tokens;
        for (int i = 0; i < 512; ++i) tokens.push_back("piece" + std::to_string(i));
        w.set("tokenizer.ggml.model", io::gguf_value::string("llama"));
        w.set("tokenizer.ggml.tokens", io::gguf_value::array(tokens));
        w.set("tokenizer.ggml.bos_token_id", io::gguf_value::u32(2));
        for (const io::tensor_entry& e : p.entries()) w.add_tensor(e);
        io::output_file o(with);
        w.write(o);
    }
    const gemma4::checkpoint ck(with);
    gemma4::write_gguf<gemma4::q8_0_policy>(ck.config(), ck, out, ck.names());
    const io::gguf_file src(with), dst(out);
    std::size_t carried = 0;
    for (const io::gguf_kv& kv : src.metadata()) {
        if (!kv.key.starts_with("tokenizer.")) continue;
        CAPTURE(kv.key);
        const io::gguf_value* v = dst.find_metadata(kv.key);
        REQUIRE(v != nullptr);
        CHECK(*v == kv.value);
        ++carried;
    }
    CHECK(carried == 3);
    CHECK(dst.metadata_string("tokenizer.ggml.model") == "llama");
    // convert --lattice's source hands it on too.
    const std::string aligned = tmp.file("aligned.gguf");
    gemma4::write_gguf<gemma4::q4_0_policy>(
        ck.config(), gemma4::aligned_source<gemma4::q4_0_policy, gemma4::checkpoint>(ck.config(), ck, ck.names()),
        aligned, ck.names());
    CHECK(io::gguf_file(aligned).metadata_string("tokenizer.ggml.model") == "llama");
}

TEST_CASE("converted with the q4_0 policy: stored in the policy's schemes, used in place, same logits") {
    for (const fixture* fp : {&e2b(), &moe()}) {
        const fixture& f = *fp;
        CAPTURE(f.dir);
        const scratch_dir tmp;
        const std::string path = tmp.file("q4_0.gguf");
        gemma4::write_gguf<gemma4::q4_0_policy>(f.config, f.weights, path);
        const io::gguf_file file(path);
        CHECK(file.metadata_integer("general.file_type") == 2); // llama.cpp's MOSTLY_Q4_0

        // q4_0_policy: attention and MLP Q4_0, embeddings Q8_0, per-layer
        // projections BF16, vectors and the router F32.
        CHECK(entry(file, "token_embd.weight").type == ggml_type::q8_0);
        CHECK(entry(file, "blk.0.attn_q.weight").type == ggml_type::q4_0);
        CHECK(entry(file, "blk.1.attn_output.weight").type == ggml_type::q4_0);
        CHECK(entry(file, "blk.0.ffn_gate.weight").type == ggml_type::q4_0);
        CHECK(entry(file, "blk.0.attn_norm.weight").type == ggml_type::f32);
        if (f.config.has_per_layer_input()) {
            CHECK(entry(file, "per_layer_token_embd.weight").type == ggml_type::q8_0);
            CHECK(entry(file, "per_layer_model_proj.weight").type == ggml_type::bf16);
            CHECK(entry(file, "blk.0.proj.weight").type == ggml_type::bf16);
        } else {
            // tiny-moe: experts keep their 3-D shape; k_eq_v full layers have no attn_v.
            CHECK(entry(file, "blk.0.ffn_gate_up_exps.weight").shape == shape{8, 64, 96});
            CHECK(entry(file, "blk.0.ffn_gate_up_exps.weight").type == ggml_type::q4_0);
            CHECK(entry(file, "blk.0.ffn_down_exps.weight").shape == shape{8, 96, 32});
            CHECK(entry(file, "blk.0.ffn_gate_inp.weight").type == ggml_type::f32);
            CHECK(entry(file, "blk.0.ffn_down_exps.scale").shape == shape{8});
            CHECK(file.find("blk.0.attn_v.weight") != nullptr);
            CHECK(file.find("blk.1.attn_v.weight") == nullptr);
        }

        const gemma4::checkpoint ck(path);
        check_same_config(f.config, ck.config());
        const auto m = gemma4::model<gemma4::q4_0_policy>::load(ck.config(), ck, ck.names(), {}, {},
                                                                gemma4::weight_layout::in_place);
        std::size_t weight_bytes = 0;
        for (const io::tensor_entry& e : file.entries())
            if (e.name != gemma4::rope_freqs_name) weight_bytes += e.data.size();
        CHECK(m.weight_bytes().owned == 0);
        CHECK(m.weight_bytes().mapped == weight_bytes);
        // The same weight bytes as quantized in memory from the f32 file.
        CHECK(m.forward(f.ids) == logits_of<gemma4::q4_0_policy>(f.config, f.weights, {}, f.ids));

        // Repacked into the interleaved layout (the default): the 24 tokens'
        // logits bit for bit (its arithmetic is the GGUF layout's from 4
        // tokens on), decoding token by token within float rounding. The
        // attention and MLP matrices (footprint's count) leave the mapping;
        // they and the tied head are copied into owned memory.
        const auto r = gemma4::model<gemma4::q4_0_policy>::load(ck.config(), ck, ck.names());
        CHECK(r.forward(f.ids) == m.forward(f.ids));
        auto in_place_cache = m.make_cache(8), repacked_cache = r.make_cache(8);
        for (std::size_t t = 0; t < 8; ++t) {
            const std::vector<float> want = m.decode(f.ids[t], in_place_cache);
            CHECK(max_diff(r.decode(f.ids[t], repacked_cache), want) <= 1e-5 * max_abs(want));
        }
        const gemma4::footprint counted =
            gemma4::measure_footprint(f.config, gemma4::storage_plan::of<gemma4::q4_0_policy>(), 0);
        const auto part = [&](std::string_view name) {
            for (const gemma4::footprint_part& p : counted.parts)
                if (p.name == name) return p.bytes;
            FAIL("no part " << name);
            return std::size_t{0};
        };
        CHECK(m.weight_bytes().mapped - r.weight_bytes().mapped == part("attention") + part("mlp"));
        CHECK(r.weight_bytes().owned >= part("attention") + part("mlp") + part("token table"));
    }
}

TEST_CASE("a GGUF file's tensors converted to another policy on load") {
    // The bf16 file loaded with the f32 policy: bf16 -> f32 widening is exact,
    // so it runs the f32 model on the Hugging Face weights rounded to bf16
    // (by the reference bf16 scheme), bit for bit.
    const fixture& f = e2b();
    const scratch_dir tmp;
    const std::string path = tmp.file("bf16.gguf");
    gemma4::write_gguf<gemma4::bf16_policy>(f.config, f.weights, path);
    const gemma4::checkpoint ck(path);
    const auto widened = gemma4::model<gemma4::f32_policy>::load(ck.config(), ck, ck.names());
    CHECK(widened.weight_bytes().owned > 0);

    overlay_source rounded{f.weights, {}};
    std::vector<std::vector<float>> values;
    for (const io::tensor_entry& e : f.weights.entries()) {
        if (e.shape.size() < 2) continue; // vectors stay f32 in every policy
        std::vector<float>& v = values.emplace_back(e.elements());
        std::memcpy(v.data(), e.data.data(), e.data.size());
        std::vector<bf16_t> half(v.size());
        bf16::quantize_row(v.data(), half.data(), v.size());
        bf16::dequantize_row(half.data(), v.data(), v.size());
    }
    std::size_t i = 0;
    for (const io::tensor_entry& e : f.weights.entries())
        if (e.shape.size() >= 2)
            rounded.over.push_back({e.name, ggml_type::f32, e.shape, std::as_bytes(std::span(values[i++]))});
    CHECK(widened.forward(f.ids) == logits_of<gemma4::f32_policy>(f.config, rounded, {}, f.ids));
}

// The types llama.cpp's mixes put beside their main one (Q4_0 files: q4_1,
// q6_k; Q4_K_M: q5_0 where rows do not fit; Q2_K: q3_k; Q3_K_M/L, Q4_K_S: q5_k;
// IQ4_XS: iq4_nl where rows do not fit).
TEST_CASE("tensors stored as q4_1, q5_0, q5_1, q3_k, q5_k, q6_k, iq4_nl, iq4_xs or f16 are widened as their reference dequantizer does, and kept exactly by stored_policy") {
    // Layer 0's down_proj [128, 256] (rows of 256: one K-quant super-block).
    const fixture& f = e2b();
    const std::string name = "model.layers.0.mlp.down_proj.weight";
    const io::tensor_entry& orig = io::require(f.weights, name);
    const std::size_t rows = orig.shape[0], cols = orig.shape[1];
    const auto x = io::as_view<f32, 2>(orig, f.weights.path()).dequantize();

    auto check_scheme = [&]<class S>() {
        CAPTURE(S::name);
        std::vector<block_of<S>> packed(rows * cols / S::block_elems);
        std::vector<float> back(rows * cols);
        for (std::size_t r = 0; r < rows; ++r) {
            S::quantize_row(x.data() + r * cols, packed.data() + r * (cols / S::block_elems), cols);
            S::dequantize_row(packed.data() + r * (cols / S::block_elems), back.data() + r * cols, cols);
        }
        CHECK(back != x); // the scheme really changed the values
        const overlay_source stored{f.weights, {{name, S::type_id, orig.shape, std::as_bytes(std::span(packed))}}};
        const overlay_source widened{f.weights, {{name, ggml_type::f32, orig.shape, std::as_bytes(std::span(back))}}};
        CHECK(logits_of<gemma4::f32_policy>(f.config, stored, {}, f.ids) ==
              logits_of<gemma4::f32_policy>(f.config, widened, {}, f.ids));
        // stored_policy keeps the values too: q5_0, iq4_nl as q8_0, the others as f32.
        std::vector<float> kept;
        gemma4::model<gemma4::stored_policy>::load(f.config, stored, {}, {}, [&](const io::tensor_entry& e) {
            if (e.name != name) return;
            CHECK(e.type == gemma4::stored_type(S::type_id));
            kept.resize(e.elements());
            visit_scheme(e.type, [&](auto k) {
                using K = decltype(k);
                K::dequantize_row(reinterpret_cast<const block_of<K>*>(e.data.data()), kept.data(), kept.size());
            });
        });
        CHECK(kept == back);
    };
    check_scheme.operator()<q4_1>();
    check_scheme.operator()<q5_0>();
    check_scheme.operator()<q5_1>();
    check_scheme.operator()<q3_k>();
    check_scheme.operator()<q5_k>();
    check_scheme.operator()<q6_k>();
    check_scheme.operator()<iq4_nl>();
    check_scheme.operator()<iq4_xs>();
    check_scheme.operator()<f16>();
}

// A file tensor in the wanted scheme whose bytes are not aligned for its
// blocks (safetensors data can sit at any offset) is copied into the model's
// storage as it is: the same bytes, not requantized; so is one kept as stored.
TEST_CASE("a tensor in the wanted scheme but not aligned for its blocks is copied, its bytes unchanged") {
    const fixture& f = e2b();
    const std::string name = "model.layers.0.mlp.down_proj.weight"; // [128, 256]
    const io::tensor_entry& orig = io::require(f.weights, name);
    const std::size_t rows = orig.shape[0], cols = orig.shape[1];
    const auto x = io::as_view<f32, 2>(orig, f.weights.path()).dequantize();
    const auto check = [&]<class S, class P>() {
        CAPTURE(S::name);
        std::vector<block_of<S>> packed(rows * cols / S::block_elems);
        for (std::size_t r = 0; r < rows; ++r)
            S::quantize_row(x.data() + r * cols, packed.data() + r * (cols / S::block_elems), cols);
        const std::span<const std::byte> bytes = std::as_bytes(std::span(packed));
        std::vector<std::byte> shifted(bytes.size() + 1); // heap memory: aligned, so +1 is not
        std::memcpy(shifted.data() + 1, bytes.data(), bytes.size());
        const std::span<const std::byte> odd = std::span<const std::byte>(shifted).subspan(1);
        REQUIRE(reinterpret_cast<std::uintptr_t>(odd.data()) % alignof(block_of<S>) != 0);
        const overlay_source aligned{f.weights, {{name, S::type_id, orig.shape, bytes}}};
        const overlay_source unaligned{f.weights, {{name, S::type_id, orig.shape, odd}}};

        bool seen = false;
        const auto m = gemma4::model<P>::load(
            f.config, unaligned, {}, {},
            [&](const io::tensor_entry& e) {
                if (e.name != name) return;
                seen = true;
                CHECK(e.type == S::type_id);
                REQUIRE(e.data.size() == bytes.size());
                CHECK(e.data.data() != odd.data());
                CHECK(std::memcmp(e.data.data(), bytes.data(), bytes.size()) == 0);
            },
            gemma4::weight_layout::in_place);
        CHECK(seen);
        const auto in_place = gemma4::model<P>::load(f.config, aligned, {}, {}, {}, gemma4::weight_layout::in_place);
        CHECK(m.weight_bytes().owned == in_place.weight_bytes().owned + bytes.size());
        CHECK(m.forward(f.ids) == in_place.forward(f.ids));
    };
    check.operator()<q8_0, gemma4::q8_0_policy>();
    check.operator()<q6_k, gemma4::stored_policy>();
}

TEST_CASE("checkpoint: Hugging Face directory, safetensors file, GGUF file, and errors") {
    const fixture& f = e2b();
    const gemma4::checkpoint dir(f.dir);
    CHECK(!dir.is_gguf());
    CHECK(!dir.names());
    check_same_config(f.config, dir.config());
    CHECK(dir.find("model.embed_tokens.weight") != nullptr);
    const gemma4::checkpoint file(f.dir + "/model.safetensors");
    check_same_config(f.config, file.config());

    const scratch_dir tmp;
    CHECK(message_of([&] { gemma4::checkpoint{tmp.file("none")}; }).find("none: no such file or directory") !=
          std::string::npos);
    const std::string path = tmp.file("m.gguf");
    gemma4::write_gguf<gemma4::f32_policy>(f.config, f.weights, path);
    CHECK(gemma4::checkpoint(path).names()("model.layers.3.mlp.up_proj.weight") == "blk.3.ffn_up.weight");
    // A truncated copy: the reader refuses it, naming the file.
    const std::string cut = tmp.file("cut.gguf");
    std::filesystem::copy_file(path, cut);
    std::filesystem::resize_file(cut, std::filesystem::file_size(path) / 2);
    CHECK(message_of([&] { gemma4::checkpoint{cut}; }).find(cut) != std::string::npos);
    // A file that is not there, and one the writer cannot create: no file left behind.
    CHECK(message_of([&] { gemma4::write_gguf<gemma4::f32_policy>(f.config, f.weights, tmp.file("no/dir/x.gguf")); })
              .find("cannot create") != std::string::npos);
}

} // namespace gemma4_gguf_test
