// qtensor/gemma4/weights.hpp: the tensors of a Gemma 4 text decoder, loaded
// from any io::tensor_source by their Hugging Face names, each in the scheme
// its policy role asks for.
//
// A file tensor already in the wanted scheme is used in place: a view into
// the file's mapping, no copy (a copy where its bytes are not aligned for the
// scheme's blocks). Any other is converted: its rows are widened to float32 from whatever the file holds
// (any scheme of scheme/registry.hpp but the activation format q8_k: published
// Q4_0 GGUF files keep some tensors in Q6_K, Q4_1 or F16; llama-quantize's
// mixes use Q2_K to Q6_K, and Q4_0, Q5_0, Q5_1, Q8_0 where rows do not fit,
// docs/gguf.md section 3) and quantized to the wanted scheme into storage the
// weights own, with the kernels (bit for bit the reference quantizers). Every
// shape is checked against the config; errors name the tensor and the file.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "qtensor/core/aligned_buffer.hpp"
#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/gemma4/config.hpp"
#include "qtensor/gemma4/names.hpp"
#include "qtensor/gemma4/policy.hpp"
#include "qtensor/io/tensor_entry.hpp"
#include "qtensor/kernels/matmul.hpp"
#include "qtensor/kernels/quant.hpp"
#include "qtensor/nn/mixed_weight.hpp"
#include "qtensor/nn/packed_weight.hpp"
#include "qtensor/scheme/float.hpp"
#include "qtensor/scheme/q8_0.hpp"
#include "qtensor/scheme/registry.hpp"
#include "qtensor/scheme/scheme.hpp"
#include "qtensor/tensor/tensor_view.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace gemma4 {

// Maps a Hugging Face tensor name ("model.layers.3.mlp.up_proj.weight") to the
// source's name for it; empty = the source uses Hugging Face names.
using name_map = std::function<std::string(std::string_view hf_name)>;

// Called once per tensor as the loader hands it out: `e` has the Hugging Face
// name, the policy's type, the tensor's full shape (outermost first, as in
// the file) and its bytes (in the source's mapping or the weights' storage).
using tensor_callback = std::function<void(const io::tensor_entry& e)>;

// Resident weight memory: `owned` was converted into the model's storage,
// `mapped` is read in place from the source's mapping.
struct byte_counts {
    std::size_t owned = 0;
    std::size_t mapped = 0;
    std::size_t total() const noexcept { return owned + mapped; }
};

// A weight of role scheme S: tensor_view<const S, 2>, or for nn::as_stored an
// nn::mixed_weight.
template <class S>
using weight_view = nn::weight_view_t<S>;

// A weight the model multiplies by (not one it looks rows up in): for Q4_0
// and Q8_0 an nn::packed_weight, which model::load repacks into the
// interleaved layout unless told to keep the file's; else weight_view<S>.
template <class S>
struct product_weight {
    using type = weight_view<S>;
};
template <kernels::interleavable_scheme S>
struct product_weight<S> {
    using type = nn::packed_weight<S>;
};
template <class S>
using product_weight_t = typename product_weight<S>::type;

// Schemes whose every weight is an int8 multiple of the block's fp16 d, 32
// weights a block (Q5_0, IQ4_NL): Q8_0 holds them exactly.
template <class S>
concept int8_multiples = S::block_elems == 32 && requires(const block_of<S>& b) {
    { S::multiple_at(b, std::size_t{0}) } -> std::same_as<std::int8_t>;
    { b.d } -> std::convertible_to<fp16_t>;
};

// The scheme an nn::as_stored role keeps a tensor of file scheme F in: F
// itself where it has GEMM kernels, else Q8_0 where that holds it exactly,
// else f32. Each keeps every value exactly.
template <class F>
using kept_scheme_t =
    std::conditional_t<kernels::gemm_scheme<F>, F, std::conditional_t<int8_multiples<F>, q8_0, f32>>;

