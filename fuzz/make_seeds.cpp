// fuzz/make_seeds.cpp: writes the seed corpora of the fuzz targets, one
// folder per target under OUT_DIR, made by the project's own writers
// (io::gguf_writer, gemma4::write_gguf) and from the fixtures' config.json
// files, so the seeds follow the formats as the code changes. Every seed is
// small (the largest about 150 KiB): libFuzzer mutates small inputs faster.
//
//   qtensor_make_seeds OUT_DIR
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <tuple>
#include <exception>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "fuzz_support.hpp"
#include "qtensor/gemma4/config.hpp"
#include "qtensor/text/gguf_tokenizer.hpp"
#include "qtensor/text/sentencepiece_model.hpp"
#include "qtensor/gemma4/gguf.hpp"
#include "qtensor/gemma4/policy.hpp"
#include "qtensor/io/gguf.hpp"
#include "qtensor/io/safetensors.hpp"
#include "qtensor/scheme/float.hpp"
#include "qtensor/scheme/iq4_nl.hpp"
#include "qtensor/scheme/iq4_xs.hpp"
#include "qtensor/scheme/q2_k.hpp"
#include "qtensor/scheme/q3_k.hpp"
#include "qtensor/scheme/q4_0.hpp"
#include "qtensor/scheme/q4_1.hpp"
#include "qtensor/scheme/q4_k.hpp"
#include "qtensor/scheme/q5_0.hpp"
#include "qtensor/scheme/q5_k.hpp"
#include "qtensor/scheme/q5_1.hpp"
#include "qtensor/scheme/q6_k.hpp"
#include "qtensor/scheme/q8_0.hpp"
#include "qtensor/tensor/tensor.hpp"

namespace fs = std::filesystem;
using namespace qtensor;
using nlohmann::json;
using namespace std::string_literals;
using qtensor_fuzz::write_file;

