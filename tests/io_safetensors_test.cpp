// safetensors reader: the Hugging Face fixtures read as their own headers say,
// hand-built files for F16/BF16, every dtype, sharded and multimodal
// checkpoints, and every malformed file the spec rules out (each must throw
// qtensor::error naming the file, never crash), including truncated and
// bit-flipped copies of a real checkpoint.
#include <doctest/doctest.h>

#include "test_util.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <unistd.h>

#include "qtensor/io/mapped_file.hpp"
#include "qtensor/io/safetensors.hpp"
#include "qtensor/io/safetensors_writer.hpp"
#include "qtensor/scheme/q8_0.hpp"
#include "qtensor/scheme/float.hpp"

using namespace qtensor;
using qtensor_test::message_of;
namespace fs = std::filesystem;

namespace {

const std::string fixtures = std::string(QTENSOR_TEST_DATA_DIR) + "/gemma4";

// A fresh directory, removed with everything in it at scope exit.
struct temp_dir {
    fs::path path;
    temp_dir() {
        std::string pattern = (fs::temp_directory_path() / "qtensor-st-XXXXXX").string();
        REQUIRE(::mkdtemp(pattern.data()) != nullptr);
        path = pattern;
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    std::string operator/(const std::string& name) const { return (path / name).string(); }
};

std::vector<char> read_all(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_all(const std::string& path, const std::vector<char>& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// The spec's layout, built by hand: u64 LE header length, header, buffer.
std::vector<char> st_bytes(const std::string& header, const std::vector<unsigned char>& buffer,
                           std::uint64_t header_len) {
    std::vector<char> out;
    for (int b = 0; b < 8; ++b) out.push_back(static_cast<char>((header_len >> (8 * b)) & 0xff));
    out.insert(out.end(), header.begin(), header.end());
    out.insert(out.end(), buffer.begin(), buffer.end());
    return out;
}
std::vector<char> st_bytes(const std::string& header, const std::vector<unsigned char>& buffer = {}) {
    return st_bytes(header, buffer, header.size());
}

// Pads the header with spaces to a multiple of 8 bytes, as Hugging Face
// does, so the buffer starts 8-byte aligned.
std::string write_st(const temp_dir& dir, const std::string& name, std::string header,
                     const std::vector<unsigned char>& buffer = {}) {
    header.resize((header.size() + 7) / 8 * 8, ' ');
    const std::string path = dir / name;
    write_all(path, st_bytes(header, buffer));
    return path;
}

// Little-endian bytes of 16-bit patterns and floats.
std::vector<unsigned char> le16(std::initializer_list<std::uint16_t> v) {
    std::vector<unsigned char> out;
    for (std::uint16_t x : v) {
        out.push_back(static_cast<unsigned char>(x & 0xff));
        out.push_back(static_cast<unsigned char>(x >> 8));
    }
    return out;
}
std::vector<unsigned char> le_f32(std::initializer_list<float> v) {
    std::vector<unsigned char> out;
    for (float f : v) {
        std::uint32_t u;
        std::memcpy(&u, &f, 4);
        for (int b = 0; b < 4; ++b) out.push_back(static_cast<unsigned char>((u >> (8 * b)) & 0xff));
    }
    return out;
}

std::uint64_t header_len_of(const std::vector<char>& file) {
    std::uint64_t n = 0;
    for (int b = 7; b >= 0; --b) n = (n << 8) | static_cast<unsigned char>(file[static_cast<std::size_t>(b)]);
    return n;
}

// Checks every tensor of `path` against the header as parsed here, directly
// with nlohmann: same names, dtypes, shapes, and bytes exactly where
// data_offsets put them inside the mapping.
void check_against_header(const std::string& path) {
    const std::vector<char> file = read_all(path);
    const std::uint64_t n = header_len_of(file);
    const auto header = nlohmann::json::parse(file.begin() + 8, file.begin() + 8 + static_cast<long>(n));
    const io::safetensors_file st(path);
    const std::byte* buffer = st.bytes().data() + 8 + n;
    REQUIRE(st.bytes().size() == file.size());

    std::size_t tensors = 0;
    for (const auto& item : header.items()) {
        const std::string& name = item.key(); // not a structured binding: CAPTURE takes it by reference
        const nlohmann::json& info = item.value();
        if (name == "__metadata__") continue;
        ++tensors;
        CAPTURE(name);
        const io::raw_tensor* t = st.find_raw(name);
        REQUIRE(t != nullptr);
        CHECK(t->name == name);
        CHECK(t->dtype == info["dtype"].get<std::string>());
        CHECK(t->shape == info["shape"].get<std::vector<std::size_t>>());
        const auto offsets = info["data_offsets"].get<std::vector<std::size_t>>();
        CHECK(t->data.data() == buffer + offsets[0]); // a view into the mapping, not a copy
        CHECK(t->data.size() == offsets[1] - offsets[0]);
        if (t->dtype == "F32") {
            const io::tensor_entry* e = st.find(name);
            REQUIRE(e != nullptr);
            CHECK(e->type == ggml_type::f32);
            CHECK(e->shape == t->shape);
            CHECK(e->data.data() == t->data.data());
            CHECK(e->data.size() == t->data.size());
        } else {
            CHECK(st.find(name) == nullptr);
        }
    }
    CHECK(st.tensors().size() == tensors);
    // In the order of the bytes.
    for (std::size_t i = 1; i < st.tensors().size(); ++i)
        CHECK(st.tensors()[i - 1].data.data() + st.tensors()[i - 1].data.size() ==
              st.tensors()[i].data.data());
}

// Reads `n` values of type T at byte `offset` of a file, with plain file I/O.
template <class T>
std::vector<T> read_values(const std::string& path, std::size_t offset, std::size_t n) {
    std::ifstream in(path, std::ios::binary);
    in.seekg(static_cast<std::streamoff>(offset));
    std::vector<T> v(n);
    in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(n * sizeof(T)));
    REQUIRE(in.good());
    return v;
}

// The message of opening `path`, which must throw; it must name the file.
std::string open_error(const std::string& path) {
    const std::string msg = message_of([&] { io::safetensors_file f(path); });
    CHECK(msg.find(path) != std::string::npos);
    return msg;
}

// Opens a file or checkpoint that may be corrupt: either qtensor::error, or
// tensors that tile the data buffer exactly, inside the mapping, sized as
// their dtype and shape say. Returns whether it opened.
bool opens_consistently(const std::string& path) {
    try {
        const io::safetensors_file st(path);
        const std::span<const std::byte> all = st.bytes();
        REQUIRE(all.size() >= 8);
        const std::byte* end = all.data() + all.size();
        const std::byte* next = nullptr;
        for (const io::raw_tensor& t : st.tensors()) {
            REQUIRE(t.data.data() >= all.data() + 8);
            REQUIRE(t.data.data() + t.data.size() <= end);
            if (next) REQUIRE(t.data.data() == next);
            next = t.data.data() + t.data.size();
            const std::map<std::string, std::size_t> bits = {
                {"F32", 32}, {"I64", 64}, {"F16", 16}, {"BF16", 16}, {"I32", 32}, {"U8", 8}};
            if (bits.contains(t.dtype)) REQUIRE(t.data.size() * 8 == t.elements() * bits.at(t.dtype));
        }
        if (next) REQUIRE(next == end);
        for (const io::tensor_entry& e : st.entries()) {
            const io::raw_tensor* t = st.find_raw(e.name);
            REQUIRE(t != nullptr);
            REQUIRE(e.data.data() == t->data.data());
            REQUIRE(e.data.size() == t->data.size());
            REQUIRE(e.shape == t->shape);
        }
        return true;
    } catch (const qtensor::error& e) {
        CHECK(std::string(e.what()).find(path) != std::string::npos);
        return false;
    }
}

} // namespace

TEST_CASE("safetensors: the tiny-e2b and tiny-moe checkpoints read as their headers say") {
    for (const char* model : {"tiny-e2b", "tiny-moe"})
        for (const char* file : {"model.safetensors", "reference.safetensors"}) {
            CAPTURE(model);
            CAPTURE(file);
            check_against_header(fixtures + "/" + model + "/" + file);
        }
}

TEST_CASE("safetensors: known tensors of tiny-e2b model.safetensors") {
    const std::string path = fixtures + "/tiny-e2b/model.safetensors";
    const io::safetensors_file st(path);
    CHECK(st.path() == path);
    CHECK(st.tensors().size() == 101);
    CHECK(st.entries().size() == 101);
    CHECK(st.metadata() == std::map<std::string, std::string, std::less<>>{{"format", "pt"}});

    // Offsets from the header; the buffer starts at 8 + 10760.
    const std::size_t buffer = 8 + 10760;
    const io::tensor_entry& embed = io::require(st, "model.embed_tokens.weight");
    CHECK(embed.type == ggml_type::f32);
    CHECK(embed.shape == std::vector<std::size_t>{512, 128});
    CHECK(embed.data.data() == st.bytes().data() + buffer);
    const auto view = io::as_view<f32, 2>(embed, st.path());
    const std::vector<float> row7 = read_values<float>(path, buffer + 7 * 128 * 4, 128);
    for (std::size_t j = 0; j < 128; ++j) CHECK(view(7, j) == row7[j]);

    const io::tensor_entry& scalar = st.at("model.layers.0.layer_scalar");
    CHECK(scalar.shape == std::vector<std::size_t>{1});
    CHECK(scalar.data.data() == st.bytes().data() + buffer + 459264);
    CHECK(io::as_view<f32, 1>(scalar, st.path())(0) == read_values<float>(path, buffer + 459264, 1)[0]);

    CHECK(st.find("model.layers.99.layer_scalar") == nullptr);
    CHECK(message_of([&] { (void)st.at("lm_head.weight"); }) ==
          "qtensor: " + path + ": no tensor lm_head.weight");
    CHECK(message_of([&] { (void)io::as_view<f16, 2>(embed, st.path()); }).find("expected f16") !=
          std::string::npos);
}

TEST_CASE("safetensors: tiny-moe experts are a rank-3 view") {
    const io::safetensors_file st(fixtures + "/tiny-moe/model.safetensors");
    const io::tensor_entry& e = st.at("model.layers.0.experts.down_proj");
    CHECK(e.shape == std::vector<std::size_t>{8, 96, 32});
    const auto v = io::as_view<f32, 3>(e, st.path());
    CHECK(v.extent(0) == 8);
    CHECK(v.extent(2) == 32);
}

TEST_CASE("safetensors: reference.safetensors: I64 input_ids are listed and read raw, not viewed") {
    const std::string path = fixtures + "/tiny-e2b/reference.safetensors";
    const io::safetensors_file st(path);
    CHECK(st.metadata().empty());
    CHECK(st.find("input_ids") == nullptr);
    CHECK(message_of([&] { (void)st.at("input_ids"); }).find("input_ids has dtype I64") != std::string::npos);

    const io::raw_tensor& ids = st.raw("input_ids");
    CHECK(ids.dtype == "I64");
    CHECK(ids.shape == std::vector<std::size_t>{24});
    CHECK(ids.data.size() == 192);
    const std::vector<std::int64_t> values = io::to_int64(ids, st.path());
    // Header 13064 bytes; input_ids at offset 0 of the buffer.
    CHECK(values == read_values<std::int64_t>(path, 8 + 13064, 24));
    for (std::int64_t v : values) CHECK((v > 0 && v < 512)); // the README: no padding token 0; vocab 512

    const io::tensor_entry& embed = st.at("embed");
    CHECK(embed.shape == std::vector<std::size_t>{24, 128});
    CHECK(io::as_view<f32, 2>(embed, st.path())(0, 0) == read_values<float>(path, 8 + 13064 + 192, 1)[0]);
    CHECK(message_of([&] { (void)io::to_int64(st.raw("embed"), st.path()); }).find("not an integer type") !=
          std::string::npos);
    CHECK(st.tensors().front().name == "input_ids");
    CHECK(st.entries().size() == st.tensors().size() - 1);
}

TEST_CASE("safetensors: hand-encoded F16 and BF16 values") {
    temp_dir dir;
    // F16: 1, -2, 0.5, 65504 (largest finite), 2^-24 (smallest subnormal), -0.
    // BF16: 1, -3, 3.140625, 2^-126 (smallest normal).
    std::vector<unsigned char> buffer = le16({0x3C00, 0xC000, 0x3800, 0x7BFF, 0x0001, 0x8000});
    const std::vector<unsigned char> b16 = le16({0x3F80, 0xC040, 0x4049, 0x0080});
    buffer.insert(buffer.end(), b16.begin(), b16.end());
    const std::string path = write_st(dir, "half.safetensors",
                                      R"({"h":{"dtype":"F16","shape":[2,3],"data_offsets":[0,12]},)"
                                      R"("b":{"dtype":"BF16","shape":[4],"data_offsets":[12,20]}})",
                                      buffer);
    const io::safetensors_file st(path);
    const io::tensor_entry& h = st.at("h");
    CHECK(h.type == ggml_type::f16);
    const auto hv = io::as_view<f16, 2>(h, st.path());
    CHECK(hv(0, 0) == 1.0f);
    CHECK(hv(0, 1) == -2.0f);
    CHECK(hv(0, 2) == 0.5f);
    CHECK(hv(1, 0) == 65504.0f);
    CHECK(hv(1, 1) == 0x1p-24f);
    CHECK(hv(1, 2) == 0.0f);
    CHECK(std::signbit(hv(1, 2)));
    const io::tensor_entry& b = st.at("b");
    CHECK(b.type == ggml_type::bf16);
    const auto bv = io::as_view<bf16, 1>(b, st.path());
    CHECK(bv(0) == 1.0f);
    CHECK(bv(1) == -3.0f);
    CHECK(bv(2) == 3.140625f);
    CHECK(bv(3) == 0x1p-126f);
    CHECK(message_of([&] { (void)io::as_view<f32, 1>(b, st.path()); }) ==
          "qtensor: " + path + ": tensor b has type bf16, expected f32");
    CHECK(st.entries().size() == 2);
    CHECK(st.entries()[0].name == "h"); // byte order, not name order
}

TEST_CASE("safetensors: every dtype of the spec parses; integers widen to int64") {
    temp_dir dir;
    // name, dtype, shape, bytes (sizes from the spec's bits per element).
    const std::string header = R"({"bool":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]},)"
                               R"("u8":{"dtype":"U8","shape":[2],"data_offsets":[2,4]},)"
                               R"("i8":{"dtype":"I8","shape":[2],"data_offsets":[4,6]},)"
                               R"("e5m2":{"dtype":"F8_E5M2","shape":[1],"data_offsets":[6,7]},)"
                               R"("e4m3":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[7,8]},)"
                               R"("e8m0":{"dtype":"F8_E8M0","shape":[1],"data_offsets":[8,9]},)"
                               R"("f4":{"dtype":"F4","shape":[2,3],"data_offsets":[9,12]},)"
                               R"("f6a":{"dtype":"F6_E2M3","shape":[4],"data_offsets":[12,15]},)"
                               R"("f6b":{"dtype":"F6_E3M2","shape":[4],"data_offsets":[15,18]},)"
                               R"("i16":{"dtype":"I16","shape":[1],"data_offsets":[18,20]},)"
                               R"("u16":{"dtype":"U16","shape":[1],"data_offsets":[20,22]},)"
                               R"("i32":{"dtype":"I32","shape":[2],"data_offsets":[22,30]},)"
                               R"("u32":{"dtype":"U32","shape":[1],"data_offsets":[30,34]},)"
                               R"("i64":{"dtype":"I64","shape":[1],"data_offsets":[34,42]},)"
                               R"("u64":{"dtype":"U64","shape":[2],"data_offsets":[42,58]},)"
                               R"("f64":{"dtype":"F64","shape":[1],"data_offsets":[58,66]},)"
                               R"("c64":{"dtype":"C64","shape":[1],"data_offsets":[66,74]}})";
    std::vector<unsigned char> buffer(74, 0);
    const auto put = [&](std::size_t at, std::initializer_list<unsigned char> v) {
        for (unsigned char c : v) buffer[at++] = c;
    };
    put(2, {0xff, 0x01});                                                                 // u8: 255, 1
    put(4, {0xff, 0x7f});                                                                 // i8: -1, 127
    put(18, {0x00, 0x80});                                                                // i16: -32768
    put(20, {0xff, 0xff});                                                                // u16: 65535
    put(22, {0xfe, 0xff, 0xff, 0xff, 0x40, 0xe2, 0x01, 0x00});                            // i32: -2, 123456
    put(30, {0xff, 0xff, 0xff, 0xff});                                                    // u32: 4294967295
    put(34, {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80});                            // i64: INT64_MIN
    put(42, {0x07, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}); // u64: 7, 2^64-1
    const std::string path = write_st(dir, "dtypes.safetensors", header, buffer);
    const io::safetensors_file st(path);
    CHECK(st.tensors().size() == 17);
    CHECK(st.entries().empty());
    for (const io::raw_tensor& t : st.tensors()) CHECK(st.find(t.name) == nullptr);
    CHECK(st.raw("f4").dtype == "F4");
    CHECK(st.raw("f4").data.size() == 3);
    CHECK(st.raw("f6b").data.size() == 3);

    const auto ints = [&](const char* name) { return io::to_int64(st.raw(name), st.path()); };
    CHECK(ints("u8") == std::vector<std::int64_t>{255, 1});
    CHECK(ints("i8") == std::vector<std::int64_t>{-1, 127});
    CHECK(ints("i16") == std::vector<std::int64_t>{-32768});
    CHECK(ints("u16") == std::vector<std::int64_t>{65535});
    CHECK(ints("i32") == std::vector<std::int64_t>{-2, 123456});
    CHECK(ints("u32") == std::vector<std::int64_t>{4294967295});
    CHECK(ints("i64") == std::vector<std::int64_t>{std::numeric_limits<std::int64_t>::min()});
    CHECK(message_of([&] { (void)ints("u64"); }) ==
          "qtensor: " + path + ": tensor u64: element 1 (18446744073709551615) does not fit in int64");
    CHECK(message_of([&] { (void)ints("bool"); }).find("tensor bool has dtype BOOL, not an integer type") !=
          std::string::npos);
    CHECK(message_of([&] { (void)st.at("f64"); }).find("tensor f64 has dtype F64") != std::string::npos);
    CHECK(message_of([&] { (void)st.raw("nope"); }) == "qtensor: " + path + ": no tensor nope");
}

TEST_CASE("safetensors: scalars, empty tensors, metadata and header padding") {
    temp_dir dir;
    // Header padded with spaces, as the spec allows; a rank-0 scalar; an
    // empty tensor between two others.
    const std::string header = R"({"__metadata__":{"format":"pt","note":"x"},)"
                               R"("s":{"dtype":"F32","shape":[],"data_offsets":[0,4]},)"
                               R"("e":{"dtype":"F32","shape":[0,4],"data_offsets":[4,4]},)"
                               R"("v":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})"
                               "      ";
    const std::string path = write_st(dir, "small.safetensors", header, le_f32({2.5f, -1.0f, 3.0f}));
    const io::safetensors_file st(path);
    CHECK(st.metadata().at("note") == "x");
    CHECK(st.at("s").shape.empty());
    CHECK(st.at("s").elements() == 1);
    CHECK(st.at("e").elements() == 0);
    CHECK(st.at("e").data.empty());
    CHECK(io::as_view<f32, 1>(st.at("v"), st.path())(1) == 3.0f);

    // No tensors at all: "{}" and nothing after it.
    CHECK(io::safetensors_file(write_st(dir, "empty.safetensors", "{}")).tensors().empty());
}

TEST_CASE("safetensors: misaligned float data is listed, but as_view refuses it; raw still reads it") {
    temp_dir dir;
    // The header padded to 54 bytes: the buffer starts at file offset 62
    // (= 2 mod 4) of a page-aligned mapping, so the F32 is only 2-byte aligned.
    std::string header = R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
    REQUIRE(header.size() <= 54);
    header.resize(54, ' ');
    const std::string path = dir / "misaligned.safetensors";
    write_all(path, st_bytes(header, le_f32({1.5f})));
    const io::safetensors_file st(path);
    const io::tensor_entry& x = st.at("x");
    CHECK(reinterpret_cast<std::uintptr_t>(x.data.data()) % 4 == 2);
    const std::string msg = message_of([&] { (void)io::as_view<f32, 1>(x, st.path()); });
    CHECK(msg.find(path + ": tensor x") != std::string::npos);
    CHECK(msg.find("not aligned") != std::string::npos);
    float v;
    std::memcpy(&v, st.raw("x").data.data(), 4);
    CHECK(v == 1.5f);
}

TEST_CASE("safetensors: every malformed file throws qtensor::error naming the file and tensor") {
    temp_dir dir;
    const auto bad = [&](const std::string& header, const std::vector<unsigned char>& buffer = {}) {
        return open_error(write_st(dir, "bad.safetensors", header, buffer));
    };
    const auto has = [](const std::string& msg, const std::string& part) {
        CAPTURE(msg);
        CHECK(msg.find(part) != std::string::npos);
    };
    // {"dtype":"F32","shape":[n],"data_offsets":[begin,end]}, and a header of two tensors.
    const auto f32_info = [](int n, int begin, int end) {
        return R"({"dtype":"F32","shape":[)" + std::to_string(n) + R"(],"data_offsets":[)" +
               std::to_string(begin) + "," + std::to_string(end) + "]}";
    };
    const auto two = [](const std::string& a, const std::string& info_a, const std::string& b,
                        const std::string& info_b) {
        return "{\"" + a + "\":" + info_a + ",\"" + b + "\":" + info_b + "}";
    };
    const std::string ok_entry = f32_info(1, 0, 4);
    const std::vector<unsigned char> four(4, 0);

    SUBCASE("too short for the header length") {
        for (const std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{7}}) {
            write_all(dir / "short", std::vector<char>(n, '{'));
            has(open_error(dir / "short"), "too short");
        }
    }
    SUBCASE("header length past the end, or beyond the spec's limit") {
        const std::string h = "{}";
        for (std::uint64_t n : {std::uint64_t{3}, std::uint64_t{1000}}) {
            write_all(dir / "len", st_bytes(h, {}, n));
            has(open_error(dir / "len"), "runs past the end of the file");
        }
        for (std::uint64_t n : {std::uint64_t{100'000'001}, ~std::uint64_t{0}, std::uint64_t{1} << 63}) {
            write_all(dir / "len", st_bytes(h, {}, n));
            has(open_error(dir / "len"), "exceeds the safetensors limit of 100000000 bytes");
        }
        write_all(dir / "len", st_bytes(h, {}, 0));
        has(open_error(dir / "len"), "does not start with '{'");
    }
    SUBCASE("not a JSON object") {
        has(bad(" {}"), "does not start with '{'");
        has(bad("[]"), "does not start with '{'");
        has(bad(R"({"a":)"), "not valid JSON");
        has(bad("{}x"), "not valid JSON");
        has(bad(std::string("{}\0", 3)), "holds a NUL byte at offset 10");
        has(bad(std::string("{}\0\0\0\0\0\0", 8)), "holds a NUL byte");
        has(bad("{\"\xff\":1}"), "not valid JSON"); // not UTF-8
    }
    SUBCASE("missing fields and wrong field types") {
        has(bad(R"({"t":5})", four), "tensor t: its header entry is not an object");
        has(bad(R"({"t":{"shape":[1],"data_offsets":[0,4]}})", four),
            "tensor t: the header entry has no \"dtype\"");
        has(bad(R"({"t":{"dtype":"F32","data_offsets":[0,4]}})", four),
            "tensor t: the header entry has no \"shape\"");
        has(bad(R"({"t":{"dtype":"F32","shape":[1]}})", four),
            "tensor t: the header entry has no \"data_offsets\"");
        has(bad(R"({"t":{"dtype":1,"shape":[1],"data_offsets":[0,4]}})", four),
            "tensor t: \"dtype\" is not a string");
        has(bad(R"({"t":{"dtype":"F32","shape":1,"data_offsets":[0,4]}})", four),
            "tensor t: \"shape\" is not an array");
        for (const char* dim : {"-1", "1.5", "\"1\"", "null", "1e0", "18446744073709551616"})
            has(bad(std::string(R"({"t":{"dtype":"F32","shape":[)") + dim + R"(],"data_offsets":[0,4]}})",
                    four),
                "tensor t: \"shape\" holds");
        for (const char* off : {"[0]", "[0,4,4]", "{}", "[0,-4]", "[\"0\",4]", "[0,4.0]"})
            has(bad(std::string(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":)") + off + "}}", four),
                "tensor t: \"data_offsets\"");
        has(bad(R"({"t":{"dtype":"F128","shape":[1],"data_offsets":[0,4]}})", four),
            "tensor t: unknown dtype \"F128\"");
        has(bad(R"({"t":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}})", four), "unknown dtype \"f32\"");
        has(bad(R"({"__metadata__":[],"t":)" + ok_entry + "}", four), "__metadata__ is not an object");
        has(bad(R"({"__metadata__":{"n":1},"t":)" + ok_entry + "}", four),
            "__metadata__ value \"n\" is not a string");
    }
    SUBCASE("shapes whose size overflows, and sub-byte dtypes that leave a partial byte") {
        has(bad(R"({"t":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,4]}})", four),
            "tensor t: shape [4294967296,4294967296,16] has too many elements");
        has(bad(R"({"t":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,4]}})", four),
            "has too many elements");
        // Empty, yet its other extents overflow whatever order multiplies them.
        for (const char* shape : {"[0,18446744073709551615,2]", "[4294967296,4294967296,0]"})
            has(bad(std::string(R"({"t":{"dtype":"F32","shape":)") + shape + R"(,"data_offsets":[0,0]}})"),
                "has too many elements");
        has(bad(R"({"t":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}})", {0, 0}),
            "tensor t: 3 elements of F4 do not fill whole bytes");
    }
    SUBCASE("offsets that do not match the shape, or leave the buffer") {
        has(bad(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", four),
            "tensor t: \"data_offsets\" [0,4] hold 4 bytes, but F32 of shape [2] takes 8");
        has(bad(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", four), "end before they begin");
        has(bad(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", four),
            "tensor t: \"data_offsets\" [4,8] run past the data buffer (4 bytes)");
        has(bad(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[18446744073709551612,0]}})", four),
            "end before they begin");
    }
    SUBCASE("overlaps, holes and bytes no tensor covers") {
        const std::vector<unsigned char> twelve(12, 0);
        has(bad(two("a", f32_info(2, 0, 8), "b", f32_info(2, 4, 12)), twelve),
            "tensor b: bytes [4, 12) overlap tensor a (bytes [0, 8))");
        has(bad(two("a", f32_info(1, 0, 4), "b", f32_info(1, 0, 4)), four), "overlap tensor");
        has(bad(two("a", f32_info(1, 0, 4), "b", f32_info(1, 8, 12)), twelve),
            "bytes [4, 8) of the data buffer belong to no tensor (a hole before tensor b)");
        has(bad(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                std::vector<unsigned char>(8, 0)),
            "bytes [0, 4) of the data buffer belong to no tensor");
        has(bad(R"({"a":)" + ok_entry + "}", std::vector<unsigned char>(5, 0)),
            "the last 1 bytes of the file belong to no tensor");
        has(bad("{}", {0}), "the last 1 bytes");
        // An empty tensor inside another one's bytes overlaps it.
        has(bad(two("a", f32_info(2, 0, 8), "e", f32_info(0, 4, 4)), std::vector<unsigned char>(8, 0)),
            "tensor e: bytes [4, 4) overlap tensor a");
    }
    SUBCASE("duplicate names and keys") {
        has(bad(R"({"a":)" + ok_entry + R"(,"a":)" + ok_entry + "}", four), "duplicate key \"a\"");
        has(bad(R"({"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}})", four),
            "duplicate key \"dtype\"");
        has(bad(R"({"__metadata__":{"k":"1","k":"2"}})"), "duplicate key \"k\"");
    }
    SUBCASE("nesting deeper than a header has") {
        has(bad(R"({"t":{"dtype":"F32","shape":[[1]],"data_offsets":[0,4]}})", four),
            "nests deeper than 3 levels");
        // Deep enough to overflow the stack of a recursive parser or destructor.
        std::string deep = R"({"t":)";
        deep += std::string(200000, '[') + std::string(200000, ']') + "}";
        has(bad(deep), "nests deeper than 3 levels");
    }
}

TEST_CASE("safetensors: truncated and bit-flipped copies of a real checkpoint throw or open consistently") {
    temp_dir dir;
    const std::string path = dir / "copy.safetensors";
    const std::vector<char> original = read_all(fixtures + "/tiny-moe/model.safetensors");
    const std::size_t header_end = 8 + header_len_of(original);
    write_all(path, original);
    REQUIRE(opens_consistently(path));

    // Every bit of the length prefix, one bit of every 11th header byte (the
    // bit turns with the byte), and a few in the data, which is opaque so the
    // file must still open.
    struct flip {
        std::size_t at;
        int bit;
    };
    std::vector<flip> flips;
    for (std::size_t i = 0; i < 8; ++i)
        for (int bit = 0; bit < 8; ++bit) flips.push_back({i, bit});
    for (std::size_t i = 8; i < header_end; i += 11) flips.push_back({i, static_cast<int>(i % 8)});
    for (std::size_t i = header_end; i < original.size(); i += original.size() / 16)
        flips.push_back({i, static_cast<int>(i % 8)});
    std::size_t opened = 0;
    {
        std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
        for (const flip fl : flips) {
            const std::size_t i = fl.at; // not a structured binding: CAPTURE takes it by reference
            const int bit = fl.bit;
            CAPTURE(i);
            CAPTURE(bit);
            const char flipped = static_cast<char>(original[i] ^ (1 << bit));
            f.seekp(static_cast<std::streamoff>(i));
            f.put(flipped);
            f.flush();
            const bool ok = opens_consistently(path);
            opened += ok;
            if (i >= header_end) CHECK(ok);
            f.seekp(static_cast<std::streamoff>(i));
            f.put(original[i]);
            f.flush();
        }
    }
    // Many flips (a letter of a name, a space) still leave a valid file.
    CHECK(opened > flips.size() / 20);
    CHECK(opened < flips.size());

    // Any truncation leaves bytes the header describes outside the file.
    std::vector<std::size_t> lengths;
    for (std::size_t n = 0; n < 24; ++n) lengths.push_back(n);
    for (std::size_t n = header_end - 16; n < header_end + 16; ++n) lengths.push_back(n);
    for (std::size_t n = 24; n < header_end; n += 97) lengths.push_back(n);
    for (std::size_t n = header_end; n < original.size(); n += original.size() / 64) lengths.push_back(n);
    lengths.push_back(original.size() - 1);
    std::sort(lengths.begin(), lengths.end(), std::greater<>());
    for (std::size_t n : lengths) {
        CAPTURE(n);
        fs::resize_file(path, n);
        CHECK_FALSE(opens_consistently(path));
    }
}

TEST_CASE("safetensors_checkpoint: a file, or a directory with model.safetensors") {
    const std::string dir = fixtures + "/tiny-e2b";
    const io::safetensors_checkpoint by_dir(dir);
    const io::safetensors_checkpoint by_file(dir + "/model.safetensors");
    CHECK(by_dir.path() == dir);
    REQUIRE(by_dir.files().size() == 1);
    CHECK(by_dir.files()[0].path() == dir + "/model.safetensors");
    CHECK(by_dir.entries().size() == 101);
    CHECK(by_file.entries().size() == 101);
    const io::tensor_entry& e = io::require(by_dir, "model.embed_tokens.weight");
    CHECK(e.data.data() == by_dir.files()[0].find("model.embed_tokens.weight")->data.data());
    CHECK(io::as_view<f32, 2>(e, by_dir.path()).extent(0) == 512);

    temp_dir empty;
    const std::string msg = message_of([&] { io::safetensors_checkpoint c(empty.path.string()); });
    CHECK(msg.find("neither model.safetensors nor model.safetensors.index.json") != std::string::npos);
    CHECK(message_of([&] { io::safetensors_checkpoint c(empty / "none.safetensors"); }).find("cannot open") !=
          std::string::npos);
}

namespace {

// Two shards of a multimodal checkpoint: the text model under
// model.language_model.*, a vision tower tensor, and an I64 buffer.
struct sharded_fixture {
    temp_dir dir;
    explicit sharded_fixture(const std::string& index) {
        write_st(
            dir, "model-00001-of-00002.safetensors",
            R"({"model.language_model.embed_tokens.weight":)"
            R"({"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
            R"("model.vision_tower.patch.weight":{"dtype":"F32","shape":[1],"data_offsets":[16,20]}})",
            le_f32({1, 2, 3, 4, 5}));
        std::vector<unsigned char> second = le_f32({6, 7});
        second.insert(second.end(), {3, 0, 0, 0, 0, 0, 0, 0}); // I64 3
        write_st(dir, "model-00002-of-00002.safetensors",
                 R"({"model.language_model.norm.weight":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                 R"("model.language_model.positions":{"dtype":"I64","shape":[1],"data_offsets":[8,16]}})",
                 second);
        std::ofstream(dir / "model.safetensors.index.json") << index;
    }
};

const std::string good_index =
    R"({"metadata":{"total_size":36},"weight_map":{)"
    R"("model.language_model.embed_tokens.weight":"model-00001-of-00002.safetensors",)"
    R"("model.vision_tower.patch.weight":"model-00001-of-00002.safetensors",)"
    R"("model.language_model.norm.weight":"model-00002-of-00002.safetensors",)"
    R"("model.language_model.positions":"model-00002-of-00002.safetensors"}})";

} // namespace

