// qtensor/gemma4/gradients.hpp: the Gemma 4 text decoder's training loss and
// the gradient of every parameter: one op after another, forward then
// backward, built from the forward/backward pairs of kernels/reference/
// (float_ops.hpp, attention.hpp, moe.hpp). Written once, it runs two ways:
//
//   gemma4::loss_and_gradients(config, w, ids, seq, ex)    float32; the linear
//       layers' and attention's products on the SIMD GEMM (kernels/sgemm.hpp,
//       kernels/attention.hpp), split over ex
//   gemma4::reference::loss_and_gradients<T>(config, w, ids, seq)
//       every product in scalar loops, for any float type T: double is what
//       the tests check against Hugging Face's gradients (tests/data/gemma4:
//       grad.*, loss), float what the kernels' path is checked against
//
// The maths is docs/gemma4.md §2-§7, as model_impl.hpp computes it; here every
// step keeps what its backward needs. ids holds B sequences of `seq` tokens
// back to back, each at positions 0..seq-1 and attending only to itself; the
// loss is the mean over the batch of each sequence's mean cross-entropy of
// logits[t] against ids[t + 1]. Shapes: n = B seq tokens, D = hidden_size,
// H heads, d = d_l, K = K_l, F = the layer's MLP width, L layers,
// P = hidden_size_per_layer_input, V = vocab_size.
//
// Parameters and gradients are maps from Hugging Face names to row-major
// arrays. layer_scalar is a buffer (read, not trained).
//
// Static activations (QAT of scheme/static_activation.hpp): given scales for
// the sites of activation_sites.hpp, the product at a site with a scale s > 0
// takes its input as the int8 codes times s (fake_quant_static), and its
// backward passes the input's gradient only where the codes did not clip
// (the straight-through estimator); 0 keeps a site's input float.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/gemma4/activation_sites.hpp"
#include "qtensor/gemma4/config.hpp"
#include "qtensor/gemma4/parameters.hpp"
#include "qtensor/kernels/attention.hpp"
#include "qtensor/kernels/executor.hpp"
#include "qtensor/kernels/reference/attention.hpp"
#include "qtensor/kernels/reference/float_ops.hpp"
#include "qtensor/kernels/reference/moe.hpp"
#include "qtensor/kernels/sgemm.hpp"
#include "qtensor/scheme/static_activation.hpp"
#include "qtensor/train/tensors.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace gemma4 {

template <class T>
struct loss_and_grads {
    T loss = 0;
    tensors<T> grads;           // d loss / d parameter, by the parameter's name
    std::size_t saved_bytes = 0; // what the forward kept for the backward (activations, logits)
};

namespace detail {

namespace ref = kernels::reference;

// The products: the linear layers', x[rows, in] and w[out, in],
//   forward   y[rows, out] = x w^T
//   backward  dx[rows, in] += dy w,  dw[out, in] += dy^T x
// one sequence's attention (reference/attention.hpp, scale 1: Gemma 4's q
// and k are normed) and GeGLU, in scalar loops or on the kernels.
template <class T>
struct reference_products {
    void forward(const T* x, const T* w, T* y, std::size_t rows, std::size_t out, std::size_t in) const {
        ref::linear(x, w, y, rows, out, in);
    }
    void backward(const T* x, const T* w, const T* dy, T* dx, T* dw, std::size_t rows, std::size_t out,
                  std::size_t in) const {
        std::vector<T> t(rows * in);
        ref::linear_backward_input(dy, w, t.data(), rows, out, in);
        for (std::size_t i = 0; i < t.size(); ++i) dx[i] += t[i];
        ref::linear_backward_weight(dy, x, dw, rows, out, in);
    }
    void attention(const T* q, const T* k, const T* v, T* out, const ref::attention_shape& a) const {
        ref::attention(q, k, v, out, a, T(1));
    }
    void attention_backward(const T* q, const T* k, const T* v, const T* d_out, T* dq, T* dk, T* dv,
                            const ref::attention_shape& a) const {
        ref::attention_backward(q, k, v, d_out, dq, dk, dv, a, T(1));
    }
    void geglu(const T* gate, const T* up, T* y, std::size_t n) const { ref::geglu(gate, up, y, n); }
    void geglu_backward(const T* gate, const T* up, const T* dy, T* d_gate, T* d_up, std::size_t n) const {
        ref::geglu_backward(gate, up, dy, d_gate, d_up, n);
    }
    void rmsnorm(const T* x, const T* w, T* y, std::size_t n, T eps) const { ref::rmsnorm(x, w, y, n, eps); }
    void rmsnorm_backward(const T* x, const T* w, const T* dy, T* dx, T* dw, std::size_t n, T eps) const {
        ref::rmsnorm_backward(x, w, dy, dx, dw, n, eps);
    }
    void rope(T* x, const T* freq, std::size_t d, T pos) const { ref::rope(x, freq, d, pos); }
    void softcap(T* x, std::size_t n, T cap) const { ref::softcap(x, n, cap); }
};

struct kernel_products {
    kernels::executor ex;

