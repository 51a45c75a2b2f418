// qtensor/gemma4/model_impl.hpp: the members of model<P> (model.hpp): the
// forward pass, docs/gemma4.md §2-§7. model.hpp includes this file; in a
// separately compiled program (core/config.hpp) only the QTENSOR_DEFINE TU
// does, for the named policies, and a TU that uses another policy includes
// it itself:
//
//   #include "qtensor/gemma4/model.hpp"
//   #include "qtensor/gemma4/model_impl.hpp" // model<my_policy>
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/gemma4/model.hpp"
#include "qtensor/nn/attention.hpp"
#include "qtensor/nn/embedding.hpp"
#include "qtensor/nn/linear.hpp"
#include "qtensor/nn/mlp.hpp"
#include "qtensor/nn/moe.hpp"
#include "qtensor/nn/ops.hpp"
#include "qtensor/tensor/tensor.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace gemma4 {

namespace detail {

// The bytes of a weight matrix (for a profile's weight_bytes).
template <class W>
std::size_t bytes_of(const W& w) {
    if constexpr (std::same_as<W, nn::mixed_weight>) return w.visit([](const auto& v) { return bytes_of(v); });
    else if constexpr (nn::is_packed_weight<W>) return w.num_rows() * row_bytes<typename W::scheme_type>(w.cols());
    else return w.num_rows() * row_bytes<viewed_scheme_t<W>>(w.cols());
}

} // namespace detail

template <class Policy>
    requires model_policy<Policy>
auto model<Policy>::make_cache(std::size_t max_positions) const -> cache_type {
    return cache_type(cfg_, max_positions);
}

template <class Policy>
    requires model_policy<Policy>
std::vector<float> model<Policy>::forward(std::span<const std::int32_t> ids, const observer& obs) const {
    if (ids.empty()) throw error("gemma4::model: no tokens");
    cache_type cache = make_cache(ids.size());
    return run(ids, cache, true, obs, nullptr);
}

template <class Policy>
    requires model_policy<Policy>
std::vector<float> model<Policy>::prefill(std::span<const std::int32_t> ids, cache_type& cache,
                                          const observer& obs, profile* prof) const {
    return run(ids, cache, false, obs, prof);
}

template <class Policy>
    requires model_policy<Policy>
std::vector<float> model<Policy>::decode(std::int32_t id, cache_type& cache, profile* prof) const {
    return run(std::span<const std::int32_t>(&id, 1), cache, false, {}, prof);
}

template <class Policy>
    requires model_policy<Policy>
void model<Policy>::calibrate(std::span<const std::int32_t> ids, activation_sites& ranges) const {
    if (ranges.layers() != layers_.size())
        throw error("gemma4::model::calibrate: ranges for " + std::to_string(ranges.layers()) +
                    " layers, the model has " + std::to_string(layers_.size()));
    if (ids.empty()) throw error("gemma4::model: no tokens");
    cache_type cache = make_cache(ids.size());
    run(ids, cache, false, {}, nullptr, &ranges);
}

template <class Policy>
    requires model_policy<Policy>
void model<Policy>::set_activation_scales(activation_sites scales) {
    if (scales.size() == 0) {
        scales_ = {};
        return;
    }
    if (scales.layers() != layers_.size())
        throw error("gemma4::model: activation scales for " + std::to_string(scales.layers()) +
                    " layers, the model has " + std::to_string(layers_.size()));
    scales.check_scales(cfg_.has_per_layer_input(), "gemma4::model");
    scales_ = std::move(scales);
}

template <class Policy>
    requires model_policy<Policy>
nn::input_quant model<Policy>::site(const call_state& call, std::size_t l, layer_site s) const {
    return {scales_.size() ? scales_.at(l, s) : 0.0f, call.ranges ? &call.ranges->at(l, s) : nullptr};
}

template <class Policy>
    requires model_policy<Policy>
nn::input_quant model<Policy>::site(const call_state& call, model_site s) const {
    return {scales_.size() ? scales_.at(s) : 0.0f, call.ranges ? &call.ranges->at(s) : nullptr};
}

template <class Policy>
    requires model_policy<Policy>