// The same for a file type t (t itself when qtensor has no scheme for it).
constexpr ggml_type stored_type(ggml_type t) {
    visit_scheme(t, [&](auto s) { t = kept_scheme_t<decltype(s)>::type_id; });
    return t;
}

// How model::load keeps the Q4_0 and Q8_0 matrices the model multiplies by.
enum class weight_layout {
    interleaved, // repacked at load into kernels::interleaved (a copy in memory; faster GEMV and GEMM)
    in_place,    // the file's GGUF rows, read where they are (no copy; what load_weights hands out)
};

template <class P>
    requires model_policy<P>
struct layer_weights {
    using A = typename P::attention;
    using M = typename P::mlp;
    using E = typename P::experts;
    using PL = typename P::per_layer;

    std::span<const float> input_layernorm;            // [D]
    std::span<const float> post_attention_layernorm;   // [D]
    std::span<const float> pre_feedforward_layernorm;  // [D]
    std::span<const float> post_feedforward_layernorm; // [D]
    float layer_scalar = 1.0f;

    product_weight_t<A> q_proj;    // [H d, D]
    product_weight_t<A> k_proj;    // [K d, D]  (empty on KV-shared layers)
    product_weight_t<A> v_proj;    // [K d, D]  (empty on KV-shared layers and without v_proj)
    product_weight_t<A> o_proj;    // [D, H d]
    std::span<const float> q_norm; // [d]
    std::span<const float> k_norm; // [d]       (empty on KV-shared layers)

    product_weight_t<M> gate_proj; // [F, D]
    product_weight_t<M> up_proj;   // [F, D]
    product_weight_t<M> down_proj; // [D, F]

    // MoE layers only.
    std::span<const float> pre_feedforward_layernorm_2;  // [D]
    std::span<const float> post_feedforward_layernorm_1; // [D]
    std::span<const float> post_feedforward_layernorm_2; // [D]
    tensor_view<const f32, 2> router_proj;               // [E, D]
    std::span<const float> router_scale;                 // [D]
    std::span<const float> per_expert_scale;             // [E]
    weight_view<E> experts_gate_up;                      // [E 2I, D] (file: [E, 2I, D])
    weight_view<E> experts_down;                         // [E D, I]  (file: [E, D, I])

    // Per-layer inputs only.
    product_weight_t<PL> per_layer_input_gate;        // [P, D]
    product_weight_t<PL> per_layer_projection;        // [D, P]
    std::span<const float> post_per_layer_input_norm; // [D]
};

template <class P>
    requires model_policy<P>
struct weights {
    using Emb = typename P::embedding;
    using PL = typename P::per_layer;

    weight_view<Emb> embed_tokens;                    // [V, D]
    product_weight_t<Emb> lm_head;                    // [V, D]: embed_tokens' rows when tied
    std::span<const float> norm;                      // [D]
    weight_view<Emb> embed_tokens_per_layer;          // [V_p, L P]
    product_weight_t<PL> per_layer_model_projection;  // [L P, D]
    std::span<const float> per_layer_projection_norm; // [P]
    std::vector<layer_weights<P>> layers;

    std::vector<aligned_buffer> storage; // the converted tensors
    byte_counts bytes;
};