    void attention(const float* q, const float* k, const float* v, float* out, const ref::attention_shape& a) const {
        kernels::attention(q, k, v, out, a, 1.0f, ex);
    }
    void attention_backward(const float* q, const float* k, const float* v, const float* d_out, float* dq, float* dk,
                            float* dv, const ref::attention_shape& a) const {
        kernels::attention_backward(q, k, v, d_out, dq, dk, dv, a, 1.0f, ex);
    }
    void geglu(const float* gate, const float* up, float* y, std::size_t n) const {
        kernels::unchecked::geglu(gate, up, y, n);
    }
    void geglu_backward(const float* gate, const float* up, const float* dy, float* d_gate, float* d_up,
                        std::size_t n) const {
        kernels::unchecked::geglu_backward(gate, up, dy, d_gate, d_up, n);
    }
    void rmsnorm(const float* x, const float* w, float* y, std::size_t n, float eps) const {
        kernels::unchecked::rmsnorm(x, w, y, n, eps);
    }
    void rmsnorm_backward(const float* x, const float* w, const float* dy, float* dx, float* dw, std::size_t n,
                          float eps) const {
        kernels::unchecked::rmsnorm_backward(x, w, dy, dx, dw, n, eps);
    }
    void rope(float* x, const float* freq, std::size_t d, float pos) const {
        kernels::unchecked::rope(x, freq, d, pos);
    }
    void softcap(float* x, std::size_t n, float cap) const { kernels::unchecked::softcap(x, n, cap); }

    using m = kernels::matrix_ref<const float>;
    void forward(const float* x, const float* w, float* y, std::size_t rows, std::size_t out, std::size_t in) const {
        kernels::sgemm(1.0f, m{{x, rows * in}, rows, in}, m{{w, out * in}, out, in, 0, true}, 0.0f,
                       {{y, rows * out}, rows, out}, ex);
    }
    void backward(const float* x, const float* w, const float* dy, float* dx, float* dw, std::size_t rows,
                  std::size_t out, std::size_t in) const {
        kernels::sgemm(1.0f, m{{dy, rows * out}, rows, out}, m{{w, out * in}, out, in}, 1.0f,
                       {{dx, rows * in}, rows, in}, ex);
        kernels::sgemm(1.0f, m{{dy, rows * out}, rows, out, 0, true}, m{{x, rows * in}, rows, in}, 1.0f,
                       {{dw, out * in}, out, in}, ex);
    }
};

// What the model and its blocks share: the parameters by name, the
// gradients being summed, the products, and the small ops with their
// backward. Shapes: x[rows, in] for a linear layer, rows of `dim` for a norm.
template <class T, class Products>
class ops {
public:
    using vec = std::vector<T>;

    ops(const gemma4::config& c, const tensors<T>& weights, tensors<T>& grads, std::size_t seq, Products products,
        activation_sites scales)
        : c_(c), w_(weights), g_(grads), seq_(seq), products_(std::move(products)), scales_(std::move(scales)),
          eps_(static_cast<T>(c.rms_norm_eps)) {
        if (scales_.size() != 0 && scales_.layers() != c.num_hidden_layers)
            throw error("gemma4: static activation scales for " + std::to_string(scales_.layers()) +
                        " layers, the model has " + std::to_string(c.num_hidden_layers));
        for (std::size_t i = 0; i < scales_.size(); ++i) // 0: float input; else what the model takes, an fp16 value
            if (scales_[i] != 0.0f) static_cast<void>(qtensor::detail::static_reciprocal(scales_[i], true));
    }

protected:
    const gemma4::config& c_;
    const tensors<T>& w_;
    tensors<T>& g_;
    std::size_t seq_;
    Products products_;
    activation_sites scales_; // empty: every input float
    T eps_;

    const vec& w(const std::string& name) const {
        const auto it = w_.find(name);
        if (it == w_.end()) throw error("gemma4: no parameter " + name);
        return it->second;
    }
    vec& g(const std::string& name) const {
        vec& v = g_[name];
        if (v.empty()) v.assign(w(name).size(), T(0));
        if (v.size() != w(name).size())
            throw error("gemma4: the gradient of " + name + " holds " + std::to_string(v.size()) + " values, not " +
                        std::to_string(w(name).size()));
        return v;
    }
    static std::string at(std::size_t l, const char* what) { return "model.layers." + std::to_string(l) + "." + what; }
    static void add(vec& y, const vec& x) {
        for (std::size_t i = 0; i < y.size(); ++i) y[i] += x[i];
    }

    // A site's static activation scale; 0: its input stays float.
    float scale(std::size_t l, layer_site s) const { return scales_.size() != 0 ? scales_.at(l, s) : 0.0f; }
    float scale(model_site s) const { return scales_.size() != 0 ? scales_.at(s) : 0.0f; }

