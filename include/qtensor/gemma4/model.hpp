// qtensor/gemma4/model.hpp: the Gemma 4 text decoder, forward only, for a
// policy of schemes (policy.hpp). The maths is docs/gemma4.md §2-§7 (the
// §N below are its sections), in model_impl.hpp; decoder_layer() reads like
// its §7 pseudocode.
//
// Shapes: T tokens of a call, D = hidden_size, H heads, d = d_l, K = K_l,
// L layers, P = hidden_size_per_layer_input, V = vocab_size. Activations are
// float32, row-major.
//
// forward() runs a whole sequence on a fresh cache and returns every
// position's logits; prefill() and decode() continue a cache and return the
// last position's. Both paths run the same code, so decoding token by token
// reproduces forward().
//
// Separate compilation (core/config.hpp): model<P> of the named policies is
// compiled once, by the QTENSOR_DEFINE TU; a TU using another policy includes
// model_impl.hpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "qtensor/core/config.hpp"
#include "qtensor/gemma4/activation_sites.hpp"
#include "qtensor/gemma4/config.hpp"
#include "qtensor/gemma4/kv_cache.hpp"
#include "qtensor/gemma4/policy.hpp"
#include "qtensor/gemma4/profile.hpp"
#include "qtensor/gemma4/weights.hpp"
#include "qtensor/io/tensor_entry.hpp"
#include "qtensor/kernels/executor.hpp"
#include "qtensor/nn/linear.hpp"
#include "qtensor/tensor/tensor.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace gemma4 {

template <class Policy>
    requires model_policy<Policy>
class model {
public:
    using policy_type = Policy;
    using kv_scheme_type = typename Policy::kv_cache;
    using cache_type = kv_cache<kv_scheme_type>;
    // Receives named intermediate tensors values[rows, cols] during a call:
    // "embed", "layer.<i>.attn_out" (o_proj output), "layer.<i>.per_layer_input"
    // (PLE models), "layer.<i>.output", "final_hidden" (after the final norm).
    using observer = std::function<void(std::string_view name, std::span<const float> values, std::size_t cols)>;

    // Loads the weights `c` calls for from `src`, by Hugging Face name
    // translated by `names` (empty: src uses HF names). Tensors already in the
    // policy's scheme stay views into src, so src must outlive the model.
    // `ex` spreads the large ops (linear layers, attention) over threads;
    // `on_tensor` (optional) sees each tensor as it is loaded (progress).
    // With weight_layout::interleaved, the Q4_0 and Q8_0 matrices it
    // multiplies by are then repacked (repack() in weights.hpp: a copy, and
    // the file's pages of those matrices dropped where src can, which a
    // mapped checkpoint does); in_place keeps reading them from src.
    // (Separate compilation compiles load_weights from a checkpoint once:
    // checkpoint.hpp.)
    template <io::tensor_source Source>
    static model load(gemma4::config c, const Source& src, const name_map& names = {}, kernels::executor ex = {},
                      const tensor_callback& on_tensor = {}, weight_layout layout = weight_layout::interleaved) {
        check_sizes(c, src, names);
        model m;
        m.layers_ = c.layers();
        cache_type::check_head_dims(m.layers_);
        m.cfg_ = std::move(c);
        m.w_ = load_weights<Policy>(m.cfg_, m.layers_, src, names, on_tensor);
        m.ex_ = std::move(ex);
        if (layout == weight_layout::interleaved)
            repack(m.w_, m.ex_, [&](std::span<const std::byte> bytes) {
                if constexpr (requires { src.drop_pages(bytes); }) src.drop_pages(bytes);
            });
        // Only while a lookup table is read from src (so src must outlive the model anyway).
        if constexpr (requires(std::span<const std::byte> bytes) { src.drop_pages(bytes); })
            if (m.looks_up_in_place())
                m.drop_pages_ = [&src](std::span<const std::byte> bytes) { src.drop_pages(bytes); };
        return m;
    }
    // A temporary source would be gone before the model reads its views: refused at compile time.
    template <io::tensor_source Source>
    static model load(gemma4::config c, const Source&& src, const name_map& names = {}, kernels::executor ex = {},
                      const tensor_callback& on_tensor = {}, weight_layout layout = weight_layout::interleaved) = delete;

    const gemma4::config& config() const noexcept { return cfg_; }
    const std::vector<layer_info>& layers() const noexcept { return layers_; }
    const weights<Policy>& tensors() const noexcept { return w_; }
    // Resident weight bytes: converted (owned) and read in place (mapped).
    byte_counts weight_bytes() const noexcept { return w_.bytes; }