TEST_CASE("safetensors_checkpoint: sharded, with model.language_model. names also found as model.") {
    sharded_fixture fx(good_index);
    for (const std::string& path : {fx.dir.path.string(), fx.dir / "model.safetensors.index.json"}) {
        CAPTURE(path);
        const io::safetensors_checkpoint ck(path);
        REQUIRE(ck.files().size() == 2);
        CHECK(ck.files()[0].path() == fx.dir / "model-00001-of-00002.safetensors");
        CHECK(ck.tensors().size() == 4);
        REQUIRE(ck.entries().size() == 3);
        CHECK(ck.entries()[0].name == "model.language_model.embed_tokens.weight"); // stored names
        CHECK(ck.entries()[2].name == "model.language_model.norm.weight");

        const io::tensor_entry* stored = ck.find("model.language_model.embed_tokens.weight");
        REQUIRE(stored != nullptr);
        CHECK(ck.find("model.embed_tokens.weight") == stored);
        CHECK(io::as_view<f32, 2>(*stored, ck.path())(1, 0) == 3.0f);
        CHECK(io::as_view<f32, 1>(io::require(ck, "model.norm.weight"), ck.path())(1) == 7.0f);
        CHECK(ck.find("model.norm.weight")->data.data() ==
              ck.files()[1].bytes().data() + ck.files()[1].bytes().size() - 16);

        // Other towers keep their names only.
        CHECK(ck.find("model.vision_tower.patch.weight") != nullptr);
        CHECK(ck.find("model.patch.weight") == nullptr);
        CHECK(ck.find("vision_tower.patch.weight") == nullptr);
        CHECK(ck.find("model.language_model.model.embed_tokens.weight") == nullptr);

        CHECK(ck.find("model.positions") == nullptr);
        CHECK(io::to_int64(ck.raw("model.positions"), ck.path()) == std::vector<std::int64_t>{3});
        CHECK(message_of([&] { (void)ck.at("model.positions"); }).find("has dtype I64") != std::string::npos);
        CHECK(message_of([&] { (void)ck.at("model.nothing"); }) ==
              "qtensor: " + path + ": no tensor model.nothing");
    }
}