namespace {

// Deterministic values in [-scale, scale]: the seeds are the same on every run.
class values {
public:
    float next(float scale) {
        state_ = state_ * 6364136223846793005ull + 1442695040888963407ull;
        return scale * (static_cast<float>(state_ >> 40) / static_cast<float>(1u << 24) * 2.0f - 1.0f);
    }
    std::vector<float> take(std::size_t n, float scale, float offset = 0.0f) {
        std::vector<float> v(n);
        for (float& x : v) x = offset + next(scale);
        return v;
    }

private:
    std::uint64_t state_ = 0x9e3779b97f4a7c15ull;
};

values rng;

// ---- GGUF files from io::gguf_writer -------------------------------------

// A tensor of scheme S with rows of `cols`, quantized from random values;
// the tensor owns the bytes the writer points at until the file is written.
template <class S>
void add_tensor(io::gguf_writer& w, std::vector<tensor<S, 2>>& keep, std::string name,
                std::vector<std::size_t> shape) {
    std::size_t rows = 1;
    for (std::size_t i = 0; i + 1 < shape.size(); ++i) rows *= shape[i];
    const std::size_t cols = shape.back();
    const tensor<S, 2>& t = keep.emplace_back(tensor<S, 2>::quantize(rng.take(rows * cols, 2.0f), {rows, cols}));
    w.add_tensor(std::move(name), S::type_id, std::move(shape),
                 std::span<const std::byte>(t.data_handle(), t.size_bytes()));
}

void gguf_seeds(const fs::path& out) {
    using io::gguf_value;
    io::gguf_writer().write((out / "empty.gguf").string());

    io::gguf_writer tok; // a tokenizer: tests/data/tokenizer/tiny.model as llama.cpp's keys
    const std::string tiny = (fs::path(QTENSOR_FUZZ_DATA_DIR) / "tokenizer" / "tiny.model").string();
    for (io::gguf_kv& kv : text::gguf_tokenizer_metadata(text::read_sentencepiece_model(tiny)))
        tok.set(std::move(kv.key), std::move(kv.value));
    tok.write((out / "tokenizer.gguf").string());

    io::gguf_writer kv; // every value type, as a scalar and as an array
    kv.set("general.architecture", gguf_value::string("gemma4"));
    kv.set("general.name", gguf_value::string("seed \"quoted\"\n"));
    kv.set("u8", gguf_value::u8(200));
    kv.set("i8", gguf_value::i8(-100));
    kv.set("u16", gguf_value::u16(60000));
    kv.set("i16", gguf_value::i16(-30000));
    kv.set("u32", gguf_value::u32(4000000000u));
    kv.set("i32", gguf_value::i32(-2000000000));
    kv.set("f32", gguf_value::f32(0.1f));
    kv.set("bool", gguf_value::boolean(true));
    kv.set("u64", gguf_value::u64(~std::uint64_t{0}));
    kv.set("i64", gguf_value::i64(-1));
    kv.set("f64", gguf_value::f64(1e300));
    kv.set("array.u8", gguf_value::array(std::vector<std::uint8_t>{1, 2, 255}));
    kv.set("array.i8", gguf_value::array(std::vector<std::int8_t>{-1, 0, 1}));
    kv.set("array.u16", gguf_value::array(std::vector<std::uint16_t>{1, 65535}));
    kv.set("array.i16", gguf_value::array(std::vector<std::int16_t>{-32768, 7}));
    kv.set("array.u32", gguf_value::array(std::vector<std::uint32_t>{32, 64}));
    kv.set("array.i32", gguf_value::array(std::vector<std::int32_t>{-5, 5}));
    kv.set("array.f32", gguf_value::array(std::vector<float>{1.0f, -0.0f, 1e30f}));
    kv.set("array.bool", gguf_value::array(std::vector<bool>{true, false, true}));
    kv.set("array.string", gguf_value::array(std::vector<std::string>{"a", "", "token"}));
    kv.set("array.u64", gguf_value::array(std::vector<std::uint64_t>{0, 1}));
    kv.set("array.i64", gguf_value::array(std::vector<std::int64_t>{-9, 9}));
    kv.set("array.f64", gguf_value::array(std::vector<double>{0.5}));
    kv.set("array.empty", gguf_value::array(std::vector<std::uint32_t>{}));
    kv.write((out / "metadata.gguf").string());

    // A tensor of every type qtensor reads, of ranks 1 to 4.
    io::gguf_writer t;
    t.set("general.architecture", gguf_value::string("seed"));
    std::vector<tensor<f32, 2>> f32s;
    std::vector<tensor<f16, 2>> f16s;
    std::vector<tensor<bf16, 2>> bf16s;
    std::vector<tensor<q8_0, 2>> q8_0s;
    std::vector<tensor<q4_0, 2>> q4_0s;
    std::vector<tensor<q4_1, 2>> q4_1s;
    std::vector<tensor<q5_0, 2>> q5_0s;
    std::vector<tensor<q5_1, 2>> q5_1s;
    std::vector<tensor<q2_k, 2>> q2_ks;
    std::vector<tensor<q3_k, 2>> q3_ks;
    std::vector<tensor<q4_k, 2>> q4_ks;
    std::vector<tensor<q5_k, 2>> q5_ks;
    std::vector<tensor<q6_k, 2>> q6_ks;
    std::vector<tensor<iq4_nl, 2>> iq4_nls;
    std::vector<tensor<iq4_xs, 2>> iq4_xss;
    add_tensor<f32>(t, f32s, "f32.vector", {3});
    add_tensor<f32>(t, f32s, "f32.4d", {2, 1, 2, 3});
    add_tensor<f16>(t, f16s, "f16.matrix", {2, 4});
    add_tensor<bf16>(t, bf16s, "bf16.3d", {2, 2, 2});
    add_tensor<q8_0>(t, q8_0s, "q8_0.matrix", {2, 32});
    add_tensor<q4_0>(t, q4_0s, "q4_0.matrix", {1, 64});
    add_tensor<q4_1>(t, q4_1s, "q4_1.matrix", {1, 32});
    add_tensor<q5_0>(t, q5_0s, "q5_0.matrix", {2, 32});
    add_tensor<q5_1>(t, q5_1s, "q5_1.matrix", {1, 64});
    add_tensor<q2_k>(t, q2_ks, "q2_k.matrix", {1, 256});
    add_tensor<q3_k>(t, q3_ks, "q3_k.matrix", {1, 256});
    add_tensor<q4_k>(t, q4_ks, "q4_k.matrix", {1, 256});
    add_tensor<q5_k>(t, q5_ks, "q5_k.matrix", {1, 256});
    add_tensor<q6_k>(t, q6_ks, "q6_k.matrix", {1, 256});
    add_tensor<iq4_nl>(t, iq4_nls, "iq4_nl.matrix", {2, 32});
    add_tensor<iq4_xs>(t, iq4_xss, "iq4_xs.matrix", {1, 256});
    t.write((out / "tensors.gguf").string());

    // Other alignments: ggml pads the data section and every tensor to it.
    for (const std::uint32_t align : {1u, 8u, 64u}) {
        io::gguf_writer a;
        a.set("general.alignment", gguf_value::u32(align));
        std::vector<tensor<f32, 2>> a32;
        std::vector<tensor<q8_0, 2>> aq8;
        add_tensor<f32>(a, a32, "first", {5});
        add_tensor<q8_0>(a, aq8, "second", {1, 32});
        add_tensor<f32>(a, a32, "third", {1, 3});
        a.write((out / ("align" + std::to_string(align) + ".gguf")).string());
    }
}

// ---- safetensors files, written by hand (the project has no writer) -------

struct st_tensor {
    std::string name;
    std::string dtype;
    std::vector<std::size_t> shape;
    std::string bytes;
};

std::string safetensors(const std::vector<st_tensor>& tensors, const json& metadata = nullptr,
                        std::size_t pad_to = 8) {
    json header = json::object();
    if (!metadata.is_null()) header["__metadata__"] = metadata;
    std::string buffer;
    for (const st_tensor& t : tensors) {
        header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {buffer.size(), buffer.size() + t.bytes.size()}}};
        buffer += t.bytes;
    }
    std::string text = header.dump();
    text.resize((text.size() + pad_to - 1) / pad_to * pad_to, ' '); // as Hugging Face pads it
    return qtensor_fuzz::safetensors_bytes(text, buffer);
}