    // x[rows, in] -> x wt^T [rows, out]; backward: dx += dy wt, dwt += dy^T x.
    // With a static activation scale s > 0, x as the codes times s, and dx
    // only where they did not clip.
    vec linear(const vec& x, const vec& wt, std::size_t out, float s = 0.0f) const {
        if (s > 0.0f) return linear(seen_input(x, s, nullptr), wt, out);
        const std::size_t in = wt.size() / out, rows = x.size() / in;
        vec y(rows * out);
        products_.forward(x.data(), wt.data(), y.data(), rows, out, in);
        return y;
    }
    void linear_back(const vec& x, const vec& wt, const vec& dy, std::size_t out, vec& dx, vec& dwt,
                     float s = 0.0f) const {
        const std::size_t in = wt.size() / out, rows = x.size() / in;
        if (s <= 0.0f) return products_.backward(x.data(), wt.data(), dy.data(), dx.data(), dwt.data(), rows, out, in);
        std::vector<std::uint8_t> clipped(x.size());
        const vec seen = seen_input(x, s, clipped.data());
        vec d(x.size(), T(0));
        products_.backward(seen.data(), wt.data(), dy.data(), d.data(), dwt.data(), rows, out, in);
        for (std::size_t i = 0; i < d.size(); ++i)
            if (!clipped[i]) dx[i] += d[i];
    }
    // x as int8 codes times s, rounded in float as the model rounds it.
    static vec seen_input(const vec& x, float s, std::uint8_t* clipped) {
        std::vector<float> f(x.size());
        for (std::size_t i = 0; i < x.size(); ++i) f[i] = static_cast<float>(x[i]);
        fake_quant_static(f.data(), f.data(), f.size(), s, clipped);
        if constexpr (std::is_same_v<T, float>) return f;
        else return vec(f.begin(), f.end());
    }
    // RMSNorm over each row of `dim` (weight wt or nullptr); backward: dx += ..., dwt += ....
    vec norm(const vec& x, const T* wt, std::size_t dim) const {
        vec y(x.size());
        for (std::size_t r = 0; r < x.size() / dim; ++r)
            products_.rmsnorm(x.data() + r * dim, wt, y.data() + r * dim, dim, eps_);
        return y;
    }
    void norm_back(const vec& x, const T* wt, const vec& dy, std::size_t dim, vec& dx, T* dwt) const {
        vec t(dim);
        for (std::size_t r = 0; r < x.size() / dim; ++r) {
            products_.rmsnorm_backward(x.data() + r * dim, wt, dy.data() + r * dim, t.data(), dwt, dim, eps_);
            for (std::size_t i = 0; i < dim; ++i) dx[r * dim + i] += t[i];
        }
    }
    // RoPE of every head of x[n, heads, d] at each token's position in its sequence, and its backward.
    void rope(vec& x, std::size_t heads, const layer_info& li, bool backward) const {
        const std::size_t d = li.head_dim, n = x.size() / (heads * d);
        const vec freq(li.rope_freq.begin(), li.rope_freq.end());
        for (std::size_t t = 0; t < n; ++t)
            for (std::size_t h = 0; h < heads; ++h) {
                T* v = x.data() + (t * heads + h) * d;
                const T pos = static_cast<T>(t % seq_);
                products_.rope(v, freq.data(), d, backward ? -pos : pos); // the inverse rotation, backward
            }
    }
};

template <class T, class Products>
class pass;

} // namespace detail

// One decoder layer (docs/gemma4.md §7) for training: a forward that keeps
// what the backward needs, and the backward. It reads its weights from `w`
// by Hugging Face name and adds its weights' gradients into `g`; the hidden
// states are a user's own, n tokens as sequences of `seq` tokens.
//
//   gemma4::block layer(config, l, weights, grads, seq, {executor});
//   gemma4::block::state saved;
//   out = layer.forward(h, p, saved);                    // h, out [n, D]
//   dh = layer.backward(dout, saved, dkv, dp);           // dkv: d of its k and v
//
// A KV-shared layer attends over an earlier layer's k and v: pass that
// layer's state as kv_source to both, and that layer's kv_gradient as dkv.
template <class T, class Products>
class basic_block : detail::ops<T, Products> {
    using base = detail::ops<T, Products>;
    using base::c_, base::seq_, base::products_, base::w, base::g, base::at, base::add, base::linear,
        base::linear_back, base::norm, base::norm_back, base::rope, base::scale;

public:
    using vec = std::vector<T>;

    // What the backward needs of the forward; k and v are also what
    // KV-shared layers read.
    struct state {
        vec h, x, q_lin, q, k_lin, v_lin, k, v, o, a, h1;
        vec xf, gate, up, act, m;                // dense MLP
        vec y1, x2, y2;                          // MoE
        std::vector<kernels::reference::moe_saved<T>> routed;   // MoE, per token
        vec f, h2, p, g_pre, gm, y;              // feed-forward output, PLE
    };
    // The gradient of a layer's k and v [n, K, d], summed over every layer reading them.
    struct kv_gradient {
        vec k, v;
    };

    basic_block(const gemma4::config& c, std::size_t layer, const tensors<T>& weights, tensors<T>& grads,
                std::size_t seq, Products products = {}, activation_sites scales = {})
        : basic_block(c, layer, layer_of(c, layer), weights, grads, seq, std::move(products), std::move(scales)) {
        const std::string prefix = "model.layers." + std::to_string(layer) + ".";
        std::vector<parameter_shape> mine = parameter_shapes(c);
        std::erase_if(mine, [&](const parameter_shape& s) { return !s.name.starts_with(prefix); });
        check_parameters("gemma4::block", weights, mine);
    }

    const layer_info& info() const noexcept { return li_; }

    // The bytes a state holds.
    static std::size_t saved_bytes(const state& s) noexcept {
        std::size_t n = 0;
        for (const auto& r : s.routed)
            n += sizeof(T) * (r.normed.size() + r.z.size() + r.p.size() + r.weight.size() + r.gate_up.size() +
                              r.act.size() + r.out.size()) +
                 sizeof(std::size_t) * r.chosen.size();
        for (const vec* v : {&s.h, &s.x, &s.q_lin, &s.q, &s.k_lin, &s.v_lin, &s.k, &s.v, &s.o, &s.a, &s.h1, &s.xf,
                             &s.gate, &s.up, &s.act, &s.m, &s.y1, &s.x2, &s.y2, &s.f, &s.h2, &s.p, &s.g_pre, &s.gm, &s.y})
            n += v->size() * sizeof(T);
        return n;
    }

