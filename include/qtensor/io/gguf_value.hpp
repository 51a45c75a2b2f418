// qtensor/io/gguf_value.hpp: what the GGUF reader and writer share: the
// metadata values (gguf_type, gguf_value, gguf_kv), ggml's limits, the
// little-endian encoding, and the block geometry of tensor types from the
// ggml type table (scheme/registry.hpp). The file layout is in io/gguf.hpp.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
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

} // namespace io
QTENSOR_END_NAMESPACE
