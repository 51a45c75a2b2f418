// GGUF v3 reader and writer. The oracle is a file built byte by byte in this
// test from the published layout (docs/gguf.md and ggml's gguf.cpp): the
// reader must recover every field of it and the writer must
// reproduce it exactly. Then round trips, every reader rule broken once, and
// truncated and corrupted files (open or throw qtensor::error, never crash).
#include <doctest/doctest.h>

#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include <unistd.h>

#include "qtensor/io/gguf.hpp"
#include "qtensor/scheme/q4_0.hpp"

using namespace qtensor;
using io::gguf_type;
using io::gguf_value;

namespace {

// Little-endian bytes, written out by hand (independent of the header's encoder).
struct bytes_builder {
    std::vector<std::uint8_t> b;

    bytes_builder& u8(std::uint8_t v) {
        b.push_back(v);
        return *this;
    }
    bytes_builder& u32(std::uint32_t v) {
        for (int i = 0; i < 4; ++i) b.push_back(static_cast<std::uint8_t>((v >> (8 * i)) & 0xff));
        return *this;
    }
    bytes_builder& u64(std::uint64_t v) {
        for (int i = 0; i < 8; ++i) b.push_back(static_cast<std::uint8_t>((v >> (8 * i)) & 0xff));
        return *this;
    }
    bytes_builder& i64(std::int64_t v) { return u64(static_cast<std::uint64_t>(v)); }
    bytes_builder& str(std::string_view s) {
        u64(s.size());
        b.insert(b.end(), s.begin(), s.end());
        return *this;
    }
    bytes_builder& raw(std::initializer_list<std::uint8_t> v) {
        for (const std::uint8_t x : v) b.push_back(x);
        return *this;
    }
    bytes_builder& append(const bytes_builder& o) {
        b.insert(b.end(), o.b.begin(), o.b.end());
        return *this;
    }
    bytes_builder& zeros(std::size_t n) {
        b.insert(b.end(), n, 0);
        return *this;
    }
    bytes_builder& pad_to(std::size_t align) { return zeros((align - b.size() % align) % align); }
    std::size_t size() const { return b.size(); }