    // h[n, D] -> out[n, D]; p[n, P]: this layer's per-layer input (empty
    // without them); kv_source: the layer whose k and v a KV-shared layer
    // attends over (nullptr: its own). s keeps what backward needs.
    vec forward(const vec& h, const vec& p, state& s, const state* kv_source = nullptr) const {
        const std::size_t l = l_, n = rows_of(h);
        const layer_info& li = li_;
        const std::size_t D = c_.hidden_size, H = c_.num_attention_heads, K = li.kv_heads, d = li.head_dim;
        const std::size_t F = li.mlp_width;
        check_inputs(n, p, kv_source);
        s.h = h;
        s.x = norm(h, w(at(l, "input_layernorm.weight")).data(), D);     // x = input_layernorm(h)
        // §3: q[n, H, d] = RoPE(q_norm(q_proj x)); k, v [n, K, d] likewise (v: v_norm, no RoPE).
        s.q_lin = linear(s.x, w(at(l, "self_attn.q_proj.weight")), H * d, site(layer_site::attention));
        s.q = norm(s.q_lin, w(at(l, "self_attn.q_norm.weight")).data(), d);
        rope(s.q, H, li, false);
        if (li.has_kv) {
            s.k_lin = linear(s.x, w(at(l, "self_attn.k_proj.weight")), K * d, site(layer_site::attention));
            s.v_lin = li.has_v_proj
                          ? linear(s.x, w(at(l, "self_attn.v_proj.weight")), K * d, site(layer_site::attention))
                          : s.k_lin; // k_eq_v
            s.k = norm(s.k_lin, w(at(l, "self_attn.k_norm.weight")).data(), d);
            rope(s.k, K, li, false);
            s.v = norm(s.v_lin, nullptr, d);
        }
        const state& src = kv_source != nullptr ? *kv_source : s; // KV-shared layers read an earlier layer's k, v
        s.o.assign(n * H * d, T(0));
        for (std::size_t b = 0; b < n; b += seq_) // each sequence attends to itself
            products_.attention(s.q.data() + b * H * d, src.k.data() + b * K * d, src.v.data() + b * K * d,
                                s.o.data() + b * H * d, attention_shape(li));
        s.a = linear(s.o, w(at(l, "self_attn.o_proj.weight")), D, site(layer_site::o_proj));
        s.h1 = norm(s.a, w(at(l, "post_attention_layernorm.weight")).data(), D);
        add(s.h1, h);                                                     // h1 = h + post_attention_layernorm(a)
        // §5: f = MLP(pre_feedforward_layernorm(h1)), plus the routed experts in MoE layers.
        s.xf = norm(s.h1, w(at(l, "pre_feedforward_layernorm.weight")).data(), D);
        s.gate = linear(s.xf, w(at(l, "mlp.gate_proj.weight")), F, site(layer_site::mlp));
        s.up = linear(s.xf, w(at(l, "mlp.up_proj.weight")), F, site(layer_site::mlp));
        s.act.resize(n * F);
        products_.geglu(s.gate.data(), s.up.data(), s.act.data(), n * F);
        s.m = linear(s.act, w(at(l, "mlp.down_proj.weight")), D, site(layer_site::down_proj));
        if (c_.enable_moe_block) {
            s.y1 = norm(s.m, w(at(l, "post_feedforward_layernorm_1.weight")).data(), D);
            s.x2 = norm(s.h1, w(at(l, "pre_feedforward_layernorm_2.weight")).data(), D);
            s.y2.assign(n * D, T(0));
            s.routed.clear();
            for (std::size_t t = 0; t < n; ++t)
                s.routed.push_back(kernels::reference::moe_forward(moe_weights(l), moe_shape(), s.h1.data() + t * D,
                                                    s.x2.data() + t * D, s.y2.data() + t * D));
            s.f = norm(s.y2, w(at(l, "post_feedforward_layernorm_2.weight")).data(), D);
            add(s.f, s.y1);                                               // f = y1 + post_feedforward_layernorm_2(y2)
        } else {
            s.f = s.m;
        }
        s.h2 = norm(s.f, w(at(l, "post_feedforward_layernorm.weight")).data(), D);
        add(s.h2, s.h1);                                                  // h2 = h1 + post_feedforward_layernorm(f)
        vec h3 = s.h2;
        if (c_.has_per_layer_input()) { // §6: h3 = h2 + norm(proj(gelu(gate h2) * p_l))
            const std::size_t P = c_.hidden_size_per_layer_input;
            s.p = p;
            s.g_pre = linear(s.h2, w(at(l, "per_layer_input_gate.weight")), P,
                             site(layer_site::per_layer_input_gate));
            s.gm.resize(n * P);
            products_.geglu(s.g_pre.data(), s.p.data(), s.gm.data(), n * P);
            s.y = linear(s.gm, w(at(l, "per_layer_projection.weight")), D, site(layer_site::per_layer_projection));
            add(h3, norm(s.y, w(at(l, "post_per_layer_input_norm.weight")).data(), D));
        }
        const T scalar = w(at(l, "layer_scalar"))[0];
        for (T& v : h3) v *= scalar;                                      // out = h3 * layer_scalar
        return h3;
    }