TEST_CASE("safetensors_checkpoint: a stored model.X wins over model.language_model.X") {
    temp_dir dir;
    const std::string path =
        write_st(dir, "both.safetensors",
                 R"({"model.language_model.w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                 R"("model.w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                 le_f32({1, 2}));
    const io::safetensors_checkpoint ck(path);
    CHECK(io::as_view<f32, 1>(ck.at("model.w"), ck.path())(0) == 2.0f);
    CHECK(io::as_view<f32, 1>(ck.at("model.language_model.w"), ck.path())(0) == 1.0f);
}

TEST_CASE("safetensors_checkpoint: a sharded index that does not match its shards throws") {
    const std::string shard1 = "model-00001-of-00002.safetensors";
    const std::string shard2 = "model-00002-of-00002.safetensors";
    const auto error_of = [](const std::string& index) {
        sharded_fixture fx(index);
        const std::string msg = message_of([&] { io::safetensors_checkpoint c(fx.dir.path.string()); });
        CHECK(msg.find(fx.dir.path.string()) != std::string::npos);
        return msg;
    };
    const auto has = [](const std::string& msg, const std::string& part) {
        CAPTURE(msg);
        CHECK(msg.find(part) != std::string::npos);
    };
    const auto index_with = [&](const std::string& last_entry) {
        return R"({"weight_map":{"model.language_model.embed_tokens.weight":")" + shard1 +
               R"(","model.vision_tower.patch.weight":")" + shard1 +
               R"(","model.language_model.norm.weight":")" + shard2 + R"(",)" + last_entry + "}}";
    };

    // A tensor the index does not list.
    has(error_of(R"({"weight_map":{"model.language_model.embed_tokens.weight":")" + shard1 +
                 R"(","model.vision_tower.patch.weight":")" + shard1 +
                 R"(","model.language_model.positions":")" + shard2 + R"("}})"),
        "tensor model.language_model.norm.weight is not in the index");
    // A tensor in another shard than the index says.
    has(error_of(index_with(R"("model.language_model.positions":")" + shard1 + "\"")),
        "tensor model.language_model.positions is here, but the index");
    has(error_of(index_with(R"("model.language_model.positions":")" + shard2 + R"(","model.extra":")" +
                            shard2 + "\"")),
        "tensor model.extra is missing from its shard");
    has(error_of(index_with(R"("model.language_model.positions":")" + shard2 +
                            R"(","model.extra":"model-3.safetensors")")),
        "model-3.safetensors: cannot open");
    has(error_of(index_with(R"("model.language_model.positions":"../model.safetensors")")),
        "shard \"../model.safetensors\" of tensor model.language_model.positions is not a file name inside");
    has(error_of(index_with(R"("model.language_model.positions":"/etc/passwd")")),
        "is not a file name inside");
    has(error_of(index_with(R"("model.language_model.positions":3)")),
        "weight_map entry of tensor model.language_model.positions is not a file name");
    has(error_of(index_with(R"("model.language_model.positions":")" + shard2 +
                            R"(","model.language_model.positions":")" + shard2 + "\"")),
        "duplicate key \"model.language_model.positions\"");
    has(error_of(R"({"metadata":{}})"), "no \"weight_map\" object");
    has(error_of(R"({"weight_map":[]})"), "no \"weight_map\" object");
    has(error_of("[]"), "no \"weight_map\" object");
    has(error_of(R"({"weight_map":)"), "not valid JSON");
    has(error_of(""), "not valid JSON");
}