    // A GGUF header: magic, version, tensor count, kv count.
    static bytes_builder header(std::uint32_t version, std::int64_t n_tensors, std::int64_t n_kv) {
        bytes_builder h;
        h.raw({'G', 'G', 'U', 'F'}).u32(version).i64(n_tensors).i64(n_kv);
        return h;
    }
    // One tensor info; ne innermost first, as stored.
    bytes_builder& info(std::string_view name, std::initializer_list<std::int64_t> ne, std::uint32_t type,
                        std::uint64_t offset) {
        str(name).u32(static_cast<std::uint32_t>(ne.size()));
        for (const std::int64_t n : ne) i64(n);
        return u32(type).u64(offset);
    }
};

// A scratch directory, removed with its files at the end of the test.
struct scratch_dir {
    std::filesystem::path dir;
    scratch_dir() {
        static int n = 0;
        dir = std::filesystem::temp_directory_path() /
              ("qtensor_io_gguf_test_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
        std::filesystem::create_directories(dir);
    }
    ~scratch_dir() {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
    std::string file(const std::string& name) const { return (dir / name).string(); }
    std::string put(const std::vector<std::uint8_t>& bytes, const std::string& name = "t.gguf") const {
        const std::string p = file(name);
        // A new file each time: ext4 flushes a file truncated and rewritten in place on close.
        std::filesystem::remove(p);
        std::ofstream out(p, std::ios::binary);
        out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
        REQUIRE(out.good());
        return p;
    }
};

std::vector<std::uint8_t> read_all(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::span<const std::byte> as_bytes(const std::vector<std::uint8_t>& v) {
    return std::as_bytes(std::span(v));
}

std::vector<std::uint8_t> to_vector(std::span<const std::byte> s) {
    std::vector<std::uint8_t> v(s.size());
    if (!s.empty()) std::memcpy(v.data(), s.data(), s.size());
    return v;
}

std::vector<std::uint8_t> pattern(std::size_t n, std::uint8_t seed) {
    std::vector<std::uint8_t> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(seed + 7 * i);
    return v;
}

// The hand-built oracle file: 7 keys of different types, an f32 and a q8_0
// tensor, default alignment 32.
struct oracle_file {
    bytes_builder bytes;
    std::size_t data_offset = 0;
    std::vector<std::uint8_t> a_data = pattern(24, 1); // f32 [2, 3]: ne = {3, 2}, 6 * 4 bytes
    std::vector<std::uint8_t> b_data = pattern(68, 9); // q8_0 [2, 32]: 2 rows of 1 block of 34 bytes

    oracle_file() {
        bytes = bytes_builder::header(3, 2, 7);
        bytes.str("general.architecture").u32(8).str("llama");
        bytes.str("test.u32").u32(4).u32(7);
        bytes.str("test.i32").u32(5).raw({0xfd, 0xff, 0xff, 0xff}); // -3
        bytes.str("test.f32").u32(6).raw({0x00, 0x00, 0x00, 0x3f}); // 0.5f
        bytes.str("test.bool").u32(7).u8(1);
        bytes.str("test.tokens").u32(9).u32(8).u64(3).str("a").str("bc").str("");
        bytes.str("test.u64").u32(10).u64(std::uint64_t{1} << 40);
        bytes.info("a", {3, 2}, 0, 0);
        bytes.info("b", {32, 2}, 8, 32); // 24 bytes of "a" padded to 32
        bytes.pad_to(32);
        data_offset = bytes.size();
        bytes.b.insert(bytes.b.end(), a_data.begin(), a_data.end());
        bytes.pad_to(32);
        bytes.b.insert(bytes.b.end(), b_data.begin(), b_data.end());
        bytes.pad_to(32); // ggml pads after the last tensor too
    }
};

// Opening `bytes` must throw qtensor::error whose message contains `what`.
void check_rejects(const scratch_dir& dir, const bytes_builder& bytes, const std::string& what) {
    const std::string p = dir.put(bytes.b);
    CAPTURE(what);
    CHECK_THROWS_WITH_AS((void)io::gguf_file(p), doctest::Contains(what.c_str()), error);
}

// Independent nbytes from the table of docs/gguf.md section 3 (a corrupted type id may
// turn one known type into another).
std::size_t expected_bytes(const io::tensor_entry& e) {
    std::size_t elems = 0, bytes = 0;
    switch (static_cast<std::uint32_t>(e.type)) {
    case 0: elems = 1, bytes = 4; break;
    case 1: elems = 1, bytes = 2; break;
    case 2: elems = 32, bytes = 18; break;
    case 3: elems = 32, bytes = 20; break;
    case 6: elems = 32, bytes = 22; break;
    case 7: elems = 32, bytes = 24; break;
    case 8: elems = 32, bytes = 34; break;
    case 9: elems = 32, bytes = 36; break;
    case 10: elems = 256, bytes = 84; break;
    case 11: elems = 256, bytes = 110; break;
    case 12: elems = 256, bytes = 144; break;
    case 13: elems = 256, bytes = 176; break;
    case 14: elems = 256, bytes = 210; break;
    case 15: elems = 256, bytes = 292; break;
    case 16: elems = 256, bytes = 66; break;
    case 17: elems = 256, bytes = 74; break;
    case 18: elems = 256, bytes = 98; break;
    case 19: elems = 256, bytes = 50; break;
    case 20: elems = 32, bytes = 18; break;
    case 21: elems = 256, bytes = 110; break;
    case 22: elems = 256, bytes = 82; break;
    case 23: elems = 256, bytes = 136; break;
    case 24: elems = 1, bytes = 1; break;
    case 25: elems = 1, bytes = 2; break;
    case 26: elems = 1, bytes = 4; break;
    case 27:
    case 28: elems = 1, bytes = 8; break;
    case 29: elems = 256, bytes = 56; break;
    case 30: elems = 1, bytes = 2; break;
    case 34: elems = 256, bytes = 54; break;
    case 35: elems = 256, bytes = 66; break;
    case 39: elems = 32, bytes = 17; break;
    default: FAIL("type id " << static_cast<std::uint32_t>(e.type) << " is not in docs/gguf.md section 3"); break;
    }
    return e.elements() / elems * bytes;
}

// A file the reader accepted: every entry's bytes inside the file, of the size
// its type and shape give, packed in order at the alignment.
void check_consistent(const io::gguf_file& f) {
    const auto file = f.bytes();
    std::size_t expected_offset = f.data_offset();
    CHECK(std::has_single_bit(f.alignment()));
    for (const io::tensor_entry& e : f.entries()) {
        const auto begin = static_cast<std::size_t>(e.data.data() - file.data());
        CHECK(begin == expected_offset);
        CHECK(begin + e.data.size() <= file.size());
        CHECK(e.data.size() == expected_bytes(e));
        CHECK(f.find(e.name) == &e);
        expected_offset = begin + (e.data.size() + f.alignment() - 1) / f.alignment() * f.alignment();
    }
}

} // namespace

TEST_CASE("gguf: the reader recovers every field of a hand-built file") {
    const scratch_dir dir;
    const oracle_file o;
    const io::gguf_file f(dir.put(o.bytes.b));

    CHECK(f.version() == 3);
    CHECK(f.alignment() == 32);
    CHECK(f.data_offset() == o.data_offset);
    CHECK(f.data_offset() % 32 == 0);

    const auto& md = f.metadata();
    REQUIRE(md.size() == 7);
    const std::array<const char*, 7> keys{"general.architecture", "test.u32", "test.i32", "test.f32",
                                          "test.bool", "test.tokens", "test.u64"};
    for (std::size_t i = 0; i < keys.size(); ++i) {
        CHECK(md[i].key == keys[i]);
        CHECK(f.find_metadata(keys[i]) == &md[i].value);
    }
    CHECK(md[0].value.as_string() == "llama");
    CHECK(md[1].value.type() == gguf_type::u32);
    CHECK(md[1].value.as_u32() == 7);
    CHECK(md[2].value.as_i32() == -3);
    CHECK(md[3].value.as_f32() == 0.5f);
    CHECK(md[4].value.as_bool() == true);
    CHECK(md[5].value.type() == gguf_type::array);
    CHECK(md[5].value.element_type() == gguf_type::string);
    CHECK(md[5].value.array_size() == 3);
    CHECK(md[5].value.get_array<std::string>() == std::vector<std::string>{"a", "bc", ""});
    CHECK(md[5].value.at(1).as_string() == "bc");
    CHECK(md[6].value.as_u64() == std::uint64_t{1} << 40);
    CHECK(f.find_metadata("absent") == nullptr);

    REQUIRE(f.entries().size() == 2);
    const io::tensor_entry& a = f.entries()[0];
    const io::tensor_entry& b = f.entries()[1];
    CHECK(a.name == "a");
    CHECK(a.type == ggml_type::f32);
    CHECK(a.shape == std::vector<std::size_t>{2, 3});
    CHECK(a.data.data() == f.bytes().data() + o.data_offset);
    CHECK(to_vector(a.data) == o.a_data);
    CHECK(b.name == "b");
    CHECK(b.type == ggml_type::q8_0);
    CHECK(b.shape == std::vector<std::size_t>{2, 32});
    CHECK(b.data.data() == f.bytes().data() + o.data_offset + 32);
    CHECK(to_vector(b.data) == o.b_data);
    CHECK(f.find("b") == &b);
    CHECK(f.find("c") == nullptr);
    CHECK(&io::require(f, "a") == &a);
    CHECK_THROWS_WITH_AS(io::require(f, "c"), doctest::Contains("no tensor c"), error);
}

TEST_CASE("gguf: the writer reproduces the hand-built file byte for byte") {
    const scratch_dir dir;
    const oracle_file o;
    io::gguf_writer w;
    w.set("general.architecture", gguf_value::string("llama"));
    w.set("test.u32", gguf_value::u32(7));
    w.set("test.i32", gguf_value::i32(-3));
    w.set("test.f32", gguf_value::f32(0.5f));
    w.set("test.bool", gguf_value::boolean(true));
    w.set("test.tokens", gguf_value::array(std::vector<std::string>{"a", "bc", ""}));
    w.set("test.u64", gguf_value::u64(std::uint64_t{1} << 40));
    w.add_tensor("a", ggml_type::f32, {2, 3}, as_bytes(o.a_data));
    w.add_tensor("b", ggml_type::q8_0, {2, 32}, as_bytes(o.b_data));
    const std::string p = dir.file("w.gguf");
    w.write(p);
    CHECK(read_all(p) == o.bytes.b);
    // Only the target is left: the temporary was renamed over it.
    CHECK(std::distance(std::filesystem::directory_iterator(dir.dir), std::filesystem::directory_iterator()) == 1);
}

TEST_CASE("gguf: value accessors, conversions and printing") {
    const gguf_value u = gguf_value::u32(7);
    const gguf_value i = gguf_value::i32(-3);
    const gguf_value big = gguf_value::u64(std::numeric_limits<std::uint64_t>::max());
    const gguf_value fl = gguf_value::f32(0.25f);
    const gguf_value s = gguf_value::string("a\"b\n");
    const gguf_value arr = gguf_value::array(std::vector<std::uint8_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});

    CHECK_THROWS_WITH_AS((void)i.as_u32(), doctest::Contains("is i32, not u32"), error);
    CHECK_THROWS_WITH_AS((void)arr.as_u8(), doctest::Contains("is array of u8, not u8"), error);
    CHECK_THROWS_WITH_AS((void)arr.get_array<std::int8_t>(), doctest::Contains("not array of i8"), error);
    CHECK_THROWS_WITH_AS((void)u.array_size(), doctest::Contains("not an array"), error);
    CHECK_THROWS_WITH_AS((void)arr.at(10), doctest::Contains("index 10 out of range"), error);
    CHECK(u.to_integer() == 7);
    CHECK(i.to_integer() == -3);
    CHECK(gguf_value::i8(-5).to_integer() == -5);
    CHECK_THROWS_WITH_AS((void)big.to_integer(), doctest::Contains("does not fit in int64"), error);
    CHECK_THROWS_WITH_AS((void)fl.to_integer(), doctest::Contains("not an integer"), error);
    CHECK_THROWS_WITH_AS((void)gguf_value::boolean(true).to_integer(), doctest::Contains("not an integer"), error);
    CHECK(fl.to_float() == 0.25);
    CHECK(i.to_float() == -3.0);
    CHECK_THROWS_WITH_AS((void)s.to_float(), doctest::Contains("not a number"), error);
    CHECK(arr.at(3) == gguf_value::u8(3));

    CHECK(u.to_string() == "7");
    CHECK(i.to_string() == "-3");
    CHECK(gguf_value::i8(-5).to_string() == "-5");
    CHECK(fl.to_string() == "0.25");
    CHECK(gguf_value::f32(0.1f).to_string() == "0.1"); // shortest round trip, not 0.100000001
    CHECK(gguf_value::boolean(false).to_string() == "false");
    CHECK(s.to_string() == R"("a\"b\n")");
    CHECK(arr.to_string(3) == "[0, 1, 2, ... (10 elements)]");
    CHECK(arr.to_string(10) == "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]");
    CHECK(gguf_value::array(std::vector<std::string>{"x", "y"}).to_string() == R"(["x", "y"])");
    CHECK(gguf_value::array(std::vector<bool>{true, false}).to_string() == "[true, false]");
    CHECK(gguf_value::array(std::vector<float>{}).to_string() == "[]");
}

TEST_CASE("gguf: typed metadata lookups name the file and key") {
    const scratch_dir dir;
    const oracle_file o;
    const io::gguf_file f(dir.put(o.bytes.b));
    CHECK(f.metadata_integer("test.u32") == 7);
    CHECK(f.metadata_integer("test.i32") == -3);
    CHECK(f.metadata_float("test.f32") == 0.5);
    CHECK(f.metadata_string("general.architecture") == "llama");
    CHECK_THROWS_WITH_AS((void)f.metadata_integer("general.architecture"),
                         doctest::Contains("t.gguf: metadata key 'general.architecture': gguf value is string, not an integer"),
                         error);
    CHECK_THROWS_WITH_AS((void)f.require_metadata("nope"), doctest::Contains("t.gguf: no metadata key 'nope'"), error);
}

TEST_CASE("gguf: round trip of every value type and several tensor types, alignment 64") {
    const scratch_dir dir;
    io::gguf_writer w;
    w.set("general.alignment", gguf_value::u32(64));
    w.set("v.u8", gguf_value::u8(200));
    w.set("v.i8", gguf_value::i8(-100));
    w.set("v.u16", gguf_value::u16(60000));
    w.set("v.i16", gguf_value::i16(-30000));
    w.set("v.u32", gguf_value::u32(4000000000u));
    w.set("v.i32", gguf_value::i32(-2000000000));
    w.set("v.f32", gguf_value::f32(-1.5e-7f));
    w.set("v.bool", gguf_value::boolean(false));
    w.set("v.string", gguf_value::string(std::string("nul\0inside \xe2\x9c\x93", 14)));
    w.set("v.u64", gguf_value::u64(std::numeric_limits<std::uint64_t>::max()));
    w.set("v.i64", gguf_value::i64(std::numeric_limits<std::int64_t>::min()));
    w.set("v.f64", gguf_value::f64(3.141592653589793));
    w.set("a.u8", gguf_value::array(std::vector<std::uint8_t>{0, 255}));
    w.set("a.i8", gguf_value::array(std::vector<std::int8_t>{-128, 127}));
    w.set("a.u16", gguf_value::array(std::vector<std::uint16_t>{1, 65535}));
    w.set("a.i16", gguf_value::array(std::vector<std::int16_t>{-32768, 5}));
    w.set("a.u32", gguf_value::array(std::vector<std::uint32_t>{3, 0xffffffffu}));
    w.set("a.i32", gguf_value::array(std::vector<std::int32_t>{-1, 2, -3}));
    w.set("a.f32", gguf_value::array(std::vector<float>{0.5f, -0.0f, 1e30f}));
    w.set("a.bool", gguf_value::array(std::vector<bool>{true, false, true}));
    w.set("a.string", gguf_value::array(std::vector<std::string>{"", "x", "long string here"}));
    w.set("a.u64", gguf_value::array(std::vector<std::uint64_t>{1, std::uint64_t{1} << 63}));
    w.set("a.i64", gguf_value::array(std::vector<std::int64_t>{-(std::int64_t{1} << 62)}));
    w.set("a.f64", gguf_value::array(std::vector<double>{1e-300, -2.0}));
    w.set("a.empty", gguf_value::array(std::vector<std::int32_t>{}));
    w.set("v.u8", gguf_value::string("replaced")); // replaces in place, keeps the position

    // Real Q4_0 blocks: 3 rows of 64.
    std::vector<float> x(3 * 64);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 17) * 0.25f - 2.0f;
    const std::vector<block_q4_0> q = quantize<q4_0>(x);
    const auto q_bytes = std::as_bytes(std::span(q));

