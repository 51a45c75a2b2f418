// fuzz/gguf_reader_fuzz.cpp: libFuzzer target for io::gguf_file. The bytes are
// a GGUF file; every metadata value and tensor entry the reader accepts is
// then used as a caller would: printed, converted, its bytes read and, where
// qtensor has the scheme, its first row dequantized; its tokenizer.ggml.* keys
// are read as a tokenizer (text::read_gguf_tokenizer), which encodes and decodes.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz_support.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/io/gguf.hpp"
#include "qtensor/io/tensor_entry.hpp"
#include "qtensor/kernels/quant.hpp"
#include "qtensor/scheme/registry.hpp"
#include "qtensor/text/gguf_tokenizer.hpp"

using namespace qtensor;
using qtensor_fuzz::expect_error_or_value;

namespace {

void touch(const io::gguf_value& v) {
    volatile std::size_t sink = v.to_string().size() + v.type_string().size();
    expect_error_or_value([&] { sink = sink + static_cast<std::size_t>(v.to_integer()); });
    expect_error_or_value([&] { sink = sink + static_cast<std::size_t>(v.to_float() != 0.0); });
    if (v.is_array())
        for (std::size_t i = 0; i < v.array_size() && i < 16; ++i) touch(v.at(i));
}

template <class S>
void dequantize_first_row(const io::tensor_entry& e, const std::string& path) {
    const auto view = io::as_view<S, 2>(e, path);
    if (view.extent(0) == 0 || view.extent(1) == 0) return;
    std::vector<float> row(view.extent(1));
    kernels::dequantize_row<S>(view.blocks(0), row);
}

void touch(const io::tensor_entry& e, const std::string& path) {
    unsigned sum = 0; // every byte must lie inside the mapping
    for (const std::byte b : e.data) sum += std::to_integer<unsigned>(b);
    volatile unsigned sink = sum + static_cast<unsigned>(e.elements());
    (void)sink;
    if (e.shape.size() != 2) return;
    expect_error_or_value([&] {
        visit_scheme(e.type, [&](auto s) {
            using S = decltype(s);
            if constexpr (!activation_only_scheme<S>) dequantize_first_row<S>(e, path);
        });
    });
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static qtensor_fuzz::memfd_file file("gguf_reader_fuzz");
    try {
        const io::gguf_file f(file.write(data, size));
        for (const io::gguf_kv& kv : f.metadata()) {
            touch(kv.value);
            if (f.find_metadata(kv.key) != &kv.value) std::abort(); // keys are unique
        }
        for (const io::tensor_entry& e : f.entries()) {
            touch(e, f.path());
            if (f.find(e.name) != &e) std::abort(); // names are unique
        }
        // The tokenizer.ggml.* keys as a tokenizer, which encodes and decodes.
        expect_error_or_value([&] {
            const text::tokenizer tok = text::read_gguf_tokenizer(f);
            volatile std::size_t sink = tok.decode(tok.encode("Hello  <|turn>user\n\xff caf\xc3\xa9")).size();
            (void)sink;
        });
    } catch (const error&) {
        // A refused file: the expected outcome for most inputs.
    }
    return 0;
}
