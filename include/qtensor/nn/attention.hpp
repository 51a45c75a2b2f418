// qtensor/nn/attention.hpp: causal (optionally sliding-window) multi-head
// attention with grouped KV heads, reading keys and values stored in any
// scheme (a KV cache, or this call's freshly computed rows).
//
// Query head h reads KV head h / G (G = H / kv_heads: each KV head serves G
// consecutive query heads). A query at position t sees the keys at positions
// u <= t, and with a window W only t - W < u <= t. Scores are dot products
// times `scale`, softmaxed in float32; masked keys are skipped, which is the
// same as a score of -inf.
#pragma once

#include <algorithm>
#include <cstddef>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/kernels/executor.hpp"
#include "qtensor/nn/ops.hpp"
#include "qtensor/scheme/float.hpp"
#include "qtensor/scheme/scheme.hpp"
#include "qtensor/tensor/tensor_view.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace nn {

// Keys and values of the positions [begin, end): position p sits in slot
// (p - base) % slots of k and v. A ring buffer of the last W positions has
// base 0 and W slots; the rows of the current call have base = its first position.
template <class KV>
    requires scheme<KV>
struct kv_rows {
    tensor_view<const KV, 3> k; // [slots, kv_heads, d]
    tensor_view<const KV, 3> v; // [slots, kv_heads, d]
    std::size_t begin = 0;
    std::size_t end = 0;
    std::size_t base = 0;
};

// q[T, H, d], pos[T] (absolute positions) -> out[T, H, d]. `window` = 0: causal
// only. Every query must see at least one key.
template <class KV>
    requires scheme<KV>
void attention(std::span<const float> q, std::span<const std::size_t> pos, std::size_t heads,
               std::span<const kv_rows<KV>> kv, std::size_t window, float scale,
               std::span<float> out, const kernels::executor& ex = {}) {
    if (kv.empty()) throw error("nn::attention: no keys");
    const std::size_t kv_heads = kv[0].k.extent(1), d = kv[0].k.extent(2);
    for (const kv_rows<KV>& b : kv)
        if (b.k.extents() != b.v.extents() || b.k.extent(1) != kv_heads || b.k.extent(2) != d ||
            (b.end > b.begin && b.end - b.begin > b.k.extent(0)))
            throw error("nn::attention: key/value blocks of shapes " + b.k.extents().to_string() +
                        " and " + b.v.extents().to_string() + " for " +
                        std::to_string(b.end - b.begin) + " positions do not agree");
    if (heads == 0 || heads % kv_heads != 0)
        throw error("nn::attention: " + std::to_string(heads) +
                    " query heads are not a multiple of " + std::to_string(kv_heads) + " KV heads");
    const std::size_t tokens = pos.size(), group = heads / kv_heads;
    detail::check_size("attention", "q", q.size(), tokens * heads * d);
    detail::check_size("attention", "out", out.size(), tokens * heads * d);

    // The keys of query t are at positions [lo, hi).
    const auto range = [&](std::size_t t) {
        const std::size_t hi = pos[t] + 1;
        return std::pair{window != 0 && hi > window ? hi - window : 0, hi};
    };
    for (std::size_t t = 0; t < tokens; ++t) {
        // Variables, not a structured binding: clang before 16 cannot capture one in a lambda.
        const auto r = range(t);
        const std::size_t lo = r.first, hi = r.second;
        if (std::none_of(kv.begin(), kv.end(), [&](const kv_rows<KV>& b) {
                return std::max(lo, b.begin) < std::min(hi, b.end);
            }))
            throw error("nn::attention: the query at position " + std::to_string(pos[t]) +
                        " sees no key");
    }

    // One task per (token, KV head): its G query heads share every key row read.
    ex.run(tokens * kv_heads, [&](std::size_t task) {
        const std::size_t t = task / kv_heads, g = task % kv_heads;
        const auto [lo, hi] = range(t);

        struct key { const kv_rows<KV>* block; std::size_t row; };
        std::vector<key> keys;
        for (const kv_rows<KV>& b : kv) {
            const std::size_t slots = b.k.extent(0);
            for (std::size_t u = std::max(lo, b.begin); u < std::min(hi, b.end); ++u)
                keys.push_back({&b, ((u - b.base) % slots) * kv_heads + g});
        }

        // A key or value row as floats: in place for f32, widened otherwise.
        std::vector<float> wide(d);
        const auto row_of = [&](const tensor_view<const KV, 3>& m, std::size_t r) -> std::span<const float> {
            if constexpr (std::is_same_v<KV, qtensor::f32>) {
                return {m.blocks(r).data(), d};
            } else {
                KV::dequantize_row(m.blocks(r).data(), wide.data(), d);
                return wide;
            }
        };

        const std::size_t n = keys.size();
        std::vector<float> p(group * n); // p[G, n]: scores, then probabilities
        for (std::size_t j = 0; j < n; ++j) {
            const std::span<const float> k = row_of(keys[j].block->k, keys[j].row);
            for (std::size_t i = 0; i < group; ++i)
                p[i * n + j] = scale * dot(q.subspan(((t * heads) + g * group + i) * d, d), k);
        }
        for (std::size_t i = 0; i < group; ++i) softmax(std::span<float>(p).subspan(i * n, n));

        std::span<float> o = out.subspan((t * heads + g * group) * d, group * d);
        std::fill(o.begin(), o.end(), 0.0f);
        for (std::size_t j = 0; j < n; ++j) {
            const std::span<const float> v = row_of(keys[j].block->v, keys[j].row);
            for (std::size_t i = 0; i < group; ++i) axpy(p[i * n + j], v, o.subspan(i * d, d));
        }
    });
}

} // namespace nn
QTENSOR_END_NAMESPACE