std::vector<float> model<Policy>::run(std::span<const std::int32_t> ids, cache_type& cache, bool all_logits,
                                      const observer& obs, profile* prof, activation_sites* ranges) const {
    const std::size_t T = ids.size(), D = cfg_.hidden_size, V = cfg_.vocab_size;
    if (T == 0) throw error("gemma4::model: no tokens");
    check_ids(ids);
    check_cache(cache);
    cache.check_room(T);
    std::vector<std::size_t> pos(T); // absolute positions
    std::iota(pos.begin(), pos.end(), cache.positions());

    // The whole call's time, less what the families below took, is "other".
    const auto t0 = std::chrono::steady_clock::now();
    const double counted0 = prof ? prof->total_seconds() : 0.0;

    std::vector<float> h(T * D); // the residual stream h[T, D]
    {
        detail::profile_timer timer(prof, profile::embedding);
        nn::embedding(w_.embed_tokens, ids, std::sqrt(static_cast<float>(D)), h); // e = embed(ids) * sqrt(D)
        timer.reads(T * detail::bytes_of(w_.embed_tokens) / w_.embed_tokens.num_rows());
        drop_looked_up(w_.embed_tokens, ids);
    }
    if (obs) obs("embed", h, D);
    call_state call{std::vector<tensor<KV, 3>>(layers_.size()), std::vector<tensor<KV, 3>>(layers_.size()), prof,
                    ranges};
    const std::vector<float> ple = per_layer_inputs(ids, h, call); // p[T, L, P]

    for (std::size_t l = 0; l < layers_.size(); ++l) decoder_layer(l, h, ple, pos, cache, call, obs);
    for (std::size_t l = 0; l < layers_.size(); ++l)
        if (layers_[l].has_kv) cache.write(l, call.k[l].view(), call.v[l].view());
    cache.advance(T);

    const std::size_t rows = all_logits ? T : 1;
    std::vector<float> logits(rows * V); // [rows, V] = x lm_head^T, softcapped
    {
        detail::profile_timer timer(prof, profile::head);
        nn::rmsnorm(h, w_.norm, h, D, cfg_.rms_norm_eps); // x = norm(h)
        if (obs) obs("final_hidden", h, D);
        if (ranges) nn::detail::record_amax(h, {0.0f, &ranges->at(model_site::lm_head)}); // every row, not just the last
        nn::linear(w_.lm_head, std::span<const float>(h).last(rows * D), std::span<float>(logits), ex_,
                   site(call, model_site::lm_head));
        if (cfg_.final_logit_softcapping > 0.0f) nn::softcap(logits, cfg_.final_logit_softcapping);
        timer.reads(detail::bytes_of(w_.lm_head));
    }
    if (prof) {
        const double call_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        prof->seconds[profile::other] += call_s - (prof->total_seconds() - counted0);
        ++prof->calls;
    }
    return logits;
}

// §7: h <- decoder layer l of h[T, D].
template <class Policy>
    requires model_policy<Policy>
void model<Policy>::decoder_layer(std::size_t l, std::vector<float>& h, const std::vector<float>& ple,
                                  std::span<const std::size_t> pos, const cache_type& cache, call_state& call,
                                  const observer& obs) const {
    const layer_weights<Policy>& w = w_.layers[l];
    const std::size_t D = cfg_.hidden_size;
    const float eps = cfg_.rms_norm_eps;
    const std::string tag = "layer." + std::to_string(l) + ".";
    std::vector<float> x(h.size()), a(h.size()); // [T, D]

    nn::rmsnorm(h, w.input_layernorm, x, D, eps);              // x  = input_layernorm(h)
    attention(l, x, a, pos, cache, call);                      // a  = Attn_l(x)
    if (obs) obs(tag + "attn_out", a, D);
    nn::rmsnorm(a, w.post_attention_layernorm, a, D, eps);
    nn::add(a, h);                                             // h1 = h + post_attention_layernorm(a)
    feed_forward(l, h, a, call);                               // f  = MLP or MoE of h1
    nn::rmsnorm(a, w.post_feedforward_layernorm, a, D, eps);
    nn::add(a, h);                                             // h2 = h1 + post_feedforward_layernorm(f)
    if (cfg_.has_per_layer_input()) per_layer_input(l, h, ple, obs, call); // h3 = h2 + PLE_l(h2)
    nn::scale(h, w.layer_scalar);                              // h  = h3 * layer_scalar
    if (obs) obs(tag + "output", h, D);
}

// §3: out[T, D] = o_proj(attention of layer l over x[T, D]).
template <class Policy>
    requires model_policy<Policy>
