// qtensor/io/gguf.hpp: GGUF v3 files (ggml, llama.cpp): a strict reader over
// a memory-mapped file, and a writer.
//
// Layout (all little-endian; docs/gguf.md):
//   "GGUF" | u32 version = 3 | u64 tensor_count | u64 kv_count
//   kv_count     x { string key | u32 value type | value }
//   tensor_count x { string name | u32 n_dims | n_dims x u64 ne | u32 ggml_type | u64 offset }
//   zero padding to the alignment                          <- data_offset()
//   tensor data in info order, each tensor zero-padded to the alignment
// A string is a u64 byte count and the bytes (no NUL). An array value is a u32
// element type, a u64 count and the elements packed. ne[0] is the innermost
// (row) dimension, the reverse of the outermost-first shapes of tensor_entry.
// The alignment is the u32 key general.alignment, 32 when absent.
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
#include <charconv>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/io/mapped_file.hpp"
#include "qtensor/io/output_file.hpp"
#include "qtensor/io/tensor_entry.hpp"
#include "qtensor/scheme/registry.hpp"
#include "qtensor/scheme/scheme.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace io {

// The type tag of a metadata value (gguf.h's gguf_type; the ids are the file's).
enum class gguf_type : std::uint32_t {
    u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7, string = 8,
    array = 9, u64 = 10, i64 = 11, f64 = 12,
};

constexpr std::string_view gguf_type_name(gguf_type t) noexcept {
    switch (t) {
    case gguf_type::u8: return "u8";
    case gguf_type::i8: return "i8";
    case gguf_type::u16: return "u16";
    case gguf_type::i16: return "i16";
    case gguf_type::u32: return "u32";
    case gguf_type::i32: return "i32";
    case gguf_type::f32: return "f32";
    case gguf_type::boolean: return "bool";
    case gguf_type::string: return "string";
    case gguf_type::array: return "array";
    case gguf_type::u64: return "u64";
    case gguf_type::i64: return "i64";
    case gguf_type::f64: return "f64";
    }
    return "";
}

// The C++ types of the non-array gguf types.
template <class T>
concept gguf_scalar =
    std::same_as<T, std::uint8_t> || std::same_as<T, std::int8_t> || std::same_as<T, std::uint16_t> ||
    std::same_as<T, std::int16_t> || std::same_as<T, std::uint32_t> || std::same_as<T, std::int32_t> ||
    std::same_as<T, float> || std::same_as<T, bool> || std::same_as<T, std::string> ||
    std::same_as<T, std::uint64_t> || std::same_as<T, std::int64_t> || std::same_as<T, double>;

template <gguf_scalar T>
inline constexpr gguf_type gguf_type_of = [] {
    if constexpr (std::same_as<T, std::uint8_t>) return gguf_type::u8;
    else if constexpr (std::same_as<T, std::int8_t>) return gguf_type::i8;
    else if constexpr (std::same_as<T, std::uint16_t>) return gguf_type::u16;
    else if constexpr (std::same_as<T, std::int16_t>) return gguf_type::i16;
    else if constexpr (std::same_as<T, std::uint32_t>) return gguf_type::u32;
    else if constexpr (std::same_as<T, std::int32_t>) return gguf_type::i32;
    else if constexpr (std::same_as<T, float>) return gguf_type::f32;
    else if constexpr (std::same_as<T, bool>) return gguf_type::boolean;
    else if constexpr (std::same_as<T, std::string>) return gguf_type::string;
    else if constexpr (std::same_as<T, std::uint64_t>) return gguf_type::u64;
    else if constexpr (std::same_as<T, std::int64_t>) return gguf_type::i64;
    else return gguf_type::f64;
}();

