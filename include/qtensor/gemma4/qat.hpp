// qtensor/gemma4/qat.hpp: quantization-aware training of a Gemma 4 model
// under a policy (policy.hpp). The master weights stay float32; the forward
// sees each weight as its policy's scheme stores it:
//
//   forward:  w_seen = dequantize<S>(quantize<S>(w)), S = the scheme of w's
//             role in P (fake_quant<S> for a quantized scheme, bf16/f16
//             rounding for a float one, w itself for f32);
//   backward: dL/dw = dL/dw_seen where the quantizer did not clip w, else 0
//             (the straight-through estimator with the clip mask).
//
// Packing the master weights under P (qtensor convert --policy P, or
// load_weights<P>) writes exactly w_seen: the rehearsal's rounding is the
// packer's, bit for bit (kernels::fake_quant_row<S> equals fake_quant<S>,
// which is S's quantize then dequantize), so the exported model is the model
// that was trained.
//
// q4_0_rule::symmetric rounds the Q4_0 roles on the symmetric amax / 7 grid
// instead (q4_0_symmetric.hpp): the weights the forward sees then sit on grids
// that ggml's rule re-rounds and `convert --lattice` keeps (docs/qat.md,
// "Lattice alignment").
//
//   gemma4::rehearsal<gemma4::q4_0_policy> qat(config);
//   qat.forward(master, seen);                           // before each step
//   auto r = gemma4::loss_and_gradients(config, seen, ids, seq, ex);
//   qat.backward(r.grads);                               // now d loss / d master
//
// Static activations rehearse too: loss_and_gradients(..., ex,
// qat.activation_scales(scales)) takes the inputs of P's quantized products
// as a model with set_activation_scales(scales) takes them (gradients.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/gemma4/activation_sites.hpp"
#include "qtensor/gemma4/config.hpp"
#include "qtensor/gemma4/parameters.hpp"
#include "qtensor/gemma4/policy.hpp"
#include "qtensor/kernels/executor.hpp"
#include "qtensor/kernels/matmul.hpp"
#include "qtensor/kernels/quant.hpp"
#include "qtensor/scheme/fake_quant.hpp"
#include "qtensor/scheme/q4_0_symmetric.hpp"
#include "qtensor/train/tensors.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace gemma4 {

// How the forward rounds the weights of a Q4_0 role.
enum class q4_0_rule {
    ggml,      // ggml's quantizer (d = max / -8): packing is exact
    symmetric, // d = amax / 7, codes -7..7: `convert --lattice` packs the seen weights exactly
};

template <typed_policy P>
class rehearsal {
public:
    explicit rehearsal(const config& c, q4_0_rule rule = q4_0_rule::ggml) : shapes_(parameter_shapes(c)), rule_(rule) {
        for (const parameter_shape& s : shapes_)
            with_role_scheme<P>(s.role, [&]<class S>(S) {
                if (s.shape.back() % S::block_elems != 0)
                    throw error("gemma4::rehearsal: " + s.name + " has rows of " + std::to_string(s.shape.back()) +
                                " elements, not whole " + std::string(S::name) + " blocks of " +
                                std::to_string(S::block_elems) + "; pick a policy with another scheme for this role");
            });
    }