void model<Policy>::attention(std::size_t l, std::span<const float> x, std::span<float> out,
                              std::span<const std::size_t> pos, const cache_type& cache, call_state& call) const {
    const layer_info& li = layers_[l];
    const layer_weights<Policy>& w = w_.layers[l];
    const std::size_t T = pos.size(), H = cfg_.num_attention_heads, K = li.kv_heads, d = li.head_dim;
    const float eps = cfg_.rms_norm_eps;

    std::vector<float> q(T * H * d);                   // q[T, H, d] = RoPE(q_norm(q_proj x))
    std::vector<float> k(li.has_kv ? T * K * d : 0), v(k.size()); // [T, K, d]
    detail::profile_timer timer(call.prof, profile::projections);
    using A = decltype(w.q_proj);                      // x quantized once for q, k, v
    const nn::input_quant in = site(call, l, layer_site::attention);
    if (!li.has_kv) nn::linear(w.q_proj, x, std::span<float>(q), ex_, in);
    else if (!li.has_v_proj) nn::linear_each<A>(x, {{w.q_proj, q}, {w.k_proj, k}}, ex_, in);
    else nn::linear_each<A>(x, {{w.q_proj, q}, {w.k_proj, k}, {w.v_proj, v}}, ex_, in);
    timer.reads(detail::bytes_of(w.q_proj) + detail::bytes_of(w.k_proj) + detail::bytes_of(w.v_proj));
    timer.switch_to(profile::attention);
    nn::rmsnorm(q, w.q_norm, q, d, eps);
    nn::rope(q, d, li.rope_freq, pos);
    if (li.has_kv) {
        if (!li.has_v_proj) v = k;                      // k_eq_v: V is the raw K projection
        nn::rmsnorm(k, w.k_norm, k, d, eps);            // k = RoPE(k_norm(k))
        nn::rope(k, d, li.rope_freq, pos);
        nn::rmsnorm(v, {}, v, d, eps);                  // v = v_norm(v), no weight, no RoPE
        call.k[l] = tensor<KV, 3>::quantize(k, {T, K, d});
        call.v[l] = tensor<KV, 3>::quantize(v, {T, K, d});
    }
    // KV-shared layers attend over their source layer's rows: older
    // positions from the cache, this call's from `call`.
    const std::size_t src = li.kv_source_layer;
    const std::array<nn::kv_rows<KV>, 2> kv{
        cache.past(src),
        nn::kv_rows<KV>{call.k[src].view(), call.v[src].view(), pos[0], pos[0] + T, pos[0]}};
    std::vector<float> o(T * H * d);                    // o[T, H, d], scale 1: q/k norms set the scale
    nn::attention<KV>(q, pos, H, kv, li.is_sliding ? cfg_.sliding_window : 0, 1.0f, o, ex_);
    timer.switch_to(profile::projections);
    nn::linear(w.o_proj, std::span<const float>(o), out, ex_, site(call, l, layer_site::o_proj));
    timer.reads(detail::bytes_of(w.o_proj));
}

// §5: f[T, D] = the feed-forward branch of layer l on h1[T, D].
template <class Policy>
    requires model_policy<Policy>
