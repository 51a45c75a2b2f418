// qtensor/gemma4/profile.hpp: where the time of model calls goes, by family
// of ops, with the weight bytes each family reads (so a family's GB/s can be
// held against the machine's memory bandwidth). `qtensor generate --profile`
// prints one for the decode steps.
//
//   gemma4::profile prof;
//   for (...) logits = m.decode(id, cache, &prof); // sums over the calls
//   prof.seconds[profile::mlp] / prof.calls         // seconds per call
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <string_view>

#include "qtensor/core/config.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace gemma4 {

struct profile {
    enum family : std::size_t {
        embedding,   // token and per-layer-embedding rows, the per-layer model projection
        projections, // q, k, v, o projections
        attention,   // q/k/v norms, RoPE, K/V rows to the cache's scheme, attention over the cache
        mlp,         // gate, up, GeGLU, down; the router and experts of MoE layers
        per_layer,   // each layer's per-layer-input gate and projection
        head,        // final norm, LM head, softcap
        other,       // the rest: norms and residual adds between the above, the cache's bookkeeping
        families
    };
    static constexpr std::array<std::string_view, families> names{
        "embedding", "projections", "attention", "mlp", "per_layer", "head", "other"};

    std::array<double, families> seconds{};
    std::array<std::size_t, families> weight_bytes{}; // weight bytes read (matrices and table rows)
    std::size_t calls = 0;

    double total_seconds() const noexcept {
        double s = 0;
        for (const double x : seconds) s += x;
        return s;
    }
};

namespace detail {

// Adds the time from its construction to its end to a family of p (the
// family given, then the one switched to), and the bytes given to reads() to
// the current one; does nothing (no clock read) when p is null.
class profile_timer {
public:
    profile_timer(profile* p, profile::family f) : p_(p), f_(f) {
        if (p_) t0_ = std::chrono::steady_clock::now();
    }
    profile_timer(const profile_timer&) = delete;
    profile_timer& operator=(const profile_timer&) = delete;
    ~profile_timer() { switch_to(f_); }

    // The time so far to the current family; from now on, to f.
    void switch_to(profile::family f) {
        if (!p_) return;
        const auto now = std::chrono::steady_clock::now();
        p_->seconds[f_] += std::chrono::duration<double>(now - t0_).count();
        t0_ = now;
        f_ = f;
    }
    void reads(std::size_t bytes) noexcept {
        if (p_) p_->weight_bytes[f_] += bytes;
    }

private:
    profile* p_;
    profile::family f_;
    std::chrono::steady_clock::time_point t0_;
};

} // namespace detail
} // namespace gemma4
QTENSOR_END_NAMESPACE