std::string float_bytes(const std::vector<float>& v) {
    return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

void safetensors_seeds(const fs::path& out) {
    write_file(out / "empty.safetensors", safetensors({}));
    // Every dtype of the spec, each filling whole bytes.
    write_file(out / "dtypes.safetensors",
               safetensors({{"bool", "BOOL", {2}, "\x01\x00"s},
                            {"u8", "U8", {2}, "\x01\xff"s},
                            {"i8", "I8", {1}, "\x80"s},
                            {"i16", "I16", {1}, "\x00\x80"s},
                            {"u16", "U16", {1}, "\xff\xff"s},
                            {"f16", "F16", {2}, "\x00\x3c\x00\xbc"s},
                            {"bf16", "BF16", {1}, "\x80\x3f"s},
                            {"i32", "I32", {1}, "\xff\xff\xff\xff"s},
                            {"u32", "U32", {1}, "\x01\x02\x03\x04"s},
                            {"f32", "F32", {1}, float_bytes({1.5f})},
                            {"i64", "I64", {1}, "\x07\x00\x00\x00\x00\x00\x00\x80"s},
                            {"u64", "U64", {1}, "\xff\xff\xff\xff\xff\xff\xff\xff"s},
                            {"f64", "F64", {1}, "\x00\x00\x00\x00\x00\x00\xf0\x3f"s},
                            {"c64", "C64", {1}, std::string(8, '\x01')},
                            {"f8_e5m2", "F8_E5M2", {1}, "\x3c"s},
                            {"f8_e4m3", "F8_E4M3", {1}, "\x38"s},
                            {"f8_e8m0", "F8_E8M0", {1}, "\x7f"s},
                            {"f6_e2m3", "F6_E2M3", {4}, "\x01\x02\x03"s},
                            {"f6_e3m2", "F6_E3M2", {4}, "\x04\x05\x06"s},
                            {"f4", "F4", {2}, "\x12"s}}));
    // A scalar, an empty tensor, metadata, a misaligned float, 2-D and 3-D views.
    write_file(out / "shapes.safetensors",
               safetensors({{"scalar", "F32", {}, float_bytes({2.5f})},
                            {"empty", "F32", {0, 4}, ""},
                            {"odd", "U8", {1}, "\x05"s},
                            {"misaligned", "F32", {1}, float_bytes({-1.0f})},
                            {"matrix", "F16", {2, 2}, "\x00\x3c\x00\x40\x00\x42\x00\x44"s},
                            {"cube", "BF16", {2, 1, 2}, std::string(8, '\x3f')}},
                           {{"format", "pt"}, {"note", "seed"}}, 64));
    // A Compressed Tensors layer: [2, 32] in 4 bits, one fp16 scale and zero point per row, g_idx.
    std::string words;
    for (int i = 0; i < 8; ++i) words += "\x10\x32\x54\x76"s; // codes 0..7 in every word
    write_file(out / "packed.safetensors",
               safetensors({{"layer.weight_packed", "I32", {2, 4}, words},
                            {"layer.weight_shape", "I64", {2}, "\x02\0\0\0\0\0\0\0\x20\0\0\0\0\0\0\0"s},
                            {"layer.weight_scale", "F16", {2, 1}, "\x00\x3c\x00\x38"s},
                            {"layer.weight_zero_point", "I8", {2, 1}, "\0\0"s},
                            {"layer.weight_g_idx", "I32", {32}, std::string(128, '\0')}}));
    write_file(out / "multimodal.safetensors",
               safetensors({{"model.language_model.norm.weight", "F32", {2}, float_bytes({1.0f, 1.0f})},
                            {"model.vision_tower.patch", "BF16", {2}, std::string(4, '\x3f')}}));
}

// ---- small Gemma 4 models: config.json + model.safetensors, then GGUF -----

// Two tiny models, far smaller than the test fixtures (tiny-e2b is 4.3 MB):
// like E2B (per-layer inputs, KV sharing with a double-wide MLP, sliding and
// full layers of different head sizes, proportional RoPE, tied head, softcap)
// and like 26B-A4B (MoE, attention_k_eq_v, untied head, Google's config
// dialect with global_head_dim).
const char* const dense_config = R"({
  "model_type": "gemma4_text", "vocab_size": 32, "hidden_size": 32, "num_hidden_layers": 3,
  "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 16, "intermediate_size": 32,
  "layer_types": ["sliding_attention", "full_attention", "sliding_attention"],
  "per_layer_config": {"1": {"head_dim": 32}},
  "num_kv_shared_layers": 1, "use_double_wide_mlp": true,
  "hidden_size_per_layer_input": 8, "vocab_size_per_layer_input": 32,
  "sliding_window": 4, "final_logit_softcapping": 30.0, "max_position_embeddings": 64,
  "rms_norm_eps": 1e-06, "tie_word_embeddings": true, "hidden_activation": "gelu_pytorch_tanh",
  "rope_parameters": {
    "full_attention": {"partial_rotary_factor": 0.25, "rope_theta": 1000000.0, "rope_type": "proportional"},
    "sliding_attention": {"rope_theta": 10000.0, "rope_type": "default"}}
})";

