// gemma4/footprint.hpp against what it predicts: the tensors write_gguf()
// writes for a policy (their bytes and the file's data section), the bytes a
// kv_cache allocates, and Google's published memory table for the released
// sizes (docs/configs/, docs/footprint.md).
#include <doctest/doctest.h>

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "memory_source.hpp"
#include "test_util.hpp"
#include "qtensor/gemma4/footprint.hpp"
#include "qtensor/gemma4/gguf.hpp"
#include "qtensor/gemma4/kv_cache.hpp"
#include "qtensor/io/gguf.hpp"
#include "qtensor/io/json.hpp"

namespace gemma4_footprint_test {

using namespace qtensor;
using qtensor_test::memory_source;
using qtensor_test::message_of;
using qtensor_test::scratch_dir;

namespace {

const std::string fixtures = std::string(QTENSOR_TEST_DATA_DIR) + "/gemma4";
const std::string configs = std::string(QTENSOR_TEST_DATA_DIR) + "/../../docs/configs";

struct released {
    gemma4::config text;
    gemma4::encoder_parameters encoders;
};

released read_released(const std::string& name) {
    const std::string path = configs + "/gemma4-" + name + ".json";
    const std::string text = qtensor_test::read_file(path);
    const nlohmann::json j = io::parse_json(text, gemma4::max_config_depth, path);
    return {gemma4::config::from_hf_json(j), gemma4::encoder_parameters::from_json(j)};
}

// The footprint of policy P's GGUF, checked against the file write_gguf writes.
template <class P>
void check_against_gguf(const std::string& fixture) {
    CAPTURE(fixture);
    CAPTURE(P::name);
    const gemma4::config c = gemma4::config::from_hf_file(fixtures + "/" + fixture);
    const gemma4::footprint f = gemma4::measure_footprint(c, gemma4::storage_plan::of<P>(), 0);
    const memory_source src(c, gemma4::init_parameters(c, 3), ggml_type::f32);
    const scratch_dir tmp;
    gemma4::write_gguf<P>(c, src, tmp / "m.gguf");
    const io::gguf_file g(tmp / "m.gguf");
    std::size_t bytes = 0, tensors = 0;
    for (const io::tensor_entry& e : g.entries()) {
        bytes += e.data.size();
        ++tensors;
    }
    std::size_t counted = 0;
    for (const gemma4::footprint_part& p : f.parts) counted += p.tensors;
    // The file also holds llama.cpp's rope_freqs for the full layers' partial RoPE.
    const std::size_t rope_freqs = gemma4::rope_freq_factors(c).size();
    CHECK(rope_freqs > 0);
    CHECK(counted + 1 == tensors);
    CHECK(f.bytes + rope_freqs * sizeof(float) == bytes);
    CHECK(f.tensor_data == std::filesystem::file_size(tmp / "m.gguf") - g.data_offset());
}

template <class KV>
void check_kv_cache(const gemma4::config& c, std::size_t positions) {
    CAPTURE(KV::name);
    CAPTURE(positions);
    gemma4::storage_plan plan = gemma4::storage_plan::of<gemma4::f32_policy>();
    plan.set("kv_cache", KV::name);
    CHECK(gemma4::measure_footprint(c, plan, positions).kv_cache == gemma4::kv_cache<KV>(c, positions).bytes());
}

double gb(std::size_t bytes) { return static_cast<double>(bytes) / 1e9; }

} // namespace

TEST_CASE("gemma4 footprint: the bytes write_gguf writes, per policy") {
    for (const char* fixture : {"tiny-e2b", "tiny-moe"}) {
        check_against_gguf<gemma4::f32_policy>(fixture);
        check_against_gguf<gemma4::bf16_policy>(fixture);
        check_against_gguf<gemma4::q8_0_policy>(fixture);
        check_against_gguf<gemma4::q4_0_policy>(fixture);
    }
}

TEST_CASE("gemma4 footprint: the KV cache as kv_cache allocates it") {
    for (const char* fixture : {"tiny-e2b", "tiny-moe"}) {
        const gemma4::config c = gemma4::config::from_hf_file(fixtures + "/" + fixture);
        CAPTURE(fixture);
        // Below, at and beyond the sliding window (ring buffers stop growing).
        for (const std::size_t n : {std::size_t{1}, c.sliding_window - 1, c.sliding_window, 3 * c.sliding_window}) {
            check_kv_cache<f32>(c, n);
            check_kv_cache<bf16>(c, n);
        }
    }
    // A full-size config: sliding layers hold 512 positions, full ones all.
    const released e2b = read_released("e2b");
    check_kv_cache<q8_0>(e2b.text, 4096);
    CHECK(gemma4::measure_footprint(e2b.text, gemma4::storage_plan::of<gemma4::bf16_policy>(), 0).kv_cache == 0);
}

TEST_CASE("gemma4 footprint: resident when mapped: lookup tables by the pages their rows touch") {
    const gemma4::config c = gemma4::config::from_hf_file(fixtures + "/tiny-e2b");
    const gemma4::storage_plan plan = gemma4::storage_plan::of<gemma4::bf16_policy>();
    const gemma4::footprint none = gemma4::measure_footprint(c, plan, 0), some = gemma4::measure_footprint(c, plan, 5);
    // A per-layer row: L x P bf16 values, 192 bytes, within one page or straddling two.
    const std::size_t ple_row = c.num_hidden_layers * c.hidden_size_per_layer_input * 2;
    REQUIRE(ple_row < gemma4::mapped_page_bytes);
    for (std::size_t i = 0; i < none.parts.size(); ++i) {
        CAPTURE(none.parts[i].name);
        if (none.parts[i].name == "per-layer table") {
            CHECK(none.parts[i].resident == 0);
            CHECK(some.parts[i].resident == std::min(some.parts[i].bytes, 5 * 2 * gemma4::mapped_page_bytes));
        } else {
            // The token table is also the (tied) LM head, which reads every row.
            CHECK(none.parts[i].resident == none.parts[i].bytes);
        }
    }
    // Every row read: the whole table, no more.
    CHECK(gemma4::measure_footprint(c, plan, c.max_position_embeddings).resident == none.bytes);

    // Encoders are counted in the weights, not in the mapped text model.
    const gemma4::footprint with = gemma4::measure_footprint(c, plan, 0, {1000, 64});
    CHECK(with.bytes == none.bytes + 2000 + 128);
    CHECK(with.resident == none.resident);
    CHECK(with.parts.back().name == "audio encoder");
}

TEST_CASE("gemma4 footprint: what cannot be stored is refused, naming it") {
    const gemma4::config c = gemma4::config::from_hf_file(fixtures + "/tiny-e2b");
    // The fixture's rows are 128 wide: no whole Q2_K block of 256.
    CHECK(message_of([&] { gemma4::measure_footprint(c, gemma4::storage_plan::of<gemma4::q2_k_policy>(), 0); })
              .find("footprint: model.layers.0.self_attn.q_proj.weight has rows of 128 elements, not whole q2_k "
                    "blocks of 256") != std::string::npos);
    gemma4::storage_plan plan = gemma4::storage_plan::of<gemma4::f32_policy>();
    CHECK(message_of([&] { plan.set("lm_head", "q4_0"); }).find("unknown part \"lm_head\"") != std::string::npos);
    CHECK(message_of([&] { plan.set("mlp", "q8_1"); }).find("unknown scheme \"q8_1\"") != std::string::npos);
    CHECK(message_of([&] { plan.set("mlp", "q8_k"); }).find("activation format") != std::string::npos);
    CHECK(message_of([&] { plan.set("kv_cache", "q4_0"); }).find("the KV cache is f32, bf16 or q8_0, not q4_0") !=
          std::string::npos);
    plan.set("mlp", "Q4_K"); // ggml's spelling works too
    CHECK(plan[gemma4::weight_role::mlp].scheme == "q4_k");
    CHECK(message_of([&] { gemma4::measure_footprint(c, plan, c.max_position_embeddings + 1); })
              .find("positions exceed the model's context of 256") != std::string::npos);

    // Encoder counts: a count from 0 to 2^40 under "vision" and "audio".
    const auto encoders = [](const char* text) { return gemma4::encoder_parameters::from_json(nlohmann::json::parse(text)); };
    CHECK(encoders(R"({"qtensor_encoder_parameters": {"audio": 7}})").audio == 7);
    CHECK(encoders(R"({})").vision == 0);
    CHECK(message_of([&] { encoders(R"({"qtensor_encoder_parameters": 5})"); }).find("is not an object") !=
          std::string::npos);
    CHECK(message_of([&] { encoders(R"({"qtensor_encoder_parameters": {"vision": -1}})"); })
              .find("qtensor_encoder_parameters.vision is not a count from 0 to 2^40") != std::string::npos);
    CHECK(message_of([&] { encoders(R"({"qtensor_encoder_parameters": {"audio": 1099511627777}})"); })
              .find("qtensor_encoder_parameters.audio is not a count") != std::string::npos);
}

// Google's table (weights only, GB = 1e9 bytes), from the Gemma 4 overview:
//   model    BF16  SFP8  Q4_0
//   E2B      11.4   5.7   2.9
//   E4B      17.9   8.9   4.5
//   12B      26.7  13.4   6.7
//   26B A4B  57.7  28.8  14.4
//   31B      69.9  34.9  17.5
// Q4_0 counts every weight, the token and per-layer tables and the encoders
// included, as Q4_0: 4.5 bits. The issue's goal is every figure within 10%;
// the Q4_0 column holds within 2% (the rounding of the table and of the
// encoder counts). BF16 and SFP8 are, up to rounding, 4 and 2 times the Q4_0
// column: 18 and 9 bits a weight, where bf16 takes 16 and Q8_0 8.5
// (docs/footprint.md). Scaled by those ratios the counts hold within 2%;
// unscaled, Q8_0 within 10% and bf16 not (11% below).
TEST_CASE("gemma4 footprint: the released sizes against Google's memory table") {
    struct row {
        std::string name;
        double bf16, sfp8, q4_0;
    };
    for (const row& r : {row{"e2b", 11.4, 5.7, 2.9}, row{"e4b", 17.9, 8.9, 4.5}, row{"12b", 26.7, 13.4, 6.7},
                         row{"26b-a4b", 57.7, 28.8, 14.4}, row{"31b", 69.9, 34.9, 17.5}}) {
        CAPTURE(r.name);
        const released m = read_released(r.name);
        gemma4::storage_plan q4 = gemma4::storage_plan::of<gemma4::q4_0_policy>();
        q4.set("embedding", "q4_0");
        q4.set("per_layer", "q4_0");
        gemma4::storage_plan q8 = gemma4::storage_plan::of<gemma4::q8_0_policy>();
        q8.set("per_layer", "q8_0");
        const double q4_0 = gb(gemma4::measure_footprint(m.text, q4, 0, m.encoders).bytes);
        const double q8_0 = gb(gemma4::measure_footprint(m.text, q8, 0, m.encoders).bytes);
        const double bf16 =
            gb(gemma4::measure_footprint(m.text, gemma4::storage_plan::of<gemma4::bf16_policy>(), 0, m.encoders).bytes);
        MESSAGE(r.name << ": bf16 " << bf16 << " GB (Google " << r.bf16 << "), Q8_0 " << q8_0 << " (SFP8 " << r.sfp8
                       << "), Q4_0 " << q4_0 << " (" << r.q4_0 << ")");
        CHECK(q4_0 == doctest::Approx(r.q4_0).epsilon(0.02));
        CHECK(q8_0 == doctest::Approx(r.sfp8).epsilon(0.10));
        CHECK(q8_0 * 9 / 8.5 == doctest::Approx(r.sfp8).epsilon(0.02));
        CHECK(bf16 * 18 / 16 == doctest::Approx(r.bf16).epsilon(0.02));
    }
}

// Google's mobile column, text only: E2B 0.84 GB, E4B 2.2 GB, the weights
// without the per-layer table ("the text-only E2B without Per-Layer
// Embeddings needs < 1 GB"). The mobile policy's resident weights stay below
// them; E2B's decoder matrices, counted by hand from TQ2_0's 66 bytes per 256
// weights (E2B: 15 layers with MLP 6144 and 20 KV-shared with 12288, hidden 1536).
TEST_CASE("gemma4 footprint: the mobile policy against Google's mobile figures") {
    for (const auto& row : {std::pair{"e2b", 0.84}, std::pair{"e4b", 2.2}}) {
        const std::string name = row.first; // (clang 14: no structured binding inside CAPTURE)
        const double google = row.second;
        CAPTURE(name);
        const released m = read_released(name);
        const gemma4::footprint fp =
            gemma4::measure_footprint(m.text, gemma4::storage_plan::of<gemma4::mobile_policy>(), 96);
        MESSAGE(name << ": mobile, resident after 96 tokens " << gb(fp.resident) << " GB (Google, text only "
                     << google << ")");
        CHECK(gb(fp.resident) < google);
    }
    const released e2b = read_released("e2b");
    const gemma4::footprint fp =
        gemma4::measure_footprint(e2b.text, gemma4::storage_plan::of<gemma4::mobile_policy>(), 96);
    const std::size_t mlp_weights = 3 * 1536 * (15 * 6144 + 20 * 12288);
    const auto mlp = std::find_if(fp.parts.begin(), fp.parts.end(), [](const auto& p) { return p.name == "mlp"; });
    REQUIRE(mlp != fp.parts.end());
    CHECK(mlp->scheme == "tq2_0");
    CHECK(mlp->bytes == mlp_weights / 256 * 66);
}

TEST_CASE("gemma4 footprint: parameter counts of the released sizes") {
    // Google's model cards: E2B 5.1B parameters with embeddings, E4B 8B (both
    // with their vision and audio encoders).
    const auto total = [](const char* name) {
        const released m = read_released(name);
        return static_cast<double>(
            gemma4::measure_footprint(m.text, gemma4::storage_plan::of<gemma4::f32_policy>(), 0, m.encoders)
                .parameters);
    };
    CHECK(total("e2b") == doctest::Approx(5.1e9).epsilon(0.02));
    CHECK(total("e4b") == doctest::Approx(8.0e9).epsilon(0.02));
}

} // namespace gemma4_footprint_test