    // d out[n, D] -> d h[n, D], in the reverse order of forward; dp[n, P]
    // receives d p. dkv: the gradient of the k and v this layer read (its
    // own, or kv_source's): added to; for a layer with its own, complete
    // once every later layer reading them has run its backward.
    vec backward(const vec& dout, const state& s, kv_gradient& dkv, vec& dp, const state* kv_source = nullptr) {
        const std::size_t l = l_, n = rows_of(dout);
        const layer_info& li = li_;
        if (s.h.size() != dout.size())
            throw error("gemma4::block: backward of " + std::to_string(n) + " tokens from a forward of " +
                        std::to_string(s.h.size() / c_.hidden_size));
        check_inputs(n, s.p, kv_source);
        const std::size_t D = c_.hidden_size, H = c_.num_attention_heads, K = li.kv_heads, d = li.head_dim;
        const std::size_t F = li.mlp_width;
        const T scalar = w(at(l, "layer_scalar"))[0];
        vec dh3(dout.size());
        for (std::size_t i = 0; i < dh3.size(); ++i) dh3[i] = dout[i] * scalar;
        vec dh2 = dh3;
        if (c_.has_per_layer_input()) {
            const std::size_t P = c_.hidden_size_per_layer_input;
            vec dy(n * D, T(0)), dgm(n * P, T(0)), dg_pre(n * P);
            dp.resize(n * P);
            norm_back(s.y, w(at(l, "post_per_layer_input_norm.weight")).data(), dh3, D, dy,
                      g(at(l, "post_per_layer_input_norm.weight")).data());
            linear_back(s.gm, w(at(l, "per_layer_projection.weight")), dy, D, dgm,
                        g(at(l, "per_layer_projection.weight")), site(layer_site::per_layer_projection));
            products_.geglu_backward(s.g_pre.data(), s.p.data(), dgm.data(), dg_pre.data(), dp.data(), n * P);
            linear_back(s.h2, w(at(l, "per_layer_input_gate.weight")), dg_pre, P, dh2,
                        g(at(l, "per_layer_input_gate.weight")), site(layer_site::per_layer_input_gate));
        }
        vec dh1 = dh2, df(n * D, T(0));
        norm_back(s.f, w(at(l, "post_feedforward_layernorm.weight")).data(), dh2, D, df,
                  g(at(l, "post_feedforward_layernorm.weight")).data());
        vec dm;
        if (c_.enable_moe_block) {
            vec dy2(n * D, T(0)), dx2(n * D, T(0)), dh_t(D), dx_t(D);
            norm_back(s.y2, w(at(l, "post_feedforward_layernorm_2.weight")).data(), df, D, dy2,
                      g(at(l, "post_feedforward_layernorm_2.weight")).data());
            const kernels::reference::moe_grads<T> mg{g(at(l, "router.proj.weight")).data(), g(at(l, "router.scale")).data(),
                                       g(at(l, "router.per_expert_scale")).data(),
                                       g(at(l, "experts.gate_up_proj")).data(), g(at(l, "experts.down_proj")).data()};
            for (std::size_t t = 0; t < n; ++t) {
                kernels::reference::moe_backward(moe_weights(l), moe_shape(), s.routed[t], s.h1.data() + t * D, s.x2.data() + t * D,
                                  dy2.data() + t * D, dh_t.data(), dx_t.data(), mg);
                for (std::size_t i = 0; i < D; ++i) dh1[t * D + i] += dh_t[i], dx2[t * D + i] += dx_t[i];
            }
            norm_back(s.h1, w(at(l, "pre_feedforward_layernorm_2.weight")).data(), dx2, D, dh1,
                      g(at(l, "pre_feedforward_layernorm_2.weight")).data());
            dm.assign(n * D, T(0));
            norm_back(s.m, w(at(l, "post_feedforward_layernorm_1.weight")).data(), df, D, dm,
                      g(at(l, "post_feedforward_layernorm_1.weight")).data());
        } else {
            dm = df;
        }
        vec dact(n * F, T(0)), dgate(n * F), dup(n * F), dxf(n * D, T(0));
        linear_back(s.act, w(at(l, "mlp.down_proj.weight")), dm, D, dact, g(at(l, "mlp.down_proj.weight")),
                    site(layer_site::down_proj));
        products_.geglu_backward(s.gate.data(), s.up.data(), dact.data(), dgate.data(), dup.data(), n * F);
        linear_back(s.xf, w(at(l, "mlp.gate_proj.weight")), dgate, F, dxf, g(at(l, "mlp.gate_proj.weight")),
                    site(layer_site::mlp));
        linear_back(s.xf, w(at(l, "mlp.up_proj.weight")), dup, F, dxf, g(at(l, "mlp.up_proj.weight")),
                    site(layer_site::mlp));
        norm_back(s.h1, w(at(l, "pre_feedforward_layernorm.weight")).data(), dxf, D, dh1,
                  g(at(l, "pre_feedforward_layernorm.weight")).data());

        vec dh = dh1, da(n * D, T(0)), d_o(n * H * d, T(0)), dq(n * H * d);
        norm_back(s.a, w(at(l, "post_attention_layernorm.weight")).data(), dh1, D, da,
                  g(at(l, "post_attention_layernorm.weight")).data());
        linear_back(s.o, w(at(l, "self_attn.o_proj.weight")), da, D, d_o, g(at(l, "self_attn.o_proj.weight")),
                    site(layer_site::o_proj));
        const state& src = kv_source != nullptr ? *kv_source : s;
        if (dkv.k.empty() && dkv.v.empty()) dkv.k.assign(n * K * d, T(0)), dkv.v.assign(n * K * d, T(0));
        if (dkv.k.size() != n * K * d || dkv.v.size() != n * K * d)
            throw error("gemma4::block: dkv holds " + std::to_string(dkv.k.size()) + " and " +
                        std::to_string(dkv.v.size()) + " values, not " + std::to_string(n * K * d) + " each");
        for (std::size_t b = 0; b < n; b += seq_)
            products_.attention_backward(s.q.data() + b * H * d, src.k.data() + b * K * d,
                                         src.v.data() + b * K * d, d_o.data() + b * H * d, dq.data() + b * H * d,
                                         dkv.k.data() + b * K * d, dkv.v.data() + b * K * d, attention_shape(li));
        rope(dq, H, li, true);
        vec dq_lin(n * H * d, T(0)), dx(n * D, T(0));
        norm_back(s.q_lin, w(at(l, "self_attn.q_norm.weight")).data(), dq, d, dq_lin, g(at(l, "self_attn.q_norm.weight")).data());
        linear_back(s.x, w(at(l, "self_attn.q_proj.weight")), dq_lin, H * d, dx, g(at(l, "self_attn.q_proj.weight")),
                    site(layer_site::attention));
        if (li.has_kv) { // every layer reading this one's k and v has added its gradient by now
            vec dk = dkv.k, dk_lin(n * K * d, T(0)), dv_lin(n * K * d, T(0));
            rope(dk, K, li, true);
            norm_back(s.k_lin, w(at(l, "self_attn.k_norm.weight")).data(), dk, d, dk_lin,
                      g(at(l, "self_attn.k_norm.weight")).data());
            norm_back(s.v_lin, nullptr, dkv.v, d, dv_lin, nullptr);
            if (li.has_v_proj)
                linear_back(s.x, w(at(l, "self_attn.v_proj.weight")), dv_lin, K * d, dx,
                            g(at(l, "self_attn.v_proj.weight")), site(layer_site::attention));
            else
                add(dk_lin, dv_lin); // k_eq_v: v is the raw k projection
            linear_back(s.x, w(at(l, "self_attn.k_proj.weight")), dk_lin, K * d, dx, g(at(l, "self_attn.k_proj.weight")),
                        site(layer_site::attention));
        }
        norm_back(s.h, w(at(l, "input_layernorm.weight")).data(), dx, D, dh, g(at(l, "input_layernorm.weight")).data());
        return dh;
    }

private:
    friend class detail::pass<T, Products>;
    std::size_t l_;
    layer_info li_;

