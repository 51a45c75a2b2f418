// tools/qtensor/train_commands.cpp: the commands that differentiate and
// train a Gemma 4 model:
//   qtensor grad  MODEL --ids ... --out F.safetensors   the loss and every parameter's gradient
//   qtensor train CONFIG_OR_MODEL --data TEXT --steps N --out DIR
//                                                      a training run on byte-level tokens
//   qtensor fake-quant MODEL --policy P --out DIR       the weights as QAT's forward sees them
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "cli.hpp"
#include "commands.hpp"
#include "io.hpp"
#include "model_args.hpp"
#include "qtensor/gemma4/activation_sites_json.hpp"
#include "qtensor/gemma4/checkpoint.hpp"
#include "qtensor/gemma4/parameters.hpp"
#include "qtensor/gemma4/qat.hpp"
#include "qtensor/gemma4/gradients.hpp"
#include "qtensor/gemma4/training_state.hpp"
#include "qtensor/io/safetensors.hpp"
#include "qtensor/io/safetensors_writer.hpp"
#include "qtensor/kernels/executor.hpp"
#include "qtensor/train/adamw.hpp"
#include "qtensor/train/data.hpp"
#include "qtensor/train/schedule.hpp"

namespace qtensor::cli {
namespace {

// Every training step allocates and frees the same large buffers (what the
// forward keeps for the backward: 251 MiB a step on bench/configs/gemma4-10m.json).
// By default glibc gives freed memory back to the kernel, so each step maps
// it again and takes a zero-filled page fault on every 4 KiB, about 13% of
// the step. This program keeps it instead: blocks up to 32 MiB come from the
// heap, not fresh mappings, and up to 1 GiB of freed heap is kept.
void keep_freed_memory() {
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

constexpr option_spec grad_options[] = {
    {"ids", 'i', true},
    {"out", 'o', true},
    {"threads", 't', true},
};
enum : std::size_t { gr_ids, gr_out, gr_threads };

constexpr option_spec train_options[] = {
    {"data", 'd', true},   {"steps", 'n', true},   {"out", 'o', true},   {"policy", 'p', true},
    {"seq", 's', true},    {"batch", 'b', true},   {"accum", 'a', true}, {"lr", 'l', true},
    {"min-lr", 0, true},   {"warmup", 'w', true},  {"weight-decay", 0, true}, {"clip", 'c', true},
    {"seed", 0, true},     {"threads", 't', true}, {"until", 0, true},   {"save-every", 0, true},
    {"resume", 'r', false}, {"grid", 0, true},     {"scales", 0, true},
};
enum : std::size_t {
    tr_data, tr_steps, tr_out, tr_policy, tr_seq, tr_batch, tr_accum, tr_lr, tr_min_lr, tr_warmup,
    tr_weight_decay, tr_clip, tr_seed, tr_threads, tr_until, tr_save_every, tr_resume, tr_grid, tr_scales
};

constexpr option_spec fake_quant_options[] = {
    {"policy", 'p', true},
    {"out", 'o', true},
    {"grid", 0, true},
    {"dtype", 0, true},
};
enum : std::size_t { fq_policy, fq_out, fq_grid, fq_dtype };

// --grid: the rule of the Q4_0 roles (gemma4/qat.hpp). Only a policy with a
// Q4_0 role has one to choose.
gemma4::q4_0_rule grid_of(std::string_view command, const parsed_args& parsed, std::size_t opt,
                          std::string_view policy) {
    if (!parsed.has(opt)) return gemma4::q4_0_rule::ggml;
    const std::string_view grid = *parsed.values[opt];
    if (grid != "ggml" && grid != "symmetric")
        usage_error(std::string(command) + ": --grid " + in_quotes(grid) + " is not ggml or symmetric");
    const bool has_q4_0 = gemma4::with_policy(policy, []<class P>(P) {
        return std::is_same_v<typename P::attention, q4_0> || std::is_same_v<typename P::mlp, q4_0> ||
               std::is_same_v<typename P::experts, q4_0> || std::is_same_v<typename P::embedding, q4_0> ||
               std::is_same_v<typename P::per_layer, q4_0>;
    });
    if (!has_q4_0)
        usage_error(std::string(command) + ": --grid is the rounding rule of Q4_0 weights, and policy " +
                    std::string(policy) + " has none");
    return grid == "symmetric" ? gemma4::q4_0_rule::symmetric : gemma4::q4_0_rule::ggml;
}

// A whole decimal number, 0 included, that fits uint64; anything else is a usage error.
std::uint64_t parse_whole(std::string_view option, std::string_view text) {
    std::uint64_t v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || end != text.data() + text.size() || text.empty())
        usage_error("--" + std::string(option) + " " + in_quotes(text) + " is not a whole number (0 to 2^64 - 1)");
    return v;
}

// A decimal number >= 0 ("1e-3" is fine); anything else is a usage error.
double parse_number(std::string_view option, std::string_view text) {
    double v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || end != text.data() + text.size() || !std::isfinite(v) || v < 0)
        usage_error("--" + std::string(option) + " " + in_quotes(text) + " is not a number >= 0");
    return v;
}

// FNV-1a, 64 bits: a fingerprint that notices edited files.
std::uint64_t fnv1a(std::string_view bytes) {
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (const char ch : bytes) h = (h ^ static_cast<unsigned char>(ch)) * 0x100000001b3ull;
    return h;
}

// What the run is: a resumed run must be the same one (settings, data,
// model config), or it would not continue bit-identically.
struct run_settings {
    std::string policy, data;
    gemma4::q4_0_rule grid = gemma4::q4_0_rule::ggml;
    gemma4::activation_sites scales; // --scales: static activations to rehearse (empty: none)
    std::string scales_text;         // the file's bytes
    std::size_t steps = 0, seq = 64, batch = 4, accum = 1, warmup = 0;
    double lr = 1e-3, min_lr = 1e-4, weight_decay = 0.1, clip = 1.0;
    std::uint64_t seed = 1;