void model<Policy>::feed_forward(std::size_t l, std::span<const float> h1, std::span<float> f,
                                 call_state& call) const {
    detail::profile_timer timer(call.prof, profile::mlp);
    const layer_weights<Policy>& w = w_.layers[l];
    const std::size_t D = cfg_.hidden_size, T = h1.size() / D;
    const float eps = cfg_.rms_norm_eps;
    std::vector<float> x(h1.size()); // [T, D]
    nn::rmsnorm(h1, w.pre_feedforward_layernorm, x, D, eps);
    nn::geglu_mlp(w.gate_proj, w.up_proj, w.down_proj, std::span<const float>(x), f, ex_,
                  site(call, l, layer_site::mlp), site(call, l, layer_site::down_proj));
    timer.reads(detail::bytes_of(w.gate_proj) + detail::bytes_of(w.up_proj) + detail::bytes_of(w.down_proj));
    if (!cfg_.enable_moe_block) return;                       // dense: f = mlp(pre_feedforward_layernorm(h1))

    nn::rmsnorm(f, w.post_feedforward_layernorm_1, f, D, eps); // y1 = post_feedforward_layernorm_1(mlp(...))
    const std::size_t k = cfg_.top_k_experts;
    std::vector<std::size_t> experts(T * k);                  // [T, k]
    std::vector<float> weights(T * k);                        // [T, k]
    nn::moe_route({w.router_proj, w.router_scale, w.per_expert_scale, k, eps}, h1, experts, weights, ex_);
    nn::rmsnorm(h1, w.pre_feedforward_layernorm_2, x, D, eps); // x2 = pre_feedforward_layernorm_2(h1)
    std::vector<float> y2(h1.size());                         // [T, D]
    nn::moe_forward<typename Policy::experts>({w.experts_gate_up, w.experts_down}, x, experts, weights,
                                              y2, ex_);
    // The router, and at most T k experts' matrices (E of them in the tensors).
    const std::size_t E = cfg_.num_experts;
    timer.reads(detail::bytes_of(w.router_proj) + (detail::bytes_of(w.experts_gate_up) + detail::bytes_of(w.experts_down)) /
                                                    E * std::min(E, T * k));
    nn::rmsnorm(y2, w.post_feedforward_layernorm_2, y2, D, eps);
    nn::add(y2, f);                                           // f = y1 + y2
}

// A lookup table in a mapped file reads a few rows per token, but the kernel
// maps the file's pages in whole folios of the page cache (up to 2 MiB each),
// so rows looked up would stay resident by the megabyte. The pages around
// each row read are dropped again, in whole 2 MiB spans within the table,
// after the lookup: they come back from the page cache when read. Not for a
// token table the head reads whole in place (that would refault it every
// call), nor for tables in memory (drop_pages ignores bytes outside its map).
template <class Policy>
    requires model_policy<Policy>
template <class Table>
void model<Policy>::drop_looked_up(const Table& table, std::span<const std::int32_t> ids) const {
    if constexpr (requires { table.data_handle(); table.row_stride_bytes(); }) {
        if (!drop_pages_) return;
        if constexpr (requires { w_.lm_head.rows.data_handle(); })
            if (w_.lm_head.rows.data_handle() == table.data_handle()) return;
        if constexpr (requires { w_.lm_head.data_handle(); })
            if (w_.lm_head.data_handle() == table.data_handle()) return;
        constexpr std::uintptr_t span = std::uintptr_t{2} << 20;
        const auto first = reinterpret_cast<std::uintptr_t>(table.data_handle());
        const std::uintptr_t end = first + table.num_rows() * table.row_stride_bytes();
        std::vector<std::uintptr_t> rows(ids.size());
        for (std::size_t t = 0; t < ids.size(); ++t)
            rows[t] = first + static_cast<std::size_t>(ids[t]) * table.row_stride_bytes();
        std::sort(rows.begin(), rows.end());
        std::uintptr_t dropped = first; // spans up to here are dropped: ids often share one
        for (const std::uintptr_t row : rows) {
            const std::uintptr_t lo = std::max(dropped, row / span * span);
            const std::uintptr_t hi = std::min(end, (row + table.row_stride_bytes() + span - 1) / span * span);
            if (hi <= lo) continue;
            drop_pages_({reinterpret_cast<const std::byte*>(lo), hi - lo});
            dropped = hi;
        }
    }
}

// Whether a lookup table is a view into the source, not owned storage.
template <class Policy>
    requires model_policy<Policy>
bool model<Policy>::looks_up_in_place() const {
    const auto in_place = [&](const auto& table) {
        if constexpr (requires { table.data_handle(); }) {
            const std::byte* p = table.data_handle();
            return p != nullptr && std::none_of(w_.storage.begin(), w_.storage.end(),
                                                [p](const aligned_buffer& b) { return b.data() == p; });
        } else {
            return false;
        }
    };
    return in_place(w_.embed_tokens) || in_place(w_.embed_tokens_per_layer);
}

// §6, model level: p[T, L, P] = (rmsnorm(per_layer_model_projection(e) / sqrt(D))
//                              + embed_tokens_per_layer[ids] * sqrt(P)) / sqrt(2).
template <class Policy>
    requires model_policy<Policy>