    // For a model that has checked all its parameters and knows its layers.
    basic_block(const gemma4::config& c, std::size_t layer, layer_info li, const tensors<T>& weights,
                tensors<T>& grads, std::size_t seq, Products products, activation_sites scales)
        : base(c, weights, grads, seq, std::move(products), std::move(scales)), l_(layer), li_(std::move(li)) {}
    float site(layer_site s) const { return scale(l_, s); }

    static layer_info layer_of(const gemma4::config& c, std::size_t layer) {
        std::vector<layer_info> all = c.layers();
        if (layer >= all.size())
            throw error("gemma4::block: layer " + std::to_string(layer) + " of a model of " +
                        std::to_string(all.size()));
        return std::move(all[layer]);
    }
    // p[n, P] where the model has per-layer inputs, else empty; a source's k
    // and v for a KV-shared layer, and only for one.
    void check_inputs(std::size_t n, const vec& p, const state* kv_source) const {
        const std::size_t P = c_.has_per_layer_input() ? c_.hidden_size_per_layer_input : 0;
        if (p.size() != n * P)
            throw error("gemma4::block: the per-layer input has " + std::to_string(p.size()) + " values, not " +
                        std::to_string(n) + " x " + std::to_string(P));
        if (li_.has_kv && kv_source != nullptr)
            throw error("gemma4::block: layer " + std::to_string(l_) + " makes its own k and v (no kv_source)");
        if (!li_.has_kv && (kv_source == nullptr || kv_source->k.size() != n * li_.kv_heads * li_.head_dim))
            throw error("gemma4::block: layer " + std::to_string(l_) + " is KV-shared: kv_source must be the state of "
                        "layer " + std::to_string(li_.kv_source_layer) + " run on the same tokens");
    }
    // Tokens in x[n, D]: whole sequences of seq_.
    std::size_t rows_of(const vec& x) const {
        const std::size_t D = c_.hidden_size;
        if (x.size() % D != 0 || x.size() / D % seq_ != 0 || x.empty())
            throw error("gemma4::block: " + std::to_string(x.size()) + " values are not whole sequences of " +
                        std::to_string(seq_) + " tokens of " + std::to_string(D));
        return x.size() / D;
    }
    kernels::reference::moe_weights<T> moe_weights(std::size_t l) const {
        return {w(at(l, "router.proj.weight")).data(), w(at(l, "router.scale")).data(),
                w(at(l, "router.per_expert_scale")).data(), w(at(l, "experts.gate_up_proj")).data(),
                w(at(l, "experts.down_proj")).data()};
    }
    kernels::reference::moe_shape moe_shape() const {
        return {c_.hidden_size, c_.num_experts, c_.top_k_experts, c_.moe_intermediate_size, c_.rms_norm_eps};
    }
    // One sequence's attention: seq tokens.
    kernels::reference::attention_shape attention_shape(const layer_info& li) const {
        return {seq_, c_.num_attention_heads, li.kv_heads, li.head_dim, li.is_sliding ? c_.sliding_window : 0};
    }
};