    // A cache for up to max_positions tokens.
    cache_type make_cache(std::size_t max_positions) const;

    // ids[T] -> logits[T, V] (row-major), on a fresh cache.
    std::vector<float> forward(std::span<const std::int32_t> ids, const observer& obs = {}) const;

    // Appends ids[T] to the cache; returns the logits[V] of the last one.
    // With `prof`, adds the call's time per family of ops to it (profile.hpp).
    std::vector<float> prefill(std::span<const std::int32_t> ids, cache_type& cache, const observer& obs = {},
                               profile* prof = nullptr) const;

    // Appends one token; returns its logits[V]; `prof` as for prefill.
    std::vector<float> decode(std::int32_t id, cache_type& cache, profile* prof = nullptr) const;

    // Static activations (activation_sites.hpp): runs ids[T] on a fresh cache
    // and raises each site of `ranges` (activation_sites(layers().size())) to
    // the largest magnitude its input had: a calibration pass.
    void calibrate(std::span<const std::int32_t> ids, activation_sites& ranges) const;
    // From then on, the products of quantized weights take their inputs as
    // int8 codes with these scales (ranges.scales()); every site this model
    // has must have one. An empty activation_sites goes back to a scale per block.
    void set_activation_scales(activation_sites scales);
    const activation_sites& activation_scales() const noexcept { return scales_; }

private:
    using KV = kv_scheme_type;

    // What one call carries through the layers: its K/V rows per storing
    // layer, [T, K, d] each (the attention of the call reads them, and the
    // cache receives them after the last layer), and the profile, if any.
    struct call_state {
        std::vector<tensor<KV, 3>> k, v; // [L]
        profile* prof = nullptr;
        activation_sites* ranges = nullptr; // calibrate's
    };

    model() = default;

    std::vector<float> run(std::span<const std::int32_t> ids, cache_type& cache, bool all_logits,
                           const observer& obs, profile* prof, activation_sites* ranges = nullptr) const;
    // How the product at a site takes its input (nn::input_quant).
    nn::input_quant site(const call_state& call, std::size_t l, layer_site s) const;
    nn::input_quant site(const call_state& call, model_site s) const;
    void decoder_layer(std::size_t l, std::vector<float>& h, const std::vector<float>& ple,
                       std::span<const std::size_t> pos, const cache_type& cache, call_state& call,
                       const observer& obs) const;
    void attention(std::size_t l, std::span<const float> x, std::span<float> out, std::span<const std::size_t> pos,
                   const cache_type& cache, call_state& call) const;
    void feed_forward(std::size_t l, std::span<const float> h1, std::span<float> f, call_state& call) const;
    std::vector<float> per_layer_inputs(std::span<const std::int32_t> ids, std::span<const float> e,
                                        call_state& call) const;
    void per_layer_input(std::size_t l, std::span<float> h, const std::vector<float>& ple, const observer& obs,
                         call_state& call) const;
    void check_ids(std::span<const std::int32_t> ids) const;
    void check_cache(const cache_type& cache) const;
    template <class Table>
    void drop_looked_up(const Table& table, std::span<const std::int32_t> ids) const;
    bool looks_up_in_place() const;

    gemma4::config cfg_;
    std::vector<layer_info> layers_;
    weights<Policy> w_;
    kernels::executor ex_;
    // A mapped source's drop_pages (src outlives the model): lookup tables
    // let go of the pages of the rows they read (drop_looked_up).
    std::function<void(std::span<const std::byte>)> drop_pages_;
    activation_sites scales_; // static activation scales; empty: a scale per block
};

#if defined(QTENSOR_SEPARATE)
// Compiled once, by the QTENSOR_DEFINE TU (model_impl.hpp).
#define QTENSOR_GEMMA4_EXTERN_MODEL(P) extern template class model<P>;
QTENSOR_GEMMA4_INFERENCE_POLICIES(QTENSOR_GEMMA4_EXTERN_MODEL)
#undef QTENSOR_GEMMA4_EXTERN_MODEL
#endif

} // namespace gemma4
QTENSOR_END_NAMESPACE

// The forward pass: in separate mode only where a TU asks for it.
#if !defined(QTENSOR_DECLARE_ONLY)
#include "qtensor/gemma4/model_impl.hpp"
#endif
