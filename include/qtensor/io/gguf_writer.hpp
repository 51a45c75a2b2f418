// qtensor/io/gguf_writer.hpp: gguf_writer, which builds a GGUF v3 file laid
// out as ggml's writer does. The file layout is in io/gguf.hpp.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/io/gguf_value.hpp"
#include "qtensor/io/output_file.hpp"
#include "qtensor/io/tensor_entry.hpp"
#include "qtensor/scheme/registry.hpp"
#include "qtensor/scheme/scheme.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace io {

// Builds a GGUF v3 file: metadata in insertion order, tensors in the order
// added, laid out as ggml's writer does (padding after the infos and after
// every tensor, zeros). Tensor bytes are not copied: they must stay valid
// until write().
class gguf_writer {
public:
    // Adds key = value, or replaces the value in place when the key is there.
    // general.alignment must be a u32 power of two; it is written only when set.
    void set(std::string key, gguf_value value) {
        const std::string where = "gguf writer: key " + detail::quoted(key);
        if (key.empty()) throw error("gguf writer: empty key");
        if (key.size() > detail::gguf_max_string_bytes) throw error(where + " is over the 1 GiB string limit");
        check_limits(where, value);
        if (key == detail::gguf_alignment_key) {
            if (value.type() != gguf_type::u32) throw error(where + " must be u32, not " + value.type_string());
            if (!std::has_single_bit(value.as_u32()))
                throw error(where + " = " + std::to_string(value.as_u32()) + " is not a power of two");
            alignment_ = value.as_u32();
        }
        for (gguf_kv& kv : metadata_)
            if (kv.key == key) {
                kv.value = std::move(value);
                return;
            }
        metadata_.push_back({std::move(key), std::move(value)});
    }

    // shape: outermost first (1 to 4 dims; a scalar is {1}); bytes: the
    // tensor's rows, whole blocks of `type`, exactly as GGUF stores them.
    void add_tensor(std::string name, ggml_type type, std::vector<std::size_t> shape,
                    std::span<const std::byte> bytes) {
        const std::string where = "gguf writer: tensor " + detail::quoted(name);
        if (name.size() > detail::gguf_max_name_bytes)
            throw error(where + " name is " + std::to_string(name.size()) + " bytes long; ggml allows at most 63");
        if (names_.contains(name)) throw error(where + " added twice");
        if (shape.empty() || shape.size() > detail::gguf_max_dims)
            throw error(where + " has " + std::to_string(shape.size()) + " dimensions; GGUF needs 1 to 4");
        const detail::gguf_block_geometry g = detail::gguf_block_of(static_cast<std::uint32_t>(type));
        if (g.elems == 0)
            throw error(where + " has unknown ggml type id " + std::to_string(static_cast<std::uint32_t>(type)));
        std::array<std::uint64_t, 4> ne{1, 1, 1, 1};
        std::uint64_t elements = 1;
        for (std::size_t d = 0; d < shape.size(); ++d) {
            ne[d] = shape[shape.size() - 1 - d];
            if (ne[d] > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) || // stored as int64
                !detail::checked_mul(elements, ne[d], elements) ||
                elements > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
                throw error(where + " has more elements than fit in int64");
        }
        const std::string type_str(type_name(type));
        if (ne[0] % g.elems != 0)
            throw error(where + " (" + type_str + ") has rows of " + std::to_string(ne[0]) +
                        " elements, not a multiple of the block size " + std::to_string(g.elems));
        std::uint64_t nbytes = 0;
        if (!detail::gguf_tensor_bytes(g, ne, nbytes) || bytes.size() != nbytes)
            throw error(where + " (" + type_str + ") of " + std::to_string(elements) + " elements takes " +
                        std::to_string(nbytes) + " bytes, got " + std::to_string(bytes.size()));
        names_.insert(name);
        tensors_.push_back({std::move(name), type, std::move(shape), bytes});
    }
    void add_tensor(const tensor_entry& e) { add_tensor(e.name, e.type, e.shape, e.data); }