// The block the trainer runs: float32, the products on the GEMM kernels.
using block = basic_block<float, detail::kernel_products>;

namespace reference {
template <class T>
using block = basic_block<T, detail::reference_products<T>>;
} // namespace reference

namespace detail {

// The whole model (§2-§7): embedding, per-layer inputs, the blocks, the
// final norm, the head, the loss; then all of it backward.
template <class T, class Products>
class pass : ops<T, Products> {
    using base = ops<T, Products>;
    using base::c_, base::seq_, base::products_, base::w, base::g, base::add, base::linear, base::linear_back,
        base::norm, base::norm_back, base::scale, base::scales_;

public:
    using vec = std::vector<T>;
    using layer = basic_block<T, Products>;

    pass(const gemma4::config& c, const tensors<T>& weights, std::span<const std::int32_t> ids, std::size_t seq,
         Products products, activation_sites scales)
        : base(c, weights, grads_, seq, std::move(products), std::move(scales)), layers_(c.layers()), ids_(ids),
          n_(ids.size()) {
        if (seq_ < 2) throw error("gemma4::loss_and_gradients: a sequence needs at least 2 tokens");
        if (n_ == 0 || n_ % seq_ != 0)
            throw error("gemma4::loss_and_gradients: " + std::to_string(n_) +
                        " ids are not whole sequences of " + std::to_string(seq_));
        const std::size_t vocab = c.input_vocab();
        for (std::size_t t = 0; t < n_; ++t)
            if (ids[t] < 0 || static_cast<std::size_t>(ids[t]) >= vocab)
                throw error("gemma4::loss_and_gradients: token id " + std::to_string(ids[t]) + " (position " +
                            std::to_string(t) + ") is outside the vocabulary of " + std::to_string(vocab));
        check_parameters("gemma4::loss_and_gradients", weights, parameter_shapes(c));
        for (std::size_t l = 0; l < layers_.size(); ++l)
            blocks_.push_back(layer(c, l, layers_[l], weights, grads_, seq, products_, scales_));
    }

    loss_and_grads<T> run() {
        const std::size_t D = c_.hidden_size, V = c_.vocab_size;
        vec e(n_ * D); // e[n, D] = embed(ids) * sqrt(D)
        const vec& embed = w("model.embed_tokens.weight");
        for (std::size_t t = 0; t < n_; ++t)
            for (std::size_t i = 0; i < D; ++i) e[t * D + i] = embed[id(t) * D + i] * std::sqrt(T(D));
        per_layer_inputs(e);

        states_.resize(layers_.size());
        vec h = e;
        for (std::size_t l = 0; l < layers_.size(); ++l) h = layer_forward(l, h);
        const vec hf = norm(h, w("model.norm.weight").data(), D); // x = norm(h)
        const std::string head = c_.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight";
        vec z = linear(hf, w(head), V, scale(model_site::lm_head)); // logits[n, V]
        const T cap = static_cast<T>(c_.final_logit_softcapping);
        if (cap > 0) products_.softcap(z.data(), z.size(), cap);
        loss_and_grads<T> out;
        out.saved_bytes = sizeof(T) * (e.size() + h.size() + hf.size() + z.size() + ple_.size() + ple_mm_.size());
        for (const auto& s : states_) out.saved_bytes += layer::saved_bytes(s);
        const T per_token = T(1) / static_cast<T>(n_ / seq_ * (seq_ - 1)); // the mean over every predicted token
        double loss = 0; // in double: n terms
        for (std::size_t t = 0; t < n_; ++t)
            if (predicts(t)) loss += static_cast<double>(ref::cross_entropy(z.data() + t * V, V, id(t + 1)));
        out.loss = static_cast<T>(loss / static_cast<double>(n_ / seq_ * (seq_ - 1)));

        // Backward, from the loss down.
        vec dz(n_ * V, T(0));
        for (std::size_t t = 0; t < n_; ++t)
            if (predicts(t)) ref::cross_entropy_backward(z.data() + t * V, V, id(t + 1), per_token, dz.data() + t * V);
        if (cap > 0) ref::softcap_backward(z.data(), dz.data(), dz.size(), cap);
        vec dhf(n_ * D, T(0)), dh(n_ * D, T(0));
        linear_back(hf, w(head), dz, V, dhf, g(head), scale(model_site::lm_head));
        norm_back(h, w("model.norm.weight").data(), dhf, D, dh, g("model.norm.weight").data());
        dkv_.assign(layers_.size(), {});
        for (std::size_t l = layers_.size(); l-- > 0;) dh = layer_backward(l, dh);
        per_layer_inputs_backward(e, dh);
        vec& d_embed = g("model.embed_tokens.weight");
        for (std::size_t t = 0; t < n_; ++t)
            for (std::size_t i = 0; i < D; ++i) d_embed[id(t) * D + i] += dh[t * D + i] * std::sqrt(T(D));
        out.grads = std::move(grads_);
        return out;
    }

private:
    tensors<T> grads_; // bound by the base before it is built: used only after
    std::vector<layer_info> layers_;
    std::vector<layer> blocks_;
    std::span<const std::int32_t> ids_;
    std::size_t n_;
    std::vector<typename layer::state> states_;
    std::vector<typename layer::kv_gradient> dkv_; // per layer with its own K/V, from every layer reading them
    vec ple_, dple_, ple_mm_; // [n, L P]: the per-layer inputs, their gradient, the projection before its norm

