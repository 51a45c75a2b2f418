// qtensor/io/safetensors.hpp: the safetensors reader. A file is mapped
// read-only and every tensor is a view of its bytes in the mapping: opening a
// checkpoint parses the JSON header and copies no weights.
//
// Format (github.com/huggingface/safetensors):
//   u64 little-endian N | N bytes of JSON header | byte buffer
// The header is an object {name: {"dtype": "F32", "shape": [512, 128],
// "data_offsets": [begin, end]}, ...} with an optional "__metadata__" map of
// strings; offsets count from the start of the byte buffer. The spec also
// asks for: N <= 100 MB, a header that starts with '{' (it may be padded with
// spaces), no duplicate names, and tensors that tile the buffer exactly, with
// no overlap and no hole (no file can carry bytes its header does not
// describe). All of it is checked at open; a violation throws qtensor::error
// naming the file and, where there is one, the tensor.
//
// Types: F32, F16 and BF16 tensors are tensor_entry views (find, at,
// entries). Every other dtype of the spec (BOOL, integers, F64, C64, F8_*,
// F6_*, F4) is checked the same way and listed by tensors() with its dtype
// string, as a raw_tensor: find() does not return it, raw() gives its bytes,
// to_int64() widens an integer tensor (a reference file's input_ids is I64).
// A dtype outside the spec is an error: its size, hence the offsets, cannot
// be checked.
//
// Alignment: nothing is copied, so a tensor is read where it lies. Hugging
// Face pads the header so the buffer starts 8-byte aligned (the mapping is
// page-aligned), but the format does not require it: a float tensor whose
// bytes are misaligned for its element type is still listed, and as_view()
// refuses it with a message saying so (tensor_view checks alignment); raw()
// reads it.
//
// safetensors_checkpoint opens what save_pretrained writes: one file, or a
// directory holding model.safetensors or model.safetensors.index.json (the
// index maps every tensor to its shard). Multimodal checkpoints store the text
// model under model.language_model.*; such a tensor is also found as model.*,
// so the text model loads the same way from either. Other towers
// (model.vision_tower.*, model.audio_tower.*, ...) keep their names.
#pragma once

#if !defined(QTENSOR_HAVE_JSON)
#error "qtensor/io/safetensors.hpp needs nlohmann-json: configure qtensor with QTENSOR_WITH_JSON=ON"
#endif

#include <bit>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/io/mapped_file.hpp"
#include "qtensor/io/tensor_entry.hpp"
#include "qtensor/scheme/scheme.hpp"

// safetensors data is little-endian and is viewed in place.
static_assert(std::endian::native == std::endian::little,
              "qtensor: the safetensors reader views little-endian data in place");

QTENSOR_BEGIN_NAMESPACE
namespace io {

// A tensor as the file stores it, whatever its dtype: the safetensors dtype
// string ("F32", "I64", "F8_E4M3", ...), the shape outermost first and exactly
// its bytes inside the mapping.
struct raw_tensor {
    std::string name;
    std::string dtype;
    std::vector<std::size_t> shape;
    std::span<const std::byte> data;

    std::size_t elements() const noexcept {
        std::size_t n = 1;
        for (std::size_t e : shape) n *= e;
        return n;
    }
};

namespace detail {

// Bits per element of each safetensors dtype (0: not a dtype of the spec).
// F4, F6_* pack elements across bytes; a tensor of them must fill whole bytes.
inline std::size_t safetensors_dtype_bits(std::string_view d) noexcept {
    if (d == "F4") return 4;
    if (d == "F6_E2M3" || d == "F6_E3M2") return 6;
    if (d == "BOOL" || d == "U8" || d == "I8" || d == "F8_E5M2" || d == "F8_E4M3" || d == "F8_E8M0") return 8;
    if (d == "I16" || d == "U16" || d == "F16" || d == "BF16") return 16;
    if (d == "I32" || d == "U32" || d == "F32") return 32;
    if (d == "I64" || d == "U64" || d == "F64" || d == "C64") return 64;
    return 0;
}

// The ggml type a dtype is viewed as, if any.
inline std::optional<ggml_type> safetensors_view_type(std::string_view d) noexcept {
    if (d == "F32") return ggml_type::f32;
    if (d == "F16") return ggml_type::f16;
    if (d == "BF16") return ggml_type::bf16;
    return std::nullopt;
}

// Tensors by name, for a file or a whole checkpoint: every tensor as stored,
// the viewable ones also as tensor_entry, and aliases (other names that find
// a stored tensor).
class tensor_table {
public:
    // The readers check that names are unique before they add them.
    void add(raw_tensor t) {
        slot s{tensors_.size(), npos};
        if (const auto type = safetensors_view_type(t.dtype)) {
            s.entry = entries_.size();
            entries_.push_back(tensor_entry{t.name, *type, t.shape, t.data});
        }
        by_name_.emplace(t.name, s);
        tensors_.push_back(std::move(t));
    }