// ---- the writer ------------------------------------------------------------

TEST_CASE("safetensors_writer: rewrites Hugging Face's own files byte for byte") {
    // Hugging Face orders the header as the bytes lie, and pads it to 8: the
    // same tensors added in that order must give the same file.
    const temp_dir tmp;
    for (const char* file : {"tiny-e2b/model.safetensors", "tiny-moe/model.safetensors",
                             "tiny-e2b/reference.safetensors"}) {
        INFO(file);
        const io::safetensors_file src(fixtures + "/" + file);
        std::vector<const io::raw_tensor*> order;
        for (const io::raw_tensor& t : src.tensors()) order.push_back(&t);
        std::sort(order.begin(), order.end(),
                  [](const io::raw_tensor* a, const io::raw_tensor* b) { return a->data.data() < b->data.data(); });
        io::safetensors_writer w;
        for (const auto& [key, value] : src.metadata()) w.set_metadata(key, value);
        for (const io::raw_tensor* t : order) w.add(t->name, t->dtype, t->shape, t->data);
        w.write(tmp / "out.safetensors");
        CHECK(read_all(tmp / "out.safetensors") == read_all(fixtures + "/" + file));
    }
}

TEST_CASE("safetensors_writer: what it writes reads back: floats viewed in place, metadata, scalars") {
    const temp_dir tmp;
    const std::vector<float> a{1.5f, -2.0f, 3.25f, 0.0f, 7.0f, -1e-3f};
    const std::vector<std::uint16_t> half{0x3C00, 0xC000, 0x3555}; // f16: 1, -2, ~1/3
    const std::vector<float> scalar{42.0f};
    const std::int64_t step = 1234567890123;
    io::safetensors_writer w;
    w.set_metadata("format", "pt");
    w.set_metadata("step", "7");
    w.add("odd", {3}, std::span<const float>(a.data(), 3)); // 12 bytes: the next tensor starts unaligned for 8
    w.add("a", {2, 3}, a);
    w.add("h", "F16", {3}, std::as_bytes(std::span(half)));
    w.add("s", {}, scalar);
    w.add("i", "I64", {1}, std::as_bytes(std::span(&step, 1)));
    w.write(tmp / "w.safetensors");

    const io::safetensors_file f(tmp / "w.safetensors");
    CHECK(f.metadata().at("format") == "pt");
    CHECK(f.metadata().at("step") == "7");
    const io::tensor_entry& e = f.at("a");
    CHECK(e.shape == std::vector<std::size_t>{2, 3});
    CHECK(std::memcmp(e.data.data(), a.data(), sizeof(float) * a.size()) == 0);
    CHECK(reinterpret_cast<std::uintptr_t>(f.at("odd").data.data()) % 4 == 0);
    CHECK(f.at("h").type == ggml_type::f16);
    CHECK(f.at("s").shape.empty());
    CHECK(io::to_int64(f.raw("i"), f.path()) == std::vector<std::int64_t>{step});
    const std::vector<char> bytes = read_all(tmp / "w.safetensors");
    std::uint64_t n = 0;
    std::memcpy(&n, bytes.data(), 8);
    CHECK((8 + n) % 8 == 0);
}