    const auto f32_data = pattern(3 * 4, 1);
    const auto f16_data = pattern(4 * 2, 2);
    const auto bf16_data = pattern(2 * 2, 3);
    const auto q4k_data = pattern(144, 4);
    const auto q6k_data = pattern(2 * 210, 5);
    w.add_tensor("f32", ggml_type::f32, {3}, as_bytes(f32_data));
    w.add_tensor("f16", ggml_type::f16, {2, 2}, as_bytes(f16_data));
    w.add_tensor("bf16", ggml_type::bf16, {1, 1, 1, 2}, as_bytes(bf16_data));
    w.add_tensor("q4_0", ggml_type::q4_0, {3, 64}, q_bytes);
    w.add_tensor("q4_k", ggml_type::q4_k, {1, 256}, as_bytes(q4k_data));
    w.add_tensor("q6_k", ggml_type::q6_k, {2, 1, 256}, as_bytes(q6k_data));
    w.add_tensor("empty", ggml_type::q8_0, {0, 32}, {});
    CHECK(w.alignment() == 64);

    const std::string p = dir.file("rt.gguf");
    w.write(p);
    const io::gguf_file f(p);
    CHECK(f.alignment() == 64);
    CHECK(f.data_offset() % 64 == 0);
    REQUIRE(f.metadata().size() == w.metadata().size());
    for (std::size_t i = 0; i < f.metadata().size(); ++i) {
        CAPTURE(w.metadata()[i].key);
        CHECK(f.metadata()[i].key == w.metadata()[i].key);
        CHECK(f.metadata()[i].value == w.metadata()[i].value);
    }
    CHECK(f.metadata()[1].key == "v.u8");
    CHECK(f.metadata()[1].value.as_string() == "replaced");
    CHECK(f.find_metadata("v.string")->as_string().size() == 14);
    CHECK(std::signbit(f.find_metadata("a.f32")->get_array<float>()[1]));

