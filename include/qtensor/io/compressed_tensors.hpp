// qtensor/io/compressed_tensors.hpp: checkpoints in the Compressed Tensors
// "pack-quantized" format (vLLM's w4a16 / w8a16 downloads): safetensors in
// which a quantized linear layer's weight W[N, K] is stored as
//
//   <p>.weight_packed       I32 [N, >= ceil(K * bits / 32)]  codes u = q + 2^(bits-1), 32 / bits per
//                                                            little-endian word, element 0 in the low
//                                                            bits, along K; padding u = 0
//   <p>.weight_shape        I32/I64 [2]                      {N, K}
//   <p>.weight_scale        F32/F16/BF16 [N, G]              G = ceil(K / group_size), or 1 per row
//   <p>.weight_zero_point   (asymmetric only) I8 [N, G] signed, or I32 [ceil(N * bits / 32), G]
//                           packed the same way along N
//   <p>.weight_g_idx        (optional) I32 [K]: the group of column k (-1 anywhere: column order)
//
// and config.json's "quantization_config" (older files: "compression_config")
// says how: quant_method "compressed-tensors", format "pack-quantized",
// config_groups with the weights' num_bits, symmetric, strategy, group_size.
// Unpacked: w[n][k] = (q - zp[n][g]) * scale[n][g], g = k / group_size.
//
// packed_weights presents every such weight as the tensor <p>.weight, decoded
// when first asked for (a multimodal checkpoint's towers are never decoded for
// its text model):
//   - symmetric, groups a multiple of 32 wide (or one per row), K a multiple
//     of 32 and every scale exact in fp16: 4 bits as Q4_0 blocks (d = scale,
//     code = u: Q4_0 unpacks (code - 8) * d = q * scale), 8 bits as Q8_0 blocks
//     (d = scale, code = q). These are the very values of the checkpoint's
//     grid, so converting it to Q4_0 / Q8_0 changes no weight;
//   - anything else: float32, (q - zp) * scale, exact for bf16 and f16 scales
//     (a 9-bit code difference times an 11-bit significand fits float32's 24
//     bits). The format's own dequantizer rounds the result to the scale's
//     dtype; this reader does not.
// Other formats of the family (marlin-24, int-/float-/naive-quantized, the
// FP4 and sparse ones), activation quantization, transforms, 3/5/6/7-bit
// packing (two incompatible layouts exist) and block strategies are refused
// with an error that says so.
#pragma once
#if !defined(QTENSOR_HAVE_JSON)
#error "qtensor/io/compressed_tensors.hpp needs nlohmann-json: configure qtensor with QTENSOR_WITH_JSON=ON"
#endif

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/core/half.hpp"
#include "qtensor/io/gguf_value.hpp"
#include "qtensor/io/json.hpp"
#include "qtensor/io/safetensors.hpp"
#include "qtensor/io/tensor_entry.hpp"
#include "qtensor/scheme/q4_0.hpp"
#include "qtensor/scheme/q8_0.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace io {

// How the packed weights of a checkpoint were quantized.
struct packed_weight_args {
    int bits = 4;               // 2, 4 or 8
    bool symmetric = true;      // zero point 0, not stored
    std::size_t group_size = 0; // columns per scale; 0: one scale per row ("channel")
};

