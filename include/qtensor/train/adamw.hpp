// qtensor/train/adamw.hpp: AdamW (Loshchilov & Hutter, decoupled weight
// decay), the update PyTorch's torch.optim.AdamW makes, in float32:
//
//   p <- p (1 - lr wd)                          decay, apart from the gradient
//   m <- b1 m + (1 - b1) g                      first moment
//   v <- b2 v + (1 - b2) g^2                    second moment
//   p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
//
// t counts steps from 1. The learning rate is an argument of step(), so a
// schedule (schedule.hpp) stays outside. The state (m, v, t) is public so it
// can be saved and given back (train/state.hpp): a resumed run then takes
// bit-identical steps.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/kernels/executor.hpp"
#include "qtensor/kernels/float_ops.hpp"
#include "qtensor/train/tensors.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace train {

struct adamw_options {
    double beta1 = 0.9;
    double beta2 = 0.95;
    double eps = 1e-8;
    double weight_decay = 0.1;
    // Which parameters decay; the usual choice is the matrices, not norm
    // gains or scales (gemma4::decays). Empty: every one.
    std::function<bool(std::string_view)> decays;
};

class adamw {
public:
    explicit adamw(adamw_options options) : options_(std::move(options)) {
        if (!(options_.beta1 >= 0 && options_.beta1 < 1 && options_.beta2 >= 0 && options_.beta2 < 1))
            throw error("train::adamw: beta1 and beta2 must lie in [0, 1)");
        if (!(options_.eps > 0) || !(options_.weight_decay >= 0))
            throw error("train::adamw: eps must be positive and weight_decay not negative");
    }

    // One update of every parameter that has a gradient (the others, such as
    // buffers, stay as they are); sizes must agree.
    // Everything is checked before anything changes. Element by element, so
    // split over ex the result is the same.
    void step(tensors<float>& params, const tensors<float>& grads, double lr, const kernels::executor& ex = {}) {
        for (const auto& [name, g] : grads) {
            const auto it = params.find(name);
            if (it == params.end() || it->second.size() != g.size())
                throw error("train::adamw: the gradient of " + name + " (" + std::to_string(g.size()) +
                            " elements) has no parameter of its size");
        }
        if (!m_.empty()) detail::check_same_layout("train::adamw: the gradients against the optimizer's state", m_, grads);
        if (m_.empty()) {
            for (const auto& [name, g] : grads) {
                m_[name].assign(g.size(), 0.0f);
                v_[name].assign(g.size(), 0.0f);
            }
        }
        ++t_;
        const double bc1 = 1.0 - std::pow(options_.beta1, static_cast<double>(t_));
        const double bc2 = 1.0 - std::pow(options_.beta2, static_cast<double>(t_));
        const float b1 = static_cast<float>(options_.beta1), b2 = static_cast<float>(options_.beta2);
        const float step_size = static_cast<float>(lr / bc1), bc2_sqrt = static_cast<float>(std::sqrt(bc2));
        const float eps = static_cast<float>(options_.eps);
        struct tensor_state {
            float *p, *m, *v;
            const float* g;
            float keep;
        };
        std::vector<tensor_state> all;
        std::vector<std::size_t> sizes;
        auto m = m_.begin(), v = v_.begin();
        for (const auto& [name, g] : grads) {
            const bool decay = !options_.decays || options_.decays(name);
            const float keep = static_cast<float>(1.0 - lr * (decay ? options_.weight_decay : 0.0));
            all.push_back(
                {params.find(name)->second.data(), (m++)->second.data(), (v++)->second.data(), g.data(), keep});
            sizes.push_back(g.size());
        }
        const std::vector<piece> pieces = pieces_of(sizes);
        ex.run(pieces.size(), [&](std::size_t k) {
            const auto [t, begin, end] = pieces[k];
            const auto [p, mi, vi, g, keep] = all[t];
            kernels::unchecked::adamw_update(p + begin, mi + begin, vi + begin, g + begin, end - begin,
                                             {keep, b1, b2, step_size, bc2_sqrt, eps});
        });
    }

    // The state: the moments by parameter name and the steps taken.
    const tensors<float>& first_moment() const noexcept { return m_; }
    const tensors<float>& second_moment() const noexcept { return v_; }
    std::uint64_t steps() const noexcept { return t_; }
    void restore(tensors<float> m, tensors<float> v, std::uint64_t steps) {
        detail::check_same_layout("train::adamw: the saved second moment", m, v);
        m_ = std::move(m);
        v_ = std::move(v);
        t_ = steps;
    }

    const adamw_options& options() const noexcept { return options_; }

private:
    adamw_options options_;
    tensors<float> m_, v_;
    std::uint64_t t_ = 0;
};

} // namespace train
QTENSOR_END_NAMESPACE
