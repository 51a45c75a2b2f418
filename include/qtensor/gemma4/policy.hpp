// qtensor/gemma4/policy.hpp: which scheme each tensor role of a Gemma 4 model
// uses. A policy is a type; model<policy> is compiled for exactly those
// schemes, with no run-time switch on the hot path.
//
// Roles (HF tensor names in brackets):
//   attention  q/k/v/o projections          [self_attn.{q,k,v,o}_proj]
//   mlp        the dense GeGLU MLP           [mlp.{gate,up,down}_proj]
//   experts    the MoE experts               [experts.gate_up_proj, experts.down_proj]
//   embedding  token tables and the LM head  [embed_tokens (tied head), embed_tokens_per_layer, lm_head]
//   per_layer  per-layer-input projections   [per_layer_model_projection, per_layer_input_gate,
//                                             per_layer_projection]
//   kv_cache   the K/V rows of the cache
// A weight role may also be nn::as_stored: each tensor in the scheme its file
// stores it in (stored_policy, below).
// Always float32 whatever the policy: norm weights, layer_scalar, the router
// (router.proj, router.scale, per_expert_scale; llama.cpp also keeps the
// router unquantized: a small matrix whose errors move whole tokens between experts).
#pragma once

#include <array>
#include <concepts>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/nn/as_stored.hpp"
#include "qtensor/scheme/float.hpp"
#include "qtensor/scheme/q2_k.hpp"
#include "qtensor/scheme/q4_0.hpp"
#include "qtensor/scheme/q8_0.hpp"
#include "qtensor/scheme/registry.hpp"
#include "qtensor/scheme/tq2_0.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace gemma4 {

// Schemes a weight role may use: those with GEMM kernels (kernels::gemm_scheme,
// from registry.hpp's simd_kernels::gemm).
template <class S>
concept weight_scheme = registered_scheme<S> && has_kernels(simd_kernels_of<S>, simd_kernels::gemm);

// What a policy may name for a weight role.
template <class S>
concept role_scheme = weight_scheme<S> || std::same_as<S, nn::as_stored>;

using nn::as_stored;

// Schemes the KV cache may use.
template <class S>
concept kv_scheme = std::same_as<S, f32> || std::same_as<S, bf16> || std::same_as<S, q8_0>;

// policy<A, M, E, Emb, KV> with per_layer = M unless given.
template <class Attention, class Mlp, class Experts, class Embedding, class KvCache, class PerLayer = Mlp>
struct policy {
    using attention = Attention;
    using mlp = Mlp;
    using experts = Experts;
    using embedding = Embedding;
    using kv_cache = KvCache;
    using per_layer = PerLayer;
};

template <class P>
concept model_policy = requires {
    typename P::attention;
    typename P::mlp;
    typename P::experts;
    typename P::embedding;
    typename P::per_layer;
    typename P::kv_cache;
} && role_scheme<typename P::attention> && role_scheme<typename P::mlp> && role_scheme<typename P::experts> &&
    role_scheme<typename P::embedding> && role_scheme<typename P::per_layer> && kv_scheme<typename P::kv_cache>;

// A policy whose every role names one scheme: what conversion, footprints and
// training need.
template <class P>
concept typed_policy = model_policy<P> && weight_scheme<typename P::attention> && weight_scheme<typename P::mlp> &&
                       weight_scheme<typename P::experts> && weight_scheme<typename P::embedding> &&
                       weight_scheme<typename P::per_layer>;

// The named policies. In the quantized ones the per-layer-input projections
// stay bf16: they are about 2% of E2B's decoder weights, and
// per_layer_projection's rows have P elements, which need not be a multiple
// of a quantized block (the test fixtures have P = 16).

// Everything float32: the reference the others are measured against.
struct f32_policy : policy<f32, f32, f32, f32, f32> {
    static constexpr std::string_view name = "f32";
};
// Everything bf16, as Google publishes the weights; bf16 KV cache.
struct bf16_policy : policy<bf16, bf16, bf16, bf16, bf16> {
    static constexpr std::string_view name = "bf16";
};
// 8 bits everywhere, the KV cache included (head dims must be multiples of 32).
struct q8_0_policy : policy<q8_0, q8_0, q8_0, q8_0, q8_0, bf16> {
    static constexpr std::string_view name = "q8_0";
};
// The QAT format: Q4_0 weights, experts included. The token table stays Q8_0
// because it is also the tied LM head, whose errors reach every logit; the KV
// cache is bf16 (a 16-bit cache is llama.cpp's default for Q4_0 models too).
struct q4_0_policy : policy<q4_0, q4_0, q4_0, q8_0, bf16, bf16> {
    static constexpr std::string_view name = "q4_0";
};

