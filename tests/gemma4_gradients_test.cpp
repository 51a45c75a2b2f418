// The whole model's training loss and every parameter's gradient, from the
// scalar reference (gemma4/gradients.hpp) in double, against Hugging Face
// transformers' float64 backward pass (tests/data/gemma4/*/reference.safetensors:
// loss, grad.<name>): tiny-e2b (PLE, KV sharing, sliding and full layers,
// proportional RoPE, softcap) and tiny-moe (routed experts, k_eq_v).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "qtensor/gemma4/config.hpp"
#include "qtensor/gemma4/gradients.hpp"
#include "qtensor/io/safetensors.hpp"
#include "qtensor/kernels/executor.hpp"

namespace gemma4_gradients_test {

using namespace qtensor;

namespace {

const std::string fixtures = std::string(QTENSOR_TEST_DATA_DIR) + "/gemma4";

std::vector<double> as_doubles(const io::tensor_entry& e) {
    REQUIRE(e.type == ggml_type::f32);
    std::vector<float> f(e.elements());
    std::memcpy(f.data(), e.data.data(), f.size() * sizeof(float));
    return {f.begin(), f.end()};
}

struct fixture {
    gemma4::config config;
    gemma4::tensors<double> params;
    std::vector<std::int32_t> ids;
};

fixture load(const std::string& name) {
    const std::string dir = fixtures + "/" + name;
    fixture f{gemma4::config::from_hf_file(dir), {}, {}};
    const io::safetensors_file model(dir + "/model.safetensors"), reference(dir + "/reference.safetensors");
    for (const io::tensor_entry& e : model.entries()) f.params[e.name] = as_doubles(e);
    for (const std::int64_t id : io::to_int64(reference.raw("input_ids"), reference.path()))
        f.ids.push_back(static_cast<std::int32_t>(id));
    return f;
}

// max |got - want| / max |want| over the tensor.
template <class T>
double relative_error(const std::vector<T>& got, const std::vector<double>& want) {
    REQUIRE(got.size() == want.size());
    double largest = 0.0, diff = 0.0;
    for (std::size_t i = 0; i < want.size(); ++i) {
        largest = std::max(largest, std::fabs(want[i]));
        diff = std::max(diff, std::fabs(static_cast<double>(got[i]) - want[i]));
    }
    return largest > 0.0 ? diff / largest : diff;
}

void check_fixture(const std::string& name) {
    const std::string dir = fixtures + "/" + name;
    const fixture f = load(name);
    const io::safetensors_file reference(dir + "/reference.safetensors");

    const auto got = gemma4::reference::loss_and_gradients(f.config, f.params, f.ids);
    const double want_loss = as_doubles(reference.at("loss"))[0];
    INFO(name << ": loss " << got.loss << ", reference " << want_loss);
    CHECK(std::fabs(got.loss - want_loss) <= 1e-6 * std::fabs(want_loss));

    std::size_t compared = 0;
    double worst = 0.0;
    for (const io::tensor_entry& e : reference.entries()) {
        if (e.name.rfind("grad.", 0) != 0) continue;
        const std::string param = e.name.substr(5);
        const auto it = got.grads.find(param);
        INFO(name << ": " << param);
        REQUIRE(it != got.grads.end());
        const double relative = relative_error(it->second, as_doubles(e));
        worst = std::max(worst, relative);
        CHECK(relative <= 1e-4);
        ++compared;
    }
    // Every gradient the reference has, and no other: the reference leaves
    // out only the buffers (layer_scalar).
    CHECK(compared == got.grads.size());
    MESSAGE(name << ": " << compared << " gradients, worst " << worst << " of the tensor's largest");
}

} // namespace

TEST_CASE("gemma4 reference gradients: tiny-e2b (PLE, KV sharing, sliding and full layers, softcap)") {
    check_fixture("tiny-e2b");
}

TEST_CASE("gemma4 reference gradients: tiny-moe (routed experts, k_eq_v)") { check_fixture("tiny-moe"); }

// A batch is its sequences side by side: each at positions 0..seq-1,
// attending only to itself, the loss and gradients the mean of theirs.
TEST_CASE("gemma4 gradients: a batch of sequences is the mean of each sequence's") {
    const fixture f = load("tiny-e2b");
    const std::size_t seq = f.ids.size() / 2; // 12: past the sliding window of 8
    const std::span<const std::int32_t> ids(f.ids);
    const auto both = gemma4::reference::loss_and_gradients(f.config, f.params, ids, seq);
    const auto first = gemma4::reference::loss_and_gradients(f.config, f.params, ids.first(seq));
    const auto second = gemma4::reference::loss_and_gradients(f.config, f.params, ids.last(seq));
    CHECK(std::fabs(both.loss - (first.loss + second.loss) / 2) <= 1e-12 * both.loss);
    for (const auto& entry : both.grads) { // (clang 14: no structured binding inside INFO)
        const std::string& name = entry.first;
        const std::vector<double>& g = entry.second;
        std::vector<double> mean(g.size());
        for (std::size_t i = 0; i < g.size(); ++i) mean[i] = (first.grads.at(name)[i] + second.grads.at(name)[i]) / 2;
        INFO(name);
        CHECK(relative_error(g, mean) <= 1e-12);
    }
}

// The float32 path the trainer runs (GEMMs on the SIMD kernels) against the
// double reference, on a batch of two sequences of each fixture.
TEST_CASE("gemma4 gradients: the kernels' float32 path against the double reference") {
    for (const char* name : {"tiny-e2b", "tiny-moe"}) {
        const fixture f = load(name);
        gemma4::tensors<float> params;
        for (const auto& [n, v] : f.params) params[n].assign(v.begin(), v.end());
        const std::size_t seq = f.ids.size() / 2;
        const auto want = gemma4::reference::loss_and_gradients(f.config, f.params, f.ids, seq);
        kernels::thread_pool pool(2);
        const auto got = gemma4::loss_and_gradients(f.config, params, f.ids, seq, pool.get_executor());
        INFO(std::string(name) << ": loss " << got.loss << ", reference " << want.loss);
        CHECK(std::fabs(got.loss - want.loss) <= 1e-5 * want.loss);
        REQUIRE(got.grads.size() == want.grads.size());
        double worst = 0;
        for (const auto& entry : want.grads) {
            const std::string& n = entry.first;
            const std::vector<double>& g = entry.second;
            INFO(n);
            const double relative = relative_error(got.grads.at(n), g);
            worst = std::max(worst, relative);
            CHECK(relative <= 1e-4);
        }
        MESSAGE(std::string(name) << ": float32 kernels' path, worst gradient " << worst << " of the tensor's largest");
        // One thread gives the same bits (the GEMM splits its output, not its sums).
        const auto alone = gemma4::loss_and_gradients(f.config, params, f.ids, seq);
        CHECK(alone.loss == got.loss);
        CHECK(alone.grads == got.grads);
    }
}

TEST_CASE("gemma4 gradients: bad batches are errors") {
    const fixture f = load("tiny-e2b");
    CHECK_THROWS_WITH(gemma4::reference::loss_and_gradients(f.config, f.params, f.ids, 5),
                      doctest::Contains("24 ids are not whole sequences of 5"));
    CHECK_THROWS_WITH(gemma4::reference::loss_and_gradients(f.config, f.params, std::span(f.ids).first(1)),
                      doctest::Contains("a sequence needs at least 2 tokens"));
    gemma4::tensors<double> missing = f.params;
    missing.erase("model.norm.weight");
    CHECK_THROWS_WITH(gemma4::reference::loss_and_gradients(f.config, missing, f.ids),
                      doctest::Contains("no parameter model.norm.weight"));
}

} // namespace gemma4_gradients_test