    const std::vector<gguf_kv>& metadata() const noexcept { return metadata_; }
    const std::vector<tensor_entry>& tensors() const noexcept { return tensors_; }
    std::size_t alignment() const noexcept { return alignment_; }

    // Writes the file to `path` (a regular file there is replaced atomically;
    // see output_file for the rest).
    void write(const std::string& path) const {
        output_file out(path);
        write(out);
    }

    // Writes the file to `out` and commits it.
    void write(output_file& out) const {
        std::vector<std::byte> head;
        for (const char c : std::string_view("GGUF")) head.push_back(static_cast<std::byte>(c));
        detail::store_le<std::uint32_t>(head, 3);
        detail::store_le<std::uint64_t>(head, tensors_.size());
        detail::store_le<std::uint64_t>(head, metadata_.size());
        for (const gguf_kv& kv : metadata_) {
            detail::store_string(head, kv.key);
            store_value(head, kv.value);
        }
        std::uint64_t offset = 0;
        for (const tensor_entry& t : tensors_) {
            detail::store_string(head, t.name);
            detail::store_le<std::uint32_t>(head, static_cast<std::uint32_t>(t.shape.size()));
            for (std::size_t d = t.shape.size(); d-- > 0;) detail::store_le<std::uint64_t>(head, t.shape[d]);
            detail::store_le<std::uint32_t>(head, static_cast<std::uint32_t>(t.type));
            detail::store_le<std::uint64_t>(head, offset);
            offset += detail::pad_to(t.data.size(), alignment_);
        }

        out.write(head);
        out.write_zeros(detail::pad_to(head.size(), alignment_) - head.size());
        for (const tensor_entry& t : tensors_) {
            out.write(t.data);
            out.write_zeros(detail::pad_to(t.data.size(), alignment_) - t.data.size());
        }
        out.commit();
    }

private:
    // The reader's limits, checked when the value is set rather than in the
    // middle of a write.
    static void check_limits(const std::string& where, const gguf_value& v) {
        const auto check_string = [&](const std::string& s) {
            if (s.size() > detail::gguf_max_string_bytes) throw error(where + ": string is over the 1 GiB limit");
        };
        if (v.type() == gguf_type::string) check_string(v.as_string());
        if (!v.is_array()) return;
        if (v.array_size() > detail::gguf_max_array_elems)
            throw error(where + ": array of " + std::to_string(v.array_size()) + " elements is over the limit of 2^30");
        if (v.element_type() == gguf_type::string)
            for (const std::string& s : v.get_array<std::string>()) check_string(s);
    }

    static void store_value(std::vector<std::byte>& out, const gguf_value& v) {
        detail::store_le<std::uint32_t>(out, static_cast<std::uint32_t>(v.type()));
        const auto store_elem = [&]<class T>(const T& x) {
            if constexpr (std::same_as<T, std::string>) detail::store_string(out, x);
            else detail::store_le<T>(out, x);
        };
        detail::visit_gguf_scalar_type(v.element_type(), [&]<class T>(std::type_identity<T>) {
            if (!v.is_array()) return store_elem(v.get<T>());
            detail::store_le<std::uint32_t>(out, static_cast<std::uint32_t>(gguf_type_of<T>));
            const std::vector<T>& a = v.get_array<T>();
            detail::store_le<std::uint64_t>(out, a.size());
            for (std::size_t i = 0; i < a.size(); ++i) store_elem(a[i]); // a[i] is a bool, not a proxy, for const vector<bool>
        });
    }

    std::vector<gguf_kv> metadata_;
    std::vector<tensor_entry> tensors_;
    std::set<std::string, std::less<>> names_;
    std::size_t alignment_ = detail::gguf_default_alignment;
};

} // namespace io
QTENSOR_END_NAMESPACE
