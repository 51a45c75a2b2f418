// gemma4::block, the public decoder layer, run as a user would: on hidden
// states of one's own (two sequences side by side), with its per-layer input,
// and a KV-shared layer reading another layer's k and v. Its backward against
// central finite differences of its forward, in double: for L = r . out with a
// random r, the gradient of the layer's input h, its per-layer input p, the
// KV source's input, and sampled weights; static activations' clip mask.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "qtensor/gemma4/activation_sites.hpp"
#include "qtensor/gemma4/config.hpp"
#include "qtensor/gemma4/gradients.hpp"
#include "qtensor/gemma4/parameters.hpp"
#include "qtensor/io/safetensors.hpp"
#include "qtensor/scheme/static_activation.hpp"

namespace gemma4_block_test {

using namespace qtensor;
using block = gemma4::reference::block<double>;

namespace {

const std::string fixtures = std::string(QTENSOR_TEST_DATA_DIR) + "/gemma4";

std::vector<double> random_vector(std::size_t n, std::mt19937& rng) {
    std::normal_distribution<double> dist;
    std::vector<double> v(n);
    for (double& x : v) x = dist(rng);
    return v;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
    double s = 0;
    for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
    return s;
}

// Central differences of f at every sampled element of x, against `grad`.
void check_gradient(const char* what, std::vector<double>& x, const std::vector<double>& grad,
                    const std::function<double()>& f, std::mt19937& rng) {
    REQUIRE(grad.size() == x.size());
    const double largest = std::fabs(*std::max_element(grad.begin(), grad.end(), [](double a, double b) {
        return std::fabs(a) < std::fabs(b);
    }));
    REQUIRE(largest > 0);
    std::uniform_int_distribution<std::size_t> pick(0, x.size() - 1);
    for (int k = 0; k < 24; ++k) {
        const std::size_t j = pick(rng);
        const double keep = x[j], h = 1e-6 * std::max(1.0, std::fabs(keep));
        x[j] = keep + h;
        const double up = f();
        x[j] = keep - h;
        const double down = f();
        x[j] = keep;
        INFO(what << "[" << j << "]: backward " << grad[j] << ", differences " << (up - down) / (2 * h));
        CHECK(std::fabs((up - down) / (2 * h) - grad[j]) <= 1e-6 * largest);
    }
}

} // namespace

TEST_CASE("gemma4::block: a layer with its own K/V, on a user's hidden states") {
    const gemma4::config c = gemma4::config::from_hf_file(fixtures + "/tiny-e2b");
    const io::safetensors_file file(fixtures + "/tiny-e2b/model.safetensors");
    gemma4::tensors<double> w;
    for (const auto& [name, v] : gemma4::load_parameters(c, file)) w[name].assign(v.begin(), v.end());
    std::mt19937 rng(3);
    const std::size_t seq = 6, n = 2 * seq, D = c.hidden_size, P = c.hidden_size_per_layer_input;
    for (const std::size_t l : {0u, 2u}) { // sliding; full with proportional RoPE and wider heads
        INFO("layer " << l);
        gemma4::tensors<double> g;
        block layer(c, l, w, g, seq);
        std::vector<double> h = random_vector(n * D, rng), p = random_vector(n * P, rng);
        const std::vector<double> r = random_vector(n * D, rng);
        block::state s;
        layer.forward(h, p, s);
        block::kv_gradient dkv;
        std::vector<double> dp;
        const std::vector<double> dh = layer.backward(r, s, dkv, dp);
        const auto loss = [&] {
            gemma4::tensors<double> unused;
            block::state t;
            return dot(r, block(c, l, w, unused, seq).forward(h, p, t));
        };
        check_gradient("h", h, dh, loss, rng);
        check_gradient("p", p, dp, loss, rng);
        for (const char* name : {"self_attn.q_proj.weight", "self_attn.k_proj.weight", "mlp.down_proj.weight",
                                 "per_layer_input_gate.weight", "input_layernorm.weight"}) {
            const std::string full = "model.layers." + std::to_string(l) + "." + name;
            check_gradient(name, w[full], g.at(full), loss, rng);
        }
    }
}

TEST_CASE("gemma4::block: a KV-shared layer reads, and sends gradient to, another layer's k and v") {
    const gemma4::config c = gemma4::config::from_hf_file(fixtures + "/tiny-e2b");
    const io::safetensors_file file(fixtures + "/tiny-e2b/model.safetensors");
    gemma4::tensors<double> w;
    for (const auto& [name, v] : gemma4::load_parameters(c, file)) w[name].assign(v.begin(), v.end());
    const std::size_t shared = 4, seq = 5, n = 2 * seq, D = c.hidden_size, P = c.hidden_size_per_layer_input;
    const std::size_t source = c.layers()[shared].kv_source_layer;
    REQUIRE(!c.layers()[shared].has_kv);
    std::mt19937 rng(5);
    std::vector<double> h_src = random_vector(n * D, rng), h = random_vector(n * D, rng);
    const std::vector<double> p = random_vector(n * P, rng), r = random_vector(n * D, rng);

    gemma4::tensors<double> g;
    block first(c, source, w, g, seq), second(c, shared, w, g, seq);
    block::state s_src, s;
    first.forward(h_src, p, s_src);
    second.forward(h, p, s, &s_src);
    block::kv_gradient dkv; // the source's: the shared layer adds to it first
    std::vector<double> dp;
    const std::vector<double> dh = second.backward(r, s, dkv, dp, &s_src);
    // L does not read the source layer's output: only its k and v.
    const std::vector<double> dh_src = first.backward(std::vector<double>(n * D, 0.0), s_src, dkv, dp);
    const auto loss = [&] {
        gemma4::tensors<double> unused;
        block::state a, b;
        block(c, source, w, unused, seq).forward(h_src, p, a);
        return dot(r, block(c, shared, w, unused, seq).forward(h, p, b, &a));
    };
    check_gradient("h", h, dh, loss, rng);
    check_gradient("source h", h_src, dh_src, loss, rng);
    const std::string k_proj = "model.layers." + std::to_string(source) + ".self_attn.k_proj.weight";
    check_gradient("source k_proj", w[k_proj], g.at(k_proj), loss, rng);
}

// Static activations (QAT): the product at a site with a scale takes its
// input as int8 codes times the scale; the backward passes the input's
// gradient only where the codes did not clip, and the weight's gradient is
// that of the product the forward ran (central differences: the codes do not
// move with the weight).
TEST_CASE("gemma4::block: static activations clip the input's gradient, not the weight's") {
    const gemma4::config c = gemma4::config::from_hf_file(fixtures + "/tiny-e2b");
    const io::safetensors_file file(fixtures + "/tiny-e2b/model.safetensors");
    gemma4::tensors<double> w;
    for (const auto& [name, v] : gemma4::load_parameters(c, file)) w[name].assign(v.begin(), v.end());
    std::mt19937 rng(7);
    const std::size_t seq = 6, n = 2 * seq, D = c.hidden_size, P = c.hidden_size_per_layer_input;
    const std::vector<double> h = random_vector(n * D, rng), p = random_vector(n * P, rng), r = random_vector(n * D, rng);

    // The scale puts the median |input| of per_layer_projection at code 127: about half its inputs clip.
    block::state plain;
    gemma4::tensors<double> unused;
    block(c, 0, w, unused, seq).forward(h, p, plain);
    std::vector<float> magnitudes;
    for (const double v : plain.gm) magnitudes.push_back(std::fabs(static_cast<float>(v)));
    std::nth_element(magnitudes.begin(), magnitudes.begin() + static_cast<std::ptrdiff_t>(magnitudes.size() / 2),
                     magnitudes.end());
    gemma4::activation_sites scales(c.num_hidden_layers);
    const float s = static_scale_fp16(magnitudes[magnitudes.size() / 2]);
    scales.at(0, gemma4::layer_site::per_layer_projection) = s;

    gemma4::tensors<double> g;
    block layer(c, 0, w, g, seq, {}, scales);
    block::state st;
    const std::vector<double> out = layer.forward(h, p, st);
    CHECK(out != block(c, 0, w, unused, seq).forward(h, p, plain)); // the codes' rounding shows
    block::kv_gradient dkv;
    std::vector<double> dp;
    layer.backward(r, st, dkv, dp);
    // dp = d gm * gelu(gate): zero exactly where gm's code clipped.
    std::size_t clipped = 0, passed = 0;
    for (std::size_t i = 0; i < dp.size(); ++i) {
        const bool clips = std::fabs(static_cast<float>(st.gm[i]) * (1.0f / s)) > 127.0f;
        clipped += clips;
        passed += !clips && dp[i] != 0.0;
        if (clips) CHECK(dp[i] == 0.0);
    }
    MESSAGE("per_layer_projection with a static scale: " << clipped << " of " << dp.size()
                                                         << " inputs clip and pass no gradient");
    CHECK(clipped > dp.size() / 4);
    CHECK(passed == dp.size() - clipped);
    const auto loss = [&] {
        gemma4::tensors<double> none;
        block::state t;
        return dot(r, block(c, 0, w, none, seq, {}, scales).forward(h, p, t));
    };
    check_gradient("per_layer_projection.weight", w["model.layers.0.per_layer_projection.weight"],
                   g.at("model.layers.0.per_layer_projection.weight"), loss, rng);
}

TEST_CASE("gemma4::block: bad input is an error") {
    const gemma4::config c = gemma4::config::from_hf_file(fixtures + "/tiny-e2b");
    gemma4::tensors<double> w, g;
    CHECK_THROWS_WITH(block(c, 6, w, g, 4), doctest::Contains("layer 6 of a model of 6"));
    CHECK_THROWS_WITH(block(c, 0, w, g, 4), doctest::Contains("no parameter model.layers.0."));
    const io::safetensors_file file(fixtures + "/tiny-e2b/model.safetensors");
    for (const auto& entry : gemma4::load_parameters(c, file)) w[entry.first].assign(entry.second.begin(), entry.second.end());
    w["model.layers.0.self_attn.q_norm.weight"].resize(4); // a weight of the wrong size: refused, not read past
    CHECK_THROWS_WITH(block(c, 0, w, g, 4), doctest::Contains("q_norm.weight has 4 elements, the config asks for 32"));
    w["model.layers.0.self_attn.q_norm.weight"].resize(32);
    block layer(c, 0, w, g, 4), shared(c, 4, w, g, 4);
    block::state s;
    const std::vector<double> h(4 * c.hidden_size), p(4 * c.hidden_size_per_layer_input);
    CHECK_THROWS_WITH(layer.forward(std::vector<double>(3 * c.hidden_size), p, s),
                      doctest::Contains("not whole sequences of 4 tokens"));
    CHECK_THROWS_WITH(layer.forward(h, {}, s), doctest::Contains("the per-layer input has 0 values, not 4 x 16"));
    CHECK_THROWS_WITH(layer.forward(h, p, s, &s), doctest::Contains("layer 0 makes its own k and v"));
    CHECK_THROWS_WITH(shared.forward(h, p, s), doctest::Contains("layer 4 is KV-shared: kv_source must be the state "
                                                                 "of layer 3"));
    block::kv_gradient dkv;
    std::vector<double> dp;
    const block::state never_run;
    CHECK_THROWS_WITH(layer.backward(h, never_run, dkv, dp),
                      doctest::Contains("backward of 4 tokens from a forward of 0"));
    layer.forward(h, p, s);
    dkv.k.resize(3);
    CHECK_THROWS_WITH(layer.backward(h, s, dkv, dp), doctest::Contains("dkv holds 3 and 0 values, not 256 each"));
    block::kv_gradient fresh;
    g["model.layers.0.mlp.up_proj.weight"].assign(5, 0.0); // a gradient map entry of the wrong size
    CHECK_THROWS_WITH(layer.backward(h, s, fresh, dp), doctest::Contains("holds 5 values"));
}

} // namespace gemma4_block_test
