// gemma4/lattice.hpp on a synthetic QAT checkpoint whose grids the test sets:
// tiny-e2b's shapes, fresh weights, stored as bf16, the attention weights on
// ggml's Q4_0 grid (as fake_quant<q4_0> trains them), the MLP's on symmetric
// amax / 7 grids (a symmetric int4 recipe). The report must find exactly those
// grids; `convert --lattice` (aligned_source + write_gguf) must keep the MLP's
// values that ggml's rule moves.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "memory_source.hpp"
#include "test_util.hpp"
#include "qtensor/gemma4/gguf.hpp"
#include "qtensor/gemma4/lattice.hpp"
#include "qtensor/io/gguf.hpp"
#include "qtensor/scheme/fake_quant.hpp"

namespace gemma4_lattice_test {

using namespace qtensor;
using qtensor_test::memory_source;
using qtensor_test::message_of;
using qtensor_test::scratch_dir;

namespace {

const std::string fixtures = std::string(QTENSOR_TEST_DATA_DIR) + "/gemma4";

// Each block of 32 on s = amax / 7 with codes round(x / s).
void to_symmetric_grid(std::vector<float>& w) {
    for (std::size_t b = 0; b < w.size(); b += 32) {
        float amax = 0;
        for (std::size_t i = b; i < b + 32; ++i) amax = std::max(amax, std::fabs(w[i]));
        const float s = amax / 7;
        for (std::size_t i = b; i < b + 32; ++i) w[i] = s * std::nearbyint(w[i] / s);
    }
}

struct qat_checkpoint {
    gemma4::config config = gemma4::config::from_hf_file(fixtures + "/tiny-e2b");
    gemma4::tensors<float> weights = gemma4::init_parameters(config, /*seed*/ 7);