namespace detail {

// Calls fn(F{}) with the scheme F of file type t; false when the loader has
// no scheme for t: none in the registry, or an activation format (q8_k).
template <class Fn>
bool with_file_scheme(ggml_type t, Fn&& fn) {
    bool readable = false;
    visit_scheme(t, [&](auto s) {
        if constexpr (!activation_only_scheme<decltype(s)>) {
            fn(s);
            readable = true;
        }
    });
    return readable;
}

// Row r of a tensor stored as scheme F in `src`, widened to float32 y[cols].
// A row that is not aligned for F's blocks (safetensors data can sit at any
// offset) is copied into `scratch` first.
template <class F>
void widen_row(std::span<const std::byte> src, std::size_t r, std::size_t cols, float* y,
               std::vector<block_of<F>>& scratch) {
    const std::size_t bytes = row_bytes<F>(cols);
    const std::byte* row = src.data() + r * bytes;
    if (reinterpret_cast<std::uintptr_t>(row) % alignof(block_of<F>) == 0) {
        kernels::unchecked::dequantize_row<F>(reinterpret_cast<const block_of<F>*>(row), y, cols);
        return;
    }
    scratch.resize(blocks_per_row<F>(cols));
    std::memcpy(scratch.data(), row, bytes);
    kernels::unchecked::dequantize_row<F>(scratch.data(), y, cols);
}

inline std::string shape_string(std::span<const std::size_t> s) {
    std::string out = "[";
    for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
    return out + "]";
}

// Finds tensors by Hugging Face name and hands them out in a scheme.
template <io::tensor_source Source>
class weight_loader {
public:
    weight_loader(const Source& src, const name_map& names, std::vector<aligned_buffer>& storage,
                  byte_counts& bytes, const tensor_callback& on_tensor)
        : src_(src), names_(names), storage_(storage), bytes_(bytes), on_tensor_(on_tensor) {}

    bool contains(std::string_view hf) const { return src_.find(source_name(hf)) != nullptr; }

    // The stored names of the tensors handed out so far.
    const std::set<std::string, std::less<>>& used() const noexcept { return used_; }

    // The tensor `hf` of shape `shape` as a [rows, cols] matrix of scheme S
    // (rows = product of the outer extents; a vector is one row). For
    // nn::as_stored, in kept_scheme_t of the file's scheme: in place where
    // that is the file's own (a copy where the bytes are not aligned for its
    // blocks), else repacked to Q8_0 or widened to f32, exactly.
    template <class S>
    weight_view<S> matrix(std::string_view hf, std::vector<std::size_t> shape) {
        const found t = find(hf, std::move(shape));
        if constexpr (std::same_as<S, nn::as_stored>) {
            nn::mixed_weight out; // find() refused the types the loader cannot read
            with_file_scheme(t.entry->type, [&](auto s) {
                using F = decltype(s);
                using K = kept_scheme_t<F>;
                if constexpr (std::same_as<K, F>) out = in_place_or_copied<F>(hf, t);
                else if constexpr (std::same_as<K, q8_0>) out = repacked_q8_0<F>(hf, t);
                else out = converted<K>(hf, t);
            });
            return out;
        } else {
            if (t.entry->type == S::type_id) return in_place_or_copied<S>(hf, t);
            return converted<S>(hf, t);
        }
    }

    // A float32 vector of n elements (a 1-D tensor of shape [n]).
    std::span<const float> vector(std::string_view hf, std::size_t n) {
        const tensor_view<const f32, 2> m = matrix<f32>(hf, {n});
        return {m.blocks(0).data(), n};
    }

private:
    std::string source_name(std::string_view hf) const { return names_ ? names_(hf) : std::string(hf); }

    // A file tensor checked against its expected shape and its type's size.
    struct found {
        const io::tensor_entry* entry;
        std::string where; // "<file>: tensor <name>" for messages
        std::vector<std::size_t> shape;
        extents<2> ext;
    };