    std::size_t id(std::size_t t) const { return static_cast<std::size_t>(ids_[t]); }
    // Token t predicts token t + 1 unless it ends its sequence.
    bool predicts(std::size_t t) const { return (t + 1) % seq_ != 0; }

    // Layer l's forward and backward, its per-layer input cut from ple_ and
    // its gradient put back into dple_.
    vec layer_forward(std::size_t l, const vec& h) {
        const layer_info& li = layers_[l];
        return blocks_[l].forward(h, ple_of(l), states_[l], li.has_kv ? nullptr : &states_[li.kv_source_layer]);
    }
    vec layer_backward(std::size_t l, const vec& dh) {
        const layer_info& li = layers_[l];
        vec dp;
        vec dx = blocks_[l].backward(dh, states_[l], dkv_[li.kv_source_layer], dp,
                                     li.has_kv ? nullptr : &states_[li.kv_source_layer]);
        if (c_.has_per_layer_input()) {
            const std::size_t P = c_.hidden_size_per_layer_input, LP = layers_.size() * P;
            for (std::size_t t = 0; t < n_; ++t)
                for (std::size_t j = 0; j < P; ++j) dple_[t * LP + l * P + j] += dp[t * P + j];
        }
        return dx;
    }
    vec ple_of(std::size_t l) const {
        if (!c_.has_per_layer_input()) return {};
        const std::size_t P = c_.hidden_size_per_layer_input, LP = layers_.size() * P;
        vec p(n_ * P);
        for (std::size_t t = 0; t < n_; ++t)
            for (std::size_t j = 0; j < P; ++j) p[t * P + j] = ple_[t * LP + l * P + j];
        return p;
    }

    // §6, model level: p[n, L P] = (rmsnorm(e pmp^T / sqrt(D)) + embed_tokens_per_layer[ids] sqrt(P)) / sqrt(2).
    void per_layer_inputs(const vec& e) {
        if (!c_.has_per_layer_input()) return;
        const std::size_t D = c_.hidden_size, P = c_.hidden_size_per_layer_input, LP = c_.num_hidden_layers * P;
        ple_mm_ = linear(e, w("model.per_layer_model_projection.weight"), LP,
                         scale(model_site::per_layer_model_projection));
        for (T& v : ple_mm_) v /= std::sqrt(T(D));
        ple_ = norm(ple_mm_, w("model.per_layer_projection_norm.weight").data(), P);
        const vec& table = w("model.embed_tokens_per_layer.weight");
        for (std::size_t t = 0; t < n_; ++t)
            for (std::size_t j = 0; j < LP; ++j)
                ple_[t * LP + j] = (ple_[t * LP + j] + table[id(t) * LP + j] * std::sqrt(T(P))) / std::sqrt(T(2));
        dple_.assign(ple_.size(), T(0));
    }
    void per_layer_inputs_backward(const vec& e, vec& de) {
        if (!c_.has_per_layer_input()) return;
        const std::size_t D = c_.hidden_size, P = c_.hidden_size_per_layer_input, LP = c_.num_hidden_layers * P;
        vec d(dple_.size()); // d(p) / sqrt(2): both terms' gradient
        for (std::size_t i = 0; i < d.size(); ++i) d[i] = dple_[i] / std::sqrt(T(2));
        vec& d_table = g("model.embed_tokens_per_layer.weight");
        for (std::size_t t = 0; t < n_; ++t)
            for (std::size_t j = 0; j < LP; ++j) d_table[id(t) * LP + j] += d[t * LP + j] * std::sqrt(T(P));
        vec dmm(ple_mm_.size(), T(0));
        norm_back(ple_mm_, w("model.per_layer_projection_norm.weight").data(), d, P, dmm,
                  g("model.per_layer_projection_norm.weight").data());
        for (T& v : dmm) v /= std::sqrt(T(D));
        linear_back(e, w("model.per_layer_model_projection.weight"), dmm, LP, de,
                    g("model.per_layer_model_projection.weight"), scale(model_site::per_layer_model_projection));
    }

};

} // namespace detail

// The loss of the model with parameters `w` (by Hugging Face name) on ids,
// B sequences of `seq` tokens (seq >= 2), and its gradient in every
// parameter: float32, the GEMMs on the kernels, split over `ex`; `scales`:
// static activations (banner).
inline loss_and_grads<float> loss_and_gradients(const gemma4::config& c, const tensors<float>& w,
                                                std::span<const std::int32_t> ids, std::size_t seq,
                                                const kernels::executor& ex = {}, activation_sites scales = {}) {
    return detail::pass<float, detail::kernel_products>(c, w, ids, seq, detail::kernel_products{ex},
                                                        std::move(scales))
        .run();
}

namespace reference {

// The same in scalar loops, in T; one sequence when seq is left out.
template <class T>
loss_and_grads<T> loss_and_gradients(const gemma4::config& c, const tensors<T>& w, std::span<const std::int32_t> ids,
                                     std::size_t seq = 0, activation_sites scales = {}) {
    return detail::pass<T, detail::reference_products<T>>(c, w, ids, seq == 0 ? ids.size() : seq, {},
                                                          std::move(scales))
        .run();
}

} // namespace reference
} // namespace gemma4
QTENSOR_END_NAMESPACE
