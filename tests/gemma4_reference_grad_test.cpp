// The whole model's training loss and every parameter's gradient, from the
// scalar reference (gemma4/reference_grad.hpp) in double, against Hugging Face
// transformers' float64 backward pass (tests/data/gemma4/*/reference.safetensors:
// loss, grad.<name>): tiny-e2b (PLE, KV sharing, sliding and full layers,
// proportional RoPE, softcap) and tiny-moe (routed experts, k_eq_v).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "qtensor/gemma4/config.hpp"
#include "qtensor/gemma4/reference_grad.hpp"
#include "qtensor/io/safetensors.hpp"

using namespace qtensor;

namespace {

const std::string fixtures = std::string(QTENSOR_TEST_DATA_DIR) + "/gemma4";

std::vector<double> as_doubles(const io::tensor_entry& e) {
    REQUIRE(e.type == ggml_type::f32);
    std::vector<float> f(e.elements());
    std::memcpy(f.data(), e.data.data(), f.size() * sizeof(float));
    return {f.begin(), f.end()};
}

void check_fixture(const std::string& name) {
    const std::string dir = fixtures + "/" + name;
    const gemma4::config config = gemma4::config::from_hf_file(dir);
    const io::safetensors_file model(dir + "/model.safetensors"), reference(dir + "/reference.safetensors");
    gemma4::tensors<double> params;
    for (const io::tensor_entry& e : model.entries()) params[e.name] = as_doubles(e);
    std::vector<std::int32_t> ids;
    for (const std::int64_t id : io::to_int64(reference.raw("input_ids"), reference.path()))
        ids.push_back(static_cast<std::int32_t>(id));

    const auto got = gemma4::reference::loss_and_gradients(config, params, ids);
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
        const std::vector<double> want = as_doubles(e);
        REQUIRE(it->second.size() == want.size());
        double largest = 0.0, diff = 0.0;
        for (std::size_t i = 0; i < want.size(); ++i) {
            largest = std::max(largest, std::fabs(want[i]));
            diff = std::max(diff, std::fabs(it->second[i] - want[i]));
        }
        const double relative = largest > 0.0 ? diff / largest : diff;
        worst = std::max(worst, relative);
        INFO("max |got - reference| = " << diff << " of max |reference| " << largest);
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