namespace detail {

// quantization_config's weights arguments, checked; `where` names the file.
inline packed_weight_args packed_args_from_json(const nlohmann::json& w, const std::string& where) {
    const auto fail = [&](const std::string& what) -> packed_weight_args {
        throw error(where + ": Compressed Tensors weights " + what);
    };
    if (!w.is_object()) return fail("are not described (config_groups.*.weights is missing)");
    packed_weight_args a;
    // A key given as null counts as absent, as in the library that writes them.
    const auto get = [&]<class T>(const char* key, T fallback) -> T {
        const auto it = w.find(key);
        if (it == w.end() || it->is_null()) return fallback;
        if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
            const std::optional<std::int64_t> v = io::json_integer(*it);
            if (!v || *v < INT32_MIN || *v > INT32_MAX) fail(std::string(key) + " is not an integer");
            return static_cast<T>(*v);
        } else {
            return it->template get<T>();
        }
    };
    const auto text = [&](const char* key, const char* fallback) { return get(key, std::string(fallback)); };
    if (const std::string type = text("type", "int"); type != "int" && type != "INT")
        return fail("of type \"" + type + "\" are not supported (only int)");
    a.bits = get("num_bits", 8);
    if (a.bits != 2 && a.bits != 4 && a.bits != 8)
        return fail("of " + std::to_string(a.bits) + " bits are not supported (2, 4 or 8: other widths have "
                    "two incompatible packings)");
    a.symmetric = get("symmetric", true);
    const long long group = get("group_size", 0LL);
    const std::string strategy = text("strategy", group > 0 ? "group" : group == -1 ? "channel" : "tensor");
    if (strategy == "group") {
        if (group <= 0) return fail("use groups of " + std::to_string(group) + " columns");
        a.group_size = static_cast<std::size_t>(group);
    } else if (strategy != "channel") {
        return fail("use the \"" + strategy + "\" strategy (only group and channel are supported)");
    }
    if (const auto d = w.find("dynamic"); d != w.end() && !d->is_null() && !(d->is_boolean() && !d->get<bool>()))
        return fail("are dynamic (scales computed at run time): not a stored checkpoint");
    return a;
}

// Element i of a float tensor (F32, F16 or BF16).
inline float float_at(const tensor_entry& e, std::size_t i) {
    switch (e.type) {
    case ggml_type::f16: {
        fp16_t h;
        std::memcpy(&h, e.data.data() + 2 * i, 2);
        return fp16_to_fp32(h);
    }
    case ggml_type::bf16: {
        bf16_t h;
        std::memcpy(&h, e.data.data() + 2 * i, 2);
        return bf16_to_fp32(h);
    }
    default: return load_le<float>(e.data.data() + 4 * i);
    }
}

} // namespace detail

// The packed-weight arguments of a parsed config.json; nullopt when it is not
// a Compressed Tensors checkpoint. Throws for one this reader cannot read.
inline std::optional<packed_weight_args> compressed_tensors_args(const nlohmann::json& config,
                                                                 const std::string& where) {
    const nlohmann::json* q = nullptr;
    for (const char* key : {"quantization_config", "compression_config"}) // the second: older files
        if (const auto it = config.find(key); q == nullptr && it != config.end() && it->is_object()) q = &*it;
    if (q == nullptr || q->value("quant_method", std::string()) != "compressed-tensors") return std::nullopt;
    const auto fail = [&](const std::string& what) -> std::optional<packed_weight_args> {
        throw error(where + ": a Compressed Tensors checkpoint " + what);
    };
    const auto given = [](const nlohmann::json& j, const char* key) { // present, not null, not empty
        const auto it = j.find(key);
        return it != j.end() && !it->is_null() && !it->empty();
    };
    try {
        for (const char* key : {"sparsity_config", "transform_config"})
            if (given(*q, key)) return fail(std::string("with a ") + key + " (sparse or transformed weights) is not supported");
        if (given(*q, "kv_cache_scheme")) return fail("with a quantized KV cache (kv_cache_scheme) is not supported");
        if (const std::string status = q->value("quantization_status", std::string("compressed")); status != "compressed")
            return fail("whose quantization_status is \"" + status + "\" (not compressed) is not supported");
        const auto groups = q->find("config_groups");
        if (groups == q->end() || !groups->is_object() || groups->empty()) return fail("has no config_groups");
        if (groups->size() != 1) return fail("with several config_groups is not supported");
        const nlohmann::json& scheme = groups->begin().value();
        if (!scheme.is_object()) return fail("names a preset in config_groups (not supported: give its arguments)");
        std::string format;
        for (const nlohmann::json* j : {&scheme, q})
            if (const auto it = j->find("format"); format.empty() && it != j->end() && it->is_string())
                format = it->get<std::string>();
        if (format.empty()) return fail("has no format");
        if (format != "pack-quantized")
            return fail("in the \"" + format + "\" format is not supported (only pack-quantized)");
        for (const char* key : {"input_activations", "output_activations"})
            if (given(scheme, key)) return fail(std::string("that quantizes activations (") + key + ") is not supported");
        const auto weights = scheme.find("weights");
        return detail::packed_args_from_json(weights == scheme.end() ? nlohmann::json() : *weights, where);
    } catch (const nlohmann::json::exception& e) {
        throw error(where + ": quantization_config: " + e.what());
    }
}

