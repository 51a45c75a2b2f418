// qtensor/io/gguf_reader.hpp: gguf_file, a strict reader of GGUF v3 files
// over a memory-mapped file. The file layout is in io/gguf.hpp.
//
// The reader refuses what ggml's reader refuses (docs/gguf.md section 5), and reads
// version 3 only. ggml is stricter than the spec about data offsets: tensor i
// must start at the sum of the padded sizes of tensors 0..i-1, so tensors are
// packed in info order without gaps. Tensors are views into the mapping; a
// tensor's bytes must lie inside the file, but the padding after the last one
// may be missing (ggml's writer always writes it; llama.cpp's mmap loader does
// not need it). Every read is bounds-checked: a truncated or corrupt file gives
// a qtensor::error naming the file and the key, tensor or offset.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/io/gguf_value.hpp"
#include "qtensor/io/mapped_file.hpp"
#include "qtensor/io/tensor_entry.hpp"
#include "qtensor/scheme/registry.hpp"
#include "qtensor/scheme/scheme.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace io {

namespace detail {

// Vectors sized by a count from the file reserve at most this many elements
// and then grow with what is really read. The counts are bounded by the bytes
// left in the file, but a record takes several times more memory than its
// smallest size on disk: a patched count must not reserve gigabytes.
inline constexpr std::size_t gguf_max_reserve = 4096;

// Bounds-checked little-endian reads from the mapped file. `context` says what
// is being read, for messages.
class gguf_cursor {
public:
    gguf_cursor(std::span<const std::byte> bytes, const std::string& path) : bytes_(bytes), path_(path) {}

    std::size_t pos() const noexcept { return pos_; }
    std::size_t remaining() const noexcept { return bytes_.size() - pos_; }
    void set_context(std::string what) { context_ = std::move(what); }

    [[noreturn]] void fail(const std::string& what) const { throw error(path_ + ": " + what); }

    // Throws unless n more bytes follow.
    void need(std::uint64_t n) const {
        if (n > remaining())
            fail("truncated: the file ends at byte " + std::to_string(bytes_.size()) + ", inside " + context_ +
                 " (" + std::to_string(n) + " bytes needed at offset " + std::to_string(pos_) + ")");
    }
    const std::byte* take(std::uint64_t n) {
        need(n);
        const std::byte* p = bytes_.data() + pos_;
        pos_ += static_cast<std::size_t>(n);
        return p;
    }
    template <class T>
    T read() { return load_le<T>(take(sizeof(T))); }

    std::string read_string() {
        const auto n = read<std::uint64_t>();
        if (n > gguf_max_string_bytes)
            fail(context_ + ": string of " + std::to_string(n) + " bytes at offset " +
                 std::to_string(pos_ - 8) + " is over the 1 GiB limit");
        const std::byte* p = take(n);
        return std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n));
    }

    // A u32 gguf type id; array only where allowed.
    gguf_type read_type(bool allow_array) {
        const auto id = read<std::uint32_t>();
        if (id > static_cast<std::uint32_t>(gguf_type::f64))
            fail(context_ + " has invalid value type " + std::to_string(id));
        if (!allow_array && id == static_cast<std::uint32_t>(gguf_type::array))
            fail(context_ + " is an array of arrays (nested arrays are not accepted by ggml)");
        return static_cast<gguf_type>(id);
    }

    gguf_value read_value(gguf_type type) {
        if (type != gguf_type::array)
            return visit_gguf_scalar_type(type, [&]<class T>(std::type_identity<T>) {
                if constexpr (std::same_as<T, std::string>) return gguf_value::of(read_string());
                else return gguf_value::of(read<T>());
            });
        const gguf_type elem = read_type(false);
        const auto n = read<std::uint64_t>();
        if (n > gguf_max_array_elems)
            fail(context_ + ": array of " + std::to_string(n) + " elements is over the limit of 2^30");
        const auto count = static_cast<std::size_t>(n);
        return visit_gguf_scalar_type(elem, [&]<class T>(std::type_identity<T>) {
            std::vector<T> v;
            if constexpr (std::same_as<T, std::string>) {
                need(n * 8); // each string takes at least its length field
                v.reserve(std::min(count, gguf_max_reserve));
                for (std::size_t i = 0; i < count; ++i) v.push_back(read_string());
            } else {
                const std::byte* p = take(n * sizeof(T));
                v.resize(count);
                for (std::size_t i = 0; i < count; ++i) v[i] = load_le<T>(p + i * sizeof(T));
            }
            return gguf_value::array(std::move(v));
        });
    }

