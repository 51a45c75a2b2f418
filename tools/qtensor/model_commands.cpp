// tools/qtensor/model_commands.cpp: the commands that run a Gemma 4
// checkpoint (a Hugging Face directory or a GGUF file):
//   qtensor convert  MODEL OUT.gguf          a GGUF file in a policy's schemes
//   qtensor logits   MODEL --ids ... --out F T x vocab float32 logits
//   qtensor generate MODEL --ids ... --max-new N   greedy decoding with the KV cache
//   qtensor ppl      MODEL --data TEXT | --ids ...  perplexity of a text or of ids
//   qtensor tokenize MODEL --text TEXT | --ids ...  the model's tokenizer, both ways
// Each loads the model for the policy named by --policy (gemma4/policy.hpp).
#include <algorithm>
#include <bit>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "cli.hpp"
#include "commands.hpp"
#include "io.hpp"
#include "model_args.hpp"
#include "qtensor/core/text.hpp"
#include "qtensor/gemma4/activation_sites_json.hpp"
#include "qtensor/gemma4/chat.hpp"
#include "qtensor/gemma4/checkpoint.hpp"
#include "qtensor/gemma4/footprint.hpp"
#include "qtensor/gemma4/gguf.hpp"
#include "qtensor/gemma4/lattice.hpp"
#include "qtensor/gemma4/model.hpp"
#include "qtensor/gemma4/parameters.hpp"
#include "qtensor/gemma4/policy.hpp"
#include "qtensor/gemma4/profile.hpp"
#include "qtensor/kernels/executor.hpp"
#include "qtensor/kernels/reference/float_ops.hpp"
#include "qtensor/train/data.hpp"

static_assert(std::endian::native == std::endian::little,
              "qtensor: the CLI writes floats as they lie in memory; big-endian hosts need byte swapping");

namespace qtensor::cli {
namespace {

constexpr option_spec convert_options[] = {
    {"policy", 'p', true},
    {"verbose", 'v', false},
    {"lattice", 0, false},
};
enum : std::size_t { conv_policy, conv_verbose, conv_lattice };

constexpr option_spec logits_options[] = {
    {"policy", 'p', true},
    {"ids", 'i', true},
    {"out", 'o', true},
    {"threads", 't', true},
    {"in-place", 0, false},
    {"scales", 0, true},
};
enum : std::size_t { lg_policy, lg_ids, lg_out, lg_threads, lg_in_place, lg_scales };

constexpr option_spec generate_options[] = {
    {"policy", 'p', true}, {"ids", 'i', true},    {"max-new", 'n', true},
    {"threads", 't', true}, {"prompt", 0, true}, {"chat", 0, false}, {"profile", 0, false},
    {"in-place", 0, false}, {"scales", 0, true},
};
enum : std::size_t {
    gen_policy, gen_ids, gen_max_new, gen_threads, gen_prompt, gen_chat, gen_profile, gen_in_place, gen_scales
};

constexpr option_spec tokenize_options[] = {{"text", 0, true}, {"ids", 'i', true}, {"chat", 0, false}};
enum : std::size_t { tok_text, tok_ids, tok_chat };

// ppl's options; calibrate's are the same with --out (where the scales go) in
// place of --scales (which ppl runs with).
constexpr option_spec ppl_options[] = {
    {"policy", 'p', true}, {"ids", 'i', true},    {"data", 'd', true},
    {"ctx", 'c', true},    {"chunks", 0, true},   {"threads", 't', true}, {"in-place", 0, false},
    {"scales", 0, true},
};
constexpr option_spec calibrate_options[] = {
    {"policy", 'p', true}, {"ids", 'i', true},    {"data", 'd', true},
    {"ctx", 'c', true},    {"chunks", 0, true},   {"threads", 't', true}, {"in-place", 0, false},
    {"out", 'o', true},
};
enum : std::size_t { pp_policy, pp_ids, pp_data, pp_ctx, pp_chunks, pp_threads, pp_in_place, pp_scales };
constexpr std::size_t cal_out = pp_scales;
constexpr std::size_t default_ppl_ctx = 512;

// --- convert ----------------------------------------------------------------

// What policy P's tensors take when loaded from ck, the total the progress
// counts towards; none when P cannot store them (the load then says why).
// stored_policy: the model's tensors in the types it keeps them in
// (gemma4::stored_type; float32 roles f32).
template <class P>
std::optional<std::uintmax_t> policy_bytes(const gemma4::checkpoint& ck) {
    if constexpr (gemma4::typed_policy<P>) {
        try {
            return gemma4::measure_footprint(ck.config(), gemma4::storage_plan::of<P>(), 0).bytes;
        } catch (const qtensor::error&) {
            return std::nullopt;
        }
    } else {
        std::uintmax_t total = 0;
        for (const gemma4::parameter_shape& p : gemma4::parameter_shapes(ck.config())) {
            const io::tensor_entry* e = ck.find(ck.names() ? ck.names()(p.name) : p.name);
            if (e == nullptr) continue; // absent (layer_scalar), or the load says so
            const ggml_type kept = p.role == gemma4::weight_role::float32 ? ggml_type::f32 : gemma4::stored_type(e->type);
            visit_scheme(kept, [&](auto s) {
                using K = decltype(s);
                total += p.elements() / K::block_elems * K::block_bytes;
            });
        }
        return total;
    }
}

// One line per tensor with --verbose; else, on a terminal, the bytes done.
class tensor_progress {
public:
    tensor_progress(bool verbose, std::optional<std::uintmax_t> total)
        : verbose_(verbose), bar_("convert", false, total) {}