    found find(std::string_view hf, std::vector<std::size_t> shape) {
        const std::string name = source_name(hf);
        const io::tensor_entry* e = src_.find(name);
        const std::string where = std::string(src_.path()) + ": tensor " + name +
                                  (name == hf ? std::string() : " (" + std::string(hf) + ")");
        if (e == nullptr) throw error(std::string(src_.path()) + ": missing tensor " + name +
                                      (name == hf ? std::string() : " (" + std::string(hf) + ")"));
        used_.insert(e->name);
        if (e->shape != shape)
            throw error(where + " has shape " + shape_string(e->shape) + ", expected " + shape_string(shape));
        const std::size_t cols = shape.back();
        std::size_t rows = 1;
        for (std::size_t i = 0; i + 1 < shape.size(); ++i) rows *= shape[i];

        std::size_t file_row_bytes = 0; // 0: cols is not whole blocks of the file's type
        if (!with_file_scheme(e->type, [&](auto s) {
                using F = decltype(s);
                if (cols % F::block_elems == 0) file_row_bytes = row_bytes<F>(cols);
            }))
            throw error(where + " has type " + std::string(type_name(e->type)) +
                        ", which the Gemma 4 loader cannot read");
        if (file_row_bytes == 0 || e->data.size() != rows * file_row_bytes)
            throw error(where + ": " + std::to_string(e->data.size()) + " bytes do not hold a " +
                        std::string(type_name(e->type)) + " tensor of shape " + shape_string(shape));
        return {e, where, std::move(shape), extents<2>{rows, cols}};
    }

    // t, stored as S, used in place; copied into aligned storage where its
    // bytes are not aligned for S's blocks (safetensors data can sit anywhere).
    template <class S>
    tensor_view<const S, 2> in_place_or_copied(std::string_view hf, const found& t) {
        const std::span<const std::byte> data = t.entry->data;
        if (reinterpret_cast<std::uintptr_t>(data.data()) % alignof(block_of<S>) == 0) {
            bytes_.mapped += data.size();
            return handed_out<S>(hf, t.shape, data, t.ext);
        }
        aligned_buffer& buf = storage_.emplace_back(data.size());
        bytes_.owned += buf.size();
        std::memcpy(buf.data(), data.data(), data.size());
        return handed_out<S>(hf, t.shape, std::span<const std::byte>(buf.data(), buf.size()), t.ext);
    }

    // t, stored as F (int8_multiples), as Q8_0 blocks with the same d and
    // multiples: the same values, in storage the weights own.
    template <class F>
    tensor_view<const q8_0, 2> repacked_q8_0(std::string_view hf, const found& t) {
        const std::size_t blocks = t.entry->data.size() / sizeof(block_of<F>);
        aligned_buffer& buf = storage_.emplace_back(blocks * sizeof(block_q8_0));
        bytes_.owned += buf.size();
        auto* out = reinterpret_cast<block_q8_0*>(buf.data());
        for (std::size_t b = 0; b < blocks; ++b) {
            block_of<F> in; // the file's bytes may not be aligned for it
            std::memcpy(&in, t.entry->data.data() + b * sizeof in, sizeof in);
            out[b].d = in.d;
            for (std::size_t j = 0; j < 32; ++j) out[b].qs[j] = F::multiple_at(in, j);
        }
        return handed_out<q8_0>(hf, t.shape, std::span<const std::byte>(buf.data(), buf.size()), t.ext);
    }

    // t widened to float32 and quantized to S (bit for bit the reference
    // quantizer) into storage the weights own.
    template <class S>
    tensor_view<const S, 2> converted(std::string_view hf, const found& t) {
        const std::size_t rows = t.ext.rows(), cols = t.ext.cols();
        if (cols % S::block_elems != 0)
            throw error(t.where + ": rows of " + std::to_string(cols) + " elements do not fit " +
                        std::string(S::name) + " blocks of " + std::to_string(S::block_elems) +
                        "; pick a policy with another scheme for this tensor's role");
        aligned_buffer& buf = storage_.emplace_back(rows * row_bytes<S>(cols));
        bytes_.owned += buf.size();
        const tensor_view<S, 2> out(std::span<std::byte>(buf.data(), buf.size()), t.ext);
        std::vector<float> wide(cols);
        with_file_scheme(t.entry->type, [&](auto s) {
            using F = decltype(s);
            std::vector<block_of<F>> scratch;
            for (std::size_t r = 0; r < rows; ++r) {
                widen_row<F>(t.entry->data, r, cols, wide.data(), scratch);
                try {
                    kernels::unchecked::quantize_row<S>(wide.data(), out.blocks(r).data(), cols);
                } catch (const error& err) {
                    throw error(t.where + ", row " + std::to_string(r) + ": " + std::string(err.message()));
                }
            }
        });
        return handed_out<S>(hf, t.shape, std::span<const std::byte>(buf.data(), buf.size()), t.ext);
    }

