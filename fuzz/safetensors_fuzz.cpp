// fuzz/safetensors_fuzz.cpp: libFuzzer target for io::safetensors_file. The
// bytes are a .safetensors file; every tensor the reader accepts is then used
// as a caller would: looked up by name, its bytes read, float tensors viewed
// and integer tensors widened. The file is then read as a Compressed Tensors
// checkpoint (io::packed_weights) under a few quantization configs, and every
// packed weight decoded.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "fuzz_support.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/io/compressed_tensors.hpp"
#include "qtensor/io/safetensors.hpp"
#include "qtensor/io/tensor_entry.hpp"
#include "qtensor/scheme/registry.hpp"
#include "qtensor/scheme/float.hpp"

using namespace qtensor;
using qtensor_fuzz::expect_error_or_value;

namespace {

template <class S>
void view_all(const io::tensor_entry& e, const std::string& path) {
    expect_error_or_value([&] {
        const auto v = io::as_view<S, 1>(io::tensor_entry{e.name, e.type, {e.elements()}, e.data}, path);
        volatile float sink = v.extent(0) != 0 ? v(0) + v(v.extent(0) - 1) : 0.0f;
        (void)sink;
    });
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static qtensor_fuzz::memfd_file file("safetensors_fuzz");
    try {
        const io::safetensors_file f(file.write(data, size));
        unsigned sum = 0;
        for (const io::raw_tensor& t : f.tensors()) {
            if (f.find_raw(t.name) != &t) std::abort(); // names are unique
            for (const std::byte b : t.data) sum += std::to_integer<unsigned>(b);
            expect_error_or_value([&] { sum += static_cast<unsigned>(io::to_int64(t, f.path()).size()); });
        }
        for (const io::tensor_entry& e : f.entries()) {
            if (&f.at(e.name) != &e) std::abort();
            switch (e.type) {
            case ggml_type::f32: view_all<f32>(e, f.path()); break;
            case ggml_type::f16: view_all<f16>(e, f.path()); break;
            case ggml_type::bf16: view_all<bf16>(e, f.path()); break;
            default: std::abort(); // only float dtypes have entries
            }
        }
        for (const auto& [key, value] : f.metadata()) sum += static_cast<unsigned>(key.size() + value.size());
        // 4 bits in groups of 32 (Q4_0 blocks), 8 bits per row (Q8_0), 4 and 2 bits asymmetric (float32).
        const io::safetensors_checkpoint ck(f.path());
        for (const io::packed_weight_args& args : {io::packed_weight_args{4, true, 32}, io::packed_weight_args{8, true, 0},
                                                   io::packed_weight_args{4, false, 128}, io::packed_weight_args{2, false, 32}})
            expect_error_or_value([&] {
                const io::packed_weights packed(ck, args);
                for (const std::string& name : packed.names())
                    expect_error_or_value([&] {
                        const io::tensor_entry* e = packed.find(name);
                        const ggml_type_info* t = e == nullptr ? nullptr : find_ggml_type(e->type);
                        if (t == nullptr || e->data.size() != e->elements() / t->block_elems * t->block_bytes)
                            std::abort(); // a decoded weight is whole blocks of its type
                        for (const std::byte b : e->data) sum += std::to_integer<unsigned>(b);
                    });
            });
        volatile unsigned sink = sum;
        (void)sink;
    } catch (const error&) {
        // A refused file: the expected outcome for most inputs.
    }
    return 0;
}
