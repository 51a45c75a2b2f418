// qtensor/gemma4/footprint.hpp: the bytes a Gemma 4 model takes in a
// policy's schemes, counted from its config alone (no weights needed):
// per part of the model, in total, as GGUF tensor data, what is resident when
// the file is memory-mapped, and the KV cache for a context (docs/footprint.md).
//
//   gemma4::storage_plan plan = gemma4::storage_plan::of<gemma4::q4_0_policy>();
//   plan.set("embedding", "q4_0");                    // what-if, counting only
//   gemma4::footprint f = gemma4::measure_footprint(config, plan, /*context*/ 4096);
//
// A storage_plan is a policy at run time: scheme names and block geometry
// per role. It only counts; running or converting a model needs a policy type
// (policy.hpp), whose schemes have kernels.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/gemma4/config.hpp"
#include "qtensor/gemma4/gguf.hpp"
#include "qtensor/gemma4/parameters.hpp"
#include "qtensor/gemma4/policy.hpp"
#include "qtensor/gemma4/qat.hpp"
#include "qtensor/io/gguf_value.hpp"
#include "qtensor/scheme/registry.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace gemma4 {

// How a tensor is stored: its scheme's name and block geometry.
struct stored_as {
    std::string_view scheme = f32::name;
    std::size_t block_elems = f32::block_elems;
    std::size_t block_bytes = f32::block_bytes;

    template <class S>
    static constexpr stored_as of() noexcept {
        return {S::name, S::block_elems, S::block_bytes};
    }
};

// The scheme of every role of a model, the KV cache's, and the one the
// vision and audio encoders are counted in (qtensor runs only the text
// model; their weights are counted from parameter counts, not shapes).
struct storage_plan {
    std::array<stored_as, 6> roles; // by weight_role; float32 is always f32
    stored_as kv_cache;
    stored_as encoders;

    // Named policy P's schemes; the encoders counted in its attention scheme.
    template <model_policy P>
    static storage_plan of() {
        storage_plan p;
        for (const weight_role r : {weight_role::attention, weight_role::mlp, weight_role::experts,
                                    weight_role::embedding, weight_role::per_layer, weight_role::float32})
            with_role_scheme<P>(r, [&]<class S>(S) { p[r] = stored_as::of<S>(); });
        p.kv_cache = stored_as::of<typename P::kv_cache>();
        p.encoders = stored_as::of<typename P::attention>();
        return p;
    }

    stored_as& operator[](weight_role r) noexcept { return roles[static_cast<std::size_t>(r)]; }
    const stored_as& operator[](weight_role r) const noexcept { return roles[static_cast<std::size_t>(r)]; }

    // Stores `part` (a role of policy.hpp: attention, mlp, experts, embedding,
    // per_layer, kv_cache; or encoders) in the registered scheme `scheme`.
    void set(std::string_view part, std::string_view scheme) {
        stored_as s;
        const bool known = visit_scheme(scheme, [&](auto t) {
            using S = decltype(t);
            if constexpr (activation_only_scheme<S>)
                throw error("storage_plan: " + std::string(S::name) + " is an activation format, not a storage one");
            else s = stored_as::of<S>();
        });
        if (!known) throw error("storage_plan: unknown scheme \"" + std::string(scheme) + "\"");
        if (part == "attention") (*this)[weight_role::attention] = s;
        else if (part == "mlp") (*this)[weight_role::mlp] = s;
        else if (part == "experts") (*this)[weight_role::experts] = s;
        else if (part == "embedding") (*this)[weight_role::embedding] = s;
        else if (part == "per_layer") (*this)[weight_role::per_layer] = s;
        else if (part == "kv_cache") kv_cache = s;
        else if (part == "encoders") encoders = s;
        else
            throw error("storage_plan: unknown part \"" + std::string(part) +
                        "\" (valid: attention, mlp, experts, embedding, per_layer, kv_cache, encoders)");
    }
};

// Parameters of the parts qtensor does not run: the vision and audio
// encoders of the multimodal checkpoints, as counts.
struct encoder_parameters {
    std::size_t vision = 0;
    std::size_t audio = 0;

    // From "qtensor_encoder_parameters": {"vision": N, "audio": N} in a parsed
    // config.json (the configs in docs/configs/ carry it); none when absent.
    static encoder_parameters from_hf_json(const nlohmann::json& j) {
        const auto e = j.find("qtensor_encoder_parameters");
        if (e == j.end()) return {};
        if (!e->is_object()) throw error("config: qtensor_encoder_parameters is not an object");
        const auto count = [&](const char* key) -> std::size_t {
            const auto v = e->find(key);
            if (v == e->end()) return 0;
            if (!v->is_number_unsigned())
                throw error(std::string("config: qtensor_encoder_parameters.") + key + " is not a non-negative integer");
            return v->get<std::size_t>();
        };
        return {count("vision"), count("audio")};
    }
};