    template <class S>
    tensor_view<const S, 2> handed_out(std::string_view hf, std::vector<std::size_t> shape,
                                       std::span<const std::byte> data, const extents<2>& ext) {
        if (on_tensor_) on_tensor_(io::tensor_entry{std::string(hf), S::type_id, std::move(shape), data});
        return tensor_view<const S, 2>(data, ext);
    }

    const Source& src_;
    const name_map& names_;
    std::vector<aligned_buffer>& storage_;
    byte_counts& bytes_;
    const tensor_callback& on_tensor_;
    std::set<std::string, std::less<>> used_;
};

// Every tensor name `src` stores, when it can list them (empty otherwise):
// all of a safetensors checkpoint's tensors, viewable dtype or not.
template <io::tensor_source Source>
std::vector<std::string_view> stored_names(const Source& src) {
    std::vector<std::string_view> out;
    if constexpr (requires { src.tensor_names(); }) {
        out = src.tensor_names();
    } else if constexpr (requires { src.tensors().front().name; }) {
        for (const auto& t : src.tensors()) out.push_back(t.name);
    } else if constexpr (requires { src.entries().front().name; }) {
        for (const auto& e : src.entries()) out.push_back(e.name);
    }
    return out;
}

// A tensor the config does not ask for means the file and its config
// disagree (a model without per-layer inputs holding their tables, a layer
// too many): an error, as in llama.cpp, rather than weights silently left
// out. Exempt: rope_freqs (read, and checked, by the GGUF config reader:
// it says which pairs the full layers rotate) and, in a multimodal
// checkpoint, the towers outside its text model (model.language_model.*).
template <io::tensor_source Source>
void refuse_unused(const Source& src, const std::set<std::string, std::less<>>& used) {
    const std::vector<std::string_view> names = stored_names(src);
    constexpr std::string_view text_model = "model.language_model.";
    const bool multimodal = std::any_of(names.begin(), names.end(),
                                        [&](std::string_view n) { return n.starts_with(text_model); });
    for (std::string_view n : names) {
        if (used.contains(n) || n == rope_freqs_name) continue;
        if (multimodal && n.starts_with("model.") && !n.starts_with(text_model)) continue;
        throw error(std::string(src.path()) + ": tensor " + std::string(n) +
                    " is not used by the model its config describes (a tensor too many, or a config that "
                    "does not match the file)");
    }
}

} // namespace detail

// Checks the sizes `c` gives against the tensors of `src` before anything is
// sized from them (RoPE tables, caches, activations): the token table must
// be [V, D] and every layer's q_proj [H d_l, D]. A config that promises more
// than the file holds then fails here, cheaply, whatever its numbers.
template <io::tensor_source Source>
void check_sizes(const config& c, const Source& src, const name_map& names = {}) {
    c.validate();
    const auto expect = [&](const std::string& hf, std::vector<std::size_t> shape) {
        const std::string name = names ? names(hf) : hf;
        const io::tensor_entry* e = src.find(name);
        if (e == nullptr) throw error(std::string(src.path()) + ": missing tensor " + name);
        if (e->shape != shape)
            throw error(std::string(src.path()) + ": tensor " + name + " has shape " + detail::shape_string(e->shape) +
                        ", expected " + detail::shape_string(shape) + " by the config");
    };
    expect("model.embed_tokens.weight", {c.vocab_size, c.hidden_size});
    for (std::size_t l = 0; l < c.num_hidden_layers; ++l)
        expect("model.layers." + std::to_string(l) + ".self_attn.q_proj.weight",
               {c.num_attention_heads * c.layer_head_dim[l], c.hidden_size});
}