const char* const moe_config = R"({
  "model_type": "gemma4_text", "vocab_size": 32, "hidden_size": 32, "num_hidden_layers": 2,
  "num_attention_heads": 2, "num_key_value_heads": 2, "head_dim": 32,
  "global_head_dim": 32, "num_global_key_value_heads": 1, "attention_k_eq_v": true,
  "intermediate_size": 32, "layer_types": ["sliding_attention", "full_attention"],
  "enable_moe_block": true, "num_experts": 4, "top_k_experts": 2, "moe_intermediate_size": 32,
  "hidden_size_per_layer_input": 0, "sliding_window": 4, "tie_word_embeddings": false,
  "attention_bias": false, "num_kv_shared_layers": 0,
  "rope_parameters": {
    "full_attention": {"partial_rotary_factor": 0.25, "rope_theta": 1000000.0, "rope_type": "proportional"},
    "sliding_attention": {"rope_theta": 10000.0, "rope_type": "default"}}
})";

// Every tensor `c` calls for, by Hugging Face name, with random float32
// values (norms near 1, weights small): the names and shapes load_weights reads.
std::vector<st_tensor> model_tensors(const gemma4::config& c) {
    std::vector<st_tensor> out;
    const auto add = [&](std::string name, std::vector<std::size_t> shape, float scale, float offset = 0.0f) {
        std::size_t n = 1;
        for (std::size_t e : shape) n *= e;
        out.push_back({std::move(name), "F32", std::move(shape), float_bytes(rng.take(n, scale, offset))});
    };
    const std::size_t D = c.hidden_size, V = c.vocab_size, H = c.num_attention_heads;
    const std::size_t L = c.num_hidden_layers, P = c.hidden_size_per_layer_input;
    add("model.embed_tokens.weight", {V, D}, 0.5f);
    if (!c.tie_word_embeddings) add("lm_head.weight", {V, D}, 0.5f);
    add("model.norm.weight", {D}, 0.1f, 1.0f);
    if (c.has_per_layer_input()) {
        add("model.embed_tokens_per_layer.weight", {c.vocab_size_per_layer_input, L * P}, 0.5f);
        add("model.per_layer_model_projection.weight", {L * P, D}, 0.2f);
        add("model.per_layer_projection_norm.weight", {P}, 0.1f, 1.0f);
    }
    const std::vector<gemma4::layer_info> layers = c.layers();
    for (std::size_t l = 0; l < L; ++l) {
        const gemma4::layer_info& li = layers[l];
        const std::string p = "model.layers." + std::to_string(l) + ".";
        const std::size_t d = li.head_dim, K = li.kv_heads, F = li.mlp_width;
        for (const char* norm : {"input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                                 "post_feedforward_layernorm"})
            add(p + norm + ".weight", {D}, 0.1f, 1.0f);
        add(p + "layer_scalar", {1}, 0.2f, 0.7f);
        add(p + "self_attn.q_proj.weight", {H * d, D}, 0.2f);
        add(p + "self_attn.o_proj.weight", {D, H * d}, 0.2f);
        add(p + "self_attn.q_norm.weight", {d}, 0.1f, 1.0f);
        if (li.has_kv) {
            add(p + "self_attn.k_proj.weight", {K * d, D}, 0.2f);
            if (li.has_v_proj) add(p + "self_attn.v_proj.weight", {K * d, D}, 0.2f);
            add(p + "self_attn.k_norm.weight", {d}, 0.1f, 1.0f);
        }
        add(p + "mlp.gate_proj.weight", {F, D}, 0.2f);
        add(p + "mlp.up_proj.weight", {F, D}, 0.2f);
        add(p + "mlp.down_proj.weight", {D, F}, 0.2f);
        if (c.enable_moe_block) {
            const std::size_t E = c.num_experts, I = c.moe_intermediate_size;
            for (const char* norm : {"pre_feedforward_layernorm_2", "post_feedforward_layernorm_1",
                                     "post_feedforward_layernorm_2"})
                add(p + norm + ".weight", {D}, 0.1f, 1.0f);
            add(p + "router.proj.weight", {E, D}, 0.2f);
            add(p + "router.scale", {D}, 0.1f, 1.0f);
            add(p + "router.per_expert_scale", {E}, 0.1f, 1.0f);
            add(p + "experts.gate_up_proj", {E, 2 * I, D}, 0.2f);
            add(p + "experts.down_proj", {E, D, I}, 0.2f);
        }
        if (c.has_per_layer_input()) {
            add(p + "per_layer_input_gate.weight", {P, D}, 0.2f);
            add(p + "per_layer_projection.weight", {D, P}, 0.2f);
            add(p + "post_per_layer_input_norm.weight", {D}, 0.1f, 1.0f);
        }
    }
    return out;
}

// `name`_<P::name>.gguf in each of `dirs`: `src` converted by write_gguf<P>.
template <class P>
void write_model_gguf(const gemma4::config& c, const io::safetensors_checkpoint& src, const std::string& name,
                      const std::vector<fs::path>& dirs) {
    const fs::path first = dirs.front() / (name + "_" + std::string(P::name) + ".gguf");
    gemma4::write_gguf<P>(c, src, first.string());
    for (std::size_t i = 1; i < dirs.size(); ++i)
        fs::copy_file(first, dirs[i] / first.filename(), fs::copy_options::overwrite_existing);
}

// Writes `config_text` and its model.safetensors into work/<name> (copies go
// to config_dir and st_dir), then the model as GGUF in each policy P.
template <class... P>
void model_seeds(const fs::path& work, const std::string& name, const char* config_text,
                 const std::vector<fs::path>& gguf_dirs, const fs::path& config_dir, const fs::path& st_dir) {
    const fs::path dir = work / name;
    fs::create_directories(dir);
    write_file(dir / "config.json", config_text);
    const gemma4::config c = gemma4::config::from_hf_file(dir);
    write_file(dir / "model.safetensors", safetensors(model_tensors(c)));
    fs::copy_file(dir / "config.json", config_dir / (name + ".json"), fs::copy_options::overwrite_existing);
    fs::copy_file(dir / "model.safetensors", st_dir / (name + ".safetensors"), fs::copy_options::overwrite_existing);
    const io::safetensors_checkpoint src(dir.string());
    (write_model_gguf<P>(c, src, name, gguf_dirs), ...);
}

// ---- config.json files ----------------------------------------------------

void config_seeds(const fs::path& out) {
    const fs::path fixtures = fs::path(QTENSOR_FUZZ_DATA_DIR) / "gemma4";
    for (const fs::directory_entry& e : fs::directory_iterator(fixtures))
        if (fs::exists(e.path() / "config.json"))
            fs::copy_file(e.path() / "config.json", out / (e.path().filename().string() + ".json"),
                          fs::copy_options::overwrite_existing);
    // The multimodal wrapper nests the text model under text_config.
    json wrapper = {{"model_type", "gemma4"}, {"architectures", {"Gemma4ForConditionalGeneration"}}};
    wrapper["text_config"] = json::parse(dense_config);
    wrapper["vision_config"] = {{"hidden_size", 16}};
    write_file(out / "multimodal.json", wrapper.dump(2));
    // A Compressed Tensors checkpoint's config (w4a16, groups of 128), as llm-compressor writes it.
    json packed = json::parse(dense_config);
    packed["quantization_config"] = json::parse(R"({"quant_method": "compressed-tensors", "format": "pack-quantized",
        "quantization_status": "compressed", "ignore": ["lm_head"], "sparsity_config": {}, "transform_config": {},
        "kv_cache_scheme": null, "config_groups": {"group_0": {"targets": ["Linear"], "input_activations": null,
        "output_activations": null, "weights": {"num_bits": 4, "type": "int", "symmetric": true,
        "strategy": "group", "group_size": 128, "dynamic": false, "actorder": null}}}})");
    write_file(out / "compressed_tensors.json", packed.dump(2));
}

// ---- tokenizers: SentencePiece models from the tests, a small tokenizer.json ----

void tokenizer_seeds(const fs::path& out) {
    const fs::path data = fs::path(QTENSOR_FUZZ_DATA_DIR) / "tokenizer";
    for (const char* name : {"tiny.model", "bpe_plain.model"})
        fs::copy_file(data / name, out / name, fs::copy_options::overwrite_existing);
    // Byte fallback, merges in both spellings, added tokens, a normalizer sequence with a dummy prefix.
    json vocab = {{"<pad>", 0}, {"<eos>", 1}, {"<bos>", 2}, {"<unk>", 3}, {"<|turn>", 4}};
    for (int b = 0; b < 256; ++b) {
        char name[8];
        std::snprintf(name, sizeof name, "<0x%02X>", b);
        vocab[name] = 5 + b;
    }
    const std::string mark = "\xe2\x96\x81"; // the escaped space
    int id = 261;
    for (const std::string& p : {"a"s, "b"s, "c"s, mark, "ab"s, "abc"s, mark + "a", mark + "ab"}) vocab[p] = id++;
    json added = json::array();
    for (const auto& [content, i, special] : {std::tuple{"<pad>", 0, true}, {"<eos>", 1, true}, {"<bos>", 2, true},
                                              {"<unk>", 3, true}, {"<|turn>", 4, false}})
        added.push_back({{"id", i}, {"content", content}, {"special", special}});
    const json tok = {
        {"added_tokens", added},
        {"normalizer", {{"type", "Sequence"}, {"normalizers", {{{"type", "Prepend"}, {"prepend", "\xe2\x96\x81"}},
                                                               {{"type", "Replace"}, {"pattern", {{"String", " "}}},
                                                                {"content", "\xe2\x96\x81"}}}}}},
        {"pre_tokenizer", nullptr},
        {"model", {{"type", "BPE"}, {"unk_token", "<unk>"}, {"byte_fallback", true}, {"vocab", vocab},
                   {"merges", {"a b", json::array({"ab", "c"}), mark + " a", mark + "a b"}}}}};
    write_file(out / "tokenizer.json", tok.dump());
}

// ---- shard indexes over the fixed shards of the safetensors_index target --

void index_seeds(const fs::path& out) {
    const std::string s1(qtensor_fuzz::shard_1), s2(qtensor_fuzz::shard_2);
    const json map = {{"model.language_model.embed_tokens.weight", s1},
                      {"model.norm.weight", s1},
                      {"lm_head.weight", s2},
                      {"model.vision_tower.x", s2}};
    write_file(out / "index.json", json({{"metadata", {{"total_size", 44}}}, {"weight_map", map}}).dump(2));
    write_file(out / "index_compact.json", json({{"weight_map", map}}).dump());
    json missing = map; // a tensor of a shard not in the index
    missing.erase("lm_head.weight");
    write_file(out / "index_missing.json", json({{"weight_map", missing}}).dump());
    json wrong = map; // a tensor put in the other shard
    wrong["model.norm.weight"] = s2;
    write_file(out / "index_wrong_shard.json", json({{"weight_map", wrong}}).dump());
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: qtensor_make_seeds OUT_DIR\n");
        return 2;
    }
    try {
        const fs::path out = argv[1];
        const auto folder = [&](const char* target) {
            fs::create_directories(out / target);
            return out / target;
        };
        const fs::path gguf = folder("gguf_reader"), st = folder("safetensors"), index = folder("safetensors_index");
        const fs::path config = folder("config_json"), model = folder("model"), work = folder("work");
        tokenizer_seeds(folder("tokenizer"));
        gguf_seeds(gguf);
        safetensors_seeds(st);
        config_seeds(config);
        index_seeds(index);
        model_seeds<gemma4::f32_policy, gemma4::bf16_policy>(work, "dense", dense_config, {model, gguf}, config, st);
        model_seeds<gemma4::f32_policy, gemma4::q4_0_policy>(work, "moe", moe_config, {model, gguf}, config, st);
        fs::remove_all(work);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "qtensor_make_seeds: %s\n", e.what());
        return 1;
    }
    return 0;
}