    // seen = every master weight as the policy stores it; keeps the clip masks.
    // Blocks are independent: split over ex, the result is the same.
    void forward(const tensors<float>& master, tensors<float>& seen, const kernels::executor& ex = {}) {
        check_parameters("gemma4::rehearsal", master, shapes_);
        struct tensor_view {
            const float* w;
            float* y;
            std::uint8_t* mask; // quantized roles
        };
        std::vector<tensor_view> views;
        std::vector<std::size_t> sizes;
        for (const parameter_shape& s : shapes_) { // every output sized first: the tasks only write into them
            const std::vector<float>& w = master.find(s.name)->second;
            std::vector<float>& y = seen[s.name];
            y.resize(w.size());
            std::uint8_t* mask = nullptr;
            with_role_scheme<P>(s.role, [&]<class S>(S) {
                if constexpr (quantized_scheme<S>) {
                    std::vector<std::uint8_t>& m = masks_[s.name];
                    m.resize(w.size());
                    mask = m.data();
                }
            });
            views.push_back({w.data(), y.data(), mask});
            sizes.push_back(w.size());
        }
        const std::vector<train::piece> pieces = train::pieces_of(sizes);
        // A weight the scheme refuses (NaN, a scale past fp16) fails its
        // piece; the first such piece's error is thrown, naming the tensor.
        std::vector<std::exception_ptr> failed(pieces.size());
        ex.run(pieces.size(), [&](std::size_t i) {
            const train::piece& piece = pieces[i];
            const tensor_view& v = views[piece.tensor];
            const std::size_t n = piece.end - piece.begin;
            const std::span<const float> w(v.w + piece.begin, n);
            const std::span<float> y(v.y + piece.begin, n);
            try {
                with_role_scheme<P>(shapes_[piece.tensor].role, [&]<class S>(S) {
                    static_assert(train::piece_elems % S::block_elems == 0);
                    if constexpr (quantized_scheme<S>) {
                        const std::span<std::uint8_t> mask(v.mask + piece.begin, n);
                        if constexpr (std::is_same_v<S, q4_0>)
                            if (rule_ == q4_0_rule::symmetric)
                                return kernels::fake_quant_row<q4_0_symmetric>(w, y, mask);
                        kernels::fake_quant_row<S>(w, y, mask);
                    } else {
                        std::vector<typename S::block_type> packed(w.size());
                        S::quantize_row(w.data(), packed.data(), w.size());
                        S::dequantize_row(packed.data(), y.data(), w.size());
                    }
                });
            } catch (...) {
                failed[i] = std::current_exception();
            }
        });
        for (std::size_t i = 0; i < pieces.size(); ++i) {
            if (!failed[i]) continue;
            try {
                std::rethrow_exception(failed[i]);
            } catch (const error& e) {
                throw error("gemma4::rehearsal: " + shapes_[pieces[i].tensor].name + ", from element " +
                            std::to_string(pieces[i].begin) + ": " + std::string(e.message()));
            }
        }
    }

    // grads: d loss / d seen in, d loss / d master out (zero where clipped).
    void backward(tensors<float>& grads, const kernels::executor& ex = {}) const {
        std::vector<std::pair<float*, const std::uint8_t*>> views;
        std::vector<std::size_t> sizes;
        for (const auto& [name, mask] : masks_) {
            const auto it = grads.find(name);
            if (it == grads.end()) continue; // not trained (no gradient)
            if (it->second.size() != mask.size())
                throw error("gemma4::rehearsal: the gradient of " + name + " has " +
                            std::to_string(it->second.size()) + " elements, the weight " +
                            std::to_string(mask.size()));
            views.emplace_back(it->second.data(), mask.data());
            sizes.push_back(mask.size());
        }
        const std::vector<train::piece> pieces = train::pieces_of(sizes);
        ex.run(pieces.size(), [&](std::size_t i) {
            const auto [t, begin, end] = pieces[i];
            const auto [g, mask] = views[t];
            for (std::size_t j = begin; j < end; ++j) g[j] = mask[j] ? 0.0f : g[j]; // no branch: vectorizes
        });
    }

    // `scales` (static activation scales, activation_sites.hpp) where P
    // quantizes the site's weights, 0 where they stay float: a float
    // product takes its input float, in the model as here.
    static activation_sites activation_scales(activation_sites scales) {
        if (scales.size() == 0) return scales;
        using enum layer_site;
        constexpr std::pair<layer_site, weight_role> roles[] = {
            {attention, weight_role::attention}, {o_proj, weight_role::attention},
            {mlp, weight_role::mlp}, {down_proj, weight_role::mlp},
            {per_layer_input_gate, weight_role::per_layer}, {per_layer_projection, weight_role::per_layer}};
        for (std::size_t l = 0; l < scales.layers(); ++l)
            for (const auto& [site, role] : roles)
                if (!quantizes(role)) scales.at(l, site) = 0.0f;
        if (!quantizes(weight_role::per_layer)) scales.at(model_site::per_layer_model_projection) = 0.0f;
        if (!quantizes(weight_role::embedding)) scales.at(model_site::lm_head) = 0.0f; // tied or not
        return scales;
    }

private:
    static bool quantizes(weight_role r) {
        return with_role_scheme<P>(r, []<class S>(S) { return kernels::gemm_quantized_scheme<S>; }); // as nn::linear
    }

    std::vector<parameter_shape> shapes_;
    q4_0_rule rule_;
    tensors<std::uint8_t> masks_; // per quantized weight: 1 where its code was clamped
};

} // namespace gemma4
QTENSOR_END_NAMESPACE
