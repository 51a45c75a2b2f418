// gemma4/gguf_types.hpp: the type of each tensor of a converted file, for a
// policy with llama-quantize's fallback and for llama-quantize's mixes. The
// expected types are worked out by hand from llama-quantize's rules
// (llama.cpp src/llama-quant.cpp, restated in docs/gguf.md section 3) for
// the released E2B config; the files write_gguf writes are checked tensor by
// tensor against the reference quantizers, and run.
//
// Then the files against the rules llama.cpp's Gemma 4 loader applies when
// it opens one (llama.cpp src/models/gemma4.cpp, src/llama-model-loader.cpp,
// src/llama-vocab.cpp; docs/gguf.md section 6). One source file for both: each
// test source that includes the model costs minutes of CI build time.
// the keys it requires and their exact types, the tokenizer keys, every
// tensor it asks for with its exact shape, and no tensor it does not ask for.
// The rules are written out here from llama.cpp's code, apart from qtensor's
// writer; each is shown to fail on a file that breaks it.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "memory_source.hpp"
#include "test_util.hpp"
#include "qtensor/gemma4/checkpoint.hpp"
#include "qtensor/gemma4/gguf.hpp"
#include "qtensor/gemma4/gguf_types.hpp"
#include "qtensor/gemma4/model.hpp"
#include "qtensor/io/gguf.hpp"
#include "qtensor/io/json.hpp"