    // `alias` finds the tensor stored as `stored`, unless a tensor is stored
    // under `alias` itself: a stored name always wins.
    void add_alias(std::string alias, std::string_view stored) {
        const auto it = by_name_.find(stored);
        if (it != by_name_.end()) by_name_.emplace(std::move(alias), it->second);
    }

    const tensor_entry* find(std::string_view name) const {
        const auto it = by_name_.find(name);
        return it == by_name_.end() || it->second.entry == npos ? nullptr : &entries_[it->second.entry];
    }
    const raw_tensor* find_raw(std::string_view name) const {
        const auto it = by_name_.find(name);
        return it == by_name_.end() ? nullptr : &tensors_[it->second.raw];
    }

    const tensor_entry& at(std::string_view name, std::string_view path) const {
        if (const tensor_entry* e = find(name)) return *e;
        const raw_tensor& t = raw(name, path);
        throw error(std::string(path) + ": tensor " + std::string(name) + " has dtype " + t.dtype +
                    ", which has no view (only F32, F16 and BF16 do); raw() gives its bytes");
    }
    const raw_tensor& raw(std::string_view name, std::string_view path) const {
        if (const raw_tensor* t = find_raw(name)) return *t;
        throw error(std::string(path) + ": no tensor " + std::string(name));
    }

    const std::vector<tensor_entry>& entries() const noexcept { return entries_; }
    const std::vector<raw_tensor>& tensors() const noexcept { return tensors_; }

private:
    static constexpr std::size_t npos = static_cast<std::size_t>(-1);
    struct slot {
        std::size_t raw;   // index into tensors_
        std::size_t entry; // index into entries_, npos when not viewable
    };

