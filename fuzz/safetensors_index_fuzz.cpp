// fuzz/safetensors_index_fuzz.cpp: libFuzzer target for the shard index of
// io::safetensors_checkpoint. The bytes are a model.safetensors.index.json in
// a directory that also holds two small fixed shards (fuzz_support.hpp), and
// the directory is opened as a checkpoint; every tensor it accepts is then
// looked up by its stored name and, for the text model, its model.* alias.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/io/safetensors.hpp"

using namespace qtensor;

namespace {

std::filesystem::path dir;

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    dir = qtensor_fuzz::scratch_dir("index");
    qtensor_fuzz::write_shards(dir);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    qtensor_fuzz::write_file(dir / "model.safetensors.index.json",
                             std::string_view(reinterpret_cast<const char*>(data), size));
    try {
        const io::safetensors_checkpoint ck(dir.string());
        unsigned sum = 0;
        for (const io::raw_tensor& t : ck.tensors()) {
            if (ck.find_raw(t.name) == nullptr) std::abort();
            for (const std::byte b : t.data) sum += std::to_integer<unsigned>(b);
            constexpr std::string_view text = "model.language_model.";
            if (std::string_view(t.name).starts_with(text) &&
                ck.find_raw("model." + t.name.substr(text.size())) == nullptr)
                std::abort(); // the text model's alias
        }
        for (const io::tensor_entry& e : ck.entries())
            if (&ck.at(e.name) != &e) std::abort();
        volatile unsigned sink = sum + static_cast<unsigned>(ck.files().size());
        (void)sink;
    } catch (const error&) {
        // A refused index: the expected outcome for most inputs.
    }
    return 0;
}