    // text: the data; config: the config.json's bytes (FNV-1a fingerprints of both).
    std::string describe(std::string_view text, std::string_view config) const {
        std::ostringstream s;
        s.precision(17);
        s << "policy=" << policy << " data=" << data << " data_bytes=" << text.size() << " data_fnv="
          << std::hex << fnv1a(text) << " config_fnv=" << fnv1a(config) << std::dec << " steps=" << steps
          << " seq=" << seq << " batch=" << batch << " accum=" << accum << " lr=" << lr << " min_lr=" << min_lr
          << " warmup=" << warmup << " weight_decay=" << weight_decay << " clip=" << clip << " seed=" << seed;
        if (grid == gemma4::q4_0_rule::symmetric) s << " grid=symmetric"; // absent when ggml: older runs resume
        if (scales.size() != 0) s << " scales_fnv=" << std::hex << fnv1a(scales_text) << std::dec;
        return s.str();
    }
};

// "1h02m", "3m05s", "12s".
std::string duration(double seconds) {
    const auto s = static_cast<long long>(std::max(0.0, seconds));
    char buf[32];
    if (s >= 3600) std::snprintf(buf, sizeof buf, "%lldh%02lldm", s / 3600, s / 60 % 60);
    else if (s >= 60) std::snprintf(buf, sizeof buf, "%lldm%02llds", s / 60, s % 60);
    else std::snprintf(buf, sizeof buf, "%llds", s);
    return buf;
}

// loss.tsv: one row per step. A resumed run keeps the rows of the steps
// already taken and drops any a crash left past the saved state.
class loss_log {
public:
    loss_log(const std::filesystem::path& path, std::uint64_t keep_steps) : path_(path) {
        std::string kept = "step\tloss\tlr\tgrad_norm\ttokens_per_s\n";
        if (keep_steps > 0) {
            std::ifstream in(path);
            std::string line;
            std::getline(in, line); // the header
            while (std::getline(in, line)) {
                std::uint64_t step = 0;
                std::from_chars(line.data(), line.data() + line.size(), step);
                if (step >= 1 && step <= keep_steps) kept += line + "\n";
            }
        }
        std::ofstream(path, std::ios::trunc) << kept;
        out_.open(path, std::ios::app);
        if (!out_) run_error("train: cannot write " + in_quotes(path.string()));
    }
    void add(std::uint64_t step, double loss, double lr, double norm, double tokens_per_s) {
        char buf[160];
        std::snprintf(buf, sizeof buf, "%llu\t%.6f\t%.6g\t%.6g\t%.1f\n", static_cast<unsigned long long>(step),
                      loss, lr, norm, tokens_per_s);
        out_ << buf << std::flush;
        if (!out_) run_error("train: cannot write " + in_quotes(path_.string()));
    }

private:
    std::filesystem::path path_;
    std::ofstream out_;
};

template <class P>
void train_run(const run_settings& rs, const gemma4::config& c, gemma4::training_state state,
               std::span<const std::int32_t> tokens, const std::filesystem::path& out, std::size_t until,
               std::size_t save_every, const std::string& run, kernels::executor ex) {
    const std::vector<gemma4::parameter_shape> shapes = gemma4::parameter_shapes(c);
    train::adamw_options ao;
    ao.weight_decay = rs.weight_decay;
    ao.decays = gemma4::decay_rule(shapes);
    train::adamw opt(ao);
    if (state.step > 0) opt.restore(std::move(state.first_moment), std::move(state.second_moment), state.step);
    const train::warmup_cosine schedule{rs.lr, rs.min_lr, rs.warmup, rs.steps};
    const train::windows data(tokens, rs.seq, rs.seed);
    gemma4::rehearsal<P> qat(c, rs.grid);
    const gemma4::activation_sites scales = qat.activation_scales(rs.scales);
    gemma4::tensors<float> master = std::move(state.params), seen;
    constexpr bool rehearses = !std::is_same_v<P, gemma4::f32_policy>; // f32: the forward reads the master weights
    loss_log log(out / "loss.tsv", state.step);

    step_progress status(rs.steps);
    const std::size_t tokens_per_step = rs.batch * rs.accum * rs.seq;
    std::size_t saved_activations = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (std::uint64_t step = state.step; step < until; ++step) {
        if (rehearses) qat.forward(master, seen, ex);
        gemma4::tensors<float> grads;
        double loss = 0;
        std::size_t saved = 0;
        for (std::size_t k = 0; k < rs.accum; ++k) {
            std::vector<std::int32_t> batch; // [batch, seq]
            for (std::size_t b = 0; b < rs.batch; ++b) {
                const std::span<const std::int32_t> window = data.at(step, k * rs.batch + b);
                batch.insert(batch.end(), window.begin(), window.end());
            }
            auto r = gemma4::loss_and_gradients(c, rehearses ? seen : master, batch, rs.seq, ex, scales);
            loss += r.loss / static_cast<double>(rs.accum);
            saved = std::max(saved, r.saved_bytes);
            train::accumulate(grads, std::move(r.grads));
        }
        train::scale(grads, 1.0f / static_cast<float>(rs.accum));
        qat.backward(grads, ex);
        const double norm = rs.clip > 0 ? train::clip_by_global_norm(grads, rs.clip, ex)
                                       : train::global_norm(grads, ex);
        if (!std::isfinite(norm))
            run_error("train: step " + std::to_string(step + 1) + ": the gradient is not finite (norm " +
                      std::to_string(norm) + "); a lower --lr may help");
        const double lr = schedule(step);
        opt.step(master, grads, lr, ex);

        saved_activations = std::max(saved_activations, saved);
        const std::uint64_t done = step + 1;
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const double rate = static_cast<double>((done - state.step) * tokens_per_step) / std::max(elapsed, 1e-9);
        log.add(done, loss, lr, norm, rate);
        if (done % save_every == 0 || done == until) gemma4::save_training_state(out, c, master, opt, run);
        if (status.due(done, done == until)) {
            const double eta = elapsed / static_cast<double>(done - state.step) * static_cast<double>(until - done);
            char line[160];
            std::snprintf(line, sizeof line, "qtensor: train: step %llu/%zu  loss %.4f  lr %.3g  %.0f tok/s  ETA %s",
                          static_cast<unsigned long long>(done), rs.steps, loss, lr, rate, duration(eta).c_str());
            status.show(line);
        }
    }
    end_progress_line();
    const std::size_t state_bytes = 4 * gemma4::trainable_elements(shapes) * sizeof(float); // weights, gradients, AdamW's two moments
    std::fprintf(stderr,
                 "qtensor: train: peak RSS %s = %.2f x (weights, gradients and AdamW's moments %s + the activations "
                 "a step keeps %s)\n",
                 mib(peak_rss_bytes()).c_str(),
                 static_cast<double>(peak_rss_bytes()) / static_cast<double>(state_bytes + saved_activations),
                 mib(state_bytes).c_str(), mib(saved_activations).c_str());
}

} // namespace