// Loads every tensor the config calls for. The views may point into `src`'s
// mapping, so `src` must outlive the weights. `on_tensor` (optional) sees each
// tensor as it is handed out, in the policy's scheme (as_stored: the type it
// is kept in): what a converter writes.
template <class P, io::tensor_source Source>
    requires model_policy<P>
weights<P> load_weights(const config& c, const std::vector<layer_info>& layers, const Source& src,
                        const name_map& names = {}, const tensor_callback& on_tensor = {}) {
    using A = typename P::attention;
    using M = typename P::mlp;
    using E = typename P::experts;
    using Emb = typename P::embedding;
    using PL = typename P::per_layer;
    weights<P> w;
    detail::weight_loader<Source> ld(src, names, w.storage, w.bytes, on_tensor);
    const std::size_t D = c.hidden_size, V = c.vocab_size, H = c.num_attention_heads;
    const std::size_t L = c.num_hidden_layers, P_ = c.hidden_size_per_layer_input;

    w.embed_tokens = ld.template matrix<Emb>("model.embed_tokens.weight", {V, D});
    w.lm_head = c.tie_word_embeddings ? w.embed_tokens : ld.template matrix<Emb>("lm_head.weight", {V, D});
    w.norm = ld.vector("model.norm.weight", D);
    if (c.has_per_layer_input()) {
        w.embed_tokens_per_layer = ld.template matrix<Emb>("model.embed_tokens_per_layer.weight",
                                                           {c.vocab_size_per_layer_input, L * P_});
        w.per_layer_model_projection =
            ld.template matrix<PL>("model.per_layer_model_projection.weight", {L * P_, D});
        w.per_layer_projection_norm = ld.vector("model.per_layer_projection_norm.weight", P_);
    }

    for (std::size_t l = 0; l < L; ++l) {
        const layer_info& li = layers[l];
        const std::string p = "model.layers." + std::to_string(l) + ".";
        const std::size_t d = li.head_dim, K = li.kv_heads, F = li.mlp_width;
        layer_weights<P>& lw = w.layers.emplace_back();
        lw.input_layernorm = ld.vector(p + "input_layernorm.weight", D);
        lw.post_attention_layernorm = ld.vector(p + "post_attention_layernorm.weight", D);
        lw.pre_feedforward_layernorm = ld.vector(p + "pre_feedforward_layernorm.weight", D);
        lw.post_feedforward_layernorm = ld.vector(p + "post_feedforward_layernorm.weight", D);
        // Checkpoints without the buffer leave it at its initial value, 1.
        if (ld.contains(p + "layer_scalar")) lw.layer_scalar = ld.vector(p + "layer_scalar", 1)[0];

        lw.q_proj = ld.template matrix<A>(p + "self_attn.q_proj.weight", {H * d, D});
        lw.o_proj = ld.template matrix<A>(p + "self_attn.o_proj.weight", {D, H * d});
        lw.q_norm = ld.vector(p + "self_attn.q_norm.weight", d);
        if (li.has_kv) { // KV-shared layers' k/v tensors, if a file has them, are unused (as in HF)
            lw.k_proj = ld.template matrix<A>(p + "self_attn.k_proj.weight", {K * d, D});
            if (li.has_v_proj) lw.v_proj = ld.template matrix<A>(p + "self_attn.v_proj.weight", {K * d, D});
            lw.k_norm = ld.vector(p + "self_attn.k_norm.weight", d);
        }

        lw.gate_proj = ld.template matrix<M>(p + "mlp.gate_proj.weight", {F, D});
        lw.up_proj = ld.template matrix<M>(p + "mlp.up_proj.weight", {F, D});
        lw.down_proj = ld.template matrix<M>(p + "mlp.down_proj.weight", {D, F});

        if (c.enable_moe_block) {
            const std::size_t NE = c.num_experts, I = c.moe_intermediate_size;
            lw.pre_feedforward_layernorm_2 = ld.vector(p + "pre_feedforward_layernorm_2.weight", D);
            lw.post_feedforward_layernorm_1 = ld.vector(p + "post_feedforward_layernorm_1.weight", D);
            lw.post_feedforward_layernorm_2 = ld.vector(p + "post_feedforward_layernorm_2.weight", D);
            lw.router_proj = ld.template matrix<f32>(p + "router.proj.weight", {NE, D});
            lw.router_scale = ld.vector(p + "router.scale", D);
            lw.per_expert_scale = ld.vector(p + "router.per_expert_scale", NE);
            lw.experts_gate_up = ld.template matrix<E>(p + "experts.gate_up_proj", {NE, 2 * I, D});
            lw.experts_down = ld.template matrix<E>(p + "experts.down_proj", {NE, D, I});
        }

        if (c.has_per_layer_input()) {
            lw.per_layer_input_gate = ld.template matrix<PL>(p + "per_layer_input_gate.weight", {P_, D});
            lw.per_layer_projection = ld.template matrix<PL>(p + "per_layer_projection.weight", {D, P_});
            lw.post_per_layer_input_norm = ld.vector(p + "post_per_layer_input_norm.weight", D);
        }
    }
    detail::refuse_unused(src, ld.used());
    return w;
}

