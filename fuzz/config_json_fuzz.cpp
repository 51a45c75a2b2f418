// fuzz/config_json_fuzz.cpp: libFuzzer target for the config.json reader,
// gemma4::config::from_hf_file. The bytes are a config.json; a config it
// accepts is then expanded into its layers (config::layers()) and turned into
// GGUF metadata (write_metadata), the two things a loader does next. Any
// parsed JSON is also read for a Compressed Tensors quantization_config.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_support.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/gemma4/config.hpp"
#include "qtensor/gemma4/gguf.hpp"
#include "qtensor/io/compressed_tensors.hpp"
#include "qtensor/io/gguf.hpp"

using namespace qtensor;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static qtensor_fuzz::memfd_file file("config_json_fuzz");
    const std::string path = file.write(data, size);
    qtensor_fuzz::expect_error_or_value(
        [&] { (void)io::compressed_tensors_args(gemma4::config::hf_json(path), "config.json"); });
    try {
        const gemma4::config c = gemma4::config::from_hf_file(path);
        std::size_t sum = 0;
        for (const gemma4::layer_info& li : c.layers()) sum += li.rope_freq.size() + li.kv_source_layer;
        volatile std::size_t sink = sum;
        (void)sink;
        io::gguf_writer w;
        gemma4::write_metadata(c, w);
    } catch (const error&) {
        // A refused config: the expected outcome for most inputs.
    }
    return 0;
}