private:
    std::span<const std::byte> bytes_;
    std::size_t pos_ = 0;
    const std::string& path_;
    std::string context_ = "the header";
};

// A tensor info record as stored (the parsed header, before the data checks).
struct gguf_tensor_info {
    std::string name;
    std::uint32_t n_dims = 0;
    std::array<std::uint64_t, gguf_max_dims> ne{1, 1, 1, 1}; // innermost first; missing dims are 1
    ggml_type type = ggml_type::f32;
    std::uint64_t offset = 0; // from the start of the data section
    std::uint64_t nbytes = 0;
};

} // namespace detail

// A GGUF v3 file, mapped read-only. Entries are views into the mapping and live
// as long as this object (moving it keeps them valid).
class gguf_file {
public:
    explicit gguf_file(std::string path) : file_(std::move(path)) { parse(); }

    const std::string& path() const noexcept { return file_.path(); }
    // Drops the pages of `part` (tensor bytes the caller copied) from resident memory: mapped_file::drop_pages.
    bool drop_pages(std::span<const std::byte> part) const noexcept { return file_.drop_pages(part); }
    std::uint32_t version() const noexcept { return version_; }
    std::size_t alignment() const noexcept { return alignment_; }
    // Byte offset of the data section from the start of the file.
    std::size_t data_offset() const noexcept { return data_offset_; }
    std::span<const std::byte> bytes() const noexcept { return file_.bytes(); }

    // Key/value pairs in file order.
    const std::vector<gguf_kv>& metadata() const noexcept { return metadata_; }
    const gguf_value* find_metadata(std::string_view key) const noexcept {
        const auto it = key_index_.find(key);
        return it == key_index_.end() ? nullptr : &metadata_[it->second].value;
    }
    // The value of `key`; throws naming the file and key when it is absent.
    const gguf_value& require_metadata(std::string_view key) const {
        if (const gguf_value* v = find_metadata(key)) return *v;
        throw error(path() + ": no metadata key " + detail::quoted(key));
    }
    // Typed lookups whose errors name the file and key: any integer type, any
    // number, a string.
    std::int64_t metadata_integer(std::string_view key) const {
        return with_key(key, [](const gguf_value& v) { return v.to_integer(); });
    }
    double metadata_float(std::string_view key) const {
        return with_key(key, [](const gguf_value& v) { return v.to_float(); });
    }
    const std::string& metadata_string(std::string_view key) const {
        return with_key(key, [](const gguf_value& v) -> const std::string& { return v.as_string(); });
    }

    // Tensors in file order; shapes outermost first (the reverse of ne[]).
    const std::vector<tensor_entry>& entries() const noexcept { return entries_; }
    const tensor_entry* find(std::string_view name) const noexcept {
        const auto it = tensor_index_.find(name);
        return it == tensor_index_.end() ? nullptr : &entries_[it->second];
    }

private:
    template <class F>
    std::invoke_result_t<F, const gguf_value&> with_key(std::string_view key, F&& f) const {
        const gguf_value& v = require_metadata(key);
        try {
            return f(v);
        } catch (const error& e) {
            throw error(path() + ": metadata key " + detail::quoted(key) + ": " + std::string(e.message()));
        }
    }

    void parse() {
        const std::span<const std::byte> bytes = file_.bytes();
        detail::gguf_cursor in(bytes, path());
        read_header(in);
        read_metadata(in);
        const std::vector<detail::gguf_tensor_info> infos = read_tensor_infos(in);
        place_tensors(in, infos);
    }