TEST_CASE("safetensors_writer: refuses what the format cannot hold, before writing") {
    const std::vector<float> a{1.0f, 2.0f};
    io::safetensors_writer w;
    w.add("a", {2}, a);
    CHECK(message_of([&] { w.add("a", {2}, a); }).find("\"a\" added twice") != std::string::npos);
    CHECK(message_of([&] { w.add("b", {3}, a); }).find("3 elements of F32 take 12 bytes, got 8") != std::string::npos);
    CHECK(message_of([&] { w.add("c", "F33", {2}, std::as_bytes(std::span(a))); }).find("unknown dtype \"F33\"") !=
          std::string::npos);
    CHECK(message_of([&] { w.add("__metadata__", {2}, a); }).find("not a name") != std::string::npos);
    CHECK(message_of([&] { w.add("", {2}, a); }).find("not a name") != std::string::npos);
    const std::vector<block_q8_0> q(1);
    const io::tensor_entry e{"q", ggml_type::q8_0, {32}, std::as_bytes(std::span(q))};
    CHECK(message_of([&] { w.add(e); }).find("is q8_0; safetensors holds F32, F16 and BF16") != std::string::npos);
}

namespace {

// The resident bytes of the mapping that holds p, from /proc/self/smaps
// (Linux); nullopt where there is no such file.
std::optional<std::size_t> resident_bytes_at(const void* p) {
    std::ifstream smaps("/proc/self/smaps");
    if (!smaps) return std::nullopt;
    const auto at = reinterpret_cast<std::uintptr_t>(p);
    bool inside = false;
    for (std::string line; std::getline(smaps, line);) {
        std::uintptr_t lo = 0, hi = 0;
        const auto dash = line.find('-');
        if (dash != std::string::npos && dash > 0 && std::isxdigit(static_cast<unsigned char>(line[0])) &&
            line.find(' ') > dash) {
            lo = std::stoull(line.substr(0, dash), nullptr, 16);
            hi = std::stoull(line.substr(dash + 1, line.find(' ') - dash - 1), nullptr, 16);
            inside = lo <= at && at < hi;
        } else if (inside && line.starts_with("Rss:")) {
            return std::stoull(line.substr(4)) * 1024; // "Rss:   24 kB"
        }
    }
    return std::nullopt;
}

} // namespace

