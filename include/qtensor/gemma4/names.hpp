// qtensor/gemma4/names.hpp: Gemma 4 tensor names in Hugging Face checkpoints
// and in GGUF files (llama.cpp's names, docs/gguf.md section 6).
//
// Hugging Face names a text-decoder tensor "model.layers.<i>.<part>" or
// "model.<part>"; GGUF names it "blk.<i>.<part>" or "<part>". The tensors hold
// the same values in both (norm weights are stored as-is, no +1 shift), and a
// 2-D weight W[out, in] has the same row-major layout (GGUF lists the
// dimensions the other way round).
#pragma once

#include <array>
#include <charconv>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/gemma4/config.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace gemma4 {
namespace detail {

using name_pair = std::pair<std::string_view, std::string_view>; // {Hugging Face, GGUF}

// Model-level tensors: "model.<hf>" <-> "<gguf>" (and lm_head.weight <-> output.weight).
inline constexpr std::array<name_pair, 5> model_names{{
    {"embed_tokens.weight", "token_embd.weight"},
    {"norm.weight", "output_norm.weight"},
    {"embed_tokens_per_layer.weight", "per_layer_token_embd.weight"},
    {"per_layer_model_projection.weight", "per_layer_model_proj.weight"},
    {"per_layer_projection_norm.weight", "per_layer_proj_norm.weight"},
}};

// Per-layer tensors: "model.layers.<i>.<hf>" <-> "blk.<i>.<gguf>".
inline constexpr std::array<name_pair, 25> layer_names{{
    {"input_layernorm.weight", "attn_norm.weight"},
    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"self_attn.q_norm.weight", "attn_q_norm.weight"},
    {"self_attn.k_norm.weight", "attn_k_norm.weight"},
    {"post_attention_layernorm.weight", "post_attention_norm.weight"},
    {"pre_feedforward_layernorm.weight", "ffn_norm.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
    {"post_feedforward_layernorm.weight", "post_ffw_norm.weight"},
    {"layer_scalar", "layer_output_scale.weight"},
    {"per_layer_input_gate.weight", "inp_gate.weight"},
    {"per_layer_projection.weight", "proj.weight"},
    {"post_per_layer_input_norm.weight", "post_norm.weight"},
    {"router.proj.weight", "ffn_gate_inp.weight"},
    {"router.scale", "ffn_gate_inp.scale"},
    {"router.per_expert_scale", "ffn_down_exps.scale"},
    {"experts.gate_up_proj", "ffn_gate_up_exps.weight"},
    {"experts.down_proj", "ffn_down_exps.weight"},
    {"pre_feedforward_layernorm_2.weight", "pre_ffw_norm_2.weight"},
    {"post_feedforward_layernorm_1.weight", "post_ffw_norm_1.weight"},
    {"post_feedforward_layernorm_2.weight", "post_ffw_norm_2.weight"},
}};

// Splits "<prefix><i>.<rest>" into {i, rest}.
inline std::optional<std::pair<std::string_view, std::string_view>> split_layer(std::string_view name,
                                                                                std::string_view prefix) {
    if (!name.starts_with(prefix)) return std::nullopt;
    name.remove_prefix(prefix.size());
    const auto dot = name.find('.');
    if (dot == 0 || dot == std::string_view::npos) return std::nullopt;
    unsigned layer = 0;
    const auto [end, ec] = std::from_chars(name.data(), name.data() + dot, layer);
    if (ec != std::errc() || end != name.data() + dot) return std::nullopt;
    return std::pair{name.substr(0, dot), name.substr(dot + 1)};
}

// The one head size of the layers of type t (0 when there are none); throws
// when they differ, which GGUF's two keys cannot say.
inline std::size_t head_dim_of(const config& c, attention_type t) {
    std::size_t d = 0;
    for (std::size_t l = 0; l < c.num_hidden_layers; ++l)
        if (c.layer_types[l] == t) {
            if (d != 0 && d != c.layer_head_dim[l])
                throw error("gemma4 GGUF: layers of one attention type have different head sizes");
            d = c.layer_head_dim[l];
        }
    return d;
}

} // namespace detail

// The GGUF tensor holding llama.cpp's RoPE frequency factors of the full
// layers ([global_head_dim / 2]: 1 for rotated pairs, 1e30 for the rest).
// Hugging Face has no such tensor: the model computes it from the config.
inline constexpr std::string_view rope_freqs_name = "rope_freqs.weight";

// llama.cpp's rope_freqs tensor for the full layers ([d / 2] for their head
// size d): its RoPE divides each pair's frequency by the factor, so 1 keeps a
// pair and 1e30 stops it (angle ~0). All ones when the full layers rotate
// every pair: llama.cpp's Gemma 4 loader requires the tensor whenever there
// is a full layer. Empty when there is none.
inline std::vector<float> rope_freq_factors(const config& c) {
    const std::size_t d = detail::head_dim_of(c, attention_type::full);
    if (d == 0) return {};
    const std::size_t rotated = detail::rotated_pairs(c.rope_full, d, "full_attention");
    std::vector<float> f(d / 2, 1e30f);
    for (std::size_t i = 0; i < rotated; ++i) f[i] = 1.0f;
    return f;
}

// The GGUF name of a Hugging Face text-decoder tensor; throws for a name that
// has none.
inline std::string gguf_name(std::string_view hf) {
    if (hf == "lm_head.weight") return "output.weight";
    if (auto l = detail::split_layer(hf, "model.layers.")) {
        for (auto [h, g] : detail::layer_names)
            if (h == l->second) return "blk." + std::string(l->first) + "." + std::string(g);
    } else if (hf.starts_with("model.")) {
        for (auto [h, g] : detail::model_names)
            if (h == hf.substr(6)) return std::string(g);
    }
    throw error("gemma4: no GGUF name for the Hugging Face tensor " + std::string(hf));
}

// The Hugging Face name of a GGUF tensor; throws for a name that has none.
inline std::string hf_name(std::string_view gguf) {
    if (gguf == "output.weight") return "lm_head.weight";
    if (auto l = detail::split_layer(gguf, "blk.")) {
        for (auto [h, g] : detail::layer_names)
            if (g == l->second) return "model.layers." + std::string(l->first) + "." + std::string(h);
    } else {
        for (auto [h, g] : detail::model_names)
            if (g == gguf) return "model." + std::string(h);
    }
    throw error("gemma4: no Hugging Face name for the GGUF tensor " + std::string(gguf));
}

} // namespace gemma4
QTENSOR_END_NAMESPACE
