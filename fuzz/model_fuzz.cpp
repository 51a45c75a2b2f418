// fuzz/model_fuzz.cpp: libFuzzer target for the whole path from a file to
// logits. The bytes are a GGUF file, opened as a gemma4::checkpoint; its model
// is loaded in the f32 policy (every tensor type converted to float32), then
// runs two tokens twice: one forward() on a fresh cache, and a prefill() and
// a decode() on a cache of two positions. A malformed file must end in a
// qtensor::error at any step; anything else (another exception, a crash, a
// leak, undefined behaviour, a huge allocation) is a finding.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz_support.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/gemma4/checkpoint.hpp"
#include "qtensor/gemma4/model.hpp"
#include "qtensor/gemma4/policy.hpp"

using namespace qtensor;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // Anything else would be read as a Hugging Face directory: another target's job.
    if (size < 4 || std::memcmp(data, "GGUF", 4) != 0) return -1;
    static qtensor_fuzz::memfd_file file("model_fuzz");
    try {
        const gemma4::checkpoint ck(file.write(data, size));
        const auto m = gemma4::model<gemma4::f32_policy>::load(ck.config(), ck, ck.names());
        const gemma4::config& c = m.config();
        // Two in-range ids (the per-layer table may be the smaller vocabulary).
        const std::size_t vocab = c.has_per_layer_input()
                                      ? std::min(c.vocab_size, c.vocab_size_per_layer_input)
                                      : c.vocab_size;
        const std::array<std::int32_t, 2> ids{0, static_cast<std::int32_t>(std::min<std::size_t>(vocab - 1, 1))};
        const std::vector<float> all = m.forward(ids);
        auto cache = m.make_cache(ids.size());
        const std::vector<float> first = m.prefill(std::span(ids).first(1), cache);
        const std::vector<float> last = m.decode(ids[1], cache);
        float sum = 0.0f;
        for (const std::vector<float>* v : {&all, &first, &last})
            for (const float x : *v) sum += x;
        volatile float sink = sum;
        (void)sink;
    } catch (const error&) {
        // A refused file: the expected outcome for most inputs.
    }
    return 0;
}