namespace gemma4_gguf_types_test {

using namespace qtensor;
using qtensor_test::memory_source;
using qtensor_test::scratch_dir;

namespace {

const std::string fixtures = std::string(QTENSOR_TEST_DATA_DIR) + "/gemma4";

gemma4::config released_e2b() {
    const std::string path = std::string(QTENSOR_TEST_DATA_DIR) + "/../../docs/configs/gemma4-e2b.json";
    return gemma4::config::from_hf_json(io::parse_json(qtensor_test::read_file(path), gemma4::max_config_depth, path));
}

std::string layer(std::size_t l, const char* rest) { return "model.layers." + std::to_string(l) + "." + rest; }

} // namespace

TEST_CASE("use_more_bits: the first and last eighth, and every third layer between") {
    // n = 35: n/8 = 4, 7n/8 = 30; (i - 4) % 3 == 2 at 6, 9, ..., 27.
    std::set<std::size_t> want35{0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 31, 32, 33, 34};
    // n = 15: n/8 = 1, 7n/8 = 13; (i - 1) % 3 == 2 at 3, 6, 9, 12.
    std::set<std::size_t> want15{0, 3, 6, 9, 12, 13, 14};
    for (std::size_t i = 0; i < 35; ++i) CHECK(gemma4::detail::use_more_bits(i, 35) == want35.contains(i));
    for (std::size_t i = 0; i < 15; ++i) CHECK(gemma4::detail::use_more_bits(i, 15) == want15.contains(i));
}

TEST_CASE("fallback: llama-quantize's substitutes, then f16 when they do not fit either") {
    using enum ggml_type;
    using gemma4::detail::fallback_type;
    CHECK(fallback_type(q2_k, 96) == q4_0);
    CHECK(fallback_type(q3_k, 96) == q4_0);
    CHECK(fallback_type(q4_k, 96) == q5_0);
    CHECK(fallback_type(q5_k, 96) == q5_1);
    CHECK(fallback_type(q6_k, 96) == q8_0);
    CHECK(fallback_type(iq4_xs, 96) == iq4_nl);
    CHECK(fallback_type(iq4_xs, 48) == f16);
    CHECK(fallback_type(iq4_nl, 48) == f16); // no substitute defined
    CHECK(fallback_type(q4_k, 24) == f16); // q5_0 needs 32 too
    CHECK(fallback_type(q4_0, 24) == f16); // no substitute defined
    CHECK(fallback_type(q8_0, 48) == f16);
}

TEST_CASE("Q4_K_M on E2B: Q6_K tables, attn_v and ffn_down by use_more_bits, the projection kept bf16") {
    const gemma4::config c = released_e2b();
    const gemma4::gguf_types t = gemma4::gguf_types::mix(c, "Q4_K_M");
    using enum ggml_type;
    CHECK(t.file_type == 15); // LLAMA_FTYPE_MOSTLY_Q4_K_M
    CHECK(t.fallbacks.empty()); // every E2B row is whole 256-blocks
    CHECK(t.of("model.embed_tokens.weight") == q6_k);           // tied: the output rule
    CHECK(t.of("model.embed_tokens_per_layer.weight") == q6_k); // a token table too
    CHECK(t.of("model.per_layer_model_projection.weight") == bf16);
    CHECK(t.of("model.norm.weight") == f32);
    // ffn_down by layer over 35 layers; attn_v by its index among the 15
    // layers that have one (20 of 35 share their KV).
    const std::set<std::size_t> more35{0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 31, 32, 33, 34};
    const std::set<std::size_t> more15{0, 3, 6, 9, 12, 13, 14};
    for (std::size_t l = 0; l < 35; ++l) {
        CAPTURE(l);
        CHECK(t.of(layer(l, "mlp.down_proj.weight")) == (more35.contains(l) ? q6_k : q4_k));
        CHECK(t.of(layer(l, "mlp.gate_proj.weight")) == q4_k);
        CHECK(t.of(layer(l, "self_attn.q_proj.weight")) == q4_k);
        CHECK(t.of(layer(l, "self_attn.o_proj.weight")) == q4_k);
        CHECK(t.of(layer(l, "per_layer_input_gate.weight")) == q4_k);
        CHECK(t.of(layer(l, "per_layer_projection.weight")) == q4_k);
        CHECK(t.of(layer(l, "input_layernorm.weight")) == f32);
        if (l < 15) {
            CHECK(t.of(layer(l, "self_attn.k_proj.weight")) == q4_k);
            CHECK(t.of(layer(l, "self_attn.v_proj.weight")) == (more15.contains(l) ? q6_k : q4_k));
        } else {
            CHECK_THROWS_AS(t.of(layer(l, "self_attn.v_proj.weight")), error);
        }
    }
}

TEST_CASE("the other mixes on E2B (gqa 8, no experts)") {
    const gemma4::config c = released_e2b();
    using enum ggml_type;
    struct want {
        const char* mix;
        std::uint32_t file_type;
        ggml_type base, table, v_first, v_later, down_first, down_later, o;
        std::size_t v_first_count, down_first_layers;
    };
    // v_first for the first v_first_count attn_v tensors, v_later after;
    // down_first for layers below down_first_layers. From the rules:
    //   Q2_K: attn_v Q4_K (gqa >= 4), ffn_down and attn_output Q3_K
    //   Q3_K_S: nothing raised; Q3_K_M: attn_v Q5_K for the first 2 then Q4_K,
    //   ffn_down Q5_K below 35/16 = 2 then Q4_K, attn_output Q4_K;
    //   Q3_K_L: attn_v, ffn_down, attn_output Q5_K;
    //   Q4_K_S: attn_v Q5_K for the first 4, ffn_down Q5_K below 35/8 = 4;
    //   Q5_K_S, Q6_K: nothing raised; Q8_0: the tables stay Q8_0;
    //   IQ4_NL, IQ4_XS: attn_v Q5_K (gqa >= 4), ffn_down Q5_K below 35/8 = 4.
    const want rows[] = {
        {"Q2_K", 10, q2_k, q6_k, q4_k, q4_k, q3_k, q3_k, q3_k, 0, 0},
        {"Q3_K_S", 11, q3_k, q6_k, q3_k, q3_k, q3_k, q3_k, q3_k, 0, 0},
        {"Q3_K_M", 12, q3_k, q6_k, q5_k, q4_k, q5_k, q4_k, q4_k, 2, 2},
        {"Q3_K_L", 13, q3_k, q6_k, q5_k, q5_k, q5_k, q5_k, q5_k, 0, 0},
        {"Q4_K_S", 14, q4_k, q6_k, q5_k, q4_k, q5_k, q4_k, q4_k, 4, 4},
        {"Q5_K_S", 16, q5_k, q6_k, q5_k, q5_k, q5_k, q5_k, q5_k, 0, 0},
        {"Q6_K", 18, q6_k, q6_k, q6_k, q6_k, q6_k, q6_k, q6_k, 0, 0},
        {"Q8_0", 7, q8_0, q8_0, q8_0, q8_0, q8_0, q8_0, q8_0, 0, 0},
        {"IQ4_NL", 25, iq4_nl, q6_k, q5_k, q5_k, q5_k, iq4_nl, iq4_nl, 0, 4},
        {"IQ4_XS", 30, iq4_xs, q6_k, q5_k, q5_k, q5_k, iq4_xs, iq4_xs, 0, 4},
    };
    for (const want& w : rows) {
        CAPTURE(w.mix);
        const gemma4::gguf_types t = gemma4::gguf_types::mix(c, w.mix);
        CHECK(t.file_type == w.file_type);
        CHECK(t.fallbacks.empty());
        CHECK(t.of("model.embed_tokens.weight") == w.table);
        CHECK(t.of("model.per_layer_model_projection.weight") == bf16);
        for (std::size_t l = 0; l < 35; ++l) {
            CAPTURE(l);
            CHECK(t.of(layer(l, "mlp.up_proj.weight")) == w.base);
            CHECK(t.of(layer(l, "self_attn.q_proj.weight")) == w.base);
            CHECK(t.of(layer(l, "self_attn.o_proj.weight")) == w.o);
            CHECK(t.of(layer(l, "mlp.down_proj.weight")) == (l < w.down_first_layers ? w.down_first : w.down_later));
            if (l < 15) {
                CHECK(t.of(layer(l, "self_attn.k_proj.weight")) == w.base);
                CHECK(t.of(layer(l, "self_attn.v_proj.weight")) == (l < w.v_first_count ? w.v_first : w.v_later));
            }
        }
    }
    CHECK_THROWS_WITH_AS(gemma4::gguf_types::mix(c, "q4_k_m"), doctest::Contains("unknown quantization mix"), error);
    CHECK_THROWS_AS(gemma4::gguf_types::mix(c, "IQ2_XXS"), error); // no scheme for its types
}

TEST_CASE("eight experts: attn_v and attn_k Q8_0, attn_output Q5_K; then the fallback on 96-wide rows") {
    // tiny-moe: 8 experts, hidden 96; K = V on the full layers, so only the
    // sliding layers have an attn_v.
    const gemma4::config c = gemma4::config::from_hf_file(fixtures + "/tiny-moe");
    const gemma4::gguf_types t = gemma4::gguf_types::mix(c, "Q4_K_M");
    using enum ggml_type;
    std::size_t v_tensors = 0;
    for (std::size_t l = 0; l < c.num_hidden_layers; ++l)
        if (t.type.contains(layer(l, "self_attn.v_proj.weight"))) {
            CHECK(t.of(layer(l, "self_attn.v_proj.weight")) == q8_0);
            ++v_tensors;
        }
    CHECK(v_tensors >= 1);
    CHECK(t.of(layer(0, "self_attn.k_proj.weight")) == q8_0);     // 96 is whole q8_0 blocks
    CHECK(t.of(layer(0, "self_attn.o_proj.weight")) == q5_1);     // q5_k, 96 not whole 256-blocks
    CHECK(t.of(layer(0, "self_attn.q_proj.weight")) == q5_0);     // q4_k falls back
    // 4 layers: n/8 = 0 and 7n/8 = 3, so more bits for layer 2 ((2 - 0) % 3 == 2)
    // and layer 3: q6_k, which falls back to q8_0 on rows of 32.
    CHECK(t.of(layer(0, "experts.down_proj")) == q5_0);
    CHECK(t.of(layer(2, "experts.down_proj")) == q8_0);
    CHECK(t.of(layer(3, "mlp.down_proj.weight")) == q8_0); // rows of 192
    CHECK(t.of(layer(0, "experts.gate_up_proj")) == q5_0);
    CHECK(t.of("model.embed_tokens.weight") == q8_0);             // 96 % 256: the output rule's Q8_0
    CHECK(t.of(layer(0, "router.proj.weight")) == f32);
    bool names_o_proj = false;
    for (const std::string& f : t.fallbacks)
        names_o_proj = names_o_proj || f == layer(0, "self_attn.o_proj.weight") +
                                                ": rows of 96 are not whole q5_k blocks of 256, so q5_1";
    CHECK(names_o_proj);

    // IQ4_XS: attn_v and attn_k q8_0 with 8 experts, attn_output q5_k (then
    // q5_1 on rows of 96), the rest iq4_xs, falling back to iq4_nl on rows of 96.
    const gemma4::gguf_types x = gemma4::gguf_types::mix(c, "IQ4_XS");
    CHECK(x.of(layer(0, "self_attn.k_proj.weight")) == q8_0);
    CHECK(x.of(layer(0, "self_attn.o_proj.weight")) == q5_1);
    CHECK(x.of(layer(0, "self_attn.q_proj.weight")) == iq4_nl);
    for (std::size_t l = 0; l < c.num_hidden_layers; ++l)
        if (x.type.contains(layer(l, "self_attn.v_proj.weight")))
            CHECK(x.of(layer(l, "self_attn.v_proj.weight")) == q8_0);
}

TEST_CASE("an untied head, fewer query heads per KV head, and the Q8_0 mix's fallback") {
    using enum ggml_type;
    gemma4::config c = released_e2b();
    c.tie_word_embeddings = false;
    c.layer_kv_heads.assign(c.num_hidden_layers, 4); // 8 heads / 4 KV heads: gqa 2
    const gemma4::gguf_types q4 = gemma4::gguf_types::mix(c, "Q4_K_M");
    CHECK(q4.of("lm_head.weight") == q6_k);
    CHECK(q4.of("model.embed_tokens.weight") == q4_k); // untied: the main type
    CHECK(q4.of("model.embed_tokens_per_layer.weight") == q4_k);
    const gemma4::gguf_types q2 = gemma4::gguf_types::mix(c, "Q2_K");
    CHECK(q2.of(layer(0, "self_attn.v_proj.weight")) == q3_k); // gqa < 4
    const gemma4::gguf_types nl = gemma4::gguf_types::mix(c, "IQ4_NL");
    CHECK(nl.of(layer(0, "self_attn.v_proj.weight")) == iq4_nl); // gqa < 4: not raised
    CHECK(nl.of("lm_head.weight") == q6_k);
    // tiny-e2b's per_layer_projection rows hold P = 16: not whole q8_0
    // blocks, and Q8_0 has no substitute, so F16.
    const gemma4::config tiny = gemma4::config::from_hf_file(fixtures + "/tiny-e2b");
    const gemma4::gguf_types q8 = gemma4::gguf_types::mix(tiny, "Q8_0");
    CHECK(q8.of(layer(0, "per_layer_projection.weight")) == f16);
    CHECK(q8.of(layer(0, "per_layer_input_gate.weight")) == q8_0);
    CHECK(q8.fallbacks.size() == tiny.num_hidden_layers);
}

TEST_CASE("a policy's types are its schemes; fall_back() replaces only rows that do not fit") {
    const gemma4::config c = gemma4::config::from_hf_file(fixtures + "/tiny-e2b");
    gemma4::gguf_types t = gemma4::gguf_types::for_policy<gemma4::q2_k_policy>(c);
    using enum ggml_type;
    CHECK(t.file_type == 10);
    CHECK(t.of(layer(0, "self_attn.q_proj.weight")) == q2_k);
    CHECK(t.of("model.embed_tokens.weight") == q8_0);
    CHECK(t.fallbacks.empty());
    t.fall_back(c);
    CHECK(t.of(layer(0, "self_attn.q_proj.weight")) == q4_0); // rows of 128
    CHECK(t.of(layer(0, "mlp.down_proj.weight")) == q2_k);    // rows of 256 fit
    // The mobile policy: llama.cpp's MOSTLY_TQ2_0, TQ2_0 falling back to Q4_0 like Q2_K.
    gemma4::gguf_types m = gemma4::gguf_types::for_policy<gemma4::mobile_policy>(c);
    CHECK(m.file_type == 37);
    CHECK(m.of(layer(0, "self_attn.q_proj.weight")) == tq2_0);
    CHECK(m.of("model.embed_tokens.weight") == q4_0);
    m.fall_back(c);
    CHECK(m.of(layer(0, "self_attn.q_proj.weight")) == q4_0);
    CHECK(m.of(layer(0, "mlp.down_proj.weight")) == tq2_0);
    CHECK(t.of("model.embed_tokens.weight") == q8_0);
    CHECK(!t.fallbacks.empty());
    // Such a file runs with a policy whose schemes fit, not with q2_k.
    const memory_source src(c, gemma4::init_parameters(c, 2), ggml_type::f32);
    const scratch_dir tmp;
    {
        io::output_file out(tmp / "m.gguf");
        gemma4::write_gguf(c, src, out, t);
    }
    const gemma4::checkpoint ck(tmp / "m.gguf");
    CHECK_NOTHROW(gemma4::model<gemma4::f32_policy>::load(ck.config(), ck, ck.names()));
    CHECK_THROWS_WITH_AS(gemma4::model<gemma4::q2_k_policy>::load(ck.config(), ck, ck.names()),
                         doctest::Contains("do not fit q2_k blocks of 256"), error);
}

namespace {
// A tensor's values, dequantized by its scheme's reference.
std::vector<float> values_of(const io::tensor_entry& e) {
    std::vector<float> out(e.elements());
    visit_scheme(e.type, [&](auto s) {
        using S = decltype(s);
        S::dequantize_row(reinterpret_cast<const block_of<S>*>(e.data.data()), out.data(), out.size());
    });
    return out;
}
} // namespace

TEST_CASE("write_gguf in a mix: every tensor in its type, bytes as the reference quantizer makes them") {
    for (const std::string fixture : {"tiny-e2b", "tiny-moe"}) {
        CAPTURE(fixture);
        const gemma4::config c = gemma4::config::from_hf_file(fixtures + "/" + fixture);
        const memory_source src(c, gemma4::init_parameters(c, 7), ggml_type::f32);
        const gemma4::gguf_types types = gemma4::gguf_types::mix(c, "Q4_K_M");
        const scratch_dir tmp;
        {
            io::output_file out(tmp / "m.gguf");
            gemma4::write_gguf(c, src, out, types);
        }
        const io::gguf_file g(tmp / "m.gguf");
        CHECK(g.find_metadata("general.file_type")->to_integer() == 15);
        std::set<ggml_type> seen;
        gemma4::tensors<float> widened; // the file's tensors dequantized, by HF name
        for (const gemma4::parameter_shape& p : gemma4::parameter_shapes(c)) {
            CAPTURE(p.name);
            const io::tensor_entry* e = g.find(gemma4::gguf_name(p.name));
            REQUIRE(e != nullptr);
            REQUIRE(e->type == types.of(p.name));
            seen.insert(e->type);
            // The source's float32 rows through the scheme's reference quantizer.
            const io::tensor_entry* in = src.find(p.name);
            const auto* x = reinterpret_cast<const float*>(in->data.data());
            const std::size_t cols = p.shape.back(), rows = p.elements() / cols;
            visit_scheme(e->type, [&](auto s) {
                using S = decltype(s);
                std::vector<block_of<S>> want(rows * (cols / S::block_elems));
                for (std::size_t r = 0; r < rows; ++r)
                    S::quantize_row(x + r * cols, want.data() + r * (cols / S::block_elems), cols);
                REQUIRE(e->data.size() == want.size() * sizeof(block_of<S>));
                CHECK(std::memcmp(e->data.data(), want.data(), e->data.size()) == 0);
                std::vector<float>& w = widened[p.name];
                w.resize(rows * cols);
                for (std::size_t r = 0; r < rows; ++r)
                    S::dequantize_row(want.data() + r * (cols / S::block_elems), w.data() + r * cols, cols);
            });
        }
        CHECK(seen.size() >= 4);
        // qtensor runs the file: the f32 policy widens every tensor at load,
        // and computes what it computes on the dequantized tensors.
        const gemma4::checkpoint ck(tmp / "m.gguf");
        const std::vector<std::int32_t> ids{1, 5, 17, 3};
        const memory_source dequantized(c, widened, ggml_type::f32);
        const std::vector<float> dequantized_logits = gemma4::model<gemma4::f32_policy>::load(c, dequantized).forward(ids);
        CHECK(gemma4::model<gemma4::f32_policy>::load(ck.config(), ck, ck.names()).forward(ids) == dequantized_logits);

        // The stored policy runs the file in place: each tensor in the file's
        // own type and bytes, but those without GEMM kernels (the q5_0
        // fallbacks), which it repacks to q8_0 with the same values; and it
        // computes what the f32 policy computes on the dequantized tensors up
        // to the rounding of the activations (Q8_K, Q8_0) and of the bf16 KV
        // cache, far less than the quantization of the weights moved the logits.
        std::set<ggml_type> in_place;
        std::size_t repacked = 0;
        const auto stored = gemma4::model<gemma4::stored_policy>::load(
            ck.config(), ck, ck.names(), {}, [&](const io::tensor_entry& t) {
                const io::tensor_entry* e = ck.find(ck.names()(t.name));
                REQUIRE(e != nullptr);
                CAPTURE(t.name);
                if (t.data.data() == e->data.data()) {
                    CHECK(t.type == e->type);
                    in_place.insert(t.type);
                    return;
                }
                CHECK(!kernels::has_gemm_kernels(e->type));
                CHECK(t.type == gemma4::stored_type(e->type));
                CHECK(values_of(t) == values_of(*e));
                ++repacked;
            });
        CHECK(repacked > 0);
        std::set<ggml_type> with_kernels; // the file's types that run in place
        for (const ggml_type t : seen)
            if (kernels::has_gemm_kernels(t)) with_kernels.insert(t);
        CHECK(in_place == with_kernels);
        if (fixture == "tiny-e2b") CHECK((in_place.contains(ggml_type::q4_k) && in_place.contains(ggml_type::q6_k)));
        CHECK(stored.weight_bytes().mapped > 0);
        const float stored_error = qtensor_test::max_diff(stored.forward(ids), dequantized_logits);
        const float weight_error =
            qtensor_test::max_diff(gemma4::model<gemma4::f32_policy>::load(c, src).forward(ids), dequantized_logits);
        MESSAGE(fixture << ": max |logit difference| from the dequantized file's f32 forward: stored policy "
                        << stored_error << ", unquantized weights " << weight_error << "; " << repacked
                        << " tensors repacked");
        CHECK(stored_error > 0.0f);
        CHECK(stored_error < 0.25f * weight_error); // the bound of the K-quant in-place test (gemma4_qat_test)
    }
}

// ---- llama.cpp's Gemma 4 loader rules -----------------------------------------

namespace {

// What the loader sees of a file: its keys and its tensors (shape outermost
// first, as qtensor lists it; llama.cpp's ne order is the reverse).
struct gguf_contents {
    std::vector<io::gguf_kv> metadata;
    std::vector<io::tensor_entry> tensors;

