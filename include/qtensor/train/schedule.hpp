// qtensor/train/schedule.hpp: the learning rate of a step: a linear warmup
// from 0, then a cosine decay from the peak to a floor.
//
//   lr(s) = peak (s + 1) / warmup                                  s < warmup
//   lr(s) = floor + (peak - floor) (1 + cos(pi q)) / 2,            q = (s - warmup) / (total - warmup)
//
// s counts steps from 0; q runs from 0 at the end of the warmup to 1 at the
// last step (total - 1 reaches q = (total - 1 - warmup) / (total - warmup)),
// and steps past total stay at the floor.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace train {

struct warmup_cosine {
    double peak = 1e-3;
    double floor = 1e-4;
    std::uint64_t warmup = 0;
    std::uint64_t total = 1;

    double operator()(std::uint64_t step) const {
        if (total == 0 || warmup > total || !(peak >= floor) || !(floor >= 0))
            throw error("train::warmup_cosine: needs 0 <= floor <= peak and warmup <= total, total > 0");
        if (step < warmup) return peak * static_cast<double>(step + 1) / static_cast<double>(warmup);
        if (total == warmup) return floor;
        const double q = std::min(1.0, static_cast<double>(step - warmup) / static_cast<double>(total - warmup));
        return floor + (peak - floor) * 0.5 * (1.0 + std::cos(std::numbers::pi * q));
    }
};

} // namespace train
QTENSOR_END_NAMESPACE
