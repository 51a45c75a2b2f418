// The tiny Gemma 4 fixtures (tests/data/gemma4, as in gemma4_model_test.cpp)
// for the separately compiled model tests: a checkpoint, the token ids and
// the Hugging Face reference logits.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "qtensor/gemma4/checkpoint.hpp"
#include "qtensor/io/safetensors.hpp"
#include "qtensor/scheme/float.hpp"

namespace separate_test {

// Each logit within 1e-4 times the reference's max |logit| (gemma4_model_test.cpp's f32 budget).
inline constexpr double tolerance = 1e-4;

struct fixture {
    qtensor::gemma4::checkpoint checkpoint;
    std::vector<std::int32_t> ids;
    std::vector<float> logits; // [T, V]

    explicit fixture(const std::string& name)
        : checkpoint(std::string(QTENSOR_TEST_DATA_DIR) + "/gemma4/" + name) {
        const qtensor::io::safetensors_file ref(checkpoint.path() + "/reference.safetensors");
        for (std::int64_t id : qtensor::io::to_int64(ref.raw("input_ids"), ref.path()))
            ids.push_back(static_cast<std::int32_t>(id));
        logits = qtensor::io::as_view<qtensor::f32, 2>(ref.at("logits"), ref.path()).dequantize();
    }
};

} // namespace separate_test
