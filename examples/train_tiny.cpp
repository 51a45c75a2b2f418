// A training loop written by a user of the library: a small Gemma 4 learns a
// text's bytes with quantization-aware training at Q4_0, is saved as a
// Hugging Face checkpoint, then loaded packed as Q4_0 and asked to go on
// with the text.
//
//   train_tiny CONFIG.json TEXT OUT_DIR [STEPS]
//
// e.g. train_tiny tests/data/gemma4/tiny-e2b/config.json LICENSE /tmp/tiny 200
// (`qtensor train` is the same loop with options, resuming and a loss log.)
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "qtensor/gemma4/checkpoint.hpp"
#include "qtensor/gemma4/gradients.hpp"
#include "qtensor/gemma4/model.hpp"
#include "qtensor/gemma4/parameters.hpp"
#include "qtensor/gemma4/qat.hpp"
#include "qtensor/gemma4/training_state.hpp"
#include "qtensor/kernels/executor.hpp"
#include "qtensor/train/adamw.hpp"
#include "qtensor/train/data.hpp"
#include "qtensor/train/schedule.hpp"

namespace gemma4 = qtensor::gemma4;
namespace train = qtensor::train;
using policy = gemma4::q4_0_policy; // what the forward rehearses, and what we deploy

int run(const std::filesystem::path& config_file, const std::string& text_file, const std::filesystem::path& out,
        std::size_t steps) {
    const gemma4::config config = gemma4::config::from_hf_file(config_file);
    std::ifstream in(text_file, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open " + text_file);
    const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    const std::vector<std::int32_t> tokens = train::byte_tokens(text); // byte b -> id b + 3

    // The model: float32 master weights, initialised as Hugging Face does.
    gemma4::tensors<float> master = gemma4::init_parameters(config, /*seed*/ 1), seen;
    gemma4::rehearsal<policy> qat(config);

    // AdamW with weight decay on the matrices only; warmup, then cosine.
    train::adamw_options options;
    options.decays = gemma4::decay_rule(gemma4::parameter_shapes(config));
    train::adamw optimizer(options);
    const train::warmup_cosine lr{.peak = 3e-3, .floor = 3e-4, .warmup = steps / 10, .total = steps};

    const std::size_t seq = 64, batch = 4;
    const train::windows data(tokens, seq, /*seed*/ 1);
    qtensor::kernels::thread_pool pool(std::max(1u, std::thread::hardware_concurrency()));
    const qtensor::kernels::executor ex = pool.get_executor();

    for (std::size_t step = 0; step < steps; ++step) {
        std::vector<std::int32_t> ids; // [batch, seq]: windows of the text
        for (std::size_t b = 0; b < batch; ++b) {
            const auto window = data.at(step, b);
            ids.insert(ids.end(), window.begin(), window.end());
        }
        qat.forward(master, seen, ex); // the weights as Q4_0 stores them
        auto r = gemma4::loss_and_gradients(config, seen, ids, seq, ex);
        qat.backward(r.grads, ex); // straight through, except where Q4_0 clipped
        const double norm = train::clip_by_global_norm(r.grads, 1.0, ex);
        optimizer.step(master, r.grads, lr(step), ex);
        if (step % 10 == 0 || step + 1 == steps)
            std::printf("step %4zu  loss %.4f  grad norm %.3f  lr %.2e\n", step + 1, static_cast<double>(r.loss), norm,
                        lr(step));
    }

    // Save: config.json + model.safetensors is a checkpoint every tool reads.
    std::filesystem::create_directories(out);
    gemma4::save_training_state(out, config, master, optimizer, "train_tiny");
    std::filesystem::copy_file(config_file, out / "config.json", std::filesystem::copy_options::overwrite_existing);

    // Deploy: pack it as Q4_0 (the lattice it trained on) and continue the text greedily.
    const gemma4::checkpoint saved(out);
    const auto model = gemma4::model<policy>::load(saved.config(), saved, saved.names(), pool.get_executor());
    std::size_t from = text.size() / 2; // a prompt the model has seen, from the start of a word
    while (from + 1 < text.size() && !(text[from] == ' ' && std::isalpha(static_cast<unsigned char>(text[from + 1]))))
        ++from;
    const std::string prompt = text.substr(from + 1, std::min<std::size_t>(32, text.find('\n', from + 1) - from - 1));
    std::vector<std::int32_t> context = train::byte_tokens(prompt);
    auto cache = model.make_cache(context.size() + 48);
    std::vector<float> logits = model.prefill(context, cache);
    std::vector<std::int32_t> generated;
    for (int i = 0; i < 48; ++i) {
        const auto best = static_cast<std::int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
        generated.push_back(best);
        logits = model.decode(best, cache);
    }
    std::printf("prompt:    %s\ncontinued: %s\n", prompt.c_str(), train::text_of(generated).c_str());
    return 0;
}

int main(int argc, char** argv) {
    if (argc != 4 && argc != 5) {
        std::fprintf(stderr, "usage: train_tiny CONFIG.json TEXT OUT_DIR [STEPS]\n");
        return 2;
    }
    try {
        return run(argv[1], argv[2], argv[3], argc == 5 ? std::stoul(argv[4]) : 200);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "train_tiny: %s\n", e.what());
        return 1;
    }
}