    REQUIRE(f.entries().size() == w.tensors().size());
    std::size_t end = f.data_offset();
    for (std::size_t i = 0; i < f.entries().size(); ++i) {
        const io::tensor_entry& e = f.entries()[i];
        const io::tensor_entry& src = w.tensors()[i];
        CAPTURE(e.name);
        CHECK(e.name == src.name);
        CHECK(e.type == src.type);
        CHECK(e.shape == src.shape);
        CHECK(to_vector(e.data) == to_vector(src.data));
        CHECK(static_cast<std::size_t>(e.data.data() - f.bytes().data()) % 64 == 0);
        end += (e.data.size() + 63) / 64 * 64;
    }
    CHECK(f.bytes().size() == end); // padded after every tensor, the last included
    check_consistent(f);

    // The Q4_0 tensor views in place and dequantizes to what was written.
    const auto view = io::as_view<q4_0, 2>(io::require(f, "q4_0"), f.path());
    CHECK(view.extent(0) == 3);
    CHECK(view.extent(1) == 64);
    const std::vector<float> want = dequantize<q4_0>(std::span<const block_q4_0>(q));
    for (std::size_t r = 0; r < 3; ++r)
        for (std::size_t c = 0; c < 64; c += 13) CHECK(view(r, c) == want[r * 64 + c]);

