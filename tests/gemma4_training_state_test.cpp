// gemma4/training_state.hpp: a saved run reads back as it was (weights and
// AdamW's moments bit for bit, the step count, the run's description), also
// with a frozen parameter; files that disagree are refused.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "test_util.hpp"
#include "qtensor/gemma4/config.hpp"
#include "qtensor/gemma4/parameters.hpp"
#include "qtensor/gemma4/training_state.hpp"
#include "qtensor/train/adamw.hpp"

namespace gemma4_training_state_test {

using namespace qtensor;
namespace fs = std::filesystem;

TEST_CASE("gemma4 training state: saved and read back bit for bit, a frozen parameter included") {
    const gemma4::config c = gemma4::config::from_hf_file(std::string(QTENSOR_TEST_DATA_DIR) + "/gemma4/tiny-e2b");
    gemma4::tensors<float> params = gemma4::init_parameters(c, 3);
    gemma4::tensors<float> grads;
    for (const gemma4::parameter_shape& s : gemma4::parameter_shapes(c))
        if (s.trainable && s.name != "model.embed_tokens.weight") grads[s.name].assign(s.elements(), 0.25f); // embed frozen
    train::adamw opt({});
    opt.step(params, grads, 1e-3);
    opt.step(params, grads, 1e-3);
    const qtensor_test::scratch_dir dir;
    gemma4::save_training_state(dir.path, c, params, opt, "a run");

    const gemma4::training_state s = gemma4::load_training_state(dir.path, c);
    CHECK(s.step == 2);
    CHECK(s.run == "a run");
    CHECK(s.params == params);
    CHECK(s.first_moment == opt.first_moment());
    CHECK(s.second_moment == opt.second_moment());
    CHECK(!s.first_moment.contains("model.embed_tokens.weight"));

    // A model file of another step (a crash between the two writes) is refused.
    opt.step(params, grads, 1e-3);
    const fs::path optimizer = dir.path / "optimizer.safetensors", kept = dir.path / "kept";
    fs::copy_file(optimizer, kept);
    gemma4::save_training_state(dir.path, c, params, opt, "a run");
    fs::rename(kept, optimizer);
    CHECK_THROWS_WITH(gemma4::load_training_state(dir.path, c),
                      doctest::Contains("the model is at step 3 and the optimizer at step 2"));
}

} // namespace gemma4_training_state_test
