// qtensor/io/safetensors_impl.hpp: the bodies of the safetensors readers,
// which parse the JSON headers and check them (safetensors.hpp says what is
// checked). safetensors.hpp includes this file, except in the TUs of a
// separately compiled program (core/config.hpp) that only declare them.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/io/json.hpp"
#include "qtensor/io/mapped_file.hpp"
#include "qtensor/io/safetensors.hpp"

#if defined(QTENSOR_DECLARE_ONLY)
#error "qtensor/io/safetensors_impl.hpp is compiled by the QTENSOR_DEFINE TU only"
#endif

QTENSOR_BEGIN_NAMESPACE
namespace io {

namespace detail {

// A JSON value that must be an integer >= 0 that fits in size_t.
inline std::optional<std::size_t> json_size(const nlohmann::json& v) {
    if (!v.is_number_unsigned()) return std::nullopt;
    const auto u = v.get<std::uint64_t>();
    if (u > std::numeric_limits<std::size_t>::max()) return std::nullopt;
    return static_cast<std::size_t>(u);
}

} // namespace detail

QTENSOR_INLINE safetensors_file::safetensors_file(std::string path) : file_(std::move(path)) {
    const std::span<const std::byte> bytes = file_.bytes();
    if (bytes.size() < 8)
        fail("the file has " + std::to_string(bytes.size()) +
             " bytes, too short for the 8-byte header length of a safetensors file");
    std::uint64_t header_len = 0;
    for (std::size_t b = 8; b-- > 0;)
        header_len = (header_len << 8) | std::to_integer<std::uint64_t>(bytes[b]);
    if (header_len > max_header_bytes)
        fail("header length " + std::to_string(header_len) + " exceeds the safetensors limit of " +
             std::to_string(max_header_bytes) + " bytes");
    if (header_len > bytes.size() - 8)
        fail("header length " + std::to_string(header_len) + " runs past the end of the file (" +
             std::to_string(bytes.size()) + " bytes)");
    const std::string_view text(reinterpret_cast<const char*>(bytes.data()) + 8,
                                static_cast<std::size_t>(header_len));
    if (text.empty() || text.front() != '{') fail("the header does not start with '{'");
    // nlohmann stops at a NUL as at the end of input; JSON allows none.
    if (const std::size_t nul = text.find('\0'); nul != std::string_view::npos)
        fail("the header holds a NUL byte at offset " + std::to_string(8 + nul) + ", not valid JSON");
    // Depth 3: the header object, a tensor's object, its shape array.
    const nlohmann::json header = parse_json(text, 3, file_.path() + ": header");

    const std::span<const std::byte> buffer = bytes.subspan(8 + text.size());
    std::vector<placed> found;
    for (const auto& [name, info] : header.items()) {
        if (name == "__metadata__") {
            read_metadata(info);
            continue;
        }
        found.push_back(read_info(name, info, buffer));
    }

    // The tensors must tile the buffer: sorted by offset, each begins
    // where the one before ends, and the last ends at the end of file.
    std::stable_sort(found.begin(), found.end(), [](const placed& a, const placed& b) {
        return a.begin != b.begin ? a.begin < b.begin : a.tensor.data.size() < b.tensor.data.size();
    });
    std::size_t covered = 0;
    const placed* previous = nullptr;
    for (const placed& p : found) {
        if (p.begin < covered)
            fail_tensor(p.tensor.name, "bytes " + range(p) + " overlap tensor " + previous->tensor.name +
                                           " (bytes " + range(*previous) + ")");
        if (p.begin > covered)
            fail("bytes [" + std::to_string(covered) + ", " + std::to_string(p.begin) +
                 ") of the data buffer belong to no tensor (a hole before tensor " + p.tensor.name + ")");
        covered = p.begin + p.tensor.data.size();
        previous = &p;
    }
    if (covered != buffer.size())
        fail("the last " + std::to_string(buffer.size() - covered) +
             " bytes of the file belong to no tensor");

    // Names are unique (parse_json refuses duplicate keys).
    for (placed& p : found) table_.add(std::move(p.tensor));
}

QTENSOR_INLINE void safetensors_file::read_metadata(const nlohmann::json& info) {
    if (!info.is_object()) fail("__metadata__ is not an object");
    for (const auto& [key, value] : info.items()) {
        if (!value.is_string()) fail("__metadata__ value \"" + key + "\" is not a string");
        metadata_.emplace(key, value.get<std::string>());
    }
}

QTENSOR_INLINE safetensors_file::placed safetensors_file::read_info(const std::string& name, const nlohmann::json& info,
                                                                   std::span<const std::byte> buffer) const {
    if (!info.is_object()) fail_tensor(name, "its header entry is not an object");
    for (const char* field : {"dtype", "shape", "data_offsets"})
        if (!info.contains(field))
            fail_tensor(name, "the header entry has no \"" + std::string(field) + "\"");
    const nlohmann::json& dtype = info["dtype"];
    const nlohmann::json& shape = info["shape"];
    const nlohmann::json& offsets = info["data_offsets"];
    if (!dtype.is_string()) fail_tensor(name, "\"dtype\" is not a string");
    if (!shape.is_array()) fail_tensor(name, "\"shape\" is not an array");
    if (!offsets.is_array() || offsets.size() != 2)
        fail_tensor(name, "\"data_offsets\" is not an array of two offsets");

    raw_tensor t;
    t.name = name;
    t.dtype = dtype.get<std::string>();
    const std::size_t bits = detail::safetensors_dtype_bits(t.dtype);
    if (bits == 0) fail_tensor(name, "unknown dtype \"" + t.dtype + "\"");

    // The product of the nonzero extents must fit, so that no order of
    // multiplying them (here, in tensor_view) overflows, even when an
    // extent 0 makes the tensor empty.
    std::size_t nonzero_product = 1;
    bool overflow = false, empty = false;
    for (const nlohmann::json& d : shape) {
        const std::optional<std::size_t> e = detail::json_size(d);
        if (!e) fail_tensor(name, "\"shape\" holds " + json_excerpt(d) + ", not a size");
        t.shape.push_back(*e);
        if (*e == 0) {
            empty = true;
            continue;
        }
        overflow = overflow || nonzero_product > std::numeric_limits<std::size_t>::max() / *e;
        if (!overflow) nonzero_product *= *e;
    }
    const std::string shape_text = json_excerpt(shape);
    if (overflow || nonzero_product > std::numeric_limits<std::size_t>::max() / bits)
        fail_tensor(name, "shape " + shape_text + " has too many elements to address");
    const std::size_t elements = empty ? 0 : nonzero_product;
    if (elements * bits % 8 != 0)
        fail_tensor(name,
                    std::to_string(elements) + " elements of " + t.dtype + " do not fill whole bytes");
    const std::size_t size = elements * bits / 8;

    const std::optional<std::size_t> begin = detail::json_size(offsets[0]);
    const std::optional<std::size_t> end = detail::json_size(offsets[1]);
    if (!begin || !end) fail_tensor(name, "\"data_offsets\" " + json_excerpt(offsets) + " are not two sizes");
    if (*begin > *end) fail_tensor(name, "\"data_offsets\" " + json_excerpt(offsets) + " end before they begin");
    if (*end > buffer.size())
        fail_tensor(name, "\"data_offsets\" " + json_excerpt(offsets) + " run past the data buffer (" +
                              std::to_string(buffer.size()) + " bytes)");
    if (*end - *begin != size)
        fail_tensor(name, "\"data_offsets\" " + json_excerpt(offsets) + " hold " +
                              std::to_string(*end - *begin) + " bytes, but " + t.dtype + " of shape " +
                              shape_text + " takes " + std::to_string(size));
    t.data = buffer.subspan(*begin, size);
    return {std::move(t), *begin};
}

QTENSOR_INLINE safetensors_checkpoint::safetensors_checkpoint(std::string path) : path_(std::move(path)) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::path index;
    if (fs::is_directory(path_, ec)) {
        const fs::path dir(path_);
        if (fs::exists(dir / "model.safetensors", ec))
            files_.emplace_back((dir / "model.safetensors").string());
        else if (fs::exists(dir / "model.safetensors.index.json", ec))
            index = dir / "model.safetensors.index.json";
        else
            throw error(path_ + ": directory holds neither model.safetensors nor "
                                "model.safetensors.index.json");
    } else if (path_.ends_with(".index.json")) {
        index = path_;
    } else {
        files_.emplace_back(path_);
    }
    if (!index.empty()) open_shards(index);

