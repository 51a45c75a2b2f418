// gemma4/qat.hpp: the weights a QAT forward sees are, bit for bit, what
// packing the master weights under the policy stores (load_weights<P>, which
// `qtensor convert --policy P` writes), for every tensor; the backward zeroes
// exactly the gradients of clipped weights, as fake_quant<S>'s own backward.
// Static activations: calibration, fixed scales, and their rehearsal.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "memory_source.hpp"
#include "test_util.hpp"
#include "qtensor/gemma4/activation_sites_json.hpp"
#include "qtensor/gemma4/checkpoint.hpp"
#include "qtensor/gemma4/config.hpp"
#include "qtensor/gemma4/gguf.hpp"
#include "qtensor/gemma4/gradients.hpp"
#include "qtensor/gemma4/model.hpp"
#include "qtensor/gemma4/parameters.hpp"
#include "qtensor/gemma4/qat.hpp"
#include "qtensor/io/safetensors.hpp"
#include "qtensor/kernels/reference/float_ops.hpp"
#include "qtensor/scheme/registry.hpp"

namespace gemma4_qat_test {

using namespace qtensor;
using qtensor_test::memory_source;
using qtensor_test::message_of;
using qtensor_test::scratch_dir;

namespace {

const std::string fixtures = std::string(QTENSOR_TEST_DATA_DIR) + "/gemma4";

// Every tensor as load_weights<P> packs it, widened back to float32.
template <class P>
gemma4::tensors<float> packed(const gemma4::config& c, const gemma4::tensors<float>& master) {
    const memory_source src(c, master);
    gemma4::tensors<float> out;
    gemma4::load_weights<P>(c, c.layers(), src, {}, [&](const io::tensor_entry& e) {
        std::vector<float>& y = out[e.name];
        y.resize(e.elements());
        visit_scheme(e.type, [&]<class S>(S) {
            std::vector<typename S::block_type> blocks(e.data.size() / sizeof(typename S::block_type));
            std::memcpy(blocks.data(), e.data.data(), e.data.size());
            S::dequantize_row(blocks.data(), y.data(), y.size());
        });
    });
    return out;
}

template <class P>
void check_policy(const gemma4::config& c, const gemma4::tensors<float>& master, std::string_view model) {
    gemma4::rehearsal<P> qat(c);
    gemma4::tensors<float> seen;
    const kernels::executor out_of_order = qtensor_test::reversed_executor(3); // tensors over 2^16 come in pieces
    qat.forward(master, seen, out_of_order);
    kernels::thread_pool pool(2);
    gemma4::tensors<float> seen_by_pool;
    gemma4::rehearsal<P>(c).forward(master, seen_by_pool, pool.get_executor());
    CHECK(seen_by_pool == seen);
    const gemma4::tensors<float> want = packed<P>(c, master);
    std::size_t changed = 0;
    for (const auto& entry : want) { // (clang 14: no structured binding inside INFO)
        const std::string& name = entry.first;
        const std::vector<float>& w = entry.second;
        INFO(P::name << ": " << name);
        REQUIRE(seen.at(name).size() == w.size());
        CHECK(std::memcmp(seen.at(name).data(), w.data(), w.size() * sizeof(float)) == 0);
        changed += seen.at(name) != master.at(name);
    }
    CHECK(want.size() == seen.size());
    CHECK(changed > 0); // the rehearsal did round something

    // The straight-through backward: a gradient of ones comes back as
    // fake_quant<S>::backward of it, per tensor.
    gemma4::tensors<float> grads;
    for (const auto& [name, w] : master) grads[name].assign(w.size(), 1.0f);
    qat.backward(grads, out_of_order);
    std::size_t zeroed = 0;
    for (const gemma4::parameter_shape& s : gemma4::parameter_shapes(c)) {
        gemma4::with_role_scheme<P>(s.role, [&]<class S>(S) {
            std::vector<float> want_dx(s.elements());
            if constexpr (quantized_scheme<S>) {
                const std::vector<float> ones(s.elements(), 1.0f);
                fake_quant<S>::backward(master.at(s.name), ones, want_dx);
            } else {
                want_dx.assign(s.elements(), 1.0f); // float roles: nothing clips
            }
            INFO(s.name);
            CHECK(grads.at(s.name) == want_dx);
            for (const float g : grads.at(s.name)) zeroed += g == 0.0f;
        });
    }
    MESSAGE(P::name << " on " << model << ": " << changed << " tensors rounded, " << zeroed
                    << " clipped weights get no gradient");
}

// Q2_K needs rows of 256: tiny-e2b widened (hidden 256, 8 heads of 32 and 64,
// MLP 256).
gemma4::config widened() {
    gemma4::config c = gemma4::config::from_hf_file(fixtures + "/tiny-e2b");
    c.hidden_size = 256;
    c.num_attention_heads = 8;
    c.intermediate_size = 256;
    c.validate();
    return c;
}

// The mobile policy's Q4_0 per-layer projections and tables also need
// per-layer inputs of whole Q4_0 blocks: 32 wide.
gemma4::config mobile_sized() {
    gemma4::config c = widened();
    c.hidden_size_per_layer_input = 32;
    c.validate();
    return c;
}

template <class P>
void check_policy(const std::string& fixture) {
    const gemma4::config c = gemma4::config::from_hf_file(fixtures + "/" + fixture);
    const io::safetensors_file file(fixtures + "/" + fixture + "/model.safetensors");
    check_policy<P>(c, gemma4::load_parameters(c, file), fixture);
}

} // namespace

TEST_CASE("gemma4 QAT: the forward sees exactly the packed weights; clipped weights get no gradient") {
    check_policy<gemma4::q4_0_policy>("tiny-e2b");
    check_policy<gemma4::q8_0_policy>("tiny-moe");
    check_policy<gemma4::bf16_policy>("tiny-e2b");

    check_policy<gemma4::q2_k_policy>(widened(), gemma4::init_parameters(widened(), /*seed*/ 3), "tiny-e2b widened");
    check_policy<gemma4::mobile_policy>(mobile_sized(), gemma4::init_parameters(mobile_sized(), /*seed*/ 3),
                                        "tiny-e2b widened, per-layer inputs of 32");
}

// Q4_K_M's two main types, whose GEMV/GEMM share Q2_K's kernel with other
// bit layouts (the embedding role also holds the per-layer tables, rows of
// 96, so it stays q8_0; q5_k, the experts' scheme, is unused by this dense model).
struct k_quant_policy : gemma4::policy<q6_k, q4_k, q5_k, q8_0, bf16, bf16> {
    static constexpr std::string_view name = "q6_k/q4_k";
};

// A K-quant model runs from its GGUF file in place, as the rehearsal's f32
// weights predict up to the Q8_K activations and bf16 KV cache: far closer
// than the unquantized weights, which differ from it by the rounding of every
// weight.
template <class P>
void check_in_place(const gemma4::config& c = widened()) {
    const gemma4::tensors<float> master = gemma4::init_parameters(c, /*seed*/ 5);
    gemma4::tensors<float> seen;
    gemma4::rehearsal<P>(c).forward(master, seen);
    const std::vector<std::int32_t> ids{5, 17, 3, 250, 9, 511, 42, 42, 7, 300, 1, 128};

    const scratch_dir tmp;
    const std::string path = tmp / "k_quant.gguf";
    gemma4::write_gguf<P>(c, memory_source(c, master), path);
    const gemma4::checkpoint ck(path);
    const auto from_file = gemma4::model<P>::load(ck.config(), ck, ck.names(), {}, {}, gemma4::weight_layout::in_place);
    CHECK(from_file.weight_bytes().owned == 0); // nothing converted: every tensor in place
    const std::vector<float> logits = from_file.forward(ids);
    const memory_source in_memory(c, master);
    CHECK(logits == gemma4::model<P>::load(c, in_memory).forward(ids));
    // The stored policy takes each tensor as the file has it: the same kernels, the same bits (with
    // P's KV cache: stored_policy's is bf16).
    using stored_policy = gemma4::policy<gemma4::as_stored, gemma4::as_stored, gemma4::as_stored, gemma4::as_stored,
                                         typename P::kv_cache, gemma4::as_stored>;
    const auto stored = gemma4::model<stored_policy>::load(ck.config(), ck, ck.names());
    CHECK(stored.weight_bytes().owned == 0);
    CHECK(stored.forward(ids) == logits);

    const memory_source seen_source(c, seen);
    const std::vector<float> seen_logits = gemma4::model<gemma4::f32_policy>::load(c, seen_source).forward(ids);
    const std::vector<float> master_logits = gemma4::model<gemma4::f32_policy>::load(c, in_memory).forward(ids);
    const float packed_error = qtensor_test::max_diff(logits, seen_logits);
    const float weight_error = qtensor_test::max_diff(master_logits, seen_logits);
    MESSAGE(P::name << ": max |logit difference| from the rehearsal's f32 forward: packed model " << packed_error
                    << ", unquantized weights " << weight_error);
    CHECK(packed_error > 0.0f); // Q8_K activations do round
    CHECK(packed_error < 0.25f * weight_error);
}

TEST_CASE("gemma4 QAT: K-quant models run from their GGUF files in place, as the rehearsal's f32 weights predict") {
    check_in_place<gemma4::q2_k_policy>();
    check_in_place<k_quant_policy>();
    check_in_place<gemma4::mobile_policy>(mobile_sized());
}

TEST_CASE("gemma4 QAT: a role whose rows are not whole blocks is refused up front") {
    gemma4::config c = gemma4::config::from_hf_file(fixtures + "/tiny-e2b");
    // q8_0 policy: per-layer projections are bf16, but the MLP's are q8_0.
    c.intermediate_size = 40;
    c.validate();
    CHECK(message_of([&] { gemma4::rehearsal<gemma4::q8_0_policy>{c}; })
              .find("mlp.down_proj.weight has rows of 40 elements, not whole q8_0 blocks of 32") != std::string::npos);
    // q2_k: the fixture's hidden size of 128 is half a super-block.
    const gemma4::config fixture = gemma4::config::from_hf_file(fixtures + "/tiny-e2b");
    CHECK(message_of([&] { gemma4::rehearsal<gemma4::q2_k_policy>{fixture}; })
              .find("has rows of 128 elements, not whole q2_k blocks of 256") != std::string::npos);
}


TEST_CASE("gemma4 QAT: a weight the scheme refuses is named, whichever thread met it") {
    const gemma4::config c = widened(); // a table of 512 x 256: two pieces of 2^16
    gemma4::tensors<float> master = gemma4::init_parameters(c, /*seed*/ 3);
    master.at("model.embed_tokens.weight")[70000] = std::numeric_limits<float>::quiet_NaN();
    kernels::thread_pool pool(2);
    for (const auto& ex : {kernels::executor{}, qtensor_test::reversed_executor(3), pool.get_executor()}) {
        gemma4::tensors<float> seen;
        const std::string message =
            message_of([&] { gemma4::rehearsal<gemma4::q4_0_policy>(c).forward(master, seen, ex); });
        INFO(message);
        CHECK(message.find("qtensor: gemma4::rehearsal: model.embed_tokens.weight, from element 65536: "
                           "fake_quant<q8_0>: element 4464 is NaN") == 0); // 65536 + 4464 = 70000
    }
}


TEST_CASE("gemma4 static activations: calibrate, scale, and run the mobile model on fixed int8 scales") {
    const gemma4::config c = mobile_sized();
    const gemma4::tensors<float> master = gemma4::init_parameters(c, /*seed*/ 7);
    using mobile = gemma4::model<gemma4::mobile_policy>;
    const auto src = memory_source(c, master); // the model reads its f32 norms in place: src outlives it
    mobile m = mobile::load(c, src);
    const std::vector<std::int32_t> ids{5, 17, 3, 250, 9, 511, 42, 42, 7, 300, 1, 128};

    // Calibration: every site of this PLE model sees input; the head's is
    // the final hidden state of every token, as the observer shows it.
    gemma4::activation_sites ranges(m.layers().size());
    m.calibrate(ids, ranges);
    for (std::size_t i = 0; i < ranges.size(); ++i) {
        CAPTURE(ranges.name(i));
        CHECK(ranges[i] > 0.0f);
    }
    float final_amax = 0.0f;
    const std::vector<float> dynamic = m.forward(ids, [&](std::string_view name, std::span<const float> v, std::size_t) {
        if (name == "final_hidden")
            for (const float x : v) final_amax = std::max(final_amax, std::fabs(x));
    });
    CHECK(ranges.at(gemma4::model_site::lm_head) == final_amax);

    // Static scales: the products take int8 codes with them. The logits move
    // (by the activations' coarser rounding), less than the weights' own
    // quantization moves them from the f32 model's.
    m.set_activation_scales(ranges.scales());
    const std::vector<float> fixed = m.forward(ids);
    const memory_source master_source(c, master);
    const std::vector<float> f32 = gemma4::model<gemma4::f32_policy>::load(c, master_source).forward(ids);
    const float activation_error = qtensor_test::max_diff(fixed, dynamic);
    const float weight_error = qtensor_test::max_diff(dynamic, f32);
    MESSAGE("static against per-block activations: max |logit difference| " << activation_error
                                                                            << "; weights' quantization: " << weight_error);
    CHECK(activation_error > 0.0f);
    CHECK(activation_error < weight_error);
    m.set_activation_scales({}); // back to a scale per block
    CHECK(m.forward(ids) == dynamic);

    // Every site needs a scale, of the model's layers, as an fp16 value.
    gemma4::activation_sites missing = ranges.scales();
    missing.at(2, gemma4::layer_site::down_proj) = 0.0f;
    CHECK_THROWS_WITH_AS(m.set_activation_scales(missing), doctest::Contains("no activation scale for layers.2.down_proj"),
                         error);
    CHECK_THROWS_WITH_AS(m.set_activation_scales(gemma4::activation_sites(2)), doctest::Contains("for 2 layers"), error);
    gemma4::activation_sites odd = ranges.scales();
    odd.at(gemma4::model_site::lm_head) = 0.1f;
    CHECK_THROWS_WITH_AS(m.set_activation_scales(odd), doctest::Contains("not an fp16 value"), error);
}

// The mobile policy with an f32 KV cache: the model's products then differ
// from the rehearsal's float GEMMs only in the order of their sums.
struct mobile_f32_kv : gemma4::policy<tq2_0, tq2_0, tq2_0, q4_0, f32, q4_0> {
    static constexpr std::string_view name = "mobile, f32 KV";
};

// The mean cross-entropy of logits[t] against ids[t + 1], in double.
double loss_of(const std::vector<float>& logits, const std::vector<std::int32_t>& ids) {
    const std::size_t V = logits.size() / ids.size();
    double sum = 0;
    for (std::size_t t = 0; t + 1 < ids.size(); ++t) {
        const std::vector<double> z(logits.begin() + static_cast<std::ptrdiff_t>(t * V),
                                    logits.begin() + static_cast<std::ptrdiff_t>((t + 1) * V));
        sum += kernels::reference::cross_entropy(z.data(), V, static_cast<std::size_t>(ids[t + 1]));
    }
    return sum / static_cast<double>(ids.size() - 1);
}

TEST_CASE("gemma4 static activations: QAT rehearses the loss the static model has") {
    const gemma4::config c = mobile_sized();
    const gemma4::tensors<float> master = gemma4::init_parameters(c, /*seed*/ 7);
    using model = gemma4::model<mobile_f32_kv>;
    const auto src = memory_source(c, master);
    model m = model::load(c, src);
    const std::vector<std::int32_t> ids{5, 17, 3, 250, 9, 511, 42, 42, 7, 300, 1, 128};
    gemma4::activation_sites ranges(m.layers().size());
    m.calibrate(ids, ranges);
    const double dynamic_loss = loss_of(m.forward(ids), ids);
    m.set_activation_scales(ranges.scales());
    const double static_loss = loss_of(m.forward(ids), ids);

    gemma4::rehearsal<mobile_f32_kv> qat(c);
    gemma4::tensors<float> seen;
    qat.forward(master, seen);
    const gemma4::activation_sites scales = qat.activation_scales(ranges.scales());
    for (std::size_t i = 0; i < scales.size(); ++i) CHECK(scales[i] == ranges.scales()[i]); // every role quantized
    const double rehearsed = gemma4::loss_and_gradients(c, seen, ids, ids.size(), {}, scales).loss;
    const double float_inputs = gemma4::loss_and_gradients(c, seen, ids, ids.size()).loss;
    MESSAGE("loss: static model " << static_loss << ", its rehearsal " << rehearsed << "; per-block activations "
                                  << dynamic_loss << ", float inputs " << float_inputs);
    const double gap = std::fabs(rehearsed - static_loss);
    CHECK(gap < 5e-5 * static_loss);
    CHECK(std::fabs(float_inputs - static_loss) > 10 * gap);

    // A float role's products take float inputs, in the model as in the rehearsal.
    using bf16_head_policy = gemma4::policy<tq2_0, tq2_0, tq2_0, bf16, f32, q4_0>;
    const gemma4::activation_sites bf16_head = gemma4::rehearsal<bf16_head_policy>::activation_scales(ranges.scales());
    CHECK(bf16_head.at(gemma4::model_site::lm_head) == 0.0f);
    CHECK(bf16_head.at(gemma4::model_site::per_layer_model_projection) ==
          ranges.scales().at(gemma4::model_site::per_layer_model_projection));
    CHECK_THROWS_WITH_AS(gemma4::loss_and_gradients(c, seen, ids, ids.size(), {}, gemma4::activation_sites(2)),
                         doctest::Contains("scales for 2 layers"), error);
    gemma4::activation_sites odd = scales; // the model refuses it: so does its rehearsal
    odd.at(gemma4::model_site::lm_head) = 0.1f;
    CHECK_THROWS_WITH_AS(gemma4::loss_and_gradients(c, seen, ids, ids.size(), {}, odd),
                         doctest::Contains("not an fp16 value"), error);
}

TEST_CASE("gemma4 static activations: the scales file") {
    gemma4::activation_sites s(2);
    s.at(0, gemma4::layer_site::attention) = 0.25f;
    s.at(1, gemma4::layer_site::down_proj) = 0.0078125f;
    s.at(gemma4::model_site::lm_head) = 1.5f;
    const std::string text = gemma4::to_json(s);
    CHECK(text.find("\"layers.1.down_proj\": 0.0078125") != std::string::npos);
    CHECK(text.find("layers.0.mlp") == std::string::npos); // sites without a number are left out
    const gemma4::activation_sites back = gemma4::activation_sites_from_json(text, 2, "s.json");
    for (std::size_t i = 0; i < s.size(); ++i) CHECK(back[i] == s[i]);
    const auto refused = [](std::string_view t, std::size_t layers) {
        return message_of([&] { gemma4::activation_sites_from_json(t, layers, "s.json"); });
    };
    CHECK(refused(text, 1).find("\"layers.1.down_proj\" is no site of a model with 1 layers") != std::string::npos);
    CHECK(refused(R"({"format": "qtensor activation scales", "scales": {"lm_head": -1}})", 2).find("not a finite positive") !=
          std::string::npos);
    CHECK(refused(R"({"format": "qtensor activation scales", "scales": {"lm_head": "x"}})", 2).find("not a finite positive") !=
          std::string::npos);
    CHECK(refused(R"({"scales": {}})", 2).find("not qtensor activation scales") != std::string::npos);
}

} // namespace gemma4_qat_test