void print_grad_help() {
    std::printf(
        "usage: qtensor grad --ids IDS --out FILE [--threads N] MODEL\n"
        "\n"
        "Runs the token ids through the model, takes the mean cross-entropy of each\n"
        "position's logits against the next id (the training loss), and writes it\n"
        "with the gradient of every parameter to FILE, a safetensors file:\n"
        "  loss                      float32 [1]\n"
        "  grad.<Hugging Face name>  float32, the parameter's shape\n"
        "Computed in float32 from the model's weights widened to float32, as\n"
        "'qtensor train' computes them (gemma4/gradients.hpp).\n"
        "\n"
        "Options:\n"
        "  -i, --ids IDS     comma-separated token ids, at least 2 (e.g. 5,17,3)\n"
        "  -o, --out FILE    the safetensors file to write\n"
        "  -t, --threads N   threads (default: all cores)\n"
        "  -h, --help        show this help\n"
        "\n"
        "MODEL: a Hugging Face model directory (config.json, model.safetensors) or a\n"
        "GGUF file; quantized weights are differentiated as their float32 values.\n");
}

int run_grad(std::span<const std::string_view> args) {
    const parsed_args parsed = parse_args("grad", args, grad_options);
    if (parsed.help) {
        print_grad_help();
        return 0;
    }
    if (!parsed.has(gr_ids)) usage_error("grad: missing --ids");
    if (!parsed.has(gr_out)) usage_error("grad: missing --out");
    if (parsed.positionals.size() != 1)
        usage_error("grad: expected one MODEL, got " + std::to_string(parsed.positionals.size()) +
                    " (see 'qtensor grad --help')");
    const std::vector<std::int32_t> ids = parse_ids(*parsed.values[gr_ids]);
    if (ids.size() < 2) usage_error("grad: --ids needs at least 2 tokens (each position predicts the next)");
    const std::string model = model_path("grad", parsed.positionals[0]);

    const gemma4::checkpoint ck(model);
    check_context("grad", ck.config(), ids.size());
    const gemma4::tensors<float> params = gemma4::load_parameters(ck.config(), ck, ck.names());
    kernels::thread_pool pool(threads_of(parsed, gr_threads));
    const auto result = gemma4::loss_and_gradients(ck.config(), params, ids, ids.size(), pool.get_executor());

    io::safetensors_writer w;
    const float loss = result.loss;
    w.add("loss", {1}, std::span(&loss, 1));
    for (const gemma4::parameter_shape& s : gemma4::parameter_shapes(ck.config()))
        if (s.trainable) w.add("grad." + s.name, s.shape, result.grads.at(s.name));
    output out(std::string(*parsed.values[gr_out]));
    w.write(out.file());
    std::fprintf(stderr, "qtensor: grad: loss %.6f over %zu tokens\n", static_cast<double>(loss), ids.size());
    return 0;
}

