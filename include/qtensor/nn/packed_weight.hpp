// qtensor/nn/packed_weight.hpp: a Q4_0 or Q8_0 weight matrix in its GGUF rows
// and, once repacked, also in the kernels' interleaved layout
// (kernels::interleaved: 16 rows' blocks side by side), which the products
// then use. The interleaved GEMV reads one stream where the GGUF one reads 16
// rows at once, and GEMM no longer regroups rows on every call; the price is
// a copy of the matrix in memory. Results: bit for bit the GGUF layout's from
// 4 tokens on, within matmul.hpp's budget below (kernels/matmul.hpp).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <span>

#include "qtensor/core/config.hpp"
#include "qtensor/kernels/executor.hpp"
#include "qtensor/kernels/matmul.hpp"
#include "qtensor/tensor/tensor_view.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace nn {

template <kernels::interleavable_scheme S>
struct packed_weight {
    using scheme_type = S;

    tensor_view<const S, 2> rows;                           // [out, in], GGUF layout; empty once repacked
    std::shared_ptr<const kernels::interleaved<S>> groups; // the same, interleaved; null until repack()

    packed_weight() = default;
    packed_weight(tensor_view<const S, 2> r) : rows(r) {} // NOLINT: a view is a weight not yet repacked

    std::size_t num_rows() const noexcept { return groups ? groups->rows() : rows.num_rows(); }
    std::size_t cols() const noexcept { return groups ? groups->cols() : rows.cols(); }
    bool repacked() const noexcept { return groups != nullptr; }

    // Copies the rows into the interleaved layout (its groups as tasks of ex)
    // and lets go of them: whatever holds them may then be freed. `done`
    // gets each slab of rows once copied (kernels::interleaved).
    void repack(const kernels::executor& ex = {},
                const std::function<void(std::span<const std::byte>)>& done = {}) {
        if (groups || rows.num_rows() == 0) return;
        groups = std::make_shared<const kernels::interleaved<S>>(rows, ex, done);
        rows = {};
    }
};

template <class W>
inline constexpr bool is_packed_weight = false;
template <class S>
inline constexpr bool is_packed_weight<packed_weight<S>> = true;

namespace detail {

// y[T, out] = a W^T for activations already quantized to Q8_0.
template <class S>
void gemm(const packed_weight<S>& w, const block_q8_0* a, std::size_t T, float* y, const kernels::executor& ex) {
    if (w.groups) kernels::unchecked::gemm(*w.groups, a, T, y, ex);
    else kernels::unchecked::gemm(w.rows, a, T, y, ex);
}

} // namespace detail
} // namespace nn
QTENSOR_END_NAMESPACE