    // A file rewritten entry by entry (add_tensor(entry)) is the same file.
    io::gguf_writer copy;
    for (const io::gguf_kv& kv : f.metadata()) copy.set(kv.key, kv.value);
    for (const io::tensor_entry& e : f.entries()) copy.add_tensor(e);
    const std::string p2 = dir.file("copy.gguf");
    copy.write(p2);
    CHECK(read_all(p2) == read_all(p));
}

TEST_CASE("gguf: writer checks") {
    const scratch_dir dir;
    io::gguf_writer w;
    const auto q8 = pattern(34, 0);
    CHECK_THROWS_WITH_AS(w.set("", gguf_value::u8(1)), doctest::Contains("empty key"), error);
    CHECK_THROWS_WITH_AS(w.set("general.alignment", gguf_value::i32(64)),
                         doctest::Contains("general.alignment' must be u32, not i32"), error);
    CHECK_THROWS_WITH_AS(w.set("general.alignment", gguf_value::u32(48)),
                         doctest::Contains("= 48 is not a power of two"), error);
    CHECK_THROWS_WITH_AS(w.set("general.alignment", gguf_value::u32(0)),
                         doctest::Contains("= 0 is not a power of two"), error);
    CHECK(w.alignment() == 32);
    CHECK(w.metadata().empty());

    CHECK_THROWS_WITH_AS(w.add_tensor(std::string(64, 'n'), ggml_type::q8_0, {32}, as_bytes(q8)),
                         doctest::Contains("64 bytes long; ggml allows at most 63"), error);
    w.add_tensor(std::string(63, 'n'), ggml_type::q8_0, {32}, as_bytes(q8));
    CHECK_THROWS_WITH_AS(w.add_tensor(std::string(63, 'n'), ggml_type::q8_0, {32}, as_bytes(q8)),
                         doctest::Contains("added twice"), error);
    CHECK_THROWS_WITH_AS(w.add_tensor("t", ggml_type::q8_0, {2, 32}, as_bytes(q8)),
                         doctest::Contains("of 64 elements takes 68 bytes, got 34"), error);
    CHECK_THROWS_WITH_AS(w.add_tensor("t", ggml_type::q8_0, {2, 16}, as_bytes(q8)),
                         doctest::Contains("rows of 16 elements, not a multiple of the block size 32"), error);
    CHECK_THROWS_WITH_AS(w.add_tensor("t", ggml_type::f32, {}, {}), doctest::Contains("0 dimensions"), error);
    CHECK_THROWS_WITH_AS(w.add_tensor("t", ggml_type::f32, {1, 1, 1, 1, 1}, {}),
                         doctest::Contains("5 dimensions"), error);
    CHECK_THROWS_WITH_AS(w.add_tensor("t", ggml_type::f32, {std::size_t{1} << 63, 0}, {}),
                         doctest::Contains("more elements than fit in int64"), error);
    CHECK_THROWS_WITH_AS(w.add_tensor("t", static_cast<ggml_type>(4), {32}, {}),
                         doctest::Contains("unknown ggml type id 4"), error);
    CHECK(w.tensors().size() == 1);

    // A write that fails names the path and leaves nothing behind.
    const std::string missing = dir.file("no/such/dir/x.gguf");
    CHECK_THROWS_WITH_AS(w.write(missing), doctest::Contains("no/such/dir/x.gguf: cannot create"), error);
    const std::string is_dir = dir.file("a_directory");
    std::filesystem::create_directory(is_dir);
    CHECK_THROWS_WITH_AS(w.write(is_dir), doctest::Contains("a_directory: is a directory"), error);
    CHECK(std::distance(std::filesystem::directory_iterator(dir.dir), std::filesystem::directory_iterator()) == 1);
    CHECK(std::filesystem::is_directory(is_dir));
}

TEST_CASE("gguf: the reader accepts what ggml accepts at the edges") {
    const scratch_dir dir;
    SUBCASE("no tensors and no padding after the header") {
        bytes_builder b = bytes_builder::header(3, 0, 1);
        b.str("k").u32(7).u8(2); // bool stored as 2: ggml reads any non-zero byte as true
        const io::gguf_file f(dir.put(b.b));
        CHECK(f.entries().empty());
        CHECK(f.data_offset() == b.size());
        CHECK(f.find_metadata("k")->as_bool() == true);
    }
    SUBCASE("63-byte name, zero-size tensor, n_dims 0 (a scalar), missing padding after the last tensor") {
        bytes_builder b = bytes_builder::header(3, 3, 0);
        b.info(std::string(63, 'x'), {4}, 0, 0);
        b.info("none", {0, 5}, 2, 32);
        b.info("scalar", {}, 0, 32);
        b.pad_to(32);
        const std::size_t data = b.size();
        b.zeros(32).zeros(4); // 16 bytes + pad, nothing, then the scalar's 4 bytes without pad
        const io::gguf_file f(dir.put(b.b));
        REQUIRE(f.entries().size() == 3);
        CHECK(f.entries()[0].name.size() == 63);
        CHECK(f.entries()[1].shape == std::vector<std::size_t>{5, 0});
        CHECK(f.entries()[1].data.empty());
        CHECK(f.entries()[2].shape.empty());
        CHECK(f.entries()[2].data.size() == 4);
        CHECK(f.bytes().size() == data + 36);
        CHECK(f.data_offset() == data);
        check_consistent(f);
    }
}

TEST_CASE("gguf: every reader rule, broken once") {
    const scratch_dir dir;
    const auto with_kv = [](const bytes_builder& kv, std::int64_t n_kv = 1) {
        return bytes_builder::header(3, 0, n_kv).append(kv);
    };
    // One tensor info (and enough zero data after it for any size below 64 bytes).
    const auto with_info = [](const bytes_builder& infos, std::int64_t n_tensors = 1) {
        bytes_builder b = bytes_builder::header(3, n_tensors, 0).append(infos);
        return b.pad_to(32).zeros(64);
    };

    SUBCASE("magic and version") {
        check_rejects(dir, bytes_builder().raw({'G', 'G'}), "not a GGUF file: only 2 bytes");
        bytes_builder bad_magic = bytes_builder::header(3, 0, 0);
        bad_magic.b[3] = 'X';
        check_rejects(dir, bad_magic, "magic is 'GGUX', expected 'GGUF'");
        check_rejects(dir, bytes_builder::header(0, 0, 0), "invalid GGUF version 0");
        check_rejects(dir, bytes_builder::header(1, 0, 0), "GGUF version 1 (an old format) is not supported");
        check_rejects(dir, bytes_builder::header(2, 0, 0), "GGUF version 2 (an old format) is not supported");
        check_rejects(dir, bytes_builder::header(0x03000000, 0, 0), "probably a big-endian GGUF file");
        check_rejects(dir, bytes_builder::header(4, 0, 0), "GGUF version 4 is newer than this reader");
        check_rejects(dir, bytes_builder().raw({'G', 'G', 'U', 'F', 3, 0}), "truncated: the file ends at byte 6");
    }
    SUBCASE("counts") {
        check_rejects(dir, bytes_builder::header(3, -1, 0), "tensor count -1 is negative");
        check_rejects(dir, bytes_builder::header(3, 0, -2), "key-value count -2 is negative");
        check_rejects(dir, bytes_builder::header(3, 0, std::int64_t{1} << 40), "key-value count 1099511627776 cannot fit");
        check_rejects(dir, bytes_builder::header(3, 5, 0), "tensor count 5 cannot fit");
    }
    SUBCASE("keys and values") {
        check_rejects(dir, with_kv(bytes_builder().str("").u32(4).u32(1)), "key #0 is empty");
        check_rejects(dir, with_kv(bytes_builder().str("k").u32(4).u32(1).str("k").u32(0).u8(1), 2),
                      "duplicate key 'k' (keys #0 and #1)");
        check_rejects(dir, with_kv(bytes_builder().str("k").u32(13).u32(1)), "key 'k' has invalid value type 13");
        check_rejects(dir, with_kv(bytes_builder().str("k").u32(9).u32(9).u64(1).u32(4).u64(0)),
                      "key 'k' is an array of arrays");
        check_rejects(dir, with_kv(bytes_builder().str("k").u32(9).u32(13).u64(0)), "key 'k' has invalid value type 13");
        check_rejects(dir, with_kv(bytes_builder().str("k").u32(9).u32(0).u64((std::uint64_t{1} << 30) + 1)),
                      "key 'k': array of 1073741825 elements is over the limit of 2^30");
        check_rejects(dir, with_kv(bytes_builder().str("k").u32(9).u32(8).u64(1000).str("a")),
                      "truncated: the file ends at byte 58, inside key 'k' (8000 bytes needed at offset 49)");
        check_rejects(dir, with_kv(bytes_builder().str("k").u32(8).u64((std::uint64_t{1} << 30) + 1)),
                      "key 'k': string of 1073741825 bytes at offset 37 is over the 1 GiB limit");
        check_rejects(dir, with_kv(bytes_builder().str("k").u32(8).u64(100).raw({'a', 'b', 'c'})),
                      "truncated: the file ends at byte 48, inside key 'k' (100 bytes needed at offset 45)");
        check_rejects(dir, with_kv(bytes_builder().u64(std::uint64_t{1} << 31).raw({'k'}).zeros(20)),
                      "key #0: string of 2147483648 bytes");
        check_rejects(dir, with_kv(bytes_builder().str("k").u32(6).raw({0, 0})), "inside key 'k'");
    }
    SUBCASE("general.alignment") {
        check_rejects(dir, with_kv(bytes_builder().str("general.alignment").u32(5).u32(64)),
                      "general.alignment has type i32, must be u32");
        check_rejects(dir, with_kv(bytes_builder().str("general.alignment").u32(0).u8(64)),
                      "general.alignment has type u8, must be u32");
        check_rejects(dir, with_kv(bytes_builder().str("general.alignment").u32(4).u32(0)),
                      "general.alignment = 0 is not a power of two");
        check_rejects(dir, with_kv(bytes_builder().str("general.alignment").u32(4).u32(48)),
                      "general.alignment = 48 is not a power of two");
    }
    SUBCASE("tensor infos") {
        check_rejects(dir, with_info(bytes_builder().info(std::string(64, 'n'), {4}, 0, 0)),
                      "name '" + std::string(64, 'n') + "' is 64 bytes long; ggml allows at most 63");
        check_rejects(dir, with_info(bytes_builder().info("t", {4}, 0, 0).info("t", {4}, 0, 32), 2),
                      "duplicate tensor name 't' (tensors #0 and #1)");
        check_rejects(dir, with_info(bytes_builder().info("t", {1, 1, 1, 1, 1}, 0, 0)),
                      "tensor 't' has 5 dimensions; at most 4");
        check_rejects(dir, with_info(bytes_builder().info("t", {4, -1}, 0, 0)),
                      "tensor 't' dimension 1 is negative (-1)");
        check_rejects(dir, with_info(bytes_builder().info("t", {std::int64_t{1} << 32, std::int64_t{1} << 32}, 0, 0)),
                      "tensor 't' has more elements than fit in int64");
        check_rejects(dir, with_info(bytes_builder().info("t", {std::int64_t{1} << 62, 2}, 0, 0)),
                      "tensor 't' has more elements than fit in int64");
        check_rejects(dir, with_info(bytes_builder().info("t", {std::int64_t{1} << 62}, 0, 0)),
                      "tensor 't' takes more than 2^64 bytes");
        check_rejects(dir, with_info(bytes_builder().info("t", {32}, 4, 0)),
                      "tensor 't' has unknown or unsupported ggml type id 4");
        check_rejects(dir, with_info(bytes_builder().info("t", {32}, 31, 0)), // Q4_0_4_4, gone from ggml
                      "tensor 't' has unknown or unsupported ggml type id 31");
        { // A type without a scheme but with known geometry opens: IQ2_XXS, 66 bytes per 256.
            const bytes_builder iq2 = bytes_builder::header(3, 1, 0).append(bytes_builder().info("t", {256}, 16, 0));
            const io::gguf_file f(dir.put(bytes_builder(iq2).pad_to(32).zeros(96).b));
            REQUIRE(f.entries().size() == 1);
            CHECK(type_name(f.entries()[0].type) == "iq2_xxs");
            CHECK(f.entries()[0].data.size() == 66);
        }
        check_rejects(dir, with_info(bytes_builder().info("t", {16, 2}, 8, 0)),
                      "tensor 't' (q8_0) has rows of 16 elements, not a multiple of the block size 32");
        check_rejects(dir, bytes_builder::header(3, 1, 0).str("t").u32(1).u64(4).u32(0),
                      "truncated: the file ends at byte 49, inside tensor 't' info");
    }
    SUBCASE("data offsets and bounds") {
        check_rejects(dir, with_info(bytes_builder().info("t", {4}, 0, 32)),
                      "tensor 't' has data offset 32, expected 0");
        check_rejects(dir, with_info(bytes_builder().info("a", {4}, 0, 0).info("b", {4}, 0, 16), 2),
                      "tensor 'b' has data offset 16, expected 32 (tensors must be packed in order, each padded to 32 bytes)");
        check_rejects(dir, with_info(bytes_builder().info("a", {4}, 0, 0).info("b", {4}, 0, 64), 2),
                      "tensor 'b' has data offset 64, expected 32");
        bytes_builder past = with_info(bytes_builder().info("t", {32}, 0, 0)); // 128 bytes of data needed, 64 there
        check_rejects(dir, past, "tensor 't' data (128 bytes at file offset 64) runs past the end of the file (128 bytes)");
        bytes_builder no_data = bytes_builder::header(3, 1, 0).info("t", {0}, 0, 0); // 57 bytes, data at 64
        check_rejects(dir, no_data, "the data section would start at byte 64, past the end of the file (57 bytes)");
    }
}

TEST_CASE("gguf: truncated and corrupted files open consistently or throw qtensor::error") {
    const scratch_dir dir;
    io::gguf_writer w;
    w.set("general.architecture", gguf_value::string("gemma4"));
    w.set("n", gguf_value::u32(12));
    w.set("eps", gguf_value::f32(1e-6f));
    w.set("tokens", gguf_value::array(std::vector<std::string>{"<pad>", "<bos>", "hello", "world", ""}));
    w.set("scores", gguf_value::array(std::vector<float>{0.0f, -1.0f, -2.5f}));
    w.set("flags", gguf_value::array(std::vector<bool>{true, false}));
    const auto d0 = pattern(4 * 8 * 4, 1);
    const auto d1 = pattern(2 * 34, 2);
    const auto d2 = pattern(3 * 18, 3);
    const auto d3 = pattern(144, 4);
    w.add_tensor("blk.0.attn_norm.weight", ggml_type::f32, {4, 8}, as_bytes(d0));
    w.add_tensor("blk.0.ffn_up.weight", ggml_type::q8_0, {2, 32}, as_bytes(d1));
    w.add_tensor("blk.0.ffn_down.weight", ggml_type::q4_0, {1, 3, 32}, as_bytes(d2));
    w.add_tensor("token_embd.weight", ggml_type::q4_k, {1, 256}, as_bytes(d3));
    const std::string src = dir.file("src.gguf");
    w.write(src);
    const std::vector<std::uint8_t> good = read_all(src);
    std::size_t header_end = 0, data_end = 0;
    {
        const io::gguf_file f(src);
        header_end = f.data_offset();
        const io::tensor_entry& last = f.entries().back();
        data_end = static_cast<std::size_t>(last.data.data() - f.bytes().data()) + last.data.size();
    }
    REQUIRE(good.size() > 512);

    // Truncation: the file opens exactly when every tensor's bytes are there.
    std::size_t opened = 0;
    for (std::size_t len = 0; len <= good.size(); ++len) {
        const std::string p = dir.put(std::vector<std::uint8_t>(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(len)));
        CAPTURE(len);
        try {
            const io::gguf_file f(p);
            CHECK(len >= data_end);
            CHECK(f.entries().size() == 4);
            check_consistent(f);
            ++opened;
        } catch (const error&) {
            CHECK(len < data_end);
        }
    }
    CHECK(opened == good.size() - data_end + 1);

    // Corruption across the header: each byte replaced by several patterns.
    std::size_t accepted = 0, rejected = 0;
    for (std::size_t pos = 0; pos < header_end; ++pos) {
        for (const int mode : {0, 1, 2, 3}) {
            std::vector<std::uint8_t> bad = good;
            switch (mode) {
            case 0: bad[pos] ^= 0x01; break;
            case 1: bad[pos] ^= 0x80; break;
            case 2: bad[pos] = 0x00; break;
            default: bad[pos] = 0xff; break;
            }
            const std::string p = dir.put(bad);
            CAPTURE(pos);
            CAPTURE(mode);
            try {
                const io::gguf_file f(p);
                check_consistent(f);
                for (const io::gguf_kv& kv : f.metadata()) CHECK(!kv.key.empty());
                ++accepted;
            } catch (const error&) {
                ++rejected;
            }
        }
    }
    // Both outcomes happen: a flipped character in a string still reads, a
    // flipped length or count does not.
    CHECK(accepted > 0);
    CHECK(rejected > 0);
}
