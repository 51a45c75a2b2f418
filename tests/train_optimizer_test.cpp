// train/: AdamW and clipping by global norm against PyTorch's own
// (tests/data/train/optimizer.json, written by make_optimizer_fixture.py with
// torch.optim.AdamW and clip_grad_norm_); a restored optimizer continues
// bit-identically; the warmup + cosine schedule at the points its formula pins.
#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <fstream>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "test_util.hpp"
#include "qtensor/kernels/executor.hpp"
#include "qtensor/train/adamw.hpp"
#include "qtensor/train/schedule.hpp"
#include "qtensor/train/tensors.hpp"

using namespace qtensor;
using qtensor_test::message_of;

namespace {

nlohmann::json fixture() {
    std::ifstream in(std::string(QTENSOR_TEST_DATA_DIR) + "/train/optimizer.json");
    REQUIRE(in);
    return nlohmann::json::parse(in);
}

train::tensors<float> tensors_of(const nlohmann::json& j) {
    train::tensors<float> out;
    for (const auto& [name, values] : j.items()) out[name] = values.get<std::vector<float>>();
    return out;
}

train::adamw_options options_of(const nlohmann::json& f) {
    train::adamw_options o;
    o.beta1 = f["beta1"];
    o.beta2 = f["beta2"];
    o.eps = f["eps"];
    o.weight_decay = 0.1;
    o.decays = [](std::string_view name) { return name != "b"; }; // as the fixture's parameter groups
    return o;
}

} // namespace

TEST_CASE("train: clip_by_global_norm and AdamW take PyTorch's steps") {
    const nlohmann::json f = fixture();
    train::tensors<float> params = tensors_of(f["initial"]);
    train::adamw opt(options_of(f));
    int step = 0;
    float worst = 0;
    for (const nlohmann::json& s : f["steps"]) {
        INFO("step " << step);
        train::tensors<float> grads = tensors_of(s["grads"]);
        const double norm = train::clip_by_global_norm(grads, f["max_norm"]);
        CHECK(std::fabs(norm - s["norm"].get<double>()) <= 1e-6 * norm);
        opt.step(params, grads, s["lr"]);
        // Float32 rounding differs (PyTorch's kernels fuse and vectorise
        // differently): a few ulps of the values per step, at most.
        const train::tensors<float> want = tensors_of(s["params"]);
        for (const auto& entry : want) { // (clang 14: no structured binding inside INFO)
            const std::string& name = entry.first;
            const std::vector<float>& w = entry.second;
            for (std::size_t i = 0; i < w.size(); ++i) {
                worst = std::fmax(worst, std::fabs(params[name][i] - w[i]) / std::fmax(1.0f, std::fabs(w[i])));
                INFO(name << "[" << i << "]: " << params[name][i] << " vs PyTorch " << w[i]);
                CHECK(std::fabs(params[name][i] - w[i]) <= 1.2e-7 * (step + 1) * std::fmax(1.0f, std::fabs(w[i])));
            }
        }
        ++step;
    }
    CHECK(opt.steps() == 6);
    MESSAGE("largest difference from PyTorch: " << worst << " of max(1, |value|)");
}

TEST_CASE("train: AdamW and the global norm over tensors in pieces: the same bits on any executor") {
    // "a" repeats "c" over 3 pieces and a bit (pieces of 2^16): element
    // for element, its update must be c's.
    std::mt19937 rng(5);
    std::normal_distribution<float> gauss(0.0f, 1.0f);
    train::tensors<float> params, grads;
    for (const char* name : {"c", "b"})
        for (std::size_t i = 0; i < 5; ++i) params[name].push_back(gauss(rng)), grads[name].push_back(gauss(rng));
    const std::size_t n = 3 * (std::size_t{1} << 16) + 7;
    for (std::size_t i = 0; i < n; ++i)
        params["a"].push_back(params["c"][i % 5]), grads["a"].push_back(grads["c"][i % 5]);
    long double sq = 0;
    for (const auto& entry : grads)
        for (const float g : entry.second) sq += static_cast<long double>(g) * g;

    kernels::thread_pool pool(2);
    const double norm = train::global_norm(grads);
    CHECK(std::fabs(norm - static_cast<double>(std::sqrt(sq))) <= 1e-12 * norm);
    std::vector<train::tensors<float>> results;
    for (const auto& ex : {kernels::executor{}, qtensor_test::reversed_executor(3), pool.get_executor()}) {
        CHECK(train::global_norm(grads, ex) == norm);
        train::adamw opt({});
        train::tensors<float> p = params;
        for (int step = 0; step < 3; ++step) opt.step(p, grads, 1e-2, ex);
        results.push_back(p);
        results.push_back(opt.second_moment());
    }
    std::size_t differ = 0; // from c's element: weights, second moments
    for (std::size_t i = 0; i < n; ++i)
        differ += (results[0].at("a")[i] != results[0].at("c")[i % 5]) +
                  (results[1].at("a")[i] != results[1].at("c")[i % 5]);
    CHECK(differ == 0);
    CHECK(results[0].at("a")[0] != params.at("a")[0]); // it did step
    CHECK(results[2] == results[0]);
    CHECK(results[3] == results[1]);
    CHECK(results[4] == results[0]);
    CHECK(results[5] == results[1]);
}