namespace detail {

// ggml's limits: strings up to 1 GiB, arrays up to 2^30 elements, tensor names
// shorter than GGML_MAX_NAME = 64 (which counts the NUL), at most 4 dimensions.
inline constexpr std::uint64_t gguf_max_string_bytes = std::uint64_t{1} << 30;
inline constexpr std::uint64_t gguf_max_array_elems = std::uint64_t{1} << 30;
inline constexpr std::size_t gguf_max_name_bytes = 63;
inline constexpr std::size_t gguf_max_dims = 4;
inline constexpr std::size_t gguf_default_alignment = 32;
inline constexpr std::string_view gguf_alignment_key = "general.alignment";

// Calls f(std::type_identity<T>{}) with the C++ type of the non-array type t.
template <class F>
decltype(auto) visit_gguf_scalar_type(gguf_type t, F&& f) {
    switch (t) {
    case gguf_type::u8: return f(std::type_identity<std::uint8_t>{});
    case gguf_type::i8: return f(std::type_identity<std::int8_t>{});
    case gguf_type::u16: return f(std::type_identity<std::uint16_t>{});
    case gguf_type::i16: return f(std::type_identity<std::int16_t>{});
    case gguf_type::u32: return f(std::type_identity<std::uint32_t>{});
    case gguf_type::i32: return f(std::type_identity<std::int32_t>{});
    case gguf_type::f32: return f(std::type_identity<float>{});
    case gguf_type::boolean: return f(std::type_identity<bool>{});
    case gguf_type::string: return f(std::type_identity<std::string>{});
    case gguf_type::u64: return f(std::type_identity<std::uint64_t>{});
    case gguf_type::i64: return f(std::type_identity<std::int64_t>{});
    case gguf_type::f64: return f(std::type_identity<double>{});
    case gguf_type::array: break;
    }
    throw error("gguf: type id " + std::to_string(static_cast<std::uint32_t>(t)) +
                " is not a scalar type");
}

// Block geometry of the tensor types qtensor knows (registry.hpp's
// ggml_types: the schemes' own constants, and ggml's for the types without a
// scheme); {0, 0} for any other id, live in ggml or not.
struct gguf_block_geometry {
    std::size_t elems = 0;
    std::size_t bytes = 0;
};

constexpr gguf_block_geometry gguf_block_of(std::uint32_t type_id) noexcept {
    const ggml_type_info* t = find_ggml_type(static_cast<ggml_type>(type_id));
    return t != nullptr ? gguf_block_geometry{t->block_elems, t->block_bytes} : gguf_block_geometry{};
}

// a * b, or false when it does not fit in 64 bits.
constexpr bool checked_mul(std::uint64_t a, std::uint64_t b, std::uint64_t& out) noexcept {
    if (a != 0 && b > std::numeric_limits<std::uint64_t>::max() / a) return false;
    out = a * b;
    return true;
}

// x rounded up to a multiple of the power of two `align`.
constexpr std::uint64_t pad_to(std::uint64_t x, std::uint64_t align) noexcept {
    return (x + align - 1) & ~(align - 1);
}

// Bytes of a tensor with dims ne[0..3] (ne[0] innermost, a multiple of the
// block) of geometry g: ne[0]/block * block_bytes * ne[1] * ne[2] * ne[3]
// (ggml_nbytes). False on 64-bit overflow.
inline bool gguf_tensor_bytes(const gguf_block_geometry& g, const std::array<std::uint64_t, 4>& ne,
                              std::uint64_t& out) noexcept {
    std::uint64_t n = 0;
    if (!checked_mul(ne[0] / g.elems, g.bytes, n)) return false;
    for (std::size_t d = 1; d < 4; ++d)
        if (!checked_mul(n, ne[d], n)) return false;
    out = n;
    return true;
}

// Explicit little-endian loads and stores, so the bytes do not depend on the host.
static_assert(sizeof(bool) == 1 && sizeof(float) == 4 && sizeof(double) == 8);

template <class T>
T load_le(const std::byte* p) noexcept {
    if constexpr (std::same_as<T, bool>) {
        return p[0] != std::byte{0}; // ggml: any non-zero byte is true
    } else if constexpr (std::same_as<T, float>) {
        return std::bit_cast<float>(load_le<std::uint32_t>(p));
    } else if constexpr (std::same_as<T, double>) {
        return std::bit_cast<double>(load_le<std::uint64_t>(p));
    } else {
        using U = std::make_unsigned_t<T>;
        U v = 0;
        for (std::size_t i = 0; i < sizeof(T); ++i)
            v = static_cast<U>(v | static_cast<U>(std::to_integer<U>(p[i]) << (8 * i)));
        return static_cast<T>(v);
    }
}

template <class T>
void store_le(std::vector<std::byte>& out, T v) {
    if constexpr (std::same_as<T, bool>) {
        out.push_back(v ? std::byte{1} : std::byte{0});
    } else if constexpr (std::same_as<T, float>) {
        store_le(out, std::bit_cast<std::uint32_t>(v));
    } else if constexpr (std::same_as<T, double>) {
        store_le(out, std::bit_cast<std::uint64_t>(v));
    } else {
        const auto u = static_cast<std::make_unsigned_t<T>>(v);
        for (std::size_t i = 0; i < sizeof(T); ++i) out.push_back(static_cast<std::byte>(u >> (8 * i)));
    }
}

inline void store_string(std::vector<std::byte>& out, std::string_view s) {
    store_le<std::uint64_t>(out, s.size());
    const auto* p = reinterpret_cast<const std::byte*>(s.data());
    out.insert(out.end(), p, p + s.size());
}

// Vectors sized by a count from the file reserve at most this many elements
// and then grow with what is really read. The counts are bounded by the bytes
// left in the file, but a record takes several times more memory than its
// smallest size on disk: a patched count must not reserve gigabytes.
inline constexpr std::size_t gguf_max_reserve = 4096;

// A key or tensor name for messages: quoted, cut short if long (a corrupt
// file can hold a name of many megabytes).
inline std::string quoted(std::string_view s) {
    constexpr std::size_t max = 80;
    std::string r = "'";
    r.append(s.substr(0, max)); // appends, not operator+: GCC 12 warns falsely (-Wrestrict) on "'" + string
    r += s.size() > max ? "...'" : "'";
    return r;
}

template <class T>
inline constexpr bool is_vector = false;
template <class T>
inline constexpr bool is_vector<std::vector<T>> = true;

} // namespace detail