    // Names are unique: open_shards() checked each is in one shard only.
    for (const safetensors_file& f : files_)
        for (const raw_tensor& t : f.tensors()) table_.add(t);
    constexpr std::string_view text_prefix = "model.language_model.";
    for (const safetensors_file& f : files_)
        for (const raw_tensor& t : f.tensors())
            if (std::string_view(t.name).starts_with(text_prefix))
                table_.add_alias("model." + t.name.substr(text_prefix.size()), t.name);
}

QTENSOR_INLINE void safetensors_checkpoint::open_shards(const std::filesystem::path& index) {
    const std::string where = index.string();
    const mapped_file text(where);
    // Depth 3: the index object, its weight_map and metadata objects.
    const nlohmann::json json = parse_json(
        std::string_view(reinterpret_cast<const char*>(text.bytes().data()), text.size()), 3, where);
    if (!json.is_object() || !json.contains("weight_map") || !json["weight_map"].is_object())
        throw error(where + ": no \"weight_map\" object");

    std::map<std::string, std::string> shard_of; // tensor -> shard file name
    std::map<std::string, std::size_t> file_of;  // shard file name -> index in files_
    for (const auto& [tensor, shard] : json["weight_map"].items()) {
        if (!shard.is_string())
            throw error(where + ": weight_map entry of tensor " + tensor + " is not a file name");
        const std::string& name = shard.get_ref<const std::string&>();
        const std::filesystem::path p(name);
        if (name.empty() || p.is_absolute() ||
            std::find(p.begin(), p.end(), std::filesystem::path("..")) != p.end())
            throw error(where + ": shard \"" + name + "\" of tensor " + tensor +
                        " is not a file name inside the checkpoint directory");
        shard_of.emplace(tensor, name);
        file_of.emplace(name, 0);
    }

    for (auto& [shard, i] : file_of) {
        i = files_.size();
        const safetensors_file& f = files_.emplace_back((index.parent_path() / shard).string());
        for (const raw_tensor& t : f.tensors()) {
            const auto it = shard_of.find(t.name);
            if (it == shard_of.end())
                throw error(f.path() + ": tensor " + t.name + " is not in the index " + where);
            if (it->second != shard)
                throw error(f.path() + ": tensor " + t.name + " is here, but the index " + where +
                            " puts it in " + it->second);
        }
    }
    for (const auto& [tensor, shard] : shard_of) {
        const safetensors_file& f = files_[file_of.at(shard)];
        if (!f.find_raw(tensor))
            throw error(where + ": tensor " + tensor + " is missing from its shard " + f.path());
    }
}

} // namespace io
QTENSOR_END_NAMESPACE
