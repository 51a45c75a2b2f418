// qtensor/nn/mixed_weight.hpp: a weight matrix whose scheme is picked at run
// time, for files that vary the type tensor by tensor. llama-quantize's mixes
// do: a Q4_K_M file keeps attn_v and ffn_down in Q6_K on some layers and Q4_K
// on the others. A mixed_weight holds the typed view of one such tensor, so
// nn::linear (linear.hpp) runs that scheme's own kernel on it, in place.
//
// weight_view_t<S> is the type a weight of scheme S takes: a mixed_weight for
// as_stored (as_stored.hpp; gemma4::stored_policy).
#pragma once

#include <cstddef>
#include <type_traits>
#include <variant>

#include "qtensor/core/config.hpp"
#include "qtensor/kernels/matmul.hpp"
#include "qtensor/nn/as_stored.hpp"
#include "qtensor/scheme/float.hpp"
#include "qtensor/scheme/registry.hpp"
#include "qtensor/tensor/tensor_view.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace nn {

namespace detail {
template <class... S>
using const_views = std::variant<tensor_view<const S, 2>...>;
} // namespace detail

class mixed_weight {
public:
    mixed_weight() noexcept : view_(tensor_view<const f32, 2>{}) {} // an empty f32 matrix

    template <class S>
        requires kernels::gemm_scheme<S>
    mixed_weight(tensor_view<const S, 2> v) noexcept : view_(v) {}

    // f(tensor_view<const S, 2>) with the view's own scheme S.
    template <class F>
    decltype(auto) visit(F&& f) const {
        return std::visit(std::forward<F>(f), view_);
    }

    ggml_type type() const noexcept {
        return visit([](const auto& v) { return std::remove_cvref_t<decltype(v)>::scheme_type::type_id; });
    }
    std::size_t num_rows() const noexcept { return visit([](const auto& v) { return v.num_rows(); }); }
    std::size_t cols() const noexcept { return visit([](const auto& v) { return v.cols(); }); }
    bool empty() const noexcept { return num_rows() == 0; }

    // Rows [first, first + count), as tensor_view::row_slice (which throws out of range).
    mixed_weight row_slice(std::size_t first, std::size_t count) const {
        return visit([&](const auto& v) { return mixed_weight(v.row_slice(first, count)); });
    }

private:
    kernels::gemm_scheme_list::apply<detail::const_views> view_;
};

// The type a weight of scheme S takes: its typed view, or for as_stored a mixed_weight.
template <class S>
struct weight_view {
    using type = tensor_view<const S, 2>;
};
template <>
struct weight_view<as_stored> {
    using type = mixed_weight;
};
template <class S>
using weight_view_t = typename weight_view<S>::type;

} // namespace nn
QTENSOR_END_NAMESPACE
