// qtensor/gemma4/parameters.hpp: the model's parameters as float arrays by
// Hugging Face name: what training reads, updates and saves.
//
//   const gemma4::checkpoint ck("model_dir");                 // or a GGUF file
//   gemma4::tensors<float> p = gemma4::load_parameters(ck.config(), ck, ck.names());
//   gemma4::tensors<float> q = gemma4::init_parameters(config, /*seed*/ 1);
//
// parameter_shapes(config) lists them in load order with their shapes. One
// tensor is a buffer, not a parameter: layer_scalar (read, never trained).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/gemma4/config.hpp"
#include "qtensor/gemma4/names.hpp"
#include "qtensor/gemma4/policy.hpp"
#include "qtensor/gemma4/weights.hpp"
#include "qtensor/train/random.hpp"
#include "qtensor/train/tensors.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace gemma4 {

// Row-major arrays by Hugging Face name.
template <class T>
using tensors = train::tensors<T>;

// The policy member (policy.hpp) whose scheme a tensor is stored in; float32:
// always f32 (norm gains, scales, the router).
enum class weight_role { attention, mlp, experts, embedding, per_layer, float32 };
inline constexpr std::size_t weight_roles = 6; // the number of weight_role values
static_assert(static_cast<std::size_t>(weight_role::float32) + 1 == weight_roles);

// Calls f(S{}) with the scheme P gives role r.
template <typed_policy P, class F>
decltype(auto) with_role_scheme(weight_role r, F&& f) {
    switch (r) {
    case weight_role::attention: return f(typename P::attention{});
    case weight_role::mlp: return f(typename P::mlp{});
    case weight_role::experts: return f(typename P::experts{});
    case weight_role::embedding: return f(typename P::embedding{});
    case weight_role::per_layer: return f(typename P::per_layer{});
    case weight_role::float32: break;
    }
    return f(f32{});
}

struct parameter_shape {
    std::string name;
    std::vector<std::size_t> shape; // outermost first
    weight_role role = weight_role::float32;
    bool trainable = true;          // false: a buffer (layer_scalar)

    std::size_t elements() const noexcept {
        std::size_t n = 1;
        for (const std::size_t e : shape) n *= e;
        return n;
    }
};