    std::vector<raw_tensor> tensors_;
    std::vector<tensor_entry> entries_;
    std::map<std::string, slot, std::less<>> by_name_;
};

} // namespace detail

// The values of an integer tensor (I8, I16, I32, I64, U8, U16, U32, U64),
// widened to int64 in storage order. Throws naming `path` and the tensor for
// any other dtype, or for a U64 value above INT64_MAX.
inline std::vector<std::int64_t> to_int64(const raw_tensor& t, std::string_view path) {
    const auto where = [&] { return std::string(path) + ": tensor " + t.name; };
    const std::string& d = t.dtype;
    const bool is_signed = d == "I8" || d == "I16" || d == "I32" || d == "I64";
    const bool is_unsigned = d == "U8" || d == "U16" || d == "U32" || d == "U64";
    if (!is_signed && !is_unsigned) throw error(where() + " has dtype " + d + ", not an integer type");
    const std::size_t width = detail::safetensors_dtype_bits(d) / 8;
    std::vector<std::int64_t> out(t.data.size() / width);
    for (std::size_t i = 0; i < out.size(); ++i) {
        std::uint64_t u = 0; // little-endian, any alignment
        for (std::size_t b = width; b-- > 0;)
            u = (u << 8) | std::to_integer<std::uint64_t>(t.data[i * width + b]);
        if (is_signed && width < 8 && (u >> (8 * width - 1)) != 0) u |= ~std::uint64_t{0} << (8 * width);
        if (!is_signed && u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
            throw error(where() + ": element " + std::to_string(i) + " (" + std::to_string(u) +
                        ") does not fit in int64");
        out[i] = static_cast<std::int64_t>(u);
    }
    return out;
}

class safetensors_file {
public:
    // The safetensors spec's limit on the header length.
    static constexpr std::uint64_t max_header_bytes = 100'000'000;

    // Maps and checks the whole file; throws qtensor::error naming the file
    // (and the tensor) for anything the spec does not allow.
    explicit safetensors_file(std::string path);

    const std::string& path() const noexcept { return file_.path(); }
    // Drops the pages of `part` (tensor bytes the caller copied) from resident memory: mapped_file::drop_pages.
    bool drop_pages(std::span<const std::byte> part) const noexcept { return file_.drop_pages(part); }

    // The F32, F16 or BF16 tensor `name`; nullptr when there is none (absent
    // or another dtype: tensors() lists every tensor).
    const tensor_entry* find(std::string_view name) const { return table_.find(name); }
    // As find(), but throws naming the file, and the dtype if that is why.
    const tensor_entry& at(std::string_view name) const { return table_.at(name, path()); }
    // The F32, F16 and BF16 tensors, in the order of their bytes in the file.
    const std::vector<tensor_entry>& entries() const noexcept { return table_.entries(); }

    // Every tensor, whatever its dtype, in the order of its bytes.
    const std::vector<raw_tensor>& tensors() const noexcept { return table_.tensors(); }
    const raw_tensor* find_raw(std::string_view name) const { return table_.find_raw(name); }
    const raw_tensor& raw(std::string_view name) const { return table_.raw(name, path()); }

    // The header's "__metadata__" (empty when it has none).
    const std::map<std::string, std::string, std::less<>>& metadata() const noexcept { return metadata_; }

    // The whole mapped file.
    std::span<const std::byte> bytes() const noexcept { return file_.bytes(); }

private:
    [[noreturn]] void fail(const std::string& what) const { throw error(path() + ": " + what); }
    [[noreturn]] void fail_tensor(const std::string& name, const std::string& what) const {
        fail("tensor " + name + ": " + what);
    }

    // A tensor and where its bytes begin in the data buffer.
    struct placed {
        raw_tensor tensor;
        std::size_t begin;
    };
    // "[begin, end)". (Appending avoids "[" + std::string, on which GCC 12
    // gives a false -Wrestrict.)
    static std::string range(const placed& p) {
        std::string r(1, '[');
        r += std::to_string(p.begin) + ", " + std::to_string(p.begin + p.tensor.data.size()) + ")";
        return r;
    }

    void read_metadata(const nlohmann::json& info);

    // One tensor's {dtype, shape, data_offsets}, checked against the buffer.
    placed read_info(const std::string& name, const nlohmann::json& info,
                     std::span<const std::byte> buffer) const;

    mapped_file file_;
    detail::tensor_table table_;
    std::map<std::string, std::string, std::less<>> metadata_;
};

class safetensors_checkpoint {
public:
    // `path`: a .safetensors file, a .safetensors.index.json file, or a
    // directory holding model.safetensors or else model.safetensors.index.json
    // (the order transformers looks for them in). Throws qtensor::error naming
    // the file at fault.
    explicit safetensors_checkpoint(std::string path);

    // What the checkpoint was opened from, as given.
    const std::string& path() const noexcept { return path_; }
    // The same for the shard that holds `part`.
    bool drop_pages(std::span<const std::byte> part) const noexcept {
        for (const safetensors_file& f : files_)
            if (f.drop_pages(part)) return true;
        return false;
    }

    // By stored name, or model.X for a tensor stored as
    // model.language_model.X. The same rules as safetensors_file otherwise.
    const tensor_entry* find(std::string_view name) const { return table_.find(name); }
    const tensor_entry& at(std::string_view name) const { return table_.at(name, path_); }
    const raw_tensor* find_raw(std::string_view name) const { return table_.find_raw(name); }
    const raw_tensor& raw(std::string_view name) const { return table_.raw(name, path_); }

    // Stored names, shard by shard in file name order, each in file order.
    const std::vector<tensor_entry>& entries() const noexcept { return table_.entries(); }
    const std::vector<raw_tensor>& tensors() const noexcept { return table_.tensors(); }

    // The files, shards in file name order.
    const std::vector<safetensors_file>& files() const noexcept { return files_; }

private:
    // Opens every shard the index names and checks that each tensor is in
    // the shard the index says, and each shard's tensors are all in the index.
    void open_shards(const std::filesystem::path& index);

    std::string path_;
    std::vector<safetensors_file> files_;
    detail::tensor_table table_;
};

static_assert(tensor_source<safetensors_file>);
static_assert(tensor_source<safetensors_checkpoint>);

} // namespace io
QTENSOR_END_NAMESPACE

// The readers: compiled once in separate mode (core/config.hpp).
#if !defined(QTENSOR_DECLARE_ONLY)
#include "qtensor/io/safetensors_impl.hpp"
#endif
