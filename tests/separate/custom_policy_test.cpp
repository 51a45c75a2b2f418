// A policy that is not one of the named ones, in a separately compiled
// program: its TU includes model_impl.hpp and so compiles model<P> itself
// (docs/kernels.md, "Separate compilation"); the kernels, the readers and the
// checkpoint still come from separate/define.cpp.
#include <doctest/doctest.h>

#include "test_util.hpp"

#include "fixtures.hpp"
#include "qtensor/gemma4/checkpoint.hpp"
#include "qtensor/gemma4/model.hpp"
#include "qtensor/gemma4/model_impl.hpp"

using namespace qtensor;
using qtensor_test::max_abs;
using qtensor_test::max_diff;

TEST_CASE("a policy of one's own in a separately compiled program: the reference logits") {
    using own_policy = gemma4::policy<f32, f32, f32, f32, f32>; // f32_policy's schemes, another type
    const separate_test::fixture f("tiny-e2b");
    const auto m = gemma4::model<own_policy>::load(f.checkpoint.config(), f.checkpoint, f.checkpoint.names());
    CHECK(max_diff(m.forward(f.ids), f.logits) <= separate_test::tolerance * max_abs(f.logits));
}
