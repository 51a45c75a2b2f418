// qtensor/gemma4/kv_cache.hpp: the per-layer key/value cache of a Gemma 4
// decoder, in the KV scheme of the policy.
//
// Full-attention layers keep every position up to the capacity; sliding
// layers keep only the last W (sliding_window) in a ring buffer, position p in
// slot p % W; KV-shared layers keep nothing (they read their source layer's).
// K and V are stored as rows of one head: [slots, K_l, d_l], so d_l must be a
// whole number of the scheme's blocks.
//
// The cache holds the positions [0, positions()). A model call appends its
// tokens' K/V only after all its layers ran: within the call, KV-shared layers
// still need the source layer's older positions that the new ones would
// overwrite in a ring buffer (a prefill longer than W).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/gemma4/config.hpp"
#include "qtensor/gemma4/policy.hpp"
#include "qtensor/nn/attention.hpp"
#include "qtensor/tensor/tensor.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace gemma4 {

template <class KV>
    requires kv_scheme<KV>
class kv_cache {
public:
    using scheme_type = KV;

    // Room for `max_positions` tokens, for the layers of `c`. Throws when a
    // head dim is not a whole number of KV blocks.
    kv_cache(const config& c, std::size_t max_positions) : capacity_(max_positions) {
        if (max_positions == 0) throw error("kv_cache: max_positions must be positive");
        const std::vector<layer_info> layers = c.layers();
        check_head_dims(layers);
        for (const layer_info& li : layers) {
            layer_cache& lc = layers_.emplace_back();
            lc.kv_heads = li.kv_heads;
            lc.head_dim = li.head_dim;
            if (!li.has_kv) continue;
            const std::size_t slots = li.is_sliding ? std::min(c.sliding_window, max_positions) : max_positions;
            lc.k = tensor<KV, 3>({slots, li.kv_heads, li.head_dim});
            lc.v = tensor<KV, 3>({slots, li.kv_heads, li.head_dim});
        }
    }

    // Throws unless every layer's head dim is a whole number of KV blocks.
    static void check_head_dims(const std::vector<layer_info>& layers) {
        for (std::size_t l = 0; l < layers.size(); ++l)
            if (layers[l].head_dim % KV::block_elems != 0)
                throw error("kv_cache: layer " + std::to_string(l) + " has head_dim " +
                            std::to_string(layers[l].head_dim) + ", not a multiple of the " +
                            std::string(KV::name) + " block size " + std::to_string(KV::block_elems) +
                            "; a " + std::string(KV::name) +
                            " KV cache cannot hold its rows (use a policy with an f32 or bf16 KV cache)");
    }

    std::size_t positions() const noexcept { return positions_; }
    std::size_t capacity() const noexcept { return capacity_; }
    std::size_t num_layers() const noexcept { return layers_.size(); }
    // Forgets every position; keeps the storage.
    void clear() noexcept { positions_ = 0; }

    // Bytes of K/V storage.
    std::size_t bytes() const noexcept {
        std::size_t n = 0;
        for (const layer_cache& lc : layers_) n += lc.k.size_bytes() + lc.v.size_bytes();
        return n;
    }

    // Whether layer l stores its own K/V, and its geometry.
    bool stores(std::size_t l) const { return layer(l).k.num_rows() != 0; }
    std::size_t kv_heads(std::size_t l) const { return layer(l).kv_heads; }
    std::size_t head_dim(std::size_t l) const { return layer(l).head_dim; }

    // Throws unless `count` more positions fit.
    void check_room(std::size_t count) const {
        if (count > capacity_ - positions_)
            throw error("kv_cache: holds " + std::to_string(positions_) + " of " +
                        std::to_string(capacity_) + " positions, no room for " + std::to_string(count) +
                        " more");
    }

    // The K/V rows layer l holds: positions [positions() - min(positions(), slots), positions()).
    nn::kv_rows<KV> past(std::size_t l) const {
        const layer_cache& lc = layer(l);
        if (!stores(l)) throw error("kv_cache: layer " + std::to_string(l) + " stores no K/V");
        const std::size_t slots = lc.k.extent(0);
        return {lc.k.view(), lc.v.view(), positions_ - std::min(positions_, slots), positions_, 0};
    }

    // Writes the K/V rows k, v [T, K_l, d_l] of positions [positions(),
    // positions() + T) into layer l (a ring keeps the last W). Call for every
    // storing layer, then advance(T).
    void write(std::size_t l, tensor_view<const KV, 3> k, tensor_view<const KV, 3> v) {
        layer_cache& lc = layer(l);
        const std::size_t tokens = k.extent(0), slots = lc.k.extent(0);
        if (!stores(l) || k.extents() != v.extents() || k.extent(1) != lc.kv_heads || k.extent(2) != lc.head_dim)
            throw error("kv_cache: rows of shape " + k.extents().to_string() + " do not fit layer " +
                        std::to_string(l));
        check_room(tokens);
        const std::size_t row = lc.kv_heads * lc.k.row_bytes(); // one position: K_l head rows
        for (std::size_t t = tokens - std::min(tokens, slots); t < tokens; ++t) {
            const std::size_t slot = (positions_ + t) % slots;
            std::memcpy(lc.k.data_handle() + slot * row, k.data_handle() + t * row, row);
            std::memcpy(lc.v.data_handle() + slot * row, v.data_handle() + t * row, row);
        }
    }

    void advance(std::size_t count) {
        check_room(count);
        positions_ += count;
    }

private:
    struct layer_cache {
        std::size_t kv_heads = 0, head_dim = 0;
        tensor<KV, 3> k, v; // [slots, K_l, d_l]; empty on KV-shared layers
    };

    const layer_cache& layer(std::size_t l) const {
        if (l >= layers_.size())
            throw error("kv_cache: no layer " + std::to_string(l) + " (" + std::to_string(layers_.size()) +
                        " layers)");
        return layers_[l];
    }
    layer_cache& layer(std::size_t l) { return const_cast<layer_cache&>(std::as_const(*this).layer(l)); }

    std::vector<layer_cache> layers_;
    std::size_t capacity_ = 0;
    std::size_t positions_ = 0;
};

} // namespace gemma4
QTENSOR_END_NAMESPACE