// The packed weights of a checkpoint, unpacked (see the top of the file).
// `ck` must outlive it. find() decodes under a lock, so loaders may call it
// from several threads.
class packed_weights {
public:
    packed_weights(const safetensors_checkpoint& ck, const packed_weight_args& args) : ck_(&ck), args_(args) {
        constexpr std::string_view suffix = ".weight_packed", text = "model.language_model.";
        for (const raw_tensor& t : ck.tensors()) {
            if (!t.name.ends_with(suffix)) continue;
            const std::string prefix = t.name.substr(0, t.name.size() - suffix.size()), name = prefix + ".weight";
            if (ck.find_raw(name) != nullptr)
                throw error(ck.path() + ": " + prefix + " stores both weight and weight_packed");
            for (const char* part : {".weight_packed", ".weight_shape", ".weight_scale", ".weight_zero_point",
                                     ".weight_g_idx"})
                if (ck.find_raw(prefix + part) != nullptr) parts_.emplace(prefix + part);
            names_.push_back(name);
            by_name_.emplace(name, prefix);
            // As safetensors_checkpoint finds model.language_model.X as model.X, unless X is stored.
            if (name.starts_with(text))
                if (std::string alias = "model." + name.substr(text.size()); ck.find_raw(alias) == nullptr)
                    by_name_.emplace(std::move(alias), prefix);
        }
    }
    packed_weights(const packed_weights&) = delete;
    packed_weights& operator=(const packed_weights&) = delete;
    packed_weights(packed_weights&&) noexcept = default;
    packed_weights& operator=(packed_weights&&) noexcept = default;
    ~packed_weights() = default;

    // <p>.weight of a packed layer, decoded on first use; nullptr for any other name.
    const tensor_entry* find(std::string_view name) const {
        const auto it = by_name_.find(name);
        if (it == by_name_.end()) return nullptr;
        const std::lock_guard<std::mutex> lock(*mutex_);
        auto d = decoded_.find(it->second);
        if (d == decoded_.end()) d = decoded_.emplace(it->second, decode(it->second)).first;
        return &d->second.entry;
    }
    // The <p>.weight names, one per packed layer, as stored (not aliases).
    const std::vector<std::string>& names() const noexcept { return names_; }
    // Whether `stored` is one of the tensors a packed weight is made of.
    bool is_part(std::string_view stored) const { return parts_.find(stored) != parts_.end(); }

private:
    struct decoded {
        tensor_entry entry; // its data views `bytes` (a vector's buffer survives moves)
        std::vector<std::byte> bytes;
    };

