// qtensor/gemma4/gguf_types.hpp: the GGUF type of every tensor of a
// converted Gemma 4 file (write_gguf, gguf.hpp, writes them).
//
//   gguf_types t = gguf_types::for_policy<q4_0_policy>(c);  // a policy's scheme per role
//   t.fall_back(c);                                          // where a row does not fit it
//   gguf_types m = gguf_types::mix(c, "Q4_K_M");             // one of llama-quantize's mixes
//
// A mix follows llama-quantize's rules (llama.cpp src/llama-quant.cpp at
// 007dbbf3, docs/gguf.md section 3): one main type; the output head and tied
// token tables in Q6_K; some attn_v, attn_output and ffn_down tensors in more
// bits, by layer; the per-layer model projection and 1-D tensors left as floats.
//
// Falling back: a tensor whose rows are not whole blocks of its type takes a
// substitute that fits, as llama-quantize does: Q2_K and Q3_K -> Q4_0, Q4_K
// -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, IQ4_XS -> IQ4_NL, and F16 when the
// substitute does not fit either. For the types without a substitute (Q4_0, Q8_0, IQ4_NL, ...)
// llama-quantize stops with an error; qtensor writes F16 instead. Each
// fallback is listed in `fallbacks`, one line per tensor, so the user learns
// what was chosen.
#pragma once

#include <algorithm>
#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/gemma4/config.hpp"
#include "qtensor/gemma4/names.hpp"
#include "qtensor/gemma4/parameters.hpp"
#include "qtensor/gemma4/policy.hpp"
#include "qtensor/scheme/registry.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace gemma4 {

// A llama-quantize mix: its name, main type and llama_ftype (general.file_type).
struct quant_mix {
    std::string_view name;
    ggml_type main;
    std::uint32_t file_type;
};

// The mixes whose types all have schemes (not those of the 1- to 3-bit i-quants).
inline constexpr std::array<quant_mix, 12> quant_mixes{{
    {"Q2_K", ggml_type::q2_k, 10},
    {"Q3_K_S", ggml_type::q3_k, 11},
    {"Q3_K_M", ggml_type::q3_k, 12},
    {"Q3_K_L", ggml_type::q3_k, 13},
    {"Q4_K_S", ggml_type::q4_k, 14},
    {"Q4_K_M", ggml_type::q4_k, 15},
    {"Q5_K_S", ggml_type::q5_k, 16},
    {"Q5_K_M", ggml_type::q5_k, 17},
    {"Q6_K", ggml_type::q6_k, 18},
    {"Q8_0", ggml_type::q8_0, 7},
    {"IQ4_NL", ggml_type::iq4_nl, 25},
    {"IQ4_XS", ggml_type::iq4_xs, 30},
}};

// The mix called `name`, spelt as llama-quantize spells it (upper case, so
// "Q8_0" is the mix and "q8_0" the policy), or nullptr.
inline const quant_mix* find_quant_mix(std::string_view name) noexcept {
    for (const quant_mix& m : quant_mixes)
        if (m.name == name) return &m;
    return nullptr;
}

