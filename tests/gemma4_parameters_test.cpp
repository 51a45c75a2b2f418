// gemma4/parameters.hpp: the list of parameters and their shapes matches what
// the loader reads from the Hugging Face fixtures, tensor for tensor; loaded
// parameters are the file's values; a fresh model is deterministic and drawn
// as Hugging Face initialises one.
#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "qtensor/gemma4/config.hpp"
#include "qtensor/gemma4/parameters.hpp"
#include "qtensor/io/safetensors.hpp"

namespace gemma4_parameters_test {

using namespace qtensor;

namespace {

const std::string fixtures = std::string(QTENSOR_TEST_DATA_DIR) + "/gemma4";

} // namespace

TEST_CASE("gemma4 parameters: the list is what the fixtures store, and loads as their values") {
    for (const char* name : {"tiny-e2b", "tiny-moe"}) {
        INFO(name);
        const std::string dir = fixtures + "/" + name;
        const gemma4::config c = gemma4::config::from_hf_file(dir);
        const io::safetensors_file file(dir + "/model.safetensors");
        const std::vector<gemma4::parameter_shape> shapes = gemma4::parameter_shapes(c);
        CHECK(shapes.size() == file.tensors().size()); // every stored tensor, no other
        const gemma4::tensors<float> p = gemma4::load_parameters(c, file);
        CHECK(p.size() == shapes.size());
        for (const gemma4::parameter_shape& s : shapes) {
            INFO(s.name);
            const io::tensor_entry& e = file.at(s.name);
            CHECK(e.shape == s.shape);
            CHECK(s.trainable == !s.name.ends_with("layer_scalar"));
            REQUIRE(p.at(s.name).size() == e.elements());
            CHECK(std::memcmp(p.at(s.name).data(), e.data.data(), e.data.size()) == 0);
        }
    }
}

TEST_CASE("gemma4 parameters: a fresh model is N(0, 0.02^2) matrices and unit gains, the same for a seed") {
    const gemma4::config c = gemma4::config::from_hf_file(fixtures + "/tiny-e2b");
    const gemma4::tensors<float> a = gemma4::init_parameters(c, 7), b = gemma4::init_parameters(c, 7),
                                 other = gemma4::init_parameters(c, 8);
    CHECK(a == b);
    CHECK(a.at("model.embed_tokens.weight") != other.at("model.embed_tokens.weight"));
    // Tensors differ from one another, not just copies under one seed.
    CHECK(a.at("model.layers.0.self_attn.q_proj.weight") != a.at("model.layers.1.self_attn.q_proj.weight"));
    for (const gemma4::parameter_shape& s : gemma4::parameter_shapes(c)) {
        const std::vector<float>& v = a.at(s.name);
        REQUIRE(v.size() == s.elements());
        if (s.shape.size() == 1) {
            for (const float x : v) REQUIRE(x == 1.0f);
            continue;
        }
        // Mean and standard deviation of n normals: within 5 standard errors.
        double sum = 0, sq = 0;
        for (const float x : v) sum += x, sq += double(x) * x;
        const double n = static_cast<double>(v.size()), mean = sum / n, sd = std::sqrt(sq / n - mean * mean);
        INFO(s.name << ": mean " << mean << ", sd " << sd);
        CHECK(std::fabs(mean) < 5 * 0.02 / std::sqrt(n));
        CHECK(std::fabs(sd - 0.02) < 5 * 0.02 / std::sqrt(2 * n));
    }
}

} // namespace gemma4_parameters_test
