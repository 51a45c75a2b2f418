// gemma4/gguf_types.hpp: the type of each tensor of a converted file, for a
// policy with llama-quantize's fallback and for llama-quantize's mixes. The
// expected types are worked out by hand from llama-quantize's rules
// (llama.cpp src/llama-quant.cpp, restated in docs/gguf.md section 3) for
// the released E2B config; the files write_gguf writes are checked tensor by
// tensor against the reference quantizers, and run.
#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "memory_source.hpp"
#include "test_util.hpp"
#include "qtensor/gemma4/checkpoint.hpp"
#include "qtensor/gemma4/gguf.hpp"
#include "qtensor/gemma4/gguf_types.hpp"
#include "qtensor/gemma4/model.hpp"
#include "qtensor/io/gguf.hpp"
#include "qtensor/io/json.hpp"

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
    //   Q5_K_S, Q6_K: nothing raised; Q8_0: the tables stay Q8_0.
    const want rows[] = {
        {"Q2_K", 10, q2_k, q6_k, q4_k, q4_k, q3_k, q3_k, q3_k, 0, 0},
        {"Q3_K_S", 11, q3_k, q6_k, q3_k, q3_k, q3_k, q3_k, q3_k, 0, 0},
        {"Q3_K_M", 12, q3_k, q6_k, q5_k, q4_k, q5_k, q4_k, q4_k, 2, 2},
        {"Q3_K_L", 13, q3_k, q6_k, q5_k, q5_k, q5_k, q5_k, q5_k, 0, 0},
        {"Q4_K_S", 14, q4_k, q6_k, q5_k, q4_k, q5_k, q4_k, q4_k, 4, 4},
        {"Q5_K_S", 16, q5_k, q6_k, q5_k, q5_k, q5_k, q5_k, q5_k, 0, 0},
        {"Q6_K", 18, q6_k, q6_k, q6_k, q6_k, q6_k, q6_k, q6_k, 0, 0},
        {"Q8_0", 7, q8_0, q8_0, q8_0, q8_0, q8_0, q8_0, q8_0, 0, 0},
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
    CHECK_THROWS_AS(gemma4::gguf_types::mix(c, "IQ4_XS"), error);
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

TEST_CASE("write_gguf in a mix: every tensor in its type, bytes as the reference quantizer makes them") {
    for (const char* fixture : {"tiny-e2b", "tiny-moe"}) {
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
        CHECK(gemma4::model<gemma4::f32_policy>::load(ck.config(), ck, ck.names()).forward(ids) ==
              gemma4::model<gemma4::f32_policy>::load(c, dequantized).forward(ids));
    }
}