// Every tensor the model of `c` reads, in the order load_weights reads them
// (a test holds the two lists equal).
inline std::vector<parameter_shape> parameter_shapes(const config& c) {
    c.validate();
    const std::size_t D = c.hidden_size, V = c.vocab_size, H = c.num_attention_heads;
    const std::size_t L = c.num_hidden_layers, P = c.hidden_size_per_layer_input;
    std::vector<parameter_shape> out;
    using enum weight_role;
    const auto add = [&](std::string name, std::vector<std::size_t> shape, weight_role role = float32,
                         bool trainable = true) {
        out.push_back({std::move(name), std::move(shape), role, trainable});
    };
    add("model.embed_tokens.weight", {V, D}, embedding);
    if (!c.tie_word_embeddings) add("lm_head.weight", {V, D}, embedding);
    add("model.norm.weight", {D});
    if (c.has_per_layer_input()) {
        add("model.embed_tokens_per_layer.weight", {c.vocab_size_per_layer_input, L * P}, embedding);
        add("model.per_layer_model_projection.weight", {L * P, D}, per_layer);
        add("model.per_layer_projection_norm.weight", {P});
    }
    const std::vector<layer_info> layers = c.layers();
    for (std::size_t l = 0; l < L; ++l) {
        const layer_info& li = layers[l];
        const std::string p = "model.layers." + std::to_string(l) + ".";
        const std::size_t d = li.head_dim, K = li.kv_heads, F = li.mlp_width;
        for (const char* norm : {"input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                                 "post_feedforward_layernorm"})
            add(p + norm + ".weight", {D});
        add(p + "layer_scalar", {1}, float32, false);
        add(p + "self_attn.q_proj.weight", {H * d, D}, attention);
        add(p + "self_attn.o_proj.weight", {D, H * d}, attention);
        add(p + "self_attn.q_norm.weight", {d});
        if (li.has_kv) {
            add(p + "self_attn.k_proj.weight", {K * d, D}, attention);
            if (li.has_v_proj) add(p + "self_attn.v_proj.weight", {K * d, D}, attention);
            add(p + "self_attn.k_norm.weight", {d});
        }
        add(p + "mlp.gate_proj.weight", {F, D}, mlp);
        add(p + "mlp.up_proj.weight", {F, D}, mlp);
        add(p + "mlp.down_proj.weight", {D, F}, mlp);
        if (c.enable_moe_block) {
            const std::size_t E = c.num_experts, I = c.moe_intermediate_size;
            add(p + "pre_feedforward_layernorm_2.weight", {D});
            add(p + "post_feedforward_layernorm_1.weight", {D});
            add(p + "post_feedforward_layernorm_2.weight", {D});
            add(p + "router.proj.weight", {E, D});
            add(p + "router.scale", {D});
            add(p + "router.per_expert_scale", {E});
            add(p + "experts.gate_up_proj", {E, 2 * I, D}, experts);
            add(p + "experts.down_proj", {E, D, I}, experts);
        }
        if (c.has_per_layer_input()) {
            add(p + "per_layer_input_gate.weight", {P, D}, per_layer);
            add(p + "per_layer_projection.weight", {D, P}, per_layer);
            add(p + "post_per_layer_input_norm.weight", {D});
        }
    }
    return out;
}

// `p` holds every tensor of `shapes` with its number of elements, or `who`
// says which does not.
template <class T>
void check_parameters(std::string_view who, const tensors<T>& p, const std::vector<parameter_shape>& shapes) {
    for (const parameter_shape& s : shapes) {
        const auto it = p.find(s.name);
        if (it == p.end()) throw error(std::string(who) + ": no parameter " + s.name);
        if (it->second.size() != s.elements())
            throw error(std::string(who) + ": parameter " + s.name + " has " + std::to_string(it->second.size()) +
                        " elements, the config asks for " + std::to_string(s.elements()));
    }
}

// Whether weight decay applies: to matrices and tables, not to norm gains,
// scales and other vectors (as is usual for transformers).
inline bool decays(const parameter_shape& s) noexcept { return s.shape.size() >= 2; }

// decays() by name, for train::adamw_options::decays.
inline std::function<bool(std::string_view)> decay_rule(const std::vector<parameter_shape>& shapes) {
    std::set<std::string, std::less<>> names;
    for (const parameter_shape& s : shapes)
        if (decays(s)) names.insert(s.name);
    return [names = std::move(names)](std::string_view name) { return names.contains(name); };
}

// The number of values training changes (buffers such as layer_scalar excluded).
inline std::size_t trainable_elements(const std::vector<parameter_shape>& shapes) noexcept {
    std::size_t n = 0;
    for (const parameter_shape& s : shapes) n += s.trainable ? s.elements() : 0;
    return n;
}

// Every parameter of the checkpoint in `src`, widened to float32 (any scheme
// the loader reads: f32, bf16, q8_0, q4_0, ...), with every shape checked
// against the config as load_weights checks it. A checkpoint without the
// layer_scalar buffers gets their initial value, 1.
template <io::tensor_source Source>
tensors<float> load_parameters(const config& c, const Source& src, const name_map& names = {}) {
    check_sizes(c, src, names);
    tensors<float> out;
    load_weights<f32_policy>(c, c.layers(), src, names, [&](const io::tensor_entry& e) {
        const auto* f = reinterpret_cast<const float*>(e.data.data());
        out[e.name].assign(f, f + e.elements());
    });
    for (const parameter_shape& s : parameter_shapes(c))
        if (!out.contains(s.name)) out[s.name].assign(s.elements(), 1.0f); // layer_scalar
    return out;
}

// A fresh model as Hugging Face initialises one: matrices and tables drawn
// from N(0, stddev^2) (initializer_range, 0.02), every norm gain, router
// scale and layer_scalar 1. Deterministic in `seed`, per tensor name.
inline tensors<float> init_parameters(const config& c, std::uint64_t seed, double stddev = 0.02) {
    tensors<float> out;
    for (const parameter_shape& s : parameter_shapes(c)) {
        std::vector<float>& v = out[s.name];
        if (s.shape.size() == 1) {
            v.assign(s.elements(), 1.0f);
            continue;
        }
        std::uint64_t tensor_seed = seed;
        for (const char ch : s.name) tensor_seed = train::mix(tensor_seed ^ static_cast<unsigned char>(ch));
        v.resize(s.elements());
        for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(stddev * train::normal(tensor_seed, i));
    }
    return out;
}

} // namespace gemma4
QTENSOR_END_NAMESPACE