    decoded decode(const std::string& prefix) const {
        const safetensors_checkpoint& ck = *ck_;
        const auto fail = [&](const std::string& what) { throw error(ck.path() + ": " + prefix + ": " + what); };
        const raw_tensor& packed = ck.raw(prefix + ".weight_packed");
        if (packed.dtype != "I32" || packed.shape.size() != 2)
            fail("weight_packed is " + packed.dtype + " of rank " + std::to_string(packed.shape.size()) +
                 ", expected I32 [N, words] (marlin-24 and the FP4 formats are not supported)");
        const raw_tensor* shape_t = ck.find_raw(prefix + ".weight_shape");
        if (shape_t == nullptr) fail("has weight_packed but no weight_shape");
        const std::vector<std::int64_t> shape = to_int64(*shape_t, ck.path());
        if (shape.size() != 2 || shape[0] <= 0 || shape[1] <= 0)
            fail("weight_shape must hold two sizes > 0 (a rank-2 weight)");
        const auto N = static_cast<std::size_t>(shape[0]), K = static_cast<std::size_t>(shape[1]);
        const auto bits = static_cast<std::size_t>(args_.bits);
        const std::size_t per_word = 32 / bits, words = K / per_word + (K % per_word != 0);
        if (packed.shape[0] != N || packed.shape[1] < words)
            fail("weight_packed is [" + std::to_string(packed.shape[0]) + ", " + std::to_string(packed.shape[1]) +
                 "], too small for a [" + std::to_string(N) + ", " + std::to_string(K) + "] weight of " +
                 std::to_string(bits) + " bits");
        const std::size_t G = args_.group_size == 0 ? 1 : K / args_.group_size + (K % args_.group_size != 0);
        const tensor_entry& scale = ck.at(prefix + ".weight_scale");
        if (scale.shape.size() != 2 || scale.shape[0] != N || scale.shape[1] != G)
            fail("weight_scale must be [" + std::to_string(N) + ", " + std::to_string(G) + "]");
        std::vector<float> scales(N * G);
        for (std::size_t i = 0; i < scales.size(); ++i) {
            scales[i] = detail::float_at(scale, i);
            if (!std::isfinite(scales[i])) fail("weight_scale[" + std::to_string(i) + "] is not finite");
        }

        // Column k's group; `mixed`: some block of 32 columns spans two groups.
        std::vector<std::size_t> group(K);
        for (std::size_t k = 0; k < K; ++k) group[k] = args_.group_size == 0 ? 0 : k / args_.group_size;
        if (const raw_tensor* g_idx = ck.find_raw(prefix + ".weight_g_idx")) {
            const std::vector<std::int64_t> g = to_int64(*g_idx, ck.path());
            if (g.size() != K) fail("weight_g_idx must hold " + std::to_string(K) + " group indices");
            if (std::find(g.begin(), g.end(), -1) == g.end()) // -1: not set, column order
                for (std::size_t k = 0; k < K; ++k) {
                    if (g[k] < 0 || static_cast<std::size_t>(g[k]) >= G)
                        fail("weight_g_idx[" + std::to_string(k) + "] = " + std::to_string(g[k]) +
                             " is not a group (0.." + std::to_string(G - 1) + ")");
                    group[k] = static_cast<std::size_t>(g[k]);
                }
        }
        bool mixed = false;
        for (std::size_t k = 0; k < K; ++k) mixed = mixed || group[k] != group[k - k % 32];

        const std::uint32_t mask = (1u << bits) - 1;
        const int offset = 1 << (bits - 1);
        const std::size_t row_bytes = packed.shape[1] * 4;
        const auto code = [&](std::size_t n, std::size_t k) { // u, 0 .. 2^bits - 1
            const std::span<const std::byte> row = packed.data.subspan(n * row_bytes, row_bytes);
            const std::uint32_t word = detail::load_le<std::uint32_t>(row.data() + 4 * (k / per_word));
            return static_cast<int>((word >> (k % per_word * bits)) & mask);
        };

        // Row n, group g's zero point as a stored code (the offsets cancel: (u - offset) - (z - offset)).
        std::vector<int> zero(N * G, offset);
        const raw_tensor* zp = ck.find_raw(prefix + ".weight_zero_point");
        if (zp == nullptr && !args_.symmetric) fail("is asymmetric but has no weight_zero_point");
        if (zp != nullptr) {
            const std::size_t rows = N / per_word + (N % per_word != 0);
            const std::vector<std::int64_t> z = to_int64(*zp, ck.path());
            if (zp->dtype == "I8" && zp->shape == std::vector<std::size_t>{N, G}) {
                for (std::size_t i = 0; i < N * G; ++i) zero[i] = static_cast<int>(z[i]) + offset;
            } else if (zp->dtype == "I32" && zp->shape == std::vector<std::size_t>{rows, G}) {
                for (std::size_t n = 0; n < N; ++n)
                    for (std::size_t g = 0; g < G; ++g)
                        zero[n * G + g] = static_cast<int>(
                            (static_cast<std::uint32_t>(z[n / per_word * G + g]) >> (n % per_word * bits)) & mask);
            } else {
                fail("weight_zero_point must be I8 [" + std::to_string(N) + ", " + std::to_string(G) +
                     "] or I32 [" + std::to_string(rows) + ", " + std::to_string(G) + "] (packed along N)");
            }
            if (args_.symmetric && std::any_of(zero.begin(), zero.end(), [&](int v) { return v != offset; }))
                fail("has non-zero zero points, but the config says the weights are symmetric");
        }

        decoded out;
        out.entry.name = prefix + ".weight";
        out.entry.shape = {N, K};
        const bool blocks = args_.symmetric && !mixed && K % 32 == 0 && args_.group_size % 32 == 0 &&
                            std::all_of(scales.begin(), scales.end(),
                                        [](float v) { return fp16_to_fp32(fp32_to_fp16(v)) == v; });
        if (blocks && bits == 4) {
            constexpr std::size_t half = q4_0::block_elems / 2;
            std::vector<block_q4_0> b(N * K / 32);
            for (std::size_t n = 0; n < N; ++n)
                for (std::size_t j = 0; j < K / 32; ++j) {
                    block_q4_0& y = b[n * K / 32 + j];
                    y.d = fp32_to_fp16(scales[n * G + group[32 * j]]);
                    for (std::size_t i = 0; i < half; ++i)
                        y.qs[i] = static_cast<std::uint8_t>(code(n, 32 * j + i) | code(n, 32 * j + i + half) << 4);
                }
            out.entry.type = ggml_type::q4_0;
            out.bytes.resize(b.size() * sizeof(block_q4_0));
            std::memcpy(out.bytes.data(), b.data(), out.bytes.size());
        } else if (blocks && bits == 8) {
            std::vector<block_q8_0> b(N * K / 32);
            for (std::size_t n = 0; n < N; ++n)
                for (std::size_t j = 0; j < K / 32; ++j) {
                    block_q8_0& y = b[n * K / 32 + j];
                    y.d = fp32_to_fp16(scales[n * G + group[32 * j]]);
                    for (std::size_t i = 0; i < 32; ++i) y.qs[i] = static_cast<std::int8_t>(code(n, 32 * j + i) - offset);
                }
            out.entry.type = ggml_type::q8_0;
            out.bytes.resize(b.size() * sizeof(block_q8_0));
            std::memcpy(out.bytes.data(), b.data(), out.bytes.size());
        } else {
            std::vector<float> w(N * K);
            for (std::size_t n = 0; n < N; ++n)
                for (std::size_t k = 0; k < K; ++k) {
                    const std::size_t g = n * G + group[k];
                    w[n * K + k] = static_cast<float>(code(n, k) - zero[g]) * scales[g];
                }
            out.entry.type = ggml_type::f32;
            out.bytes.resize(w.size() * sizeof(float));
            std::memcpy(out.bytes.data(), w.data(), out.bytes.size());
        }
        out.entry.data = std::span<const std::byte>(out.bytes);
        return out;
    }

    const safetensors_checkpoint* ck_;
    packed_weight_args args_;
    std::vector<std::string> names_;
    std::map<std::string, std::string, std::less<>> by_name_; // <p>.weight, or its model.* alias -> p
    std::set<std::string, std::less<>> parts_;
    std::unique_ptr<std::mutex> mutex_ = std::make_unique<std::mutex>();
    mutable std::map<std::string, decoded, std::less<>> decoded_; // by p
};

} // namespace io
QTENSOR_END_NAMESPACE