void print_train_help() {
    std::printf(
        "usage: qtensor train --data TEXT --steps N --out DIR [options] CONFIG_OR_MODEL\n"
        "\n"
        "Trains a Gemma 4 model on the bytes of TEXT: byte b is token id b + 3 (ids 0-2\n"
        "are pad, eos, bos), so the vocabulary needs at least 259 entries. Each step\n"
        "takes BATCH x ACCUM windows of SEQ tokens at positions drawn from the seed,\n"
        "the mean next-token cross-entropy and its gradient, clips the gradient to a\n"
        "global norm, and takes an AdamW step at a warmup + cosine learning rate.\n"
        "With a quantized --policy the forward sees every weight as the policy packs\n"
        "it (quantization-aware training; the master weights stay float32), so\n"
        "'qtensor convert --policy P DIR F.gguf' exports exactly the trained model.\n"
        "\n"
        "CONFIG_OR_MODEL: a config.json (a fresh model, initialised from --seed) or a\n"
        "Hugging Face model directory (fine-tuning its weights).\n"
        "\n"
        "DIR receives config.json and model.safetensors (a model every command loads),\n"
        "optimizer.safetensors (to resume) and loss.tsv (step, loss, lr, grad_norm,\n"
        "tokens_per_s: one row per step, for plots).\n"
        "\n"
        "Options:\n"
        "  -d, --data TEXT        the training text (any bytes)\n"
        "  -n, --steps N          optimizer steps of the whole run\n"
        "  -o, --out DIR          where the run is saved\n"
        "  -p, --policy POLICY    f32 (default), bf16, q8_0, q4_0, q2_k or mobile: what the forward\n"
        "                         rehearses\n"
        "      --grid RULE        how Q4_0 weights are rounded: ggml (default; convert packs them\n"
        "                         exactly) or symmetric (amax / 7, codes -7..7; 'fake-quant --grid\n"
        "                         symmetric' exports them, 'convert --lattice' packs that exactly)\n"
        "  -s, --seq N            tokens per window (default 64)\n"
        "  -b, --batch N          windows per micro-batch, run in parallel (default 4)\n"
        "  -a, --accum N          micro-batches per step (gradient accumulation, default 1)\n"
        "  -l, --lr X             peak learning rate (default 1e-3)\n"
        "      --min-lr X         the cosine's floor (default lr / 10)\n"
        "  -w, --warmup N         steps of linear warmup (default steps / 10)\n"
        "      --weight-decay X   AdamW's decoupled decay of matrices (default 0.1)\n"
        "  -c, --clip X           global gradient norm cap, 0 for none (default 1)\n"
        "      --scales FILE      rehearse static int8 activations with the scales FILE holds\n"
        "                         ('qtensor calibrate' writes it; quantized policies only): run\n"
        "                         the exported model with the same --scales\n"
        "      --seed N           initial weights and data order (default 1)\n"
        "  -t, --threads N        threads (default: all cores; results do not depend on it)\n"
        "      --until K          stop (and save) after step K of N; continue with --resume\n"
        "      --save-every K     also save every K steps (default: only at the end)\n"
        "  -r, --resume           continue the run saved in DIR (same settings), bit-identically\n"
        "  -h, --help             show this help\n");
}