// Repacks w's product weights of Q4_0 and Q8_0 (packed_weight) into the
// interleaved layout, groups as tasks of ex, and gives back what held their
// GGUF rows: storage the weights own is freed (but a token table the head is
// tied to: its rows are still looked up); bytes in the source are handed to
// `drop_pages` (a mapped file drops their pages, which come back when read).
template <class P>
    requires model_policy<P>
void repack(weights<P>& w, const kernels::executor& ex,
            const std::function<void(std::span<const std::byte>)>& drop_pages = {}) {
    const std::byte* table = nullptr; // the token table's rows, when they are a typed view
    if constexpr (requires { w.embed_tokens.data_handle(); }) table = w.embed_tokens.data_handle();
    const auto pack = [&](auto& m) {
        if constexpr (nn::is_packed_weight<std::remove_cvref_t<decltype(m)>>) {
            if (m.repacked() || m.num_rows() == 0) return;
            const std::span<const std::byte> rows(m.rows.data_handle(), m.num_rows() * m.rows.row_stride_bytes());
            const bool looked_up = rows.data() == table; // the head tied to the token table
            const auto own = std::find_if(w.storage.begin(), w.storage.end(),
                                          [&](const aligned_buffer& b) { return b.data() == rows.data(); });
            const bool mapped = own == w.storage.end();
            // Mapped rows (a looked-up table's too: its rows come back from the
            // file as they are read) drop their pages slab by slab as they are
            // copied, so the copy and the file's pages are never both whole.
            m.repack(ex, mapped ? drop_pages : std::function<void(std::span<const std::byte>)>{});
            w.bytes.owned += m.groups->size_bytes();
            if (!mapped) {
                if (looked_up) return;
                w.bytes.owned -= own->size();
                *own = aligned_buffer();
            } else if (!looked_up) {
                w.bytes.mapped -= rows.size();
            }
        }
    };
    pack(w.lm_head);
    pack(w.per_layer_model_projection);
    for (layer_weights<P>& l : w.layers) {
        for (auto* m : {&l.q_proj, &l.k_proj, &l.v_proj, &l.o_proj}) pack(*m);
        for (auto* m : {&l.gate_proj, &l.up_proj, &l.down_proj}) pack(*m);
        pack(l.per_layer_input_gate);
        pack(l.per_layer_projection);
    }
}

} // namespace gemma4
QTENSOR_END_NAMESPACE
