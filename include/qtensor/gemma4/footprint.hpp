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
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/gemma4/config.hpp"
#include "qtensor/gemma4/names.hpp"
#include "qtensor/gemma4/parameters.hpp"
#include "qtensor/gemma4/policy.hpp"
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
    std::array<stored_as, weight_roles> roles; // by weight_role; float32 is always f32
    stored_as kv_cache;
    stored_as encoders;

    // Named policy P's schemes; the encoders counted in its attention scheme.
    template <typed_policy P>
    static storage_plan of() {
        storage_plan p;
        for (std::size_t r = 0; r < weight_roles; ++r)
            with_role_scheme<P>(static_cast<weight_role>(r), [&]<class S>(S) { p.roles[r] = stored_as::of<S>(); });
        p.kv_cache = stored_as::of<typename P::kv_cache>();
        p.encoders = stored_as::of<typename P::attention>();
        return p;
    }

    stored_as& operator[](weight_role r) noexcept { return roles[static_cast<std::size_t>(r)]; }
    const stored_as& operator[](weight_role r) const noexcept { return roles[static_cast<std::size_t>(r)]; }

    // Stores `part` in the registered scheme `scheme`. Parts: the roles of
    // policy.hpp (attention, mlp, experts; embedding: the token table and the
    // per-layer table; per_layer: the per-layer projections), kv_cache (f32,
    // bf16 or q8_0, what kv_cache holds), encoders.
    void set(std::string_view part, std::string_view scheme) {
        stored_as* target = part == "attention"   ? &(*this)[weight_role::attention]
                            : part == "mlp"       ? &(*this)[weight_role::mlp]
                            : part == "experts"   ? &(*this)[weight_role::experts]
                            : part == "embedding" ? &(*this)[weight_role::embedding]
                            : part == "per_layer" ? &(*this)[weight_role::per_layer]
                            : part == "kv_cache"  ? &kv_cache
                            : part == "encoders"  ? &encoders
                                                  : nullptr;
        if (target == nullptr)
            throw error("storage_plan: unknown part \"" + std::string(part) +
                        "\" (valid: attention, mlp, experts, embedding, per_layer, kv_cache, encoders)");
        const bool known = visit_scheme(scheme, [&](auto t) {
            using S = decltype(t);
            if constexpr (activation_only_scheme<S>)
                throw error("storage_plan: " + std::string(S::name) + " is an activation format, not a storage one");
            else if (target == &kv_cache && !kv_scheme<S>)
                throw error("storage_plan: the KV cache is f32, bf16 or q8_0, not " + std::string(S::name));
            else *target = stored_as::of<S>();
        });
        if (!known) throw error("storage_plan: unknown scheme \"" + std::string(scheme) + "\"");
    }
};

// Parameters of the parts qtensor does not run: the vision and audio
// encoders of the multimodal checkpoints, as counts.
struct encoder_parameters {
    std::size_t vision = 0;
    std::size_t audio = 0;

    // Far above any released encoder (550 M), far below what would overflow a count of bytes.
    static constexpr std::size_t max_count = std::size_t{1} << 40;

    // From the key "qtensor_encoder_parameters": {"vision": N, "audio": N}
    // of a parsed config (docs/configs/ carry it; Hugging Face's do not); none
    // when absent.
    static encoder_parameters from_json(const nlohmann::json& j) {
        const auto e = j.find("qtensor_encoder_parameters");
        if (e == j.end()) return {};
        if (!e->is_object()) throw error("config: qtensor_encoder_parameters is not an object");
        const auto count = [&](const char* key) -> std::size_t {
            const auto v = e->find(key);
            if (v == e->end()) return 0;
            if (!v->is_number_unsigned() || v->get<std::size_t>() > max_count)
                throw error(std::string("config: qtensor_encoder_parameters.") + key +
                            " is not a count from 0 to 2^40");
            return v->get<std::size_t>();
        };
        return {count("vision"), count("audio")};
    }
};

// One part of the model. resident: the bytes a memory-mapped run over
// `context` tokens touches (see measure_footprint).
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
    std::size_t bytes = 0;             // the weights, encoders included
    std::size_t resident = 0;          // of the text model's file
    std::size_t tensor_data = 0;       // the data section of write_gguf's file: the text model's
                                       // weights and rope_freqs, each padded to 32 bytes
    std::size_t context = 0;
    std::size_t kv_cache = 0;          // K and V rows for `context` tokens, as kv_cache allocates them
};

// The page a memory mapping is read in (x86-64 and most ARM64 kernels).
inline constexpr std::size_t mapped_page_bytes = 4096;

namespace detail {

inline std::size_t stored_row_bytes(const stored_as& s, std::size_t cols, const std::string& tensor) {
    if (cols % s.block_elems != 0)
        throw error("footprint: " + tensor + " has rows of " + std::to_string(cols) + " elements, not whole " +
                    std::string(s.scheme) + " blocks of " + std::to_string(s.block_elems) +
                    "; pick another scheme for its role");
    return cols / s.block_elems * s.block_bytes;
}

} // namespace detail

// Counts the model of `c` stored as `plan`, with the KV cache for `context`
// tokens (at most the model's context). Throws when a role's scheme cannot
// hold a tensor's rows.
//
// Resident, of the memory-mapped text model: a lookup table (the per-layer
// table, and the token table when it is not also the LM head) costs the
// pages its rows for `context` distinct tokens touch, each row counted as
// the whole pages it spans plus one it may straddle; everything else counts
// whole, experts included (a long run reaches every expert). Read-ahead by
// the kernel can add to the tables' share.
inline footprint measure_footprint(const config& c, const storage_plan& plan, std::size_t context,
                                   const encoder_parameters& encoders = {}) {
    if (context > c.max_position_embeddings)
        throw error("footprint: " + std::to_string(context) + " positions exceed the model's context of " +
                    std::to_string(c.max_position_embeddings));
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
        const std::size_t row_pages = (row + mapped_page_bytes - 1) / mapped_page_bytes + 1;
        p.resident += looked_up ? std::min(bytes, std::min(context, rows) * row_pages * mapped_page_bytes) : bytes;
        f.tensor_data += io::detail::pad_to(bytes, io::detail::gguf_default_alignment);
    }
    const std::size_t rope_freqs = rope_freq_factors(c).size() * sizeof(float);
    if (rope_freqs != 0) f.tensor_data += io::detail::pad_to(rope_freqs, io::detail::gguf_default_alignment);
    for (const auto& [name, n] : {std::pair{"vision encoder", encoders.vision}, std::pair{"audio encoder", encoders.audio}}) {
        if (n == 0) continue;
        // Whole blocks; the rows are unknown, so this may miss a partial block per row.
        const std::size_t bytes = (n + plan.encoders.block_elems - 1) / plan.encoders.block_elems * plan.encoders.block_bytes;
        f.parts.push_back({name, plan.encoders.scheme, 0, n, bytes, 0});
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