int run_train(std::span<const std::string_view> args) {
    const parsed_args parsed = parse_args("train", args, train_options);
    if (parsed.help) {
        print_train_help();
        return 0;
    }
    for (const auto& [opt, name] : {std::pair{tr_data, "--data"}, {tr_steps, "--steps"}, {tr_out, "--out"}})
        if (!parsed.has(opt)) usage_error(std::string("train: missing ") + name);
    if (parsed.positionals.size() != 1)
        usage_error("train: expected one CONFIG_OR_MODEL, got " + std::to_string(parsed.positionals.size()) +
                    " (see 'qtensor train --help')");
    constexpr std::size_t max_steps = std::size_t{1} << 40;
    run_settings rs;
    rs.policy = std::string(policy_of(parsed, tr_policy));
    rs.grid = grid_of("train", parsed, tr_grid, rs.policy);
    rs.data = std::filesystem::absolute(std::string(*parsed.values[tr_data])).lexically_normal().string();
    rs.steps = parse_count("--steps", *parsed.values[tr_steps], max_steps);
    const auto count = [&](std::size_t opt, const char* name, std::size_t fallback, std::size_t cap) {
        return parsed.has(opt) ? parse_count(name, *parsed.values[opt], cap) : fallback;
    };
    const auto number = [&](std::size_t opt, const char* name, double fallback) {
        return parsed.has(opt) ? parse_number(name, *parsed.values[opt]) : fallback;
    };
    rs.seq = count(tr_seq, "--seq", rs.seq, std::size_t{1} << 20);
    rs.batch = count(tr_batch, "--batch", rs.batch, std::size_t{1} << 16);
    rs.accum = count(tr_accum, "--accum", rs.accum, std::size_t{1} << 16);
    rs.lr = number(tr_lr, "lr", rs.lr);
    rs.min_lr = number(tr_min_lr, "min-lr", rs.lr / 10);
    rs.weight_decay = number(tr_weight_decay, "weight-decay", rs.weight_decay);
    rs.clip = number(tr_clip, "clip", rs.clip);
    rs.warmup = parsed.has(tr_warmup) ? parse_whole("warmup", *parsed.values[tr_warmup]) : rs.steps / 10;
    rs.seed = parsed.has(tr_seed) ? parse_whole("seed", *parsed.values[tr_seed]) : rs.seed;
    if (rs.seq < 2) usage_error("train: --seq must be at least 2 (each token predicts the next)");
    if (rs.min_lr > rs.lr) usage_error("train: --min-lr is above --lr");
    if (rs.warmup > rs.steps) usage_error("train: --warmup is longer than --steps");
    const std::size_t until = count(tr_until, "--until", rs.steps, rs.steps);
    const std::size_t save_every = count(tr_save_every, "--save-every", until, max_steps);
    const bool resume = parsed.has(tr_resume);
    const std::filesystem::path out(std::string(*parsed.values[tr_out]));

    // The model: a config.json starts a fresh one; a directory is fine-tuned.
    const std::string source = model_path("train", parsed.positionals[0]);
    const bool fresh = std::filesystem::is_regular_file(source) && source.ends_with(".json") &&
                       !source.ends_with(".index.json");
    const std::filesystem::path config_file =
        fresh ? std::filesystem::path(source)
              : (std::filesystem::is_directory(source) ? std::filesystem::path(source)
                                                       : std::filesystem::path(source).parent_path()) /
                    "config.json";
    if (!fresh && !std::filesystem::is_directory(source) && !source.ends_with(".safetensors") &&
        !source.ends_with(".index.json"))
        usage_error("train: " + in_quotes(source) +
                    " is neither a config.json nor a Hugging Face model (GGUF files cannot be trained: their "
                    "config has no config.json to write beside the weights)");
    const gemma4::config c = gemma4::config::from_hf_file(config_file);
    const std::size_t vocab = c.input_vocab();
    if (vocab < train::byte_vocab)
        run_error("train: the model's vocabulary of " + std::to_string(vocab) + " is too small for byte tokens (" +
                  std::to_string(train::byte_vocab) + ")");
    check_context("train", c, rs.seq);
    if (parsed.has(tr_scales)) {
        const std::string file(*parsed.values[tr_scales]);
        rs.scales_text = read_text("train", file);
        rs.scales = gemma4::activation_sites_from_json(rs.scales_text, c.num_hidden_layers, in_quotes(file));
        rs.scales.check_scales(c.has_per_layer_input(), "train: --scales " + in_quotes(file));
        bool rehearsed = false; // some product of the policy takes them
        gemma4::with_policy(rs.policy, [&]<class P>(P) {
            const gemma4::activation_sites used = gemma4::rehearsal<P>::activation_scales(rs.scales);
            for (std::size_t i = 0; i < used.size(); ++i) rehearsed = rehearsed || used[i] > 0.0f;
        });
        if (!rehearsed)
            usage_error("train: --scales: policy " + rs.policy +
                        " quantizes no weight, so no product takes static activations");
    }

    const std::string text = read_text("train", rs.data), config_text = read_text("train", config_file.string());
    const std::string run = rs.describe(text, config_text);
    const std::vector<std::int32_t> tokens = train::byte_tokens(text);
    if (tokens.size() < rs.seq)
        run_error("train: the data has " + std::to_string(tokens.size()) + " bytes, fewer than one window of " +
                  std::to_string(rs.seq));

    std::error_code ec;
    if (!fresh && std::filesystem::equivalent(out, config_file.parent_path(), ec))
        usage_error("train: --out is the model being fine-tuned: its weights would be overwritten; pick another");
    std::filesystem::create_directories(out, ec);
    if (ec) run_error("train: cannot create " + in_quotes(out.string()) + ": " + ec.message());
    gemma4::training_state state;
    if (resume) {
        state = gemma4::load_training_state(out, c);
        if (state.run != run)
            run_error("train: --resume: " + in_quotes(out.string()) + " holds another run (" + state.run +
                      "); this one is " + run);
        if (state.step >= until)
            run_error("train: --resume: the run in " + in_quotes(out.string()) + " is already at step " +
                      std::to_string(state.step));
    } else {
        if (std::filesystem::exists(out / "optimizer.safetensors"))
            run_error("train: " + in_quotes(out.string()) +
                      " already holds a run: --resume to continue it, or another --out");
        state.params = fresh ? gemma4::init_parameters(c, rs.seed) : [&] {
            const gemma4::checkpoint ck(source);
            return gemma4::load_parameters(ck.config(), ck, ck.names());
        }();
        if (config_file != out / "config.json")
            std::filesystem::copy_file(config_file, out / "config.json",
                                       std::filesystem::copy_options::overwrite_existing);
    }

    std::fprintf(stderr, "qtensor: train: %zu parameters, policy %s%s%s, %zu tokens of data, %zu tokens per step%s\n",
                 gemma4::trainable_elements(gemma4::parameter_shapes(c)), rs.policy.c_str(),
                 rs.grid == gemma4::q4_0_rule::symmetric ? " (symmetric Q4_0 grid)" : "",
                 rs.scales.size() != 0 ? ", static activations" : "", tokens.size(), rs.batch * rs.accum * rs.seq,
                 resume ? (", resuming at step " + std::to_string(state.step)).c_str() : "");
    keep_freed_memory();
    kernels::thread_pool pool(threads_of(parsed, tr_threads));
    gemma4::with_policy(rs.policy, [&]<class P>(P) {
        train_run<P>(rs, c, std::move(state), tokens, out, until, save_every, run, pool.get_executor());
    });
    return 0;
}