namespace detail {

// llama.cpp's general.file_type for a policy: the type of most of its weights.
template <class P>
std::uint32_t llama_file_type() {
    using M = typename P::mlp;
    if constexpr (std::same_as<M, f32>) return 0;  // LLAMA_FTYPE_ALL_F32
    else if constexpr (std::same_as<M, q4_0>) return 2;  // MOSTLY_Q4_0
    else if constexpr (std::same_as<M, q8_0>) return 7;  // MOSTLY_Q8_0
    else if constexpr (std::same_as<M, q2_k>) return 10; // MOSTLY_Q2_K
    else if constexpr (std::same_as<M, tq2_0>) return 37; // MOSTLY_TQ2_0
    else return 32;                                      // MOSTLY_BF16
}

// llama-quantize's "use more bits" layers: the first and last eighth, and
// every third layer in between (integer division, as in llama.cpp).
constexpr bool use_more_bits(std::size_t i, std::size_t n) noexcept {
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

inline std::size_t block_elems_of(ggml_type t) {
    const ggml_type_info* info = find_ggml_type(t);
    if (info == nullptr) throw error("gguf_types: unknown ggml type " + std::to_string(static_cast<int>(t)));
    return info->block_elems;
}

// What llama-quantize substitutes for t when a row of `cols` does not fit it;
// F16 where it has none (it would stop) or the substitute does not fit.
inline ggml_type fallback_type(ggml_type t, std::size_t cols) {
    ggml_type sub = ggml_type::f16;
    switch (t) {
    case ggml_type::tq2_0:
    case ggml_type::q2_k:
    case ggml_type::q3_k: sub = ggml_type::q4_0; break;
    case ggml_type::q4_k: sub = ggml_type::q5_0; break;
    case ggml_type::q5_k: sub = ggml_type::q5_1; break;
    case ggml_type::q6_k: sub = ggml_type::q8_0; break;
    case ggml_type::iq4_xs: sub = ggml_type::iq4_nl; break;
    default: break;
    }
    return cols % block_elems_of(sub) == 0 ? sub : ggml_type::f16;
}

// The kind of tensor llama-quantize's rules tell apart, from the Hugging Face name.
enum class tensor_kind { token_table, output, attn_v, attn_k, attn_output, ffn_down, kept_float, other };

inline tensor_kind kind_of(const parameter_shape& p) {
    const std::string_view n = p.name;
    if (n == "model.embed_tokens.weight" || n == "model.embed_tokens_per_layer.weight") return tensor_kind::token_table;
    if (n == "lm_head.weight") return tensor_kind::output;
    // llama-quantize leaves per_layer_model_proj unquantized ("not too big").
    if (n == "model.per_layer_model_projection.weight") return tensor_kind::kept_float;
    if (n.ends_with(".self_attn.v_proj.weight")) return tensor_kind::attn_v;
    if (n.ends_with(".self_attn.k_proj.weight")) return tensor_kind::attn_k;
    if (n.ends_with(".self_attn.o_proj.weight")) return tensor_kind::attn_output;
    if (n.ends_with(".mlp.down_proj.weight") || n.ends_with(".experts.down_proj")) return tensor_kind::ffn_down;
    return tensor_kind::other;
}

// The layer index of "model.layers.<i>.…".
inline std::size_t layer_index(std::string_view name) {
    const auto layer = split_layer(name, "model.layers.");
    if (!layer) throw error("gguf_types: " + std::string(name) + " is not a layer's tensor");
    return std::stoul(std::string(layer->first));
}

} // namespace detail

// The type of each tensor of parameter_shapes(c), by Hugging Face name.
struct gguf_types {
    std::uint32_t file_type = 0;     // general.file_type, llama.cpp's llama_ftype
    std::map<std::string, ggml_type, std::less<>> type;
    std::vector<std::string> fallbacks; // "name: why -> type", one per tensor that fell back

    ggml_type of(std::string_view hf) const {
        const auto it = type.find(hf);
        if (it == type.end()) throw error("gguf_types: no type for tensor " + std::string(hf));
        return it->second;
    }

    // Policy P's scheme for each tensor's role, exactly (rows that do not fit
    // stay as they are; fall_back() replaces them).
    template <typed_policy P>
    static gguf_types for_policy(const config& c) {
        gguf_types t;
        t.file_type = detail::llama_file_type<P>();
        for (const parameter_shape& p : parameter_shapes(c))
            with_role_scheme<P>(p.role, [&](auto s) { t.type[p.name] = decltype(s)::type_id; });
        return t;
    }

    // llama-quantize's mix m for the model of c.
    static gguf_types mix(const config& c, const quant_mix& m) {
        gguf_types t;
        t.file_type = m.file_type;
        const std::vector<parameter_shape> shapes = parameter_shapes(c);
        const std::size_t n_attn_v = static_cast<std::size_t>(std::count_if(
            shapes.begin(), shapes.end(),
            [](const parameter_shape& p) { return detail::kind_of(p) == detail::tensor_kind::attn_v; }));
        std::size_t i_attn_v = 0;
        for (const parameter_shape& p : shapes) {
            if (p.role == weight_role::float32) {
                t.type[p.name] = ggml_type::f32;
                continue;
            }
            t.type[p.name] = mix_rule(c, m, p, i_attn_v, n_attn_v);
            if (detail::kind_of(p) == detail::tensor_kind::attn_v) ++i_attn_v;
        }
        t.fall_back(shapes);
        return t;
    }
    static gguf_types mix(const config& c, std::string_view name) {
        const quant_mix* m = find_quant_mix(name);
        if (m == nullptr) throw error("unknown quantization mix \"" + std::string(name) + "\"");
        return mix(c, *m);
    }