TEST_CASE("train: an AdamW restored from its state continues bit-identically") {
    const nlohmann::json f = fixture();
    const auto run = [&](train::adamw& opt, train::tensors<float>& p, std::size_t from, std::size_t to) {
        for (std::size_t s = from; s < to; ++s) opt.step(p, tensors_of(f["steps"][s]["grads"]), f["steps"][s]["lr"]);
    };
    train::tensors<float> straight = tensors_of(f["initial"]), resumed = straight;
    train::adamw a(options_of(f)), first(options_of(f));
    run(a, straight, 0, 6);
    run(first, resumed, 0, 3);
    train::adamw second(options_of(f));
    second.restore(first.first_moment(), first.second_moment(), first.steps());
    run(second, resumed, 3, 6);
    CHECK(resumed == straight);
    CHECK(second.second_moment() == a.second_moment());
}

TEST_CASE("train: accumulate, scale, global norm; bad input is an error") {
    train::tensors<float> sum;
    const train::tensors<float> g{{"a", {3.0f, 0.0f}}, {"b", {4.0f}}};
    train::accumulate(sum, g);
    train::accumulate(sum, g);
    CHECK(sum.at("a") == std::vector<float>{6.0f, 0.0f});
    train::scale(sum, 0.5f);
    CHECK(train::global_norm(sum) == 5.0);
    CHECK(train::clip_by_global_norm(sum, 10.0) == 5.0); // under the cap: unchanged
    CHECK(sum.at("b")[0] == 4.0f);
    train::clip_by_global_norm(sum, 1.0);
    CHECK(train::global_norm(sum) == doctest::Approx(1.0).epsilon(1e-6));

    const train::tensors<float> other{{"a", {1.0f}}, {"b", {1.0f}}};
    CHECK(message_of([&] { train::accumulate(sum, other); }).find("tensor a (1 elements) where a (2) was expected") !=
          std::string::npos);
    train::tensors<float> bad{{"a", {NAN}}};
    CHECK(message_of([&] { train::clip_by_global_norm(bad, 1.0); }).find("norm is nan") != std::string::npos);
    train::adamw opt({});
    train::tensors<float> p{{"a", {1.0f, 2.0f}}, {"buffer", {5.0f}}};
    CHECK(message_of([&] { opt.step(p, other, 1e-3); }).find("gradient of a (1 elements) has no parameter") !=
          std::string::npos);
    train::adamw fresh({});
    fresh.step(p, {{"a", {1.0f, 1.0f}}}, 1e-3); // a parameter without a gradient is left alone
    CHECK(p.at("buffer")[0] == 5.0f);
    CHECK(p.at("a")[0] < 1.0f);
    const train::tensors<float> also_buffer{{"a", {1.0f, 1.0f}}, {"buffer", {1.0f}}}; // not what the state holds
    CHECK(message_of([&] { fresh.step(p, also_buffer, 1e-3); }).find("2 tensors against 1") != std::string::npos);
    // A step that fails changes nothing: the parameters, the moments, the count.
    const auto before = p;
    const auto moments = fresh.first_moment();
    CHECK_THROWS(fresh.step(p, {{"a", {1.0f, 1.0f}}, {"buffer", {1.0f, 2.0f}}}, 1e-3));
    CHECK(p == before);
    CHECK(fresh.first_moment() == moments);
    CHECK(fresh.steps() == 1);
    train::adamw_options wrong;
    wrong.beta1 = 1.0;
    CHECK(message_of([&] { train::adamw{wrong}; }).find("beta1 and beta2") != std::string::npos);
}

TEST_CASE("train: warmup then cosine") {
    const train::warmup_cosine lr{.peak = 1e-3, .floor = 1e-4, .warmup = 10, .total = 110};
    CHECK(lr(0) == doctest::Approx(1e-4));   // (0 + 1) / 10 of the peak
    CHECK(lr(9) == doctest::Approx(1e-3));   // the warmup ends at the peak
    CHECK(lr(10) == doctest::Approx(1e-3));  // q = 0
    CHECK(lr(60) == doctest::Approx(5.5e-4)); // q = 1/2: halfway between peak and floor
    CHECK(lr(35) == doctest::Approx(1e-4 + 9e-4 * 0.5 * (1 + std::cos(std::numbers::pi / 4))));
    CHECK(lr(110) == doctest::Approx(1e-4));
    CHECK(lr(1000) == doctest::Approx(1e-4));
    const train::warmup_cosine bad{.peak = 1e-4, .floor = 1e-3};
    CHECK(message_of([&] { return bad(0); }).find("floor <= peak") != std::string::npos);
}