void print_fake_quant_help() {
    std::printf(
        "usage: qtensor fake-quant --policy POLICY --out DIR [--grid RULE] [--dtype bf16|f32] MODEL\n"
        "\n"
        "Writes MODEL's weights as quantization-aware training under POLICY sees them:\n"
        "each weight packed as its role's scheme and unpacked (fake_quant), so on the\n"
        "grid it rehearses. DIR receives config.json and model.safetensors, a Hugging\n"
        "Face model in bf16 (default) or f32: what a QAT release publishes as its\n"
        "unquantized checkpoint. 'qtensor lattice DIR' finds the grids again and\n"
        "'qtensor convert --lattice' packs on them (docs/qat.md).\n"
        "\n"
        "Options:\n"
        "  -p, --policy POLICY  f32, bf16, q8_0, q4_0, q2_k or mobile\n"
        "  -o, --out DIR        the directory to write\n"
        "      --grid RULE      how Q4_0 weights are rounded: ggml or symmetric (amax / 7); default:\n"
        "                       the rule MODEL was trained with, when it is a 'qtensor train' run\n"
        "      --dtype TYPE     bf16 (default) or f32 (exactly the values the forward saw)\n"
        "  -h, --help           show this help\n"
        "\n"
        "MODEL: a Hugging Face model directory (a 'qtensor train' run is one).\n");
}