    const io::gguf_value* key(std::string_view k) const {
        for (const io::gguf_kv& kv : metadata)
            if (kv.key == k) return &kv.value;
        return nullptr;
    }
};

gguf_contents contents_of(const io::gguf_file& g) {
    gguf_contents c{g.metadata(), {}};
    for (const io::tensor_entry& e : g.entries()) c.tensors.push_back(e);
    return c;
}

using problems = std::vector<std::string>;

// get_key(k, uint32) / get_key(k, float): the exact type, or absent when optional.
void want_scalar(const gguf_contents& f, std::string_view k, io::gguf_type t, bool required, problems& out) {
    const io::gguf_value* v = f.key(k);
    if (v == nullptr) {
        if (required) out.push_back("key not found in model: " + std::string(k));
        return;
    }
    if (v->type() != t) out.push_back("key " + std::string(k) + " has wrong type " + v->type_string());
}

// get_key_or_arr(k, n_layer): a scalar of type t, or an array of n_layer
// elements of one of the types `elems`.
void want_scalar_or_array(const gguf_contents& f, std::string_view k, io::gguf_type t,
                          std::initializer_list<io::gguf_type> elems, std::size_t n_layer, bool required,
                          problems& out) {
    const io::gguf_value* v = f.key(k);
    if (v == nullptr) {
        if (required) out.push_back("key not found in model: " + std::string(k));
        return;
    }
    if (!v->is_array()) {
        if (v->type() != t) out.push_back("key " + std::string(k) + " has wrong type " + v->type_string());
        return;
    }
    if (std::find(elems.begin(), elems.end(), v->element_type()) == elems.end())
        out.push_back("key " + std::string(k) + " has wrong array type " + v->type_string());
    if (v->array_size() != n_layer)
        out.push_back("key " + std::string(k) + " has wrong array length; expected " + std::to_string(n_layer) +
                      ", got " + std::to_string(v->array_size()));
}

std::size_t u32_or(const gguf_contents& f, std::string_view k, std::size_t fallback) {
    const io::gguf_value* v = f.key(k);
    return v != nullptr && v->type() == io::gguf_type::u32 ? v->as_u32() : fallback;
}

// The per-layer value of a scalar-or-array u32 key.
std::size_t per_layer(const gguf_contents& f, std::string_view k, std::size_t l, std::size_t fallback) {
    const io::gguf_value* v = f.key(k);
    if (v == nullptr) return fallback;
    if (!v->is_array()) return v->type() == io::gguf_type::u32 ? v->as_u32() : fallback;
    return l < v->array_size() ? static_cast<std::size_t>(v->at(l).to_integer()) : fallback;
}

bool is_swa(const gguf_contents& f, std::size_t l) {
    const io::gguf_value* v = f.key("gemma4.attention.sliding_window_pattern");
    if (v == nullptr || !v->is_array() || l >= v->array_size()) return false;
    const io::gguf_value e = v->at(l);
    return e.type() == io::gguf_type::boolean ? e.as_bool() : e.to_integer() != 0;
}

// Everything llama.cpp's Gemma 4 loader would refuse in f, one line each.
problems llama_loader_problems(const gguf_contents& f) {
    using enum io::gguf_type;
    problems out;

    // --- keys (load_hparams, then llama_model_gemma4::load_arch_hparams) ---
    const io::gguf_value* arch = f.key("general.architecture");
    if (arch == nullptr || arch->type() != string || arch->as_string() != "gemma4")
        out.push_back("general.architecture is not \"gemma4\"");
    if (const io::gguf_value* a = f.key("general.alignment")) {
        if (a->type() != u32 || a->as_u32() == 0 || (a->as_u32() & (a->as_u32() - 1)) != 0)
            out.push_back("general.alignment must be a u32 power of two");
    }
    const std::size_t L = u32_or(f, "gemma4.block_count", 0);
    for (const char* k : {"gemma4.context_length", "gemma4.embedding_length", "gemma4.block_count",
                          "gemma4.attention.sliding_window", "gemma4.embedding_length_per_layer_input",
                          "gemma4.attention.key_length_swa", "gemma4.attention.value_length_swa"})
        want_scalar(f, k, u32, true, out);
    want_scalar(f, "gemma4.attention.layer_norm_rms_epsilon", f32, true, out);
    for (const char* k : {"gemma4.attention.key_length", "gemma4.attention.value_length", "gemma4.rope.dimension_count",
                          "gemma4.rope.dimension_count_swa", "gemma4.attention.shared_kv_layers", "gemma4.expert_count",
                          "gemma4.expert_used_count", "gemma4.expert_feed_forward_length", "gemma4.vocab_size"})
        want_scalar(f, k, u32, false, out);
    for (const char* k : {"gemma4.rope.freq_base", "gemma4.rope.freq_base_swa", "gemma4.final_logit_softcapping"})
        want_scalar(f, k, f32, false, out);
    // head_count is optional to the generic reader, but 0 heads make every
    // attention shape 0: required in practice.
    want_scalar_or_array(f, "gemma4.attention.head_count", u32, {u32, i32}, L, true, out);
    want_scalar_or_array(f, "gemma4.attention.head_count_kv", u32, {u32, i32}, L, false, out);
    want_scalar_or_array(f, "gemma4.feed_forward_length", u32, {u32, i32}, L, true, out);
    want_scalar_or_array(f, "gemma4.attention.sliding_window_pattern", boolean, {boolean, u32, i32}, L, true, out);
    const std::size_t D = u32_or(f, "gemma4.embedding_length", 0);
    const std::size_t P = u32_or(f, "gemma4.embedding_length_per_layer_input", 0);
    const std::size_t E = u32_or(f, "gemma4.expert_count", 0);
    const std::size_t I = u32_or(f, "gemma4.expert_feed_forward_length", 0);
    if (E > 0 && u32_or(f, "gemma4.expert_used_count", 0) == 0)
        out.push_back("model has expert layers but no expert layers are used");
    if (u32_or(f, "gemma4.expert_used_count", 0) > E) out.push_back("expert_used_count > expert_count");
    want_scalar(f, "general.file_type", u32, false, out);
    want_scalar(f, "general.quantization_version", u32, false, out);
    const std::size_t d_full = u32_or(f, "gemma4.attention.key_length", D / std::max<std::size_t>(per_layer(f, "gemma4.attention.head_count", 0, 1), 1));
    const std::size_t d_swa = u32_or(f, "gemma4.attention.key_length_swa", 0);
    if (u32_or(f, "gemma4.attention.value_length", d_full) != d_full)
        out.push_back("Gemma 4 requires n_embd_head_k == n_embd_head_v");
    if (u32_or(f, "gemma4.attention.value_length_swa", d_swa) != d_swa)
        out.push_back("Gemma 4 requires n_embd_head_k_swa == n_embd_head_v_swa");

    // --- tokenizer (llama_vocab::impl::load) ---
    std::size_t n_vocab = 0;
    const io::gguf_value* model = f.key("tokenizer.ggml.model");
    if (model == nullptr || model->type() != string) {
        out.push_back("key not found in model: tokenizer.ggml.model");
    } else if (model->as_string() == "no_vocab" || model->as_string() == "none") {
        n_vocab = u32_or(f, "gemma4.vocab_size", 0);
    } else {
        const std::string& m = model->as_string();
        if (m != "llama" && m != "gemma4" && m != "gpt2" && m != "bert" && m != "t5")
            out.push_back("unknown tokenizer: '" + m + "'");
        const io::gguf_value* tokens = f.key("tokenizer.ggml.tokens");
        if (tokens == nullptr || !tokens->is_array() || tokens->element_type() != string) {
            out.push_back("cannot find tokenizer vocab in model file");
        } else {
            n_vocab = tokens->array_size();
            std::set<std::string> seen;
            for (std::size_t i = 0; i < n_vocab; ++i)
                if (!seen.insert(tokens->at(i).as_string()).second)
                    out.push_back("duplicate token in vocabulary: " + tokens->at(i).as_string());
        }
        const io::gguf_value* merges = f.key("tokenizer.ggml.merges");
        if ((m == "gemma4" || m == "gpt2") && (merges == nullptr || !merges->is_array() || merges->element_type() != string))
            out.push_back("cannot find tokenizer merges in model file");
        if (const io::gguf_value* s = f.key("tokenizer.ggml.scores"))
            if (!s->is_array() || (s->element_type() != f32 && s->element_type() != i32) || s->array_size() < n_vocab)
                out.push_back("tokenizer.ggml.scores is not a float array of n_vocab entries");
        if (const io::gguf_value* t = f.key("tokenizer.ggml.token_type"))
            if (!t->is_array() || t->element_type() != i32 || t->array_size() < n_vocab)
                out.push_back("tokenizer.ggml.token_type is not an int32 array of n_vocab entries");
    }
    // The special ids and flags, read with the same strict types.
    for (const io::gguf_kv& kv : f.metadata) {
        if (!kv.key.starts_with("tokenizer.ggml.")) continue;
        if (kv.key.ends_with("_token_id")) want_scalar(f, kv.key, u32, false, out);
        if (kv.key.ends_with("add_bos_token") || kv.key.ends_with("add_eos_token") ||
            kv.key.ends_with("add_sep_token") || kv.key.ends_with("add_space_prefix"))
            want_scalar(f, kv.key, boolean, false, out);
    }

    // --- tensors (llama_model_gemma4::load_arch_tensors), ne order ---
    struct wanted {
        std::string name;
        std::vector<std::size_t> ne;
        bool required;
    };
    std::vector<wanted> asked;
    const auto ask = [&](std::string name, std::vector<std::size_t> ne, bool required = true) {
        asked.push_back({std::move(name), std::move(ne), required});
    };
    ask("output.weight", {D, n_vocab}, false);
    ask("token_embd.weight", {D, n_vocab});
    if (P > 0) {
        ask("per_layer_token_embd.weight", {P * L, n_vocab});
        ask("per_layer_model_proj.weight", {D, P * L});
        ask("per_layer_proj_norm.weight", {P});
    }
    ask("output_norm.weight", {D});
    const std::size_t kv_from_start = L - std::min(L, u32_or(f, "gemma4.attention.shared_kv_layers", 0));
    bool rope_freqs_asked = false;
    for (std::size_t i = 0; i < L; ++i) {
        const std::string b = "blk." + std::to_string(i) + ".";
        const std::size_t H = per_layer(f, "gemma4.attention.head_count", i, 0);
        const std::size_t K = per_layer(f, "gemma4.attention.head_count_kv", i, H);
        const std::size_t d = is_swa(f, i) ? d_swa : d_full;
        const std::size_t F = per_layer(f, "gemma4.feed_forward_length", i, 0);
        const bool has_kv = i < kv_from_start;
        ask(b + "attn_norm.weight", {D});
        ask(b + "attn_q.weight", {D, d * H});
        ask(b + "attn_k.weight", {D, d * K}, has_kv);
        ask(b + "attn_v.weight", {D, d * K}, false);
        ask(b + "attn_output.weight", {d * H, D});
        ask(b + "attn_q_norm.weight", {d});
        ask(b + "attn_k_norm.weight", {d}, has_kv);
        ask(b + "post_attention_norm.weight", {D});
        ask(b + "layer_output_scale.weight", {1}, false);
        if (!is_swa(f, i) && !rope_freqs_asked) { // later full layers share it
            ask("rope_freqs.weight", {d / 2});
            rope_freqs_asked = true;
        }
        ask(b + "ffn_norm.weight", {D});
        ask(b + "ffn_gate.weight", {D, F});
        ask(b + "ffn_up.weight", {D, F});
        ask(b + "ffn_down.weight", {F, D});
        ask(b + "post_ffw_norm.weight", {D});
        ask(b + "ffn_gate_inp.weight", {D, E}, false);
        const bool moe = std::any_of(f.tensors.begin(), f.tensors.end(),
                                     [&](const io::tensor_entry& e) { return e.name == b + "ffn_gate_inp.weight"; });
        if (moe) {
            ask(b + "ffn_gate_inp.scale", {D});
            ask(b + "pre_ffw_norm_2.weight", {D});
            ask(b + "post_ffw_norm_1.weight", {D});
            ask(b + "post_ffw_norm_2.weight", {D});
            ask(b + "ffn_gate_up_exps.weight", {D, 2 * I, E}); // qtensor writes the fused form
            ask(b + "ffn_down_exps.weight", {I, D, E});
            ask(b + "ffn_down_exps.scale", {E}, false); // the generic pass's per-expert scale
        }
        if (P > 0) {
            ask(b + "inp_gate.weight", {D, P});
            ask(b + "proj.weight", {P, D});
            ask(b + "post_norm.weight", {D});
        }
    }
    std::set<std::string> names;
    for (const io::tensor_entry& e : f.tensors) {
        if (!names.insert(e.name).second) out.push_back("invalid model: tensor '" + e.name + "' is duplicated");
        const ggml_type_info* t = find_ggml_type(e.type);
        if (t == nullptr || e.shape.empty() || e.shape.back() % t->block_elems != 0)
            out.push_back("tensor '" + e.name + "': row not a multiple of its type's block size");
    }
    std::size_t created = 0;
    for (const wanted& w : asked) {
        const auto it = std::find_if(f.tensors.begin(), f.tensors.end(),
                                     [&](const io::tensor_entry& e) { return e.name == w.name; });
        if (it == f.tensors.end()) {
            if (w.required) out.push_back("missing tensor '" + w.name + "'");
            continue;
        }
        ++created;
        std::vector<std::size_t> ne(it->shape.rbegin(), it->shape.rend());
        if (ne != w.ne) out.push_back("tensor '" + w.name + "' has wrong shape");
    }
    if (created != f.tensors.size())
        out.push_back("wrong number of tensors; expected " + std::to_string(f.tensors.size()) + ", got " +
                      std::to_string(created));
    return out;
}

std::string joined(const problems& p) {
    std::string s;
    for (const std::string& line : p) s += line + "\n";
    return s;
}

// The file write_gguf writes for fixture `name` with `write`; `plain_rope`:
// with RoPE on every pair of the full layers (the fixtures rotate a part).
template <class Write>
gguf_contents written(const std::string& fixture, Write&& write, bool plain_rope = false) {
    gemma4::config c = gemma4::config::from_hf_file(std::string(QTENSOR_TEST_DATA_DIR) + "/gemma4/" + fixture);
    if (plain_rope) {
        c.rope_full.type = "default";
        c.rope_full.partial_rotary_factor = 1.0;
    }
    const memory_source src(c, gemma4::init_parameters(c, 5), ggml_type::f32);
    const scratch_dir tmp;
    {
        io::output_file out(tmp / "m.gguf");
        write(c, src, out);
    }
    return contents_of(io::gguf_file(tmp / "m.gguf"));
}

} // namespace

TEST_CASE("every file convert writes passes llama.cpp's loader rules: policies, a fallback, mixes") {
    for (const char* fixture : {"tiny-e2b", "tiny-moe"}) {
        CAPTURE(fixture);
        const auto policy = [&]<class P>(P) {
            CAPTURE(P::name);
            const gguf_contents f = written(fixture, [](const auto& c, const auto& src, io::output_file& out) {
                gemma4::gguf_types t = gemma4::gguf_types::for_policy<P>(c);
                t.fall_back(c);
                gemma4::write_gguf(c, src, out, t);
            });
            CHECK_MESSAGE(llama_loader_problems(f).empty(), joined(llama_loader_problems(f)));
        };
        policy(gemma4::f32_policy{});
        policy(gemma4::bf16_policy{});
        policy(gemma4::q8_0_policy{});
        policy(gemma4::q4_0_policy{});
        policy(gemma4::q2_k_policy{}); // rows of 128 and 96: falls back to q4_0
        // Full layers that rotate every pair still need rope_freqs (all ones).
        const gguf_contents plain = written(fixture, [](const auto& c, const auto& src, io::output_file& out) {
            gemma4::write_gguf<gemma4::f32_policy>(c, src, out);
        }, true);
        CHECK_MESSAGE(llama_loader_problems(plain).empty(), joined(llama_loader_problems(plain)));
        for (const gemma4::quant_mix& m : gemma4::quant_mixes) {
            CAPTURE(m.name);
            const gguf_contents f = written(fixture, [&](const auto& c, const auto& src, io::output_file& out) {
                gemma4::write_gguf(c, src, out, gemma4::gguf_types::mix(c, m));
            });
            CHECK_MESSAGE(llama_loader_problems(f).empty(), joined(llama_loader_problems(f)));
        }
    }
}

TEST_CASE("with a tokenizer: tokenizer.model as llama's keys") {
    // tiny-moe (384 token rows) with the 384-piece SentencePiece fixture beside
    // its weights. (The tokenizer.json fixture has 1,500 pieces: no tiny model
    // has room for it.)
    const std::string data = QTENSOR_TEST_DATA_DIR;
    const scratch_dir tmp;
    const std::filesystem::path dir = tmp / "model";
    std::filesystem::create_directory(dir);
    for (const char* f : {"config.json", "model.safetensors"})
        std::filesystem::copy_file(data + "/gemma4/tiny-moe/" + f, dir / f);
    std::filesystem::copy_file(data + "/tokenizer/tiny.model", dir / "tokenizer.model");
    const gemma4::checkpoint ck(dir.string());
    {
        io::output_file out(tmp / "m.gguf");
        gemma4::write_gguf<gemma4::f32_policy>(ck.config(), ck, out, ck.names());
    }
    const gguf_contents f = contents_of(io::gguf_file(tmp / "m.gguf"));
    CHECK(f.key("tokenizer.ggml.model")->as_string() == "llama");
    CHECK_MESSAGE(llama_loader_problems(f).empty(), joined(llama_loader_problems(f)));
    std::size_t special_ids = 0;
    for (const io::gguf_kv& kv : f.metadata) special_ids += kv.key.ends_with("_token_id") ? 1 : 0;
    CHECK(special_ids >= 2); // so the strict u32 check above had ids to see
    gguf_contents signed_id = f;
    for (io::gguf_kv& kv : signed_id.metadata)
        if (kv.key == "tokenizer.ggml.bos_token_id") kv.value = io::gguf_value::i32(2);
    CHECK(llama_loader_problems(signed_id).front() == "key tokenizer.ggml.bos_token_id has wrong type i32");
    // Without its token list, the file is refused.
    gguf_contents no_tokens = f;
    std::erase_if(no_tokens.metadata, [](const io::gguf_kv& kv) { return kv.key == "tokenizer.ggml.tokens"; });
    CHECK(llama_loader_problems(no_tokens).front() == "cannot find tokenizer vocab in model file");
}

TEST_CASE("the loader rules fail on files that break them") {
    const gguf_contents good = written("tiny-e2b", [](const auto& c, const auto& src, io::output_file& out) {
        gemma4::write_gguf<gemma4::f32_policy>(c, src, out);
    });
    REQUIRE(llama_loader_problems(good).empty());
    const auto first_problem = [](gguf_contents f) {
        const problems p = llama_loader_problems(f);
        return p.empty() ? std::string() : p.front();
    };
    const auto without_key = [&](std::string_view k) {
        gguf_contents f = good;
        std::erase_if(f.metadata, [&](const io::gguf_kv& kv) { return kv.key == k; });
        return first_problem(f);
    };
    const auto without_tensor = [&](std::string_view n) {
        gguf_contents f = good;
        std::erase_if(f.tensors, [&](const io::tensor_entry& e) { return e.name == n; });
        return first_problem(f);
    };
    const auto with_key = [&](std::string k, io::gguf_value v) {
        gguf_contents f = good;
        std::erase_if(f.metadata, [&](const io::gguf_kv& kv) { return kv.key == k; });
        f.metadata.push_back({std::move(k), std::move(v)});
        return first_problem(f);
    };
    CHECK(without_key("tokenizer.ggml.model") == "key not found in model: tokenizer.ggml.model");
    CHECK(without_key("gemma4.attention.sliding_window") == "key not found in model: gemma4.attention.sliding_window");
    CHECK(with_key("gemma4.block_count", io::gguf_value::i32(6)).starts_with("key gemma4.block_count has wrong type"));
    CHECK(with_key("gemma4.attention.sliding_window_pattern", io::gguf_value::array(std::vector<bool>(5, true)))
              .starts_with("key gemma4.attention.sliding_window_pattern has wrong array length"));
    // A no_vocab file's vocabulary is gemma4.vocab_size: without it, 0 rows.
    CHECK(without_key("gemma4.vocab_size") == "tensor 'token_embd.weight' has wrong shape");
    CHECK(without_tensor("rope_freqs.weight") == "missing tensor 'rope_freqs.weight'");
    CHECK(without_tensor("blk.0.attn_k.weight") == "missing tensor 'blk.0.attn_k.weight'");
    gguf_contents extra = good;
    extra.tensors.push_back(extra.tensors.back());
    extra.tensors.back().name = "blk.0.unknown.weight";
    CHECK(first_problem(extra) == "wrong number of tensors; expected " + std::to_string(extra.tensors.size()) + ", got " +
                                      std::to_string(extra.tensors.size() - 1));
}

} // namespace gemma4_gguf_types_test