TEST_CASE("mapped_file::drop_pages drops pages the caller has copied; touched again, they read the same") {
    const qtensor_test::scratch_dir tmp;
    const std::string path = tmp / "pages.bin";
    std::vector<std::byte> bytes(5 * 4096 + 123);
    for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::byte>(i * 7 + i / 4096);
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                                static_cast<std::streamsize>(bytes.size()));
    const io::mapped_file file(path);
    const std::span<const std::byte> all = file.bytes();
    REQUIRE(std::equal(all.begin(), all.end(), bytes.begin(), bytes.end())); // every page touched
    const std::optional<std::size_t> before = resident_bytes_at(all.data());
    CHECK(file.drop_pages(all.subspan(100, 3 * 4096)));                         // two whole pages inside
    if (before) CHECK(*resident_bytes_at(all.data()) == *before - 2 * 4096);
    CHECK(file.drop_pages(all));
    if (before) CHECK(*resident_bytes_at(all.data()) == 4096); // the last page, which the file only half fills
    CHECK(std::equal(all.begin(), all.end(), bytes.begin(), bytes.end()));
    // Not this mapping's bytes (heap memory must never be dropped), or nothing: refused.
    CHECK_FALSE(file.drop_pages(std::span<const std::byte>(bytes)));
    CHECK_FALSE(file.drop_pages(all.subspan(all.size() - 10, 10).first(0)));
    CHECK_FALSE(file.drop_pages(std::span<const std::byte>(all.data() + all.size() - 10, 20)));
}