    void read_header(detail::gguf_cursor& in) {
        const auto bytes = file_.bytes();
        if (bytes.size() < 4) in.fail("not a GGUF file: only " + std::to_string(bytes.size()) + " bytes");
        if (std::memcmp(bytes.data(), "GGUF", 4) != 0) {
            std::string magic;
            for (std::size_t i = 0; i < 4; ++i) {
                const auto c = std::to_integer<unsigned char>(bytes[i]);
                magic += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
            }
            in.fail("not a GGUF file: magic is '" + magic + "', expected 'GGUF'");
        }
        in.take(4);
        version_ = in.read<std::uint32_t>();
        if (version_ != 3) {
            const std::string v = "GGUF version " + std::to_string(version_);
            if (version_ == 0) in.fail("invalid GGUF version 0");
            if ((version_ & 0xffffu) == 0)
                in.fail(v + " looks byte-swapped: probably a big-endian GGUF file, which is not supported");
            if (version_ == 1 || version_ == 2)
                in.fail(v + " (an old format) is not supported: only version 3 is read");
            in.fail(v + " is newer than this reader (only version 3 is read)");
        }
        tensor_count_ = read_count(in, "tensor count", 24);
        kv_count_ = read_count(in, "key-value count", 14);
    }

    // A count, read as int64 like ggml does. Each record takes at least
    // min_record bytes, which bounds what a corrupt count can make us allocate.
    static std::size_t read_count(detail::gguf_cursor& in, const char* what, std::size_t min_record) {
        const auto n = in.read<std::int64_t>();
        if (n < 0) in.fail(std::string(what) + " " + std::to_string(n) + " is negative");
        if (static_cast<std::uint64_t>(n) > in.remaining() / min_record)
            in.fail(std::string(what) + " " + std::to_string(n) + " cannot fit in the " +
                    std::to_string(in.remaining()) + " bytes left in the file");
        return static_cast<std::size_t>(n);
    }

    void read_metadata(detail::gguf_cursor& in) {
        metadata_.reserve(std::min(kv_count_, detail::gguf_max_reserve));
        for (std::size_t i = 0; i < kv_count_; ++i) {
            in.set_context("key #" + std::to_string(i));
            std::string key = in.read_string();
            if (key.empty()) in.fail("key #" + std::to_string(i) + " is empty");
            if (const auto it = key_index_.find(key); it != key_index_.end())
                in.fail("duplicate key " + detail::quoted(key) + " (keys #" + std::to_string(it->second) +
                        " and #" + std::to_string(i) + ")");
            in.set_context("key " + detail::quoted(key));
            const gguf_type type = in.read_type(true);
            gguf_value value = in.read_value(type);
            key_index_.emplace(key, i);
            metadata_.push_back({std::move(key), std::move(value)});
        }
        if (const gguf_value* a = find_metadata(detail::gguf_alignment_key)) {
            const std::string where = std::string(detail::gguf_alignment_key);
            if (a->type() != gguf_type::u32) in.fail(where + " has type " + a->type_string() + ", must be u32");
            if (!std::has_single_bit(a->as_u32()))
                in.fail(where + " = " + std::to_string(a->as_u32()) + " is not a power of two");
            alignment_ = a->as_u32();
        }
    }

