// qtensor/train/tensors.hpp: named float arrays, the currency of training
// (parameters, gradients, optimizer moments), and what a step does to all of
// them at once: accumulate, scale, the global norm and clipping by it.
//
// The element-wise passes over every parameter (AdamW, the rehearsal of QAT,
// the norm) split the tensors into the same fixed pieces whatever the
// executor: a result never depends on the thread count.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/kernels/executor.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace train {

// Row-major arrays by name (for a Gemma 4 model, Hugging Face's names).
template <class T>
using tensors = std::map<std::string, std::vector<T>, std::less<>>;

namespace detail {

// `b` holds the same names and sizes as `a`, or the message says which differs.
template <class T>
void check_same_layout(const char* what, const tensors<T>& a, const tensors<T>& b) {
    if (a.size() != b.size())
        throw error(std::string(what) + ": " + std::to_string(b.size()) + " tensors against " +
                    std::to_string(a.size()));
    for (auto i = a.begin(), j = b.begin(); i != a.end(); ++i, ++j)
        if (i->first != j->first || i->second.size() != j->second.size())
            throw error(std::string(what) + ": tensor " + j->first + " (" + std::to_string(j->second.size()) +
                        " elements) where " + i->first + " (" + std::to_string(i->second.size()) + ") was expected");
}

} // namespace detail

// Elements [begin, end) of tensor `tensor` (in the order of some list of tensors).
struct piece {
    std::size_t tensor, begin, end;
};

// The elements of a piece: whole blocks of every scheme (rehearsal checks).
inline constexpr std::size_t piece_elems = std::size_t{1} << 16;

// Tensors of these sizes cut into pieces of piece_elems, the last of each
// tensor shorter: the tasks of a pass over every parameter.
inline std::vector<piece> pieces_of(const std::vector<std::size_t>& sizes) {
    std::vector<piece> out;
    for (std::size_t k = 0; k < sizes.size(); ++k)
        for (std::size_t b = 0; b < sizes[k]; b += piece_elems)
            out.push_back({k, b, std::min(sizes[k], b + piece_elems)});
    return out;
}

// sum += g, tensor by tensor (gradient accumulation); an empty sum takes g
// over (moved, when g is an rvalue: no copy for the first micro-batch).
template <class T>
void accumulate(tensors<T>& sum, tensors<T> g) {
    if (sum.empty()) {
        sum = std::move(g);
        return;
    }
    detail::check_same_layout("train::accumulate", sum, g);
    auto j = g.begin();
    for (auto& [name, v] : sum) {
        for (std::size_t k = 0; k < v.size(); ++k) v[k] += j->second[k];
        ++j;
    }
}

template <class T>
void scale(tensors<T>& g, T a) {
    for (auto& [name, v] : g)
        for (T& x : v) x *= a;
}

// sqrt(sum of every element squared), summed in double: each piece
// (pieces_of) on its own, then the pieces in order.
inline double global_norm(const tensors<float>& g, const kernels::executor& ex = {}) {
    std::vector<const float*> data;
    std::vector<std::size_t> sizes;
    for (const auto& [name, v] : g) data.push_back(v.data()), sizes.push_back(v.size());
    const std::vector<piece> pieces = pieces_of(sizes);
    std::vector<double> sums(pieces.size());
    ex.run(pieces.size(), [&](std::size_t i) {
        const piece& p = pieces[i];
        double sq = 0.0;
        for (std::size_t j = p.begin; j < p.end; ++j) sq += static_cast<double>(data[p.tensor][j]) * data[p.tensor][j];
        sums[i] = sq;
    });
    double sq = 0.0;
    for (const double s : sums) sq += s;
    return std::sqrt(sq);
}

// Scales g so that its global norm is at most max_norm, as PyTorch's
// clip_grad_norm_ does (coefficient max_norm / (norm + 1e-6), capped at 1).
// Returns the norm before clipping; a NaN or infinite norm is an error (the
// step would write NaN into every parameter).
inline double clip_by_global_norm(tensors<float>& g, double max_norm, const kernels::executor& ex = {}) {
    const double norm = global_norm(g, ex);
    if (!std::isfinite(norm))
        throw error("train::clip_by_global_norm: the gradient's norm is " + std::to_string(norm) +
                    " (a NaN or an overflow upstream)");
    const double coef = max_norm / (norm + 1e-6);
    if (coef < 1.0) scale(g, static_cast<float>(coef));
    return norm;
}

} // namespace train
QTENSOR_END_NAMESPACE
