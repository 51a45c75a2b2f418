// bench/gemma4_bench.cpp: tokens per second of the Gemma 4 model on an
// E2B-shaped random model with the q4_0 policy: hidden 1536, 8 heads, 1 KV
// head, head_dim 256 (sliding) / 512 (full), MLP 6144, vocabulary 262144,
// per-layer inputs of 256, but 4 layers (3 sliding + 1 full) instead of 35,
// so it builds in seconds and fits in about 1 GiB.
//
// The weights are random, quantized once into an in-memory tensor source in
// the policy's schemes, so the model loads them as it would a GGUF file
// written by `qtensor convert --policy q4_0` (its Q4_0 and Q8_0 matrices
// repacked, the rest in place). Prefill 32 tokens, then
// greedy-decode 32, at each thread count given (default: 1 and 2).
//
//   gemma4_bench [THREADS...]
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qtensor/core/aligned_buffer.hpp"
#include "qtensor/gemma4/model.hpp"
#include "qtensor/gemma4/policy.hpp"
#include "qtensor/io/tensor_entry.hpp"
#include "qtensor/kernels/executor.hpp"
#include "qtensor/kernels/quant.hpp"

using namespace qtensor;

namespace {

using policy = gemma4::q4_0_policy;
constexpr std::size_t prompt_tokens = 32, new_tokens = 32;

gemma4::config e2b_shaped() {
    gemma4::config c;
    c.vocab_size = 262144;
    c.hidden_size = 1536;
    c.num_hidden_layers = 4;
    c.num_attention_heads = 8;
    c.intermediate_size = 6144;
    c.layer_types = {gemma4::attention_type::sliding, gemma4::attention_type::sliding,
                     gemma4::attention_type::sliding, gemma4::attention_type::full};
    c.layer_head_dim = {256, 256, 256, 512};
    c.layer_kv_heads = {1, 1, 1, 1};
    c.sliding_window = 512;
    c.hidden_size_per_layer_input = 256;
    c.vocab_size_per_layer_input = 262144;
    c.final_logit_softcapping = 30.0f;
    return c;
}

// Random tensors by Hugging Face name, stored in the scheme asked for.
class random_source {
public:
    // Rows of uniform values in [-a, a) with a = 1 / sqrt(cols) (unit-ish
    // outputs), or `fill` everywhere when it is given (norm weights, scalars).
    template <class S>
    void add(const std::string& name, std::vector<std::size_t> shape, float fill = 0.0f) {
        const std::size_t cols = shape.back();
        std::size_t rows = 1;
        for (std::size_t i = 0; i + 1 < shape.size(); ++i) rows *= shape[i];
        aligned_buffer& buf = storage_.emplace_back(rows * row_bytes<S>(cols));
        auto* out = reinterpret_cast<block_of<S>*>(buf.data());
        std::vector<float> row(cols);
        const float a = 1.0f / std::sqrt(static_cast<float>(cols));
        for (std::size_t r = 0; r < rows; ++r) {
            for (float& x : row) x = fill != 0.0f ? fill : a * uniform();
            kernels::unchecked::quantize_row<S>(row.data(), out + r * (cols / S::block_elems), cols);
        }
        entries_.push_back({name, S::type_id, std::move(shape), std::span<const std::byte>(buf.data(), buf.size())});
    }

    const io::tensor_entry* find(std::string_view name) const {
        for (const io::tensor_entry& e : entries_)
            if (e.name == name) return &e;
        return nullptr;
    }
    std::string path() const { return "(random E2B-shaped weights)"; }

private:
    float uniform() { // xorshift64*, [-1, 1)
        state_ ^= state_ >> 12;
        state_ ^= state_ << 25;
        state_ ^= state_ >> 27;
        return static_cast<float>(static_cast<double>((state_ * 0x2545F4914F6CDD1Dull) >> 11) * 0x1p-52 - 1.0);
    }