    qat_checkpoint() {
        for (const gemma4::parameter_shape& s : gemma4::q4_0_parameters<gemma4::q4_0_policy>(config)) {
            std::vector<float>& w = weights.at(s.name);
            if (s.role == gemma4::weight_role::attention) fake_quant<q4_0>::forward(w, w);
            else to_symmetric_grid(w);
        }
    }
};

// The largest |unpacked - stored| over a tensor of a Q4_0 GGUF file, and the
// largest grid step of the stored values' blocks.
struct packing_error {
    float worst = 0, step = 0;
};

packing_error error_of(const io::gguf_file& file, const std::string& gguf_name, const std::vector<float>& stored) {
    const io::tensor_entry* e = file.find(gguf_name);
    REQUIRE(e != nullptr);
    REQUIRE(e->type == ggml_type::q4_0);
    std::vector<block_q4_0> blocks(e->data.size() / sizeof(block_q4_0));
    std::memcpy(blocks.data(), e->data.data(), e->data.size());
    std::vector<float> back(stored.size());
    q4_0::dequantize_row(blocks.data(), back.data(), back.size());
    packing_error out;
    for (std::size_t i = 0; i < stored.size(); ++i) {
        out.worst = std::max(out.worst, std::fabs(back[i] - stored[i]));
        out.step = std::max(out.step, std::fabs(stored[i]) / 7);
    }
    return out;
}

} // namespace

TEST_CASE("gemma4 lattice: the report finds each tensor's grid and what ggml's rule moves") {
    const qat_checkpoint ck;
    const memory_source src(ck.config, ck.weights, ggml_type::bf16);
    const std::vector<gemma4::tensor_lattice> reports = gemma4::lattice_reports(ck.config, src);
    REQUIRE(reports.size() == gemma4::q4_0_parameters<gemma4::q4_0_policy>(ck.config).size());
    std::size_t attention = 0, mlp = 0;
    for (const gemma4::tensor_lattice& t : reports) {
        INFO(t.name);
        const lattice::report& r = t.report;
        CHECK(t.stored == ggml_type::bf16);
        CHECK(r.blocks > 0);
        CHECK(r.on_grid == r.blocks);
        if (t.name.find("self_attn") != std::string::npos) {
            ++attention;
            CHECK(r.by_code_max[8] == r.blocks);
            CHECK(r.moved == 0);
        } else {
            ++mlp;
            CHECK(r.by_code_max[7] == r.blocks);
            CHECK(r.moved == r.blocks);
            CHECK(r.aligned_sq < 1e-3 * r.ggml_sq);
        }
    }
    CHECK(attention > 0);
    CHECK(mlp > 0);

    // Random weights lie on no grid.
    const memory_source plain(ck.config, gemma4::init_parameters(ck.config, 8), ggml_type::bf16);
    for (const gemma4::tensor_lattice& t : gemma4::lattice_reports(ck.config, plain)) CHECK(t.report.on_grid == 0);
}

TEST_CASE("gemma4 lattice: convert --lattice keeps the trained grid's values; ggml's rule does not") {
    const qat_checkpoint ck;
    const memory_source src(ck.config, ck.weights, ggml_type::bf16);
    const scratch_dir tmp;
    const std::string plain = tmp / "plain.gguf", aligned = tmp / "aligned.gguf";
    gemma4::write_gguf<gemma4::q4_0_policy>(ck.config, src, plain);
    gemma4::write_gguf<gemma4::q4_0_policy>(
        ck.config, gemma4::aligned_source<gemma4::q4_0_policy, memory_source>(ck.config, src), aligned);
    const io::gguf_file p(plain), a(aligned);

    // The stored values: the bf16 of the grids.
    const auto stored = [&](const std::string& hf) {
        std::vector<float> v = ck.weights.at(hf);
        for (float& x : v) x = bf16_to_fp32(fp32_to_bf16(x));
        return v;
    };
    // ggml's own grid: both packings give it back up to the bf16 rounding of
    // the stored values (2^-8 of the largest, with the scale's fp16 rounding).
    const std::vector<float> q = stored("model.layers.0.self_attn.q_proj.weight");
    const packing_error qp = error_of(p, "blk.0.attn_q.weight", q), qa = error_of(a, "blk.0.attn_q.weight", q);
    CHECK(qp.worst <= 7 * qp.step * (0x1p-11f + 3 * 0x1p-8f));
    CHECK(qa.worst <= 7 * qa.step * (0x1p-11f + 3 * 0x1p-8f));
    // The amax / 7 grid: ggml's rule re-rounds onto amax / 8 steps (an
    // eighth of a step at least, in some element); the aligned packing keeps
    // each value to the fp16 rounding of its step.
    const std::vector<float> up = stored("model.layers.1.mlp.up_proj.weight");
    const packing_error ep = error_of(p, "blk.1.ffn_up.weight", up), ea = error_of(a, "blk.1.ffn_up.weight", up);
    MESSAGE("amax/7 grid, largest error: ggml's rule " << ep.worst << ", aligned " << ea.worst << " (step up to "
                                                       << ep.step << ")");
    CHECK(ea.worst <= 7 * ea.step * (0x1p-11f + 2 * 0x1p-8f));
    CHECK(ep.worst > 20 * ea.worst);

    // Tensors not stored as Q4_0 are written as the plain conversion writes them.
    const io::tensor_entry* ep_emb = p.find("token_embd.weight");
    const io::tensor_entry* ea_emb = a.find("token_embd.weight");
    REQUIRE(ep_emb != nullptr);
    REQUIRE(ea_emb != nullptr);
    CHECK(ep_emb->type == ea_emb->type);
    CHECK(std::equal(ep_emb->data.begin(), ep_emb->data.end(), ea_emb->data.begin(), ea_emb->data.end()));
}

TEST_CASE("gemma4 lattice: a policy without Q4_0 has nothing to align") {
    const qat_checkpoint ck;
    const memory_source src(ck.config, ck.weights);
    CHECK(message_of([&] { gemma4::aligned_source<gemma4::q8_0_policy, memory_source>(ck.config, src); })
              .find("policy q8_0 stores no tensor as q4_0") != std::string::npos);
}

} // namespace gemma4_lattice_test
