// qtensor/io/safetensors_writer.hpp: safetensors_writer, which builds a
// safetensors file (the layout is in io/safetensors.hpp) that the reader, and
// Hugging Face's own library, open: tensors in the order added, tiling the
// byte buffer with no hole; the JSON header padded with spaces so the buffer
// starts 8-byte aligned, as Hugging Face's writer does, so that every F32
// tensor can be viewed in place. Hugging Face's writer orders the header as
// the tensors lie in the buffer, then dtype, shape, data_offsets; so does
// this one.
#pragma once

#if !defined(QTENSOR_HAVE_JSON)
#error "qtensor/io/safetensors_writer.hpp needs nlohmann-json: configure qtensor with QTENSOR_WITH_JSON=ON"
#endif

#include <bit>
#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/io/output_file.hpp"
#include "qtensor/io/safetensors.hpp"
#include "qtensor/io/tensor_entry.hpp"

static_assert(std::endian::native == std::endian::little,
              "qtensor: the safetensors writer stores tensors as they lie in memory");

QTENSOR_BEGIN_NAMESPACE
namespace io {

// Tensor bytes are not copied: they must stay valid until write().
class safetensors_writer {
public:
    // "__metadata__" holds strings only (the format's rule).
    void set_metadata(std::string key, std::string value) { metadata_[std::move(key)] = std::move(value); }

    // dtype: one of the spec's ("F32", "BF16", "I64", ...); shape outermost
    // first ({} is a scalar); bytes: exactly the tensor's.
    void add(std::string name, std::string dtype, std::vector<std::size_t> shape, std::span<const std::byte> bytes) {
        const std::string where = "safetensors writer: tensor \"" + name + "\"";
        if (name.empty() || name == "__metadata__") throw error(where + ": not a name a tensor can have");
        for (const tensor& t : tensors_)
            if (t.name == name) throw error(where + " added twice");
        const std::size_t bits = detail::safetensors_dtype_bits(dtype);
        if (bits == 0) throw error(where + ": unknown dtype \"" + dtype + "\"");
        std::size_t elements = 1;
        for (const std::size_t e : shape) {
            if (e != 0 && elements > SIZE_MAX / 8 / e) throw error(where + " has more elements than fit in memory");
            elements *= e;
        }
        if (elements * bits % 8 != 0 || bytes.size() != elements * bits / 8)
            throw error(where + ": " + std::to_string(elements) + " elements of " + dtype + " take " +
                        std::to_string(elements * bits / 8) + " bytes, got " + std::to_string(bytes.size()));
        tensors_.push_back({std::move(name), std::move(dtype), std::move(shape), bytes});
    }
    void add(std::string name, std::vector<std::size_t> shape, std::span<const float> values) {
        add(std::move(name), "F32", std::move(shape), std::as_bytes(values));
    }
    void add(const tensor_entry& e) {
        const char* dtype = e.type == ggml_type::f32    ? "F32"
                            : e.type == ggml_type::f16  ? "F16"
                            : e.type == ggml_type::bf16 ? "BF16"
                                                        : nullptr;
        if (dtype == nullptr)
            throw error("safetensors writer: tensor \"" + e.name + "\" is " + std::string(type_name(e.type)) +
                        "; safetensors holds F32, F16 and BF16 tensors, not ggml's blocks");
        add(e.name, dtype, e.shape, e.data);
    }

    // Writes the file to `path` (a regular file there is replaced atomically;
    // see output_file for the rest).
    void write(const std::string& path) const {
        output_file out(path);
        write(out);
    }

    void write(output_file& out) const {
        // Keys in insertion order, as Hugging Face writes them: a file added
        // tensor by tensor in its own order is written back byte for byte.
        nlohmann::ordered_json header = nlohmann::ordered_json::object();
        if (!metadata_.empty()) header["__metadata__"] = metadata_;
        std::size_t offset = 0;
        for (const tensor& t : tensors_) {
            header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.bytes.size()}}};
            offset += t.bytes.size();
        }
        std::string text = header.dump();
        text.append((8 - (8 + text.size()) % 8) % 8, ' '); // the buffer starts at 8 + N: a multiple of 8
        if (text.size() > safetensors_file::max_header_bytes)
            throw error("safetensors writer: the header of " + std::to_string(text.size()) +
                        " bytes is over the format's limit (too many tensors or metadata for one file)");
        std::vector<std::byte> head(8);
        for (std::size_t i = 0; i < 8; ++i) head[i] = static_cast<std::byte>(std::uint64_t{text.size()} >> (8 * i));
        out.write(head);
        out.write(std::as_bytes(std::span(text)));
        for (const tensor& t : tensors_) out.write(t.bytes);
        out.commit();
    }

private:
    struct tensor {
        std::string name, dtype;
        std::vector<std::size_t> shape;
        std::span<const std::byte> bytes;
    };

    std::map<std::string, std::string> metadata_;
    std::vector<tensor> tensors_;
};

} // namespace io
QTENSOR_END_NAMESPACE