    std::uint64_t state_ = 0x9E3779B97F4A7C15ull;
    std::vector<io::tensor_entry> entries_;
    std::vector<aligned_buffer> storage_;
};

void fill(random_source& src, const gemma4::config& c) {
    using A = policy::attention;
    using M = policy::mlp;
    using Emb = policy::embedding;
    using PL = policy::per_layer;
    const std::size_t D = c.hidden_size, V = c.vocab_size, H = c.num_attention_heads;
    const std::size_t L = c.num_hidden_layers, P = c.hidden_size_per_layer_input;
    src.add<Emb>("model.embed_tokens.weight", {V, D});
    src.add<f32>("model.norm.weight", {D}, 1.0f);
    src.add<Emb>("model.embed_tokens_per_layer.weight", {c.vocab_size_per_layer_input, L * P});
    src.add<PL>("model.per_layer_model_projection.weight", {L * P, D});
    src.add<f32>("model.per_layer_projection_norm.weight", {P}, 1.0f);
    for (std::size_t l = 0; l < L; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        const std::size_t d = c.layer_head_dim[l], K = c.layer_kv_heads[l], F = c.intermediate_size;
        for (const char* norm : {"input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                                 "post_feedforward_layernorm", "post_per_layer_input_norm"})
            src.add<f32>(p + norm + ".weight", {D}, 1.0f);
        src.add<f32>(p + "layer_scalar", {1}, 1.0f);
        src.add<A>(p + "self_attn.q_proj.weight", {H * d, D});
        src.add<A>(p + "self_attn.k_proj.weight", {K * d, D});
        src.add<A>(p + "self_attn.v_proj.weight", {K * d, D});
        src.add<A>(p + "self_attn.o_proj.weight", {D, H * d});
        src.add<f32>(p + "self_attn.q_norm.weight", {d}, 1.0f);
        src.add<f32>(p + "self_attn.k_norm.weight", {d}, 1.0f);
        src.add<M>(p + "mlp.gate_proj.weight", {F, D});
        src.add<M>(p + "mlp.up_proj.weight", {F, D});
        src.add<M>(p + "mlp.down_proj.weight", {D, F});
        src.add<PL>(p + "per_layer_input_gate.weight", {P, D});
        src.add<PL>(p + "per_layer_projection.weight", {D, P});
    }
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::int32_t argmax(std::span<const float> v) {
    std::size_t best = 0;
    for (std::size_t i = 1; i < v.size(); ++i)
        if (v[i] > v[best]) best = i;
    return static_cast<std::int32_t>(best);
}

double mib(std::size_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

} // namespace

int main(int argc, char** argv) {
    std::vector<std::size_t> thread_counts;
    for (int i = 1; i < argc; ++i) thread_counts.push_back(std::strtoul(argv[i], nullptr, 10));
    if (thread_counts.empty()) thread_counts = {1, 2};

    const gemma4::config c = e2b_shaped();
    const auto t_build = std::chrono::steady_clock::now();
    random_source src;
    fill(src, c);
    std::printf("E2B-shaped, 4 layers, policy %s: random weights built in %.1f s\n",
                std::string(policy::name).c_str(), seconds_since(t_build));

    std::vector<std::int32_t> prompt(prompt_tokens);
    for (std::size_t t = 0; t < prompt.size(); ++t) prompt[t] = static_cast<std::int32_t>((t * 7919 + 11) % c.vocab_size);

    for (std::size_t threads : thread_counts) {
        if (threads == 0) continue;
        kernels::thread_pool pool(threads);
        const auto m = gemma4::model<policy>::load(c, src, {}, pool.get_executor());
        auto cache = m.make_cache(prompt_tokens + new_tokens);
        const auto t0 = std::chrono::steady_clock::now();
        std::int32_t next = argmax(m.prefill(prompt, cache));
        const double prefill_s = seconds_since(t0);
        const auto t1 = std::chrono::steady_clock::now();
        for (std::size_t i = 0; i < new_tokens; ++i) next = argmax(m.decode(next, cache));
        const double decode_s = seconds_since(t1);
        const gemma4::byte_counts w = m.weight_bytes();
        std::printf("threads %zu: prefill %zu tokens %.1f tok/s, decode %zu tokens %.2f tok/s; weights %.1f MiB "
                    "(%.1f converted or repacked, %.1f in place), KV cache %.2f MiB for %zu positions\n",
                    threads, prompt_tokens, static_cast<double>(prompt_tokens) / prefill_s, new_tokens,
                    static_cast<double>(new_tokens) / decode_s, mib(w.total()), mib(w.owned), mib(w.mapped),
                    mib(cache.bytes()), cache.capacity());
    }
}
