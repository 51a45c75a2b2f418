// qtensor/gemma4/training_state.hpp: a training run saved to a directory, and
// read back so that it continues bit-identically.
//
//   DIR/model.safetensors      the master weights (float32, Hugging Face names):
//                              with DIR/config.json beside it, a model every
//                              command (and transformers) loads
//   DIR/optimizer.safetensors  AdamW's moments (adamw.m.<name>, adamw.v.<name>)
//
// Both files carry the number of steps taken in their metadata ("step"); the
// optimizer's also carries the caller's description of the run ("run"), so a
// resume can refuse to continue under other settings. Each file is replaced
// atomically, the model first; a crash between the two leaves steps that
// disagree, which load_training_state refuses (and a crash in the first save
// leaves no optimizer file: no run to resume). Parameters the optimizer never
// saw (frozen: no gradient) have no moments.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/gemma4/config.hpp"
#include "qtensor/gemma4/parameters.hpp"
#include "qtensor/io/safetensors.hpp"
#include "qtensor/io/safetensors_writer.hpp"
#include "qtensor/train/adamw.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace gemma4 {

struct training_state {
    tensors<float> params;
    tensors<float> first_moment, second_moment; // empty before the first step
    std::uint64_t step = 0;
    std::string run;
};

inline void save_training_state(const std::filesystem::path& dir, const config& c, const tensors<float>& params,
                                const train::adamw& opt, const std::string& run) {
    const std::vector<parameter_shape> shapes = parameter_shapes(c);
    check_parameters("gemma4::save_training_state", params, shapes);
    const std::string step = std::to_string(opt.steps());
    io::safetensors_writer optimizer;
    optimizer.set_metadata("step", step);
    optimizer.set_metadata("run", run);
    for (const parameter_shape& s : shapes) {
        if (!opt.first_moment().contains(s.name)) continue; // buffers, and everything before the first step
        optimizer.add("adamw.m." + s.name, s.shape, opt.first_moment().at(s.name));
        optimizer.add("adamw.v." + s.name, s.shape, opt.second_moment().at(s.name));
    }
    io::safetensors_writer model;
    model.set_metadata("format", "pt");
    model.set_metadata("step", step);
    for (const parameter_shape& s : shapes) model.add(s.name, s.shape, params.at(s.name));
    model.write((dir / "model.safetensors").string());
    optimizer.write((dir / "optimizer.safetensors").string());
}

inline training_state load_training_state(const std::filesystem::path& dir, const config& c) {
    const io::safetensors_file model((dir / "model.safetensors").string());
    const io::safetensors_file optimizer((dir / "optimizer.safetensors").string());
    const auto step_of = [](const io::safetensors_file& f) {
        const auto it = f.metadata().find("step");
        std::size_t used = 0;
        std::uint64_t n = 0;
        try {
            if (it != f.metadata().end()) n = std::stoull(it->second, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (it == f.metadata().end() || used == 0 || used != it->second.size())
            throw error(f.path() + ": no step count in the metadata (not a file qtensor's training wrote)");
        return n;
    };
    training_state s;
    s.step = step_of(optimizer);
    if (step_of(model) != s.step)
        throw error(dir.string() + ": the model is at step " + std::to_string(step_of(model)) +
                    " and the optimizer at step " + std::to_string(s.step) +
                    " (a run stopped while saving); start again or restore both files");
    s.run = optimizer.metadata().contains("run") ? optimizer.metadata().at("run") : std::string();
    s.params = load_parameters(c, model);
    for (const parameter_shape& p : parameter_shapes(c)) {
        const io::tensor_entry* m = optimizer.find("adamw.m." + p.name);
        const io::tensor_entry* v = optimizer.find("adamw.v." + p.name);
        if (m == nullptr && v == nullptr) continue; // a buffer, a frozen parameter, or before the first step
        if (m == nullptr || v == nullptr || m->type != ggml_type::f32 || v->type != ggml_type::f32 ||
            m->shape != p.shape || v->shape != p.shape)
            throw error(optimizer.path() + ": the moments of " + p.name + " are missing or not float32 of shape " +
                        detail::shape_string(p.shape));
        const auto* mf = reinterpret_cast<const float*>(m->data.data());
        const auto* vf = reinterpret_cast<const float*>(v->data.data());
        s.first_moment[p.name].assign(mf, mf + p.elements());
        s.second_moment[p.name].assign(vf, vf + p.elements());
    }
    return s;
}

} // namespace gemma4
QTENSOR_END_NAMESPACE