// One metadata value: a scalar of any gguf type, or an array of one non-array
// type. Arrays of arrays cannot be built (ggml does not read them).
class gguf_value {
public:
    template <gguf_scalar T>
    static gguf_value of(T v) { return gguf_value(storage(std::in_place_type<T>, std::move(v))); }
    template <gguf_scalar T>
    static gguf_value array(std::vector<T> v) {
        return gguf_value(storage(std::in_place_type<std::vector<T>>, std::move(v)));
    }
    static gguf_value u8(std::uint8_t v) { return of(v); }
    static gguf_value i8(std::int8_t v) { return of(v); }
    static gguf_value u16(std::uint16_t v) { return of(v); }
    static gguf_value i16(std::int16_t v) { return of(v); }
    static gguf_value u32(std::uint32_t v) { return of(v); }
    static gguf_value i32(std::int32_t v) { return of(v); }
    static gguf_value f32(float v) { return of(v); }
    static gguf_value boolean(bool v) { return of(v); }
    static gguf_value string(std::string v) { return of(std::move(v)); }
    static gguf_value u64(std::uint64_t v) { return of(v); }
    static gguf_value i64(std::int64_t v) { return of(v); }
    static gguf_value f64(double v) { return of(v); }

    // gguf_type::array for an array.
    gguf_type type() const noexcept {
        return std::visit([]<class V>(const V&) {
            if constexpr (detail::is_vector<V>) return gguf_type::array;
            else return gguf_type_of<V>;
        }, data_);
    }
    bool is_array() const noexcept { return type() == gguf_type::array; }
    // The type of an array's elements; of the value itself for a scalar.
    gguf_type element_type() const noexcept {
        return std::visit([]<class V>(const V&) {
            if constexpr (detail::is_vector<V>) return gguf_type_of<typename V::value_type>;
            else return gguf_type_of<V>;
        }, data_);
    }
    // "u32", "array of string": how messages name the type.
    std::string type_string() const {
        return is_array() ? "array of " + std::string(gguf_type_name(element_type()))
                          : std::string(gguf_type_name(type()));
    }

    // The scalar of exactly type T; throws when the value is anything else.
    template <gguf_scalar T>
    const T& get() const {
        if (const T* p = std::get_if<T>(&data_)) return *p;
        throw error("gguf value is " + type_string() + ", not " + std::string(gguf_type_name(gguf_type_of<T>)));
    }
    // The array of exactly element type T; throws when the value is anything else.
    template <gguf_scalar T>
    const std::vector<T>& get_array() const {
        if (const auto* p = std::get_if<std::vector<T>>(&data_)) return *p;
        throw error("gguf value is " + type_string() + ", not array of " +
                    std::string(gguf_type_name(gguf_type_of<T>)));
    }
    std::uint8_t as_u8() const { return get<std::uint8_t>(); }
    std::int8_t as_i8() const { return get<std::int8_t>(); }
    std::uint16_t as_u16() const { return get<std::uint16_t>(); }
    std::int16_t as_i16() const { return get<std::int16_t>(); }
    std::uint32_t as_u32() const { return get<std::uint32_t>(); }
    std::int32_t as_i32() const { return get<std::int32_t>(); }
    float as_f32() const { return get<float>(); }
    bool as_bool() const { return get<bool>(); }
    const std::string& as_string() const { return get<std::string>(); }
    std::uint64_t as_u64() const { return get<std::uint64_t>(); }
    std::int64_t as_i64() const { return get<std::int64_t>(); }
    double as_f64() const { return get<double>(); }