    void operator()(const io::tensor_entry& e) {
        ++count_;
        bytes_ += e.data.size();
        if (!verbose_) return bar_(e);
        std::fprintf(stderr, "qtensor: convert: %zu: %s %s %s\n", count_, printable(e.name).c_str(),
                     std::string(type_name(e.type)).c_str(), shape_text(e.shape).c_str());
    }

    std::size_t count() const noexcept { return count_; }
    std::size_t bytes() const noexcept { return bytes_; }

private:
    bool verbose_;
    progress bar_;
    std::size_t count_ = 0, bytes_ = 0;
};

// --- logits / generate --------------------------------------------------------

struct run_job {
    std::string model;
    std::vector<std::int32_t> ids;
    std::size_t threads = 1;
    gemma4::weight_layout layout = gemma4::weight_layout::interleaved;
    std::string out;                         // logits
    std::size_t max_new = 0;                 // generate
    bool profile = false;                     // generate --profile
    std::optional<text::tokenizer> tokenizer; // generate --prompt: print text, stop at a stop id
    std::string scales;                       // --scales: static activation scales
};

// MODEL's tokenizer; an error when it has none.
text::tokenizer tokenizer_of(std::string_view command, const gemma4::checkpoint& ck) {
    std::optional<text::tokenizer> tok = ck.tokenizer();
    if (!tok)
        run_error(std::string(command) + ": " + in_quotes(ck.path()) + " has no tokenizer (a GGUF file's " +
                  "tokenizer.ggml.* keys, or tokenizer.model or tokenizer.json beside config.json): give token ids with --ids");
    return std::move(*tok);
}

// A prompt's ids: <bos> and the text, or (chat) the text as a user turn in Gemma's chat format.
std::vector<std::int32_t> prompt_ids(const text::tokenizer& tok, std::string_view text, bool chat) {
    return chat ? gemma4::chat_prompt(tok, text) : gemma4::plain_prompt(tok, text);
}

// The text of ids, with an id the tokenizer lacks named (a model's table may be larger).
std::string text_of(std::string_view command, const text::tokenizer& tok, std::span<const std::int32_t> ids) {
    for (const std::int32_t id : ids)
        if (id >= tok.size())
            run_error(std::string(command) + ": token " + std::to_string(id) + " is beyond the tokenizer's " +
                      std::to_string(tok.size()) + " pieces");
    return tok.decode(ids);
}

// Model P from ck; on a terminal, the bytes loaded so far. With `scales` (a
// file 'qtensor calibrate' wrote), static activations with those scales.
template <class P>
gemma4::model<P> load_model(const gemma4::checkpoint& ck, kernels::executor ex, gemma4::weight_layout layout,
                            const std::string& scales = {}) {
    progress loading("loading", false, policy_bytes<P>(ck));
    auto m = gemma4::model<P>::load(ck.config(), ck, ck.names(), std::move(ex), std::ref(loading), layout);
    loading.finish();
    if (!scales.empty())
        m.set_activation_scales(
            gemma4::activation_sites_from_json(read_text("scales", scales), m.layers().size(), in_quotes(scales)));
    return m;
}

template <class P>
void write_logits(const run_job& job, const gemma4::checkpoint& ck, kernels::executor ex) {
    const auto m = load_model<P>(ck, std::move(ex), job.layout, job.scales);
    const std::vector<float> logits = m.forward(job.ids); // [T, V]
    output out(job.out);
    out.write(logits.data(), logits.size() * sizeof(float));
    out.commit();
}

std::size_t argmax(std::span<const float> v) {
    std::size_t best = 0;
    for (std::size_t i = 1; i < v.size(); ++i)
        if (v[i] > v[best]) best = i;
    return best;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string rate(std::size_t tokens, double seconds) {
    char buf[96];
    if (tokens == 0) return "0 tokens";
    std::snprintf(buf, sizeof buf, "%zu tokens in %.1f ms (%.1f tok/s)", tokens, seconds * 1e3,
                  static_cast<double>(tokens) / seconds);
    return buf;
}

// A decode profile, per step: time, share, weight bytes read and their rate.
void print_profile(const gemma4::profile& p) {
    if (p.calls == 0) return;
    const double steps = static_cast<double>(p.calls), total_s = p.total_seconds();
    std::fprintf(stderr, "qtensor: generate: profile of %zu decode steps, per step:\n", p.calls);
    std::fprintf(stderr, "  %-12s %9s %7s %11s %8s\n", "ops", "ms", "share", "weights MB", "GB/s");
    const auto line = [&](std::string_view name, double s, std::size_t bytes) {
        const double mb = static_cast<double>(bytes) / steps / 1e6;
        std::fprintf(stderr, "  %-12.*s %9.3f %6.1f%% %11.1f %8.1f\n", static_cast<int>(name.size()), name.data(),
                     s / steps * 1e3, 100.0 * s / total_s, mb, s > 0 ? mb * steps / s / 1e3 : 0.0);
    };
    std::size_t bytes = 0;
    for (std::size_t f = 0; f < gemma4::profile::families; ++f) {
        line(gemma4::profile::names[f], p.seconds[f], p.weight_bytes[f]);
        bytes += p.weight_bytes[f];
    }
    line("total", total_s, bytes);
}

template <class P>
void generate(const run_job& job, const gemma4::checkpoint& ck, kernels::executor ex) {
    const auto m = load_model<P>(ck, std::move(ex), job.layout, job.scales);
    auto cache = m.make_cache(job.ids.size() + job.max_new);
    // With a tokenizer: text as it comes, held back while it ends in part of a character.
    const std::vector<std::int32_t> stops = job.tokenizer ? gemma4::stop_ids(*job.tokenizer) : std::vector<std::int32_t>{};
    std::size_t printed = 0;
    const auto show = [&](std::span<const std::int32_t> ids, bool last) {
        const std::string text = text_of("generate", *job.tokenizer, ids);
        if (!last && job.tokenizer->ends_mid_character(ids)) return;
        std::fwrite(text.data() + printed, 1, text.size() - printed, stdout);
        std::fflush(stdout);
        printed = text.size();
    };
    std::vector<std::int32_t> out;
    gemma4::profile prof; // of the decode steps
    const auto t0 = std::chrono::steady_clock::now();
    auto next = static_cast<std::int32_t>(argmax(m.prefill(job.ids, cache)));
    const double prefill_s = seconds_since(t0);
    double decode_s = 0; // the model's steps only, not the printing
    bool stopped = false;
    for (;;) {
        stopped = std::ranges::find(stops, next) != stops.end();
        if (stopped) break;
        out.push_back(next);
        if (job.tokenizer) show(out, false);
        if (out.size() == job.max_new) break;
        const auto t1 = std::chrono::steady_clock::now();
        next = static_cast<std::int32_t>(argmax(m.decode(next, cache, job.profile ? &prof : nullptr)));
        decode_s += seconds_since(t1);
    }

    if (job.tokenizer) {
        if (!out.empty()) show(out, true);
        std::printf("\n");
    } else {
        std::string line;
        for (std::int32_t id : out) {
            if (!line.empty()) line += ',';
            line += std::to_string(id);
        }
        std::printf("%s\n", line.c_str());
    }
    const gemma4::byte_counts w = m.weight_bytes();
    const std::size_t steps = out.size() - (stopped || out.empty() ? 0 : 1); // decode() calls
    std::fprintf(stderr, "qtensor: generate: prefill %s; decode %s%s\n", rate(job.ids.size(), prefill_s).c_str(),
                 rate(steps, decode_s).c_str(), stopped ? " (stopped at the end of the reply)" : "");
    std::fprintf(stderr,
                 "qtensor: generate: weights %s (%s converted or repacked, %s mapped); KV cache %s for %zu positions; "
                 "peak RSS %s\n",
                 mib(w.total()).c_str(), mib(w.owned).c_str(), mib(w.mapped).c_str(), mib(cache.bytes()).c_str(),
                 cache.capacity(), mib(peak_rss_bytes()).c_str());
    if (job.profile) print_profile(prof);
}

// --- ppl ----------------------------------------------------------------------

// tokens cut into consecutive chunks of ctx (the last may be shorter); each
// chunk is one sequence from position 0, and every token but its first is
// predicted by the logits before it.
struct ppl_job {
    std::vector<std::int32_t> tokens;
    std::size_t ctx = 0, chunks = 0;
    gemma4::weight_layout layout = gemma4::weight_layout::interleaved;
    std::string scales; // ppl: --scales; calibrate: --out
};

// Chunk k of the job's tokens.
std::span<const std::int32_t> chunk_of(const ppl_job& job, std::size_t k) {
    return std::span(job.tokens).subspan(k * job.ctx, std::min(job.ctx, job.tokens.size() - k * job.ctx));
}

template <class P>
void perplexity(const ppl_job& job, const gemma4::checkpoint& ck, kernels::executor ex) {
    const auto m = load_model<P>(ck, std::move(ex), job.layout, job.scales);
    const std::size_t V = ck.config().vocab_size;
    step_progress status(job.chunks);
    std::vector<double> row(V);
    double nats = 0; // summed in double: many terms
    std::size_t scored = 0, ran = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (std::size_t k = 0; k < job.chunks; ++k) {
        const std::span<const std::int32_t> chunk = chunk_of(job, k);
        const std::vector<float> logits = m.forward(chunk); // [n, V]
        ran += chunk.size();
        for (std::size_t t = 0; t + 1 < chunk.size(); ++t) {
            std::copy_n(logits.begin() + static_cast<std::ptrdiff_t>(t * V), V, row.begin());
            const double ce = kernels::reference::cross_entropy(row.data(), V, static_cast<std::size_t>(chunk[t + 1]));
            if (!std::isfinite(ce))
                run_error("ppl: the logits at token " + std::to_string(k * job.ctx + t) + " are not finite");
            nats += ce;
            ++scored;
        }
        const std::size_t done = k + 1;
        if (job.chunks > 1 && status.due(done, done == job.chunks)) {
            char line[128];
            std::snprintf(line, sizeof line, "qtensor: ppl: chunk %zu/%zu  perplexity so far %.4f  %.0f tok/s", done,
                          job.chunks, std::exp(nats / static_cast<double>(scored)),
                          static_cast<double>(ran) / std::max(seconds_since(t0), 1e-9));
            status.show(line);
        }
    }
    end_progress_line();
    const double mean = nats / static_cast<double>(scored);
    std::printf("perplexity: %.6f\n", std::exp(mean));
    std::fprintf(stderr,
                 "qtensor: ppl: %zu tokens predicted in %zu chunks of up to %zu; mean cross-entropy %.6f nats "
                 "(%.4f bits per token)\n",
                 scored, job.chunks, job.ctx, mean, mean / std::log(2.0));
}

// calibrate: each chunk through the model, the largest input magnitude of
// every product's site, and their static scales written to job.scales.
template <class P>
void calibrate(const ppl_job& job, const gemma4::checkpoint& ck, kernels::executor ex) {
    const auto m = load_model<P>(ck, std::move(ex), job.layout);
    gemma4::activation_sites ranges(m.layers().size());
    step_progress status(job.chunks);
    for (std::size_t k = 0; k < job.chunks; ++k) {
        m.calibrate(chunk_of(job, k), ranges);
        if (job.chunks > 1 && status.due(k + 1, k + 1 == job.chunks)) {
            char line[96];
            std::snprintf(line, sizeof line, "qtensor: calibrate: chunk %zu/%zu", k + 1, job.chunks);
            status.show(line);
        }
    }
    end_progress_line();
    const gemma4::activation_sites scales = ranges.scales();
    output out(job.scales);
    const std::string text = gemma4::to_json(scales);
    out.write(text.data(), text.size());
    out.commit();
    std::size_t sites = 0, widest = 0;
    for (std::size_t i = 0; i < scales.size(); ++i)
        if (scales[i] > 0.0f) {
            ++sites;
            if (scales[i] > scales[widest] || scales[widest] == 0.0f) widest = i;
        }
    std::fprintf(stderr, "qtensor: calibrate: %zu sites over %zu chunks of up to %zu tokens; the widest, %s, "
                         "%.6g (largest magnitude %.6g) -> '%s'\n",
                 sites, job.chunks, job.ctx, scales.name(widest).c_str(), static_cast<double>(scales[widest]),
                 static_cast<double>(ranges[widest]), printable(job.scales).c_str());
}

// `running`: the command runs the model, so the stored policy is offered too.
void print_model_note(bool running) {
    std::printf(
        "MODEL is a Hugging Face Gemma 4 model directory (config.json and\n"
        "model.safetensors or its index), or a GGUF file. POLICY picks the scheme of\n"
        "each weight role and of the KV cache, one of:\n"
        "  f32    everything float32 (the reference)\n"
        "  bf16   bf16 weights and KV cache\n"
        "  q8_0   Q8_0 weights and KV cache (per-layer-input projections bf16)\n"
        "  q4_0   Q4_0 attention and MLP, Q8_0 embeddings, bf16 per-layer-input\n"
        "         projections and KV cache (the QAT format)\n"
        "  q2_k   as q4_0 with Q2_K attention, MLP and experts (rows of multiples\n"
        "         of 256)\n"
        "  mobile 2-bit TQ2_0 attention, MLP and experts (rows of multiples of 256),\n"
        "         Q4_0 embeddings, head and per-layer-input projections, Q8_0 KV\n"
        "         cache (docs/mobile.md)\n");
    if (running)
        std::printf(
            "  stored every weight in the type its file stores it in, bf16 KV cache: runs\n"
            "         llama-quantize's mixes (Q4_K_M, ...) in place; Q5_0 and IQ4_NL become\n"
            "         Q8_0, F16, Q4_1, Q5_1 and IQ4_XS float32, with the same values\n");
    std::printf(
        "Weights already in the policy's scheme are used in place from the file;\n"
        "others are converted when the model loads.\n");
    if (running)
        std::printf(
            "Under a policy other than stored, Q4_0 and Q8_0 matrices that the model\n"
            "multiplies by are then repacked into the kernels' interleaved layout (a copy\n"
            "in memory; the file's pages of them are let go): faster decoding. --in-place\n"
            "keeps reading them from the file.\n");
}

} // namespace

void print_convert_gguf_help() {
    std::printf(
        "usage: qtensor convert [--policy POLICY] [--verbose] [--lattice] MODEL OUT.gguf\n"
        "\n"
        "Writes MODEL as a GGUF file with llama.cpp's Gemma 4 tensor names and gemma4.*\n"
        "metadata, each weight in the scheme POLICY gives its role, quantized exactly\n"
        "as the model does when it loads MODEL with POLICY: OUT.gguf run with the same\n"
        "POLICY gives the same logits, bit for bit, without converting anything.\n"
        "\n"
        "POLICY may also be one of llama-quantize's mixes, spelt as it spells them:\n"
        "Q2_K, Q3_K_S, Q3_K_M, Q3_K_L, Q4_K_S, Q4_K_M, Q5_K_S, Q5_K_M, Q6_K, Q8_0, IQ4_NL, IQ4_XS.\n"
        "Each tensor then gets the type llama-quantize's rules give it (Q6_K output\n"
        "head and tied tables, more bits for some attn_v and ffn_down layers).\n"
        "qtensor runs such a file with a policy whose schemes fit its rows (f32 and\n"
        "bf16 always), converting at load.\n"
        "\n"
        "A tensor whose rows are not whole blocks of its type falls back, as in\n"
        "llama-quantize (Q2_K/Q3_K -> Q4_0, Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0;\n"
        "F16 where that does not fit, or where llama-quantize has no substitute and\n"
        "would stop); convert prints one line for each.\n"
        "\n");
    print_model_note(false);
    std::printf(
        "\n"
        "Options:\n"
        "  -p, --policy POLICY   a policy or a mix (above); default f32\n"
        "  -v, --verbose         one line per tensor and a summary on stderr\n"
        "                        (without it, a terminal shows the bytes done, the\n"
        "                        rate and the time left)\n"
        "      --lattice         pack each Q4_0 block that lies on a Q4_0 grid (a QAT\n"
        "                        checkpoint's) on that grid instead of by ggml's rule,\n"
        "                        so the file keeps its values (see 'qtensor lattice')\n"
        "  -h, --help            show this help\n"
        "\n"
        "OUT.gguf is written to a temporary file beside it and renamed when complete.\n"
        "Exit status: 0 done, 1 failed (files, model), 2 bad command line.\n");
}

void print_logits_help() {
    std::printf(
        "usage: qtensor logits [--policy POLICY] [--threads N] --ids IDS --out FILE MODEL\n"
        "\n"
        "Runs the token ids IDS (comma-separated, e.g. 5,17,3) through MODEL as one\n"
        "sequence and writes the logits of every position to FILE: T rows of vocab\n"
        "float32 values, little-endian, no header (row t is the prediction after\n"
        "token t, after the final softcap).\n"
        "\n");
    print_model_note(true);
    std::printf(
        "\n"
        "Options:\n"
        "  -i, --ids IDS         token ids, non-negative, below the vocabulary size\n"
        "  -o, --out FILE        where the logits go (written whole or not at all)\n"
        "  -p, --policy POLICY   default f32\n"
        "  -t, --threads N       threads for the matrix products (default: all cores);\n"
        "                        the logits do not depend on N\n"
        "      --in-place        read Q4_0 and Q8_0 matrices from the file as they are\n"
        "                        (less memory, slower; results equal from 4 tokens on)\n"
        "      --scales FILE     static int8 activations with the scales FILE holds\n"
        "                        (written by 'qtensor calibrate'; docs/mobile.md)\n"
        "  -h, --help            show this help\n"
        "\n"
        "Exit status: 0 done, 1 failed (files, model, ids out of range), 2 bad command line.\n");
}

void print_tokenize_help() {
    std::printf(
        "usage: qtensor tokenize [--chat] --text TEXT MODEL\n"
        "       qtensor tokenize --ids IDS MODEL\n"
        "\n"
        "MODEL's tokenizer (a GGUF file's tokenizer.ggml.* keys, or the tokenizer.model\n"
        "or tokenizer.json of a Hugging Face directory), both ways: --text prints the\n"
        "ids generate --prompt would run (<bos>, then TEXT; --chat: TEXT as a user\n"
        "turn of Gemma's chat format), comma-separated; --ids prints the text of IDS.\n"
        "\n"
        "Exit status: 0 done, 1 failed (files, no tokenizer, ids out of range), 2 bad command line.\n"
        "\n"
        "Options:\n"
        "      --text TEXT       the text to encode\n"
        "      --chat            TEXT as a user turn of the chat format\n"
        "  -i, --ids IDS         the ids to decode\n"
        "  -h, --help            show this help\n");
}

void print_generate_help() {
    std::printf(
        "usage: qtensor generate [--policy POLICY] [--threads N] --ids IDS --max-new N MODEL\n"
        "       qtensor generate [--policy POLICY] [--threads N] [--chat] --prompt TEXT --max-new N MODEL\n"
        "\n"
        "Greedy decoding: runs the prompt through MODEL in one prefill, then takes\n"
        "the most likely token and feeds it back, one decode step at a time with the\n"
        "KV cache. The prompt is IDS (comma-separated token ids), or TEXT encoded by\n"
        "the model's tokenizer after <bos>; --chat puts TEXT in a user turn of\n"
        "Gemma's chat format (<|turn>user\\n...<turn|>\\n<|turn>model\\n).\n"
        "\n"
        "stdout: with --ids, the N generated ids, comma-separated, on one line (no\n"
        "stop token). With --prompt, the reply as text, printed as it is generated,\n"
        "up to N tokens or until <eos> or the end-of-turn marker.\n"
        "stderr: two lines, 'qtensor: generate: prefill T tokens in X ms (R tok/s);\n"
        "decode D tokens in ...' (D decode steps: N-1, or fewer when the reply ended;\n"
        "the time is the model's alone) and the bytes of the weights (converted or repacked,\n"
        "and mapped from the file: resident only where read), of the KV cache, and the\n"
        "process's peak resident memory (RSS). With --profile, then a table of where\n"
        "a decode step's time goes, per family of ops (embedding lookups, the q/k/v/o\n"
        "projections, attention, MLP, per-layer inputs, LM head, the rest), with the\n"
        "weight bytes each reads per step and their rate in GB/s, to hold against the\n"
        "machine's memory bandwidth.\n"
        "\n");
    print_model_note(true);
    std::printf(
        "\n"
        "Options:\n"
        "  -i, --ids IDS         the prompt's token ids\n"
        "      --prompt TEXT     the prompt as text (needs the model's tokenizer)\n"
        "      --chat            TEXT as a user turn of the chat format\n"
        "  -n, --max-new N       tokens to generate (at least 1)\n"
        "  -p, --policy POLICY   default f32\n"
        "  -t, --threads N       threads for the matrix products (default: all cores)\n"
        "      --profile         print where the decode steps' time goes\n"
        "      --in-place        read Q4_0 and Q8_0 matrices from the file as they are\n"
        "                        (less memory, slower; results equal from 4 tokens on)\n"
        "      --scales FILE     static int8 activations with the scales FILE holds\n"
        "                        (written by 'qtensor calibrate'; docs/mobile.md)\n"
        "  -h, --help            show this help\n"
        "\n"
        "Exit status: 0 done, 1 failed (files, model, ids out of range), 2 bad command line.\n");
}

void print_ppl_help() {
    std::printf(
        "usage: qtensor ppl [--policy POLICY] [--threads N] [--ctx N] [--chunks N]\n"
        "                   (--data TEXT | --ids IDS) MODEL\n"
        "\n"
        "The perplexity of MODEL on a text or on token ids: exp of the mean\n"
        "cross-entropy of each token given those before it. The tokens are cut into\n"
        "consecutive chunks of --ctx; each chunk runs as one sequence from position 0\n"
        "(no BOS added) and every token of it but the first is predicted. With --data\n"
        "the text's bytes are the tokens, byte b as id b + 3, as 'qtensor train'\n"
        "reads it, so the model needs a vocabulary of at least 259.\n"
        "\n"
        "stdout: 'perplexity: P'. stderr: the tokens predicted, the chunks and the\n"
        "mean cross-entropy in nats and bits, and progress when there are several\n"
        "chunks.\n"
        "\n");
    print_model_note(true);
    std::printf(
        "\n"
        "Options:\n"
        "  -d, --data TEXT       the text to score (any bytes)\n"
        "  -i, --ids IDS         token ids to score instead, comma-separated\n"
        "  -c, --ctx N           tokens per chunk (default %zu, at most the model's\n"
        "                        context)\n"
        "      --chunks N        score only the first N chunks\n"
        "  -p, --policy POLICY   default f32\n"
        "  -t, --threads N       threads for the matrix products (default: all cores);\n"
        "                        the result does not depend on N\n"
        "      --in-place        read Q4_0 and Q8_0 matrices from the file as they are\n"
        "                        (less memory, slower; results equal from 4 tokens on)\n"
        "      --scales FILE     static int8 activations with the scales FILE holds\n"
        "                        (written by 'qtensor calibrate'; docs/mobile.md)\n"
        "  -h, --help            show this help\n"
        "\n"
        "Exit status: 0 done, 1 failed (files, model, ids out of range), 2 bad command line.\n",
        default_ppl_ctx);
}

void print_calibrate_help() {
    std::printf(
        "usage: qtensor calibrate [--policy POLICY] [--threads N] [--ctx N] [--chunks N]\n"
        "                         (--data TEXT | --ids IDS) --out SCALES MODEL\n"
        "\n"
        "Static activations: runs MODEL over a sample text or token ids, cut into\n"
        "chunks as 'qtensor ppl' cuts them, and records the largest magnitude of the\n"
        "input of every product (q/k/v, o, gate/up, down, the per-layer-input\n"
        "projections, the head). Writes SCALES, a JSON file with one int8 scale per\n"
        "site (that magnitude onto code 127, rounded up to an fp16 value), which\n"
        "logits, generate and ppl take with --scales: the products of quantized\n"
        "weights then take their inputs as int8 codes with those fixed scales\n"
        "instead of a scale per block. Calibrate with the policy you will run.\n"
        "\n");
    print_model_note(true);
    std::printf(
        "\n"
        "Options:\n"
        "  -d, --data TEXT       the sample text (bytes as token ids 3 to 258)\n"
        "  -i, --ids IDS         token ids instead, comma-separated\n"
        "  -o, --out SCALES      where the scales go (written whole or not at all)\n"
        "  -c, --ctx N           tokens per chunk (default %zu)\n"
        "      --chunks N        only the first N chunks\n"
        "  -p, --policy POLICY   default f32\n"
        "  -t, --threads N       threads for the matrix products (default: all cores)\n"
        "      --in-place        read Q4_0 and Q8_0 matrices from the file as they are\n"
        "  -h, --help            show this help\n"
        "\n"
        "Exit status: 0 done, 1 failed (files, model, ids out of range), 2 bad command line.\n",
        default_ppl_ctx);
}

int run_convert_gguf(std::span<const std::string_view> args) {
    const parsed_args parsed = parse_args("convert", args, convert_options);
    if (parsed.help) {
        print_convert_gguf_help();
        return 0;
    }
    const gemma4::quant_mix* mix =
        parsed.has(conv_policy) ? gemma4::find_quant_mix(*parsed.values[conv_policy]) : nullptr;
    std::string mixes = "or a mix of llama-quantize's:";
    for (const gemma4::quant_mix& m : gemma4::quant_mixes) (mixes += ' ') += m.name;
    const std::string_view policy = mix ? mix->name : policy_of(parsed, conv_policy, mixes);
    if (mix && parsed.has(conv_lattice))
        usage_error("convert: --lattice packs Q4_0 blocks on their grids, and the mix " + std::string(mix->name) +
                    " stores its weights in K-quants");
    if (!mix && parsed.has(conv_lattice) &&
        !gemma4::with_policy(policy, []<class P>(P) { return gemma4::q4_0_parameters_possible<P>; }))
        usage_error("convert: --lattice packs Q4_0 blocks on their grids, and policy " + std::string(policy) +
                    " stores nothing as q4_0");
    if (parsed.positionals.size() != 2)
        usage_error("convert: expected MODEL and OUT.gguf, got " + std::to_string(parsed.positionals.size()) +
                    " arguments (see 'qtensor convert --help')");
    const std::string model = model_path("convert", parsed.positionals[0]);
    const std::string out_path(parsed.positionals[1]);
    output out(out_path); // a directory, socket or block device is refused before the conversion starts

    const gemma4::checkpoint ck(model);
    const gemma4::config& c = ck.config();
    // The type of every tensor, with llama-quantize's per-tensor fallback
    // where a row is not whole blocks of it (a mix does that itself).
    const gemma4::gguf_types types = mix ? gemma4::gguf_types::mix(c, *mix)
                                         : gemma4::with_policy(policy, [&]<class P>(P) {
                                               gemma4::gguf_types t = gemma4::gguf_types::for_policy<P>(c);
                                               t.fall_back(c);
                                               return t;
                                           });
    for (const std::string& f : types.fallbacks) std::fprintf(stderr, "qtensor: convert: %s\n", printable(f).c_str());
    if (!mix && !types.fallbacks.empty())
        std::fprintf(stderr,
                     "qtensor: convert: %zu of %zu tensors fell back: llama.cpp loads the file, qtensor's policy %s "
                     "does not (load it with one whose schemes fit, such as bf16)\n",
                     types.fallbacks.size(), types.type.size(), std::string(policy).c_str());
    tensor_progress tp(parsed.has(conv_verbose), types.data_bytes(c));
    if (!parsed.has(conv_lattice)) {
        gemma4::write_gguf(c, ck, out.file(), types, ck.names(), std::ref(tp));
    } else {
        gemma4::with_policy(policy, [&]<class P>(P) {
            if constexpr (gemma4::q4_0_parameters_possible<P>) { // checked above
                const gemma4::aligned_source<P, gemma4::checkpoint> aligned(c, ck, ck.names());
                gemma4::write_gguf(c, aligned, out.file(), types, ck.names(), std::ref(tp));
            }
        });
    }
    end_progress_line();
    if (parsed.has(conv_verbose))
        std::fprintf(stderr, "qtensor: convert: %zu tensors, %s, policy %s -> '%s'\n", tp.count(),
                     mib(tp.bytes()).c_str(), std::string(policy).c_str(), printable(out_path).c_str());
    return 0;
}

int run_logits(std::span<const std::string_view> args) {
    const parsed_args parsed = parse_args("logits", args, logits_options);
    if (parsed.help) {
        print_logits_help();
        return 0;
    }
    const std::string_view policy = inference_policy_of(parsed, lg_policy);
    if (!parsed.has(lg_ids)) usage_error("logits: missing --ids");
    if (!parsed.has(lg_out)) usage_error("logits: missing --out");
    if (parsed.positionals.size() != 1)
        usage_error("logits: expected one MODEL, got " + std::to_string(parsed.positionals.size()) +
                    " (see 'qtensor logits --help')");
    run_job job;
    job.ids = parse_ids(*parsed.values[lg_ids]);
    job.threads = threads_of(parsed, lg_threads);
    job.out = std::string(*parsed.values[lg_out]);
    job.layout = layout_of(parsed, lg_in_place);
    if (parsed.has(lg_scales)) job.scales = std::string(*parsed.values[lg_scales]);
    job.model = model_path("logits", parsed.positionals[0]);

    const gemma4::checkpoint ck(job.model);
    check_context("logits", ck.config(), job.ids.size());
    kernels::thread_pool pool(job.threads);
    gemma4::with_inference_policy(policy, [&]<class P>(P) { write_logits<P>(job, ck, pool.get_executor()); });
    return 0;
}

int run_generate(std::span<const std::string_view> args) {
    const parsed_args parsed = parse_args("generate", args, generate_options);
    if (parsed.help) {
        print_generate_help();
        return 0;
    }
    const std::string_view policy = inference_policy_of(parsed, gen_policy);
    if (parsed.has(gen_ids) == parsed.has(gen_prompt)) usage_error("generate: give one of --ids and --prompt");
    if (parsed.has(gen_chat) && !parsed.has(gen_prompt)) usage_error("generate: --chat needs --prompt");
    if (!parsed.has(gen_max_new)) usage_error("generate: missing --max-new");
    if (parsed.positionals.size() != 1)
        usage_error("generate: expected one MODEL, got " + std::to_string(parsed.positionals.size()) +
                    " (see 'qtensor generate --help')");
    run_job job;
    if (parsed.has(gen_ids)) job.ids = parse_ids(*parsed.values[gen_ids]);
    job.max_new = parse_count("--max-new", *parsed.values[gen_max_new], max_new_tokens);
    job.profile = parsed.has(gen_profile);
    job.layout = layout_of(parsed, gen_in_place);
    if (parsed.has(gen_scales)) job.scales = std::string(*parsed.values[gen_scales]);
    job.threads = threads_of(parsed, gen_threads);
    job.model = model_path("generate", parsed.positionals[0]);

    const gemma4::checkpoint ck(job.model);
    if (parsed.has(gen_prompt)) {
        job.tokenizer = tokenizer_of("generate", ck);
        job.ids = prompt_ids(*job.tokenizer, *parsed.values[gen_prompt], parsed.has(gen_chat));
        if (job.ids.empty()) usage_error("generate: the prompt is empty (and the tokenizer has no <bos>)");
    }
    check_context("generate", ck.config(), job.ids.size() + job.max_new);
    kernels::thread_pool pool(job.threads);
    gemma4::with_inference_policy(policy, [&]<class P>(P) { generate<P>(job, ck, pool.get_executor()); });
    return 0;
}

int run_tokenize(std::span<const std::string_view> args) {
    const parsed_args parsed = parse_args("tokenize", args, tokenize_options);
    if (parsed.help) {
        print_tokenize_help();
        return 0;
    }
    if (parsed.has(tok_text) == parsed.has(tok_ids)) usage_error("tokenize: give one of --text and --ids");
    if (parsed.has(tok_chat) && !parsed.has(tok_text)) usage_error("tokenize: --chat needs --text");
    if (parsed.positionals.size() != 1)
        usage_error("tokenize: expected one MODEL, got " + std::to_string(parsed.positionals.size()) +
                    " (see 'qtensor tokenize --help')");
    const gemma4::checkpoint ck(model_path("tokenize", parsed.positionals[0]));
    const text::tokenizer tok = tokenizer_of("tokenize", ck);
    if (parsed.has(tok_ids)) {
        std::printf("%s\n", text_of("tokenize", tok, parse_ids(*parsed.values[tok_ids])).c_str());
        return 0;
    }
    std::string line;
    for (const std::int32_t id : prompt_ids(tok, *parsed.values[tok_text], parsed.has(tok_chat))) {
        if (!line.empty()) line += ',';
        line += std::to_string(id);
    }
    std::printf("%s\n", line.c_str());
    return 0;
}

// The tokens of ppl and calibrate (--data or --ids, every id checked) and
// their chunks (--ctx, --chunks), for the model in ck.
ppl_job chunked_tokens(std::string_view command, const parsed_args& parsed, const gemma4::checkpoint& ck) {
    const std::string cmd(command);
    if (parsed.has(pp_ids) == parsed.has(pp_data)) usage_error(cmd + ": give one of --data and --ids");
    ppl_job job;
    job.ctx = parsed.has(pp_ctx) ? parse_count("--ctx", *parsed.values[pp_ctx], max_new_tokens) : default_ppl_ctx;
    if (job.ctx < 2) usage_error(cmd + ": --ctx must be at least 2 (a chunk's first token is not predicted)");
    const std::size_t chunk_cap =
        parsed.has(pp_chunks) ? parse_count("--chunks", *parsed.values[pp_chunks], max_new_tokens) : SIZE_MAX;
    if (parsed.has(pp_ids)) job.tokens = parse_ids(*parsed.values[pp_ids]);
    job.layout = layout_of(parsed, pp_in_place);
    const gemma4::config& c = ck.config();
    if (parsed.has(pp_data)) {
        if (c.input_vocab() < train::byte_vocab)
            run_error(cmd + ": --data reads bytes as token ids 3 to 258, beyond the model's vocabulary of " +
                      std::to_string(c.input_vocab()) + " (use --ids)");
        job.tokens = train::byte_tokens(read_text(command, std::string(*parsed.values[pp_data])));
    }
    if (job.tokens.size() < 2)
        run_error(cmd + ": " + std::to_string(job.tokens.size()) + " token(s): at least 2 are needed to predict one");
    // Every id checked before any work, with its place in the whole input.
    for (std::size_t t = 0; t < job.tokens.size(); ++t)
        if (static_cast<std::size_t>(job.tokens[t]) >= c.input_vocab())
            run_error(cmd + ": token id " + std::to_string(job.tokens[t]) + " (position " + std::to_string(t) +
                      ") is outside the model's vocabulary of " + std::to_string(c.input_vocab()));
    if (parsed.has(pp_ctx)) check_context(command, c, job.ctx);
    else job.ctx = std::min(job.ctx, c.max_position_embeddings);
    job.ctx = std::min(job.ctx, job.tokens.size());
    if (job.ctx < 2) run_error(cmd + ": the model's context of " + std::to_string(c.max_position_embeddings) +
                               " positions predicts nothing");
    // Whole chunks, and a last partial one when it predicts at least one token.
    const std::size_t full = job.tokens.size() / job.ctx, rest = job.tokens.size() % job.ctx;
    job.chunks = std::min(chunk_cap, full + (rest >= 2 ? 1 : 0));
    return job;
}

int run_ppl(std::span<const std::string_view> args) {
    const parsed_args parsed = parse_args("ppl", args, ppl_options);
    if (parsed.help) {
        print_ppl_help();
        return 0;
    }
    const std::string_view policy = inference_policy_of(parsed, pp_policy);
    if (parsed.positionals.size() != 1)
        usage_error("ppl: expected one MODEL, got " + std::to_string(parsed.positionals.size()) +
                    " (see 'qtensor ppl --help')");
    const std::size_t threads = threads_of(parsed, pp_threads);
    const gemma4::checkpoint ck(model_path("ppl", parsed.positionals[0]));
    ppl_job job = chunked_tokens("ppl", parsed, ck);
    if (parsed.has(pp_scales)) job.scales = std::string(*parsed.values[pp_scales]);
    kernels::thread_pool pool(threads);
    gemma4::with_inference_policy(policy, [&]<class P>(P) { perplexity<P>(job, ck, pool.get_executor()); });
    return 0;
}

int run_calibrate(std::span<const std::string_view> args) {
    const parsed_args parsed = parse_args("calibrate", args, calibrate_options);
    if (parsed.help) {
        print_calibrate_help();
        return 0;
    }
    const std::string_view policy = inference_policy_of(parsed, pp_policy);
    if (!parsed.has(cal_out)) usage_error("calibrate: missing --out");
    if (parsed.positionals.size() != 1)
        usage_error("calibrate: expected one MODEL, got " + std::to_string(parsed.positionals.size()) +
                    " (see 'qtensor calibrate --help')");
    const std::size_t threads = threads_of(parsed, pp_threads);
    const gemma4::checkpoint ck(model_path("calibrate", parsed.positionals[0]));
    ppl_job job = chunked_tokens("calibrate", parsed, ck);
    job.scales = std::string(*parsed.values[cal_out]);
    kernels::thread_pool pool(threads);
    gemma4::with_inference_policy(policy, [&]<class P>(P) { calibrate<P>(job, ck, pool.get_executor()); });
    return 0;
}

} // namespace qtensor::cli