    std::vector<detail::gguf_tensor_info> read_tensor_infos(detail::gguf_cursor& in) {
        std::vector<detail::gguf_tensor_info> infos;
        infos.reserve(std::min(tensor_count_, detail::gguf_max_reserve));
        for (std::size_t i = 0; i < tensor_count_; ++i) {
            detail::gguf_tensor_info t;
            in.set_context("tensor info #" + std::to_string(i));
            t.name = in.read_string();
            if (t.name.size() > detail::gguf_max_name_bytes)
                in.fail("tensor #" + std::to_string(i) + " name " + detail::quoted(t.name) + " is " +
                        std::to_string(t.name.size()) + " bytes long; ggml allows at most 63");
            if (const auto it = tensor_index_.find(t.name); it != tensor_index_.end())
                in.fail("duplicate tensor name " + detail::quoted(t.name) + " (tensors #" +
                        std::to_string(it->second) + " and #" + std::to_string(i) + ")");
            const std::string where = "tensor " + detail::quoted(t.name);
            in.set_context(where + " info");

            t.n_dims = in.read<std::uint32_t>();
            if (t.n_dims > detail::gguf_max_dims)
                in.fail(where + " has " + std::to_string(t.n_dims) + " dimensions; at most 4");
            std::uint64_t elements = 1;
            for (std::uint32_t d = 0; d < t.n_dims; ++d) {
                const auto ne = in.read<std::int64_t>();
                if (ne < 0) in.fail(where + " dimension " + std::to_string(d) + " is negative (" + std::to_string(ne) + ")");
                t.ne[d] = static_cast<std::uint64_t>(ne);
                if (!detail::checked_mul(elements, t.ne[d], elements) ||
                    elements > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
                    in.fail(where + " has more elements than fit in int64");
            }

            const auto type_id = in.read<std::uint32_t>();
            const detail::gguf_block_geometry g = detail::gguf_block_of(type_id);
            if (g.elems == 0)
                in.fail(where + " has unknown or unsupported ggml type id " + std::to_string(type_id));
            t.type = static_cast<ggml_type>(type_id);
            if (t.ne[0] % g.elems != 0)
                in.fail(where + " (" + std::string(type_name(t.type)) + ") has rows of " + std::to_string(t.ne[0]) +
                        " elements, not a multiple of the block size " + std::to_string(g.elems));
            if (!detail::gguf_tensor_bytes(g, t.ne, t.nbytes)) in.fail(where + " takes more than 2^64 bytes");
            t.offset = in.read<std::uint64_t>();

            tensor_index_.emplace(t.name, i);
            infos.push_back(std::move(t));
        }
        return infos;
    }

    // Data offsets must be exactly packed (ggml), and every tensor's bytes must
    // lie inside the file.
    void place_tensors(detail::gguf_cursor& in, const std::vector<detail::gguf_tensor_info>& infos) {
        const std::uint64_t size = file_.size();
        data_offset_ = in.pos();
        if (infos.empty()) return; // ggml aligns the data section only when there is one
        data_offset_ = static_cast<std::size_t>(detail::pad_to(in.pos(), alignment_));
        if (data_offset_ > size)
            in.fail("the data section would start at byte " + std::to_string(data_offset_) +
                    ", past the end of the file (" + std::to_string(size) + " bytes)");
        const std::uint64_t data_size = size - data_offset_;
        entries_.reserve(infos.size());
        std::uint64_t expected = 0;
        for (const detail::gguf_tensor_info& t : infos) {
            const std::string where = "tensor " + detail::quoted(t.name);
            if (t.offset != expected)
                in.fail(where + " has data offset " + std::to_string(t.offset) + ", expected " +
                        std::to_string(expected) + " (tensors must be packed in order, each padded to " +
                        std::to_string(alignment_) + " bytes)");
            if (t.offset > data_size || t.nbytes > data_size - t.offset)
                in.fail(where + " data (" + std::to_string(t.nbytes) + " bytes at file offset " +
                        std::to_string(data_offset_ + t.offset) + ") runs past the end of the file (" +
                        std::to_string(size) + " bytes)");
            expected = t.offset + detail::pad_to(t.nbytes, alignment_);

            tensor_entry e;
            e.name = t.name;
            e.type = t.type;
            for (std::uint32_t d = t.n_dims; d-- > 0;) e.shape.push_back(static_cast<std::size_t>(t.ne[d]));
            e.data = file_.bytes().subspan(data_offset_ + static_cast<std::size_t>(t.offset),
                                           static_cast<std::size_t>(t.nbytes));
            entries_.push_back(std::move(e));
        }
    }

    mapped_file file_;
    std::uint32_t version_ = 0;
    std::size_t tensor_count_ = 0;
    std::size_t kv_count_ = 0;
    std::size_t alignment_ = detail::gguf_default_alignment;
    std::size_t data_offset_ = 0;
    std::vector<gguf_kv> metadata_;
    std::vector<tensor_entry> entries_;
    std::map<std::string, std::size_t, std::less<>> key_index_;
    std::map<std::string, std::size_t, std::less<>> tensor_index_;
};

} // namespace io
QTENSOR_END_NAMESPACE