std::vector<float> model<Policy>::per_layer_inputs(std::span<const std::int32_t> ids,
                                                   std::span<const float> e, call_state& call) const {
    if (!cfg_.has_per_layer_input()) return {};
    detail::profile_timer timer(call.prof, profile::embedding);
    timer.reads(ids.size() * detail::bytes_of(w_.embed_tokens_per_layer) / w_.embed_tokens_per_layer.num_rows() +
                detail::bytes_of(w_.per_layer_model_projection));
    const std::size_t P = cfg_.hidden_size_per_layer_input, LP = cfg_.num_hidden_layers * P;
    std::vector<float> r(ids.size() * LP), m(ids.size() * LP); // [T, L P]
    nn::embedding(w_.embed_tokens_per_layer, ids, std::sqrt(static_cast<float>(P)), r);
    drop_looked_up(w_.embed_tokens_per_layer, ids);
    nn::linear(w_.per_layer_model_projection, e, std::span<float>(m), ex_,
               site(call, model_site::per_layer_model_projection));
    nn::scale(m, 1.0f / std::sqrt(static_cast<float>(cfg_.hidden_size)));
    nn::rmsnorm(m, w_.per_layer_projection_norm, m, P, cfg_.rms_norm_eps); // over each layer's P
    nn::add(r, m);
    nn::scale(m, 1.0f / std::sqrt(2.0f));
    return m;
}

// §6, in layer l: h += post_per_layer_input_norm(per_layer_projection(
//                        gelu_tanh(per_layer_input_gate h) * p[:, l])).
template <class Policy>
    requires model_policy<Policy>
void model<Policy>::per_layer_input(std::size_t l, std::span<float> h, const std::vector<float>& ple,
                                    const observer& obs, call_state& call) const {
    detail::profile_timer timer(call.prof, profile::per_layer);
    const layer_weights<Policy>& w = w_.layers[l];
    const std::size_t D = cfg_.hidden_size, P = cfg_.hidden_size_per_layer_input, T = h.size() / D;
    const std::size_t LP = cfg_.num_hidden_layers * P;
    std::vector<float> p(T * P); // p[:, l] as [T, P]
    for (std::size_t t = 0; t < T; ++t)
        std::copy_n(ple.begin() + static_cast<std::ptrdiff_t>(t * LP + l * P), P,
                    p.begin() + static_cast<std::ptrdiff_t>(t * P));
    if (obs) obs("layer." + std::to_string(l) + ".per_layer_input", p, P);
    std::vector<float> g(T * P), y(T * D);
    nn::linear(w.per_layer_input_gate, std::span<const float>(h), std::span<float>(g), ex_,
               site(call, l, layer_site::per_layer_input_gate));
    nn::gelu_tanh(g, g);
    nn::mul(p, g);
    nn::linear(w.per_layer_projection, std::span<const float>(g), std::span<float>(y), ex_,
               site(call, l, layer_site::per_layer_projection));
    timer.reads(detail::bytes_of(w.per_layer_input_gate) + detail::bytes_of(w.per_layer_projection));
    nn::rmsnorm(y, w.post_per_layer_input_norm, y, D, cfg_.rms_norm_eps);
    nn::add(y, h);
}

template <class Policy>
    requires model_policy<Policy>
void model<Policy>::check_ids(std::span<const std::int32_t> ids) const {
    const std::size_t vocab = cfg_.input_vocab();
    for (std::size_t t = 0; t < ids.size(); ++t)
        if (ids[t] < 0 || static_cast<std::size_t>(ids[t]) >= vocab)
            throw error("gemma4::model: token id " + std::to_string(ids[t]) + " at position " +
                        std::to_string(t) + " is out of range for a vocabulary of " + std::to_string(vocab));
}

template <class Policy>
    requires model_policy<Policy>
void model<Policy>::check_cache(const cache_type& cache) const {
    bool ok = cache.num_layers() == layers_.size();
    for (std::size_t l = 0; ok && l < layers_.size(); ++l)
        ok = cache.stores(l) == layers_[l].has_kv && cache.kv_heads(l) == layers_[l].kv_heads &&
             cache.head_dim(l) == layers_[l].head_dim;
    if (!ok) throw error("gemma4::model: the KV cache was made for another model's layers");
}

#if defined(QTENSOR_DEFINE)
#define QTENSOR_GEMMA4_MODEL(P) template class model<P>;
QTENSOR_GEMMA4_INFERENCE_POLICIES(QTENSOR_GEMMA4_MODEL)
#undef QTENSOR_GEMMA4_MODEL
#endif

} // namespace gemma4
QTENSOR_END_NAMESPACE
