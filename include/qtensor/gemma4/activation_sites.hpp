// qtensor/gemma4/activation_sites.hpp: the inputs of the products a Gemma 4
// model runs ("sites"), a number for each: the largest magnitude a
// calibration saw there, or the fixed scale of static int8 activations
// (scheme/static_activation.hpp). Per layer l, by name:
//
//   layers.<l>.attention              x into q_proj, k_proj and v_proj
//   layers.<l>.o_proj                 the attention's output into o_proj
//   layers.<l>.mlp                    x into gate_proj and up_proj
//   layers.<l>.down_proj              the GeGLU's output into down_proj
//   layers.<l>.per_layer_input_gate   h into per_layer_input_gate (PLE models)
//   layers.<l>.per_layer_projection   the gated input into per_layer_projection
//
// and for the model: per_layer_model_projection (the scaled embedding into
// it, PLE models) and lm_head (the final hidden state). The MoE experts and
// the router take their inputs as before (a scale per block).
//
// Its JSON form (activation_sites_json.hpp) is what `qtensor calibrate`
// writes and --scales reads.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/scheme/static_activation.hpp"


QTENSOR_BEGIN_NAMESPACE
namespace gemma4 {

enum class layer_site { attention, o_proj, mlp, down_proj, per_layer_input_gate, per_layer_projection };
enum class model_site { per_layer_model_projection, lm_head };

inline constexpr std::array<std::string_view, 6> layer_site_names{
    "attention", "o_proj", "mlp", "down_proj", "per_layer_input_gate", "per_layer_projection"};
inline constexpr std::array<std::string_view, 2> model_site_names{"per_layer_model_projection", "lm_head"};

// One number per site of a model with `layers` layers, 0 where there is none.
class activation_sites {
public:
    activation_sites() = default;
    explicit activation_sites(std::size_t layers)
        : layers_(layers), values_(layers * layer_site_names.size() + model_site_names.size(), 0.0f) {}

    std::size_t layers() const noexcept { return layers_; }
    std::size_t size() const noexcept { return values_.size(); }
    float& operator[](std::size_t i) { return values_.at(i); }
    float operator[](std::size_t i) const { return values_.at(i); }
    float& at(std::size_t l, layer_site s) { return values_.at(index(l, s)); }
    float at(std::size_t l, layer_site s) const { return values_.at(index(l, s)); }
    float& at(model_site s) { return values_.at(index(s)); }
    float at(model_site s) const { return values_.at(index(s)); }

    // Site i's name ("layers.3.mlp", "lm_head").
    std::string name(std::size_t i) const {
        const std::size_t per = layer_site_names.size();
        if (i < layers_ * per) return "layers." + std::to_string(i / per) + "." + std::string(layer_site_names[i % per]);
        return std::string(model_site_names.at(i - layers_ * per));
    }

    // The static scale of each site from the largest magnitudes a calibration
    // saw (static_scale_fp16: amax onto code 127); sites it never saw stay 0.
    activation_sites scales() const {
        activation_sites s(layers_);
        for (std::size_t i = 0; i < size(); ++i)
            if (values_[i] > 0.0f) s.values_[i] = static_scale_fp16(values_[i]);
        return s;
    }

    // Throws unless every site of a model (with or without per-layer inputs)
    // holds a static scale, an fp16 value.
    void check_scales(bool per_layer_inputs, const std::string& who) const {
        for (std::size_t i = 0; i < size(); ++i) {
            const std::string n = name(i);
            const bool used = per_layer_inputs || n.find("per_layer") == std::string::npos;
            if (used && !(values_[i] > 0.0f))
                throw error(who + ": no activation scale for " + n + " (every site needs one)");
            if (values_[i] > 0.0f) static_cast<void>(qtensor::detail::static_reciprocal(values_[i], true)); // an fp16 scale
        }
    }

private:
    std::size_t index(std::size_t l, layer_site s) const {
        if (l >= layers_) throw error("activation_sites: layer " + std::to_string(l) + " of " + std::to_string(layers_));
        return l * layer_site_names.size() + static_cast<std::size_t>(s);
    }
    std::size_t index(model_site s) const { return layers_ * layer_site_names.size() + static_cast<std::size_t>(s); }

    std::size_t layers_ = 0;
    std::vector<float> values_;
};

} // namespace gemma4
QTENSOR_END_NAMESPACE