// 2 bits: Q2_K attention, MLP and experts (rows must be multiples of 256),
// the rest as in q4_0. The 2-bit arm of the QAT experiment (docs/qat.md).
struct q2_k_policy : policy<q2_k, q2_k, q2_k, q8_0, bf16, bf16> {
    static constexpr std::string_view name = "q2_k";
};

// The mobile recipe (docs/mobile.md): the decoder layers' matrices
// (attention, MLP, experts) in 2-bit TQ2_0, 2.0625 bits a weight, rows in
// whole blocks of 256; the token and per-layer tables (the tied head too)
// and the per-layer projections in 4-bit Q4_0; an int8 (Q8_0) KV cache. E2B
// text-only runs in about 0.8 GB with the per-layer table memory-mapped.
struct mobile_policy : policy<tq2_0, tq2_0, tq2_0, q4_0, q8_0, q4_0> {
    static constexpr std::string_view name = "mobile";
};

// Every weight as its file stores it, for inference (model, not training or
// conversion): runs llama-quantize's mixes (Q4_K_M: Q4_K and Q6_K within a
// role) in place, with each tensor's own kernels. Tensors in a scheme without
// GEMM kernels keep their values exactly: q5_0 and iq4_nl repacked to q8_0,
// the others (f16, q4_1, q5_1, iq4_xs) widened to f32 (weights.hpp,
// kept_scheme_t). The KV cache is bf16.
struct stored_policy : policy<as_stored, as_stored, as_stored, as_stored, bf16, as_stored> {
    static constexpr std::string_view name = "stored";
};

// X(P) for each named typed policy, and for every named policy (the typed
// ones and stored_policy): separate compilation compiles their models once
// (model.hpp, checkpoint.hpp).
#define QTENSOR_GEMMA4_NAMED_POLICIES(X) X(f32_policy) X(bf16_policy) X(q8_0_policy) X(q4_0_policy) X(q2_k_policy) X(mobile_policy)
#define QTENSOR_GEMMA4_INFERENCE_POLICIES(X) QTENSOR_GEMMA4_NAMED_POLICIES(X) X(stored_policy)

inline constexpr std::array<std::string_view, 6> policy_names{
    f32_policy::name, bf16_policy::name, q8_0_policy::name, q4_0_policy::name, q2_k_policy::name, mobile_policy::name};
inline constexpr auto inference_policy_names = [] {
    std::array<std::string_view, policy_names.size() + 1> names{};
    for (std::size_t i = 0; i < policy_names.size(); ++i) names[i] = policy_names[i];
    names.back() = stored_policy::name;
    return names;
}();

namespace detail {
template <std::size_t K>
[[noreturn]] void unknown_policy(std::string_view name, const std::array<std::string_view, K>& names) {
    std::string valid;
    for (std::string_view n : names) valid += (valid.empty() ? "" : ", ") + std::string(n);
    throw error("gemma4: unknown policy \"" + std::string(name) + "\" (valid: " + valid + ")");
}
} // namespace detail

// Calls f(P{}) with the named typed policy P whose name is `name` (for a
// CLI's --policy flag) and returns its result; every call of f must return
// the same type. Unknown names throw, listing the valid ones.
template <class F>
std::invoke_result_t<F&, f32_policy> with_policy(std::string_view name, F&& f) {
    if (name == f32_policy::name) return f(f32_policy{});
    if (name == bf16_policy::name) return f(bf16_policy{});
    if (name == q8_0_policy::name) return f(q8_0_policy{});
    if (name == q4_0_policy::name) return f(q4_0_policy{});
    if (name == q2_k_policy::name) return f(q2_k_policy{});
    if (name == mobile_policy::name) return f(mobile_policy{});
    detail::unknown_policy(name, policy_names);
}

// The same over every named policy, stored_policy included (running a model).
template <class F>
std::invoke_result_t<F&, f32_policy> with_inference_policy(std::string_view name, F&& f) {
    if (name == stored_policy::name) return f(stored_policy{});
    for (std::string_view n : policy_names)
        if (n == name) return with_policy(name, f);
    detail::unknown_policy(name, inference_policy_names);
}

} // namespace gemma4
QTENSOR_END_NAMESPACE