// One part of the model. resident: the bytes a memory-mapped run touches
// over `context` tokens (a lookup table only the rows of the tokens it sees,
// at most context rows; everything else whole).
struct footprint_part {
    std::string name;
    std::string_view scheme;
    std::size_t tensors = 0;
    std::size_t parameters = 0;
    std::size_t bytes = 0;
    std::size_t resident = 0;
};

struct footprint {
    std::vector<footprint_part> parts; // the parts the model has, in model order
    std::size_t parameters = 0;
    std::size_t bytes = 0;             // the weights
    std::size_t resident = 0;
    std::size_t tensor_data = 0;       // the data section of write_gguf's file: the weights and
                                       // rope_freqs, each padded to 32 bytes
    std::size_t context = 0;
    std::size_t kv_cache = 0;          // K and V rows for `context` tokens, as kv_cache allocates them
};

namespace detail {

inline std::size_t stored_row_bytes(const stored_as& s, std::size_t cols, const std::string& tensor) {
    if (cols % s.block_elems != 0)
        throw error("footprint: " + tensor + " has rows of " + std::to_string(cols) + " elements, not whole " +
                    std::string(s.scheme) + " blocks of " + std::to_string(s.block_elems) +
                    "; pick another scheme for its role");
    return cols / s.block_elems * s.block_bytes;
}

// Bytes of n values counted as whole blocks (encoders, whose rows are unknown).
inline std::size_t counted_bytes(const stored_as& s, std::size_t n) {
    return (n + s.block_elems - 1) / s.block_elems * s.block_bytes;
}

} // namespace detail

// Counts the model of `c` stored as `plan`, with the KV cache for `context`
// tokens. Throws when a role's scheme cannot hold a tensor's rows.
inline footprint measure_footprint(const config& c, const storage_plan& plan, std::size_t context,
                                   const encoder_parameters& encoders = {}) {
    footprint f;
    f.context = context;
    const auto part = [&](std::string name, std::string_view scheme) -> footprint_part& {
        for (footprint_part& p : f.parts)
            if (p.name == name) return p;
        return f.parts.emplace_back(footprint_part{std::move(name), scheme});
    };
    for (const parameter_shape& s : parameter_shapes(c)) {
        const stored_as& as = plan[s.role];
        const std::size_t cols = s.shape.back(), rows = s.elements() / cols;
        const std::size_t row = detail::stored_row_bytes(as, cols, s.name), bytes = rows * row;
        // A token table is read a row per token, unless it is also the LM head.
        const bool per_layer_table = s.name == "model.embed_tokens_per_layer.weight";
        const bool looked_up = per_layer_table || (s.name == "model.embed_tokens.weight" && !c.tie_word_embeddings);
        const char* name = "norms, scales, router";
        switch (s.role) {
        case weight_role::attention: name = "attention"; break;
        case weight_role::mlp: name = "mlp"; break;
        case weight_role::experts: name = "experts"; break;
        case weight_role::embedding: name = per_layer_table ? "per-layer table" : "token table"; break;
        case weight_role::per_layer: name = "per-layer projections"; break;
        case weight_role::float32: break;
        }
        footprint_part& p = part(name, as.scheme);
        p.tensors += 1;
        p.parameters += s.elements();
        p.bytes += bytes;
        p.resident += looked_up ? std::min(context, rows) * row : bytes;
        f.tensor_data += io::detail::pad_to(bytes, io::detail::gguf_default_alignment);
    }
    const std::size_t rope_freqs = rope_freq_factors(c).size() * sizeof(float);
    if (rope_freqs != 0) f.tensor_data += io::detail::pad_to(rope_freqs, io::detail::gguf_default_alignment);
    for (const auto& [name, n] : {std::pair{"vision encoder", encoders.vision}, std::pair{"audio encoder", encoders.audio}}) {
        if (n == 0) continue;
        const std::size_t bytes = detail::counted_bytes(plan.encoders, n);
        f.parts.push_back({name, plan.encoders.scheme, 0, n, bytes, bytes});
    }
    for (const footprint_part& p : f.parts) {
        f.parameters += p.parameters;
        f.bytes += p.bytes;
        f.resident += p.resident;
    }
    for (const layer_info& li : c.layers()) {
        if (!li.has_kv || context == 0) continue;
        const std::size_t slots = li.is_sliding ? std::min(c.sliding_window, context) : context;
        f.kv_cache += 2 * slots * li.kv_heads * detail::stored_row_bytes(plan.kv_cache, li.head_dim, "the KV cache");
    }
    return f;
}

} // namespace gemma4
QTENSOR_END_NAMESPACE