int run_fake_quant(std::span<const std::string_view> args) {
    const parsed_args parsed = parse_args("fake-quant", args, fake_quant_options);
    if (parsed.help) {
        print_fake_quant_help();
        return 0;
    }
    if (!parsed.has(fq_policy)) usage_error("fake-quant: missing --policy");
    if (!parsed.has(fq_out)) usage_error("fake-quant: missing --out");
    if (parsed.positionals.size() != 1)
        usage_error("fake-quant: expected one MODEL, got " + std::to_string(parsed.positionals.size()) +
                    " (see 'qtensor fake-quant --help')");
    const std::string_view policy = policy_of(parsed, fq_policy);
    gemma4::q4_0_rule grid = grid_of("fake-quant", parsed, fq_grid, policy);
    const std::string_view dtype = parsed.has(fq_dtype) ? *parsed.values[fq_dtype] : "bf16";
    if (dtype != "bf16" && dtype != "f32")
        usage_error("fake-quant: --dtype " + in_quotes(dtype) + " is not bf16 or f32");
    const std::string model = model_path("fake-quant", parsed.positionals[0]);
    if (!std::filesystem::is_directory(model))
        usage_error("fake-quant: " + in_quotes(model) + " is not a Hugging Face model directory (fake-quant "
                    "copies its config.json)");
    const std::filesystem::path out(std::string(*parsed.values[fq_out]));
    std::error_code ec;
    if (std::filesystem::equivalent(out, model, ec))
        usage_error("fake-quant: --out is MODEL itself: its weights would be overwritten; pick another");
    if (std::filesystem::exists(out / "optimizer.safetensors"))
        usage_error("fake-quant: " + in_quotes(out.string()) +
                    " holds a training run, which would resume from the rounded weights; pick another --out");
    // A `qtensor train` run records its grid: the default, and another is refused.
    if (const std::filesystem::path state = std::filesystem::path(model) / "optimizer.safetensors";
        std::filesystem::exists(state)) {
        const io::safetensors_file f(state.string());
        if (const auto run = f.metadata().find("run"); run != f.metadata().end()) {
            const auto trained = run->second.find(" grid=symmetric") != std::string::npos ? gemma4::q4_0_rule::symmetric
                                                                                        : gemma4::q4_0_rule::ggml;
            const auto name = [](gemma4::q4_0_rule r) { return r == gemma4::q4_0_rule::symmetric ? "symmetric" : "ggml"; };
            if (parsed.has(fq_grid) && grid != trained)
                usage_error(std::string("fake-quant: MODEL was trained on the ") + name(trained) +
                            " grid, not the " + name(grid) + " one");
            grid = trained;
        }
    }

    const gemma4::checkpoint ck(model);
    const gemma4::config& c = ck.config();
    const gemma4::tensors<float> master = gemma4::load_parameters(c, ck, ck.names());
    gemma4::tensors<float> seen;
    gemma4::with_policy(policy, [&]<class P>(P) { gemma4::rehearsal<P>(c, grid).forward(master, seen); });

    io::safetensors_writer w;
    w.set_metadata("format", "pt");
    std::vector<std::vector<bf16_t>> narrowed; // kept alive until the write
    for (const gemma4::parameter_shape& s : gemma4::parameter_shapes(c)) {
        const std::vector<float>& v = seen.at(s.name);
        if (dtype == "f32") {
            w.add(s.name, s.shape, v);
            continue;
        }
        std::vector<bf16_t>& b = narrowed.emplace_back(v.size());
        bf16::quantize_row(v.data(), b.data(), v.size());
        w.add(s.name, "BF16", s.shape, std::as_bytes(std::span(b)));
    }
    std::filesystem::create_directories(out, ec);
    if (ec) run_error("fake-quant: cannot create " + in_quotes(out.string()) + ": " + ec.message());
    w.write((out / "model.safetensors").string());
    std::filesystem::copy_file(std::filesystem::path(model) / "config.json", out / "config.json",
                               std::filesystem::copy_options::overwrite_existing);
    std::fprintf(stderr, "qtensor: fake-quant: %zu tensors as policy %s%s sees them, %s -> %s\n",
                 gemma4::parameter_shapes(c).size(), std::string(policy).c_str(),
                 grid == gemma4::q4_0_rule::symmetric ? " (symmetric Q4_0 grid)" : "", std::string(dtype).c_str(),
                 out.string().c_str());
    return 0;
}

} // namespace qtensor::cli