    // Every tensor of `shapes` whose rows are not whole blocks of its type
    // takes llama-quantize's substitute (see the banner), with a line in
    // `fallbacks`.
    void fall_back(const std::vector<parameter_shape>& shapes) {
        for (const parameter_shape& p : shapes) {
            ggml_type& t = type.at(p.name);
            const std::size_t cols = p.shape.back(), block_elems = detail::block_elems_of(t);
            if (cols % block_elems == 0) continue;
            const ggml_type sub = detail::fallback_type(t, cols);
            fallbacks.push_back(p.name + ": rows of " + std::to_string(cols) + " are not whole " +
                                std::string(type_name(t)) + " blocks of " + std::to_string(block_elems) + ", so " +
                                std::string(type_name(sub)));
            t = sub;
        }
    }
    void fall_back(const config& c) { fall_back(parameter_shapes(c)); }

    // The bytes of the tensors of c in these types (GGUF's padding aside).
    std::uintmax_t data_bytes(const config& c) const {
        std::uintmax_t n = 0;
        for (const parameter_shape& p : parameter_shapes(c)) {
            const ggml_type_info* info = find_ggml_type(of(p.name));
            n += p.elements() / info->block_elems * info->block_bytes;
        }
        return n;
    }

private:
    // llama-quantize's choice for tensor p (no fallback yet): i_attn_v-th of
    // n_attn_v attn_v tensors in file order; ffn_down counted by layer.
    static ggml_type mix_rule(const config& c, const quant_mix& m, const parameter_shape& p, std::size_t i_attn_v,
                              std::size_t n_attn_v) {
        using enum ggml_type;
        using detail::tensor_kind;
        const std::string_view mix = m.name;
        const ggml_type base = m.main;
        const bool iq4 = base == iq4_nl || base == iq4_xs;
        const bool eight_experts = c.enable_moe_block && c.num_experts == 8;
        const std::size_t gqa = c.num_attention_heads / std::max<std::size_t>(c.layer_kv_heads.front(), 1);
        const std::size_t n = c.num_hidden_layers;
        switch (detail::kind_of(p)) {
        case tensor_kind::kept_float: return bf16; // llama-quantize keeps the converter's type
        case tensor_kind::token_table:
            if (!c.tie_word_embeddings) return base;
            [[fallthrough]]; // a tied table is also the output head
        case tensor_kind::output:
            if (p.shape.back() % detail::block_elems_of(base) != 0) return q8_0;
            return base == q8_0 ? q8_0 : q6_k;
        case tensor_kind::attn_v: {
            ggml_type t = base;
            if (mix == "Q2_K") t = gqa >= 4 ? q4_k : q3_k;
            else if (mix == "Q3_K_M") t = i_attn_v < 2 ? q5_k : q4_k;
            else if (mix == "Q3_K_L") t = q5_k;
            else if ((mix == "Q4_K_M" || mix == "Q5_K_M") && detail::use_more_bits(i_attn_v, n_attn_v)) t = q6_k;
            else if (mix == "Q4_K_S" && i_attn_v < 4) t = q5_k;
            else if (iq4 && gqa >= 4) t = q5_k;
            return eight_experts ? q8_0 : t;
        }
        case tensor_kind::attn_k: return eight_experts ? q8_0 : base;
        case tensor_kind::attn_output:
            if (eight_experts)
                return mix == "Q2_K" || mix == "Q3_K_S" || mix == "Q3_K_M" || mix == "Q4_K_S" || mix == "Q4_K_M" || iq4
                           ? q5_k
                           : base;
            if (mix == "Q2_K") return q3_k;
            if (mix == "Q3_K_M") return q4_k;
            if (mix == "Q3_K_L") return q5_k;
            return base;
        case tensor_kind::ffn_down: {
            const std::size_t i = detail::layer_index(p.name);
            if (mix == "Q2_K") return q3_k;
            if (mix == "Q3_K_M") return i < n / 16 ? q5_k : q4_k;
            if (mix == "Q3_K_L") return q5_k;
            if ((mix == "Q4_K_M" || mix == "Q5_K_M") && detail::use_more_bits(i, n)) return q6_k;
            if (mix == "Q4_K_S" && i < n / 8) return q5_k;
            if (iq4 && i < n / 8) return q5_k; // llama-quantize's rule without an importance matrix
            return base;
        }
        case tensor_kind::other: break;
        }
        return base;
    }
};

} // namespace gemma4
QTENSOR_END_NAMESPACE