    // Number of elements of an array; throws for a scalar.
    std::size_t array_size() const {
        return std::visit([&]<class V>(const V& v) -> std::size_t {
            if constexpr (detail::is_vector<V>) return v.size();
            else throw error("gguf value is " + type_string() + ", not an array");
        }, data_);
    }
    // Element i of an array, as a scalar value; throws for a scalar or i out of range.
    gguf_value at(std::size_t i) const {
        return std::visit([&]<class V>(const V& v) -> gguf_value {
            if constexpr (detail::is_vector<V>) {
                if (i >= v.size())
                    throw error("gguf array index " + std::to_string(i) + " out of range (size " +
                                std::to_string(v.size()) + ")");
                return of<typename V::value_type>(v[i]);
            } else {
                throw error("gguf value is " + type_string() + ", not an array");
            }
        }, data_);
    }

    // Any integer type as int64 (writers differ between u32 and i32 for the
    // same key); throws for other types and for a u64 above INT64_MAX.
    std::int64_t to_integer() const {
        return std::visit([&]<class V>(const V& v) -> std::int64_t {
            if constexpr (std::is_integral_v<V> && !std::same_as<V, bool>) {
                if constexpr (std::same_as<V, std::uint64_t>)
                    if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
                        throw error("gguf value " + std::to_string(v) + " does not fit in int64");
                return static_cast<std::int64_t>(v);
            } else {
                throw error("gguf value is " + type_string() + ", not an integer");
            }
        }, data_);
    }
    // Any integer or float type as double; throws for other types.
    double to_float() const {
        return std::visit([&]<class V>(const V& v) -> double {
            if constexpr (std::is_arithmetic_v<V> && !std::same_as<V, bool>) return static_cast<double>(v);
            else throw error("gguf value is " + type_string() + ", not a number");
        }, data_);
    }

    // For printing: strings quoted and escaped, floats shortest round-trip,
    // arrays cut after max_elements elements with the count appended.
    std::string to_string(std::size_t max_elements = 8) const {
        return std::visit([&]<class V>(const V& v) {
            if constexpr (detail::is_vector<V>) {
                std::string s = "[";
                const std::size_t n = std::min(v.size(), max_elements);
                for (std::size_t i = 0; i < n; ++i) {
                    if (i) s += ", ";
                    s += format<typename V::value_type>(v[i]);
                }
                if (n < v.size()) s += std::string(n ? ", " : "") + "... (" + std::to_string(v.size()) + " elements)";
                return s + "]";
            } else {
                return format(v);
            }
        }, data_);
    }

    friend bool operator==(const gguf_value&, const gguf_value&) = default;

private:
    using storage = std::variant<
        std::uint8_t, std::int8_t, std::uint16_t, std::int16_t, std::uint32_t, std::int32_t, float, bool,
        std::string, std::uint64_t, std::int64_t, double, std::vector<std::uint8_t>, std::vector<std::int8_t>,
        std::vector<std::uint16_t>, std::vector<std::int16_t>, std::vector<std::uint32_t>,
        std::vector<std::int32_t>, std::vector<float>, std::vector<bool>, std::vector<std::string>,
        std::vector<std::uint64_t>, std::vector<std::int64_t>, std::vector<double>>;

    explicit gguf_value(storage data) : data_(std::move(data)) {}

    template <gguf_scalar T>
    static std::string format(const T& v) {
        if constexpr (std::same_as<T, bool>) {
            return v ? "true" : "false";
        } else if constexpr (std::same_as<T, std::string>) {
            std::string s = "\"";
            for (const char c : v) {
                if (c == '"' || c == '\\') {
                    s += '\\';
                    s += c;
                } else if (c == '\n') {
                    s += "\\n";
                } else if (static_cast<unsigned char>(c) < 0x20) {
                    constexpr char hex[] = "0123456789abcdef";
                    const auto u = static_cast<unsigned char>(c);
                    s += "\\x";
                    s += hex[u >> 4];
                    s += hex[u & 15];
                } else {
                    s += c;
                }
            }
            return s + "\"";
        } else if constexpr (std::is_floating_point_v<T>) {
            std::array<char, 64> buf{};
            const auto r = std::to_chars(buf.data(), buf.data() + buf.size(), v);
            return std::string(buf.data(), r.ptr);
        } else {
            return std::to_string(v);
        }
    }

    storage data_;
};

struct gguf_kv {
    std::string key;
    gguf_value value;
};

namespace detail {

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
            std::string_view what = e.what();
            if (what.starts_with("qtensor: ")) what.remove_prefix(9); // error's own prefix, said once
            throw error(path() + ": metadata key " + detail::quoted(key) + ": " + std::string(what));
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
