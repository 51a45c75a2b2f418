// io/compressed_tensors.hpp on checkpoints this test writes itself, packed by
// the rules of the format's specification (compressed-tensors'
// pack_to_int32: u = q + 2^(bits-1), 32 / bits codes per int32, element 0 in
// the low bits), never by the reader's code:
//   - the library's own test vectors: [1, 2, 3, 4] packs to 52137 (4 bits)
//     and -2071756159 (8 bits);
//   - a symmetric group-32 (and group-128, and per-row) 4-bit weight comes out
//     as Q4_0 blocks whose values are q * scale exactly, an 8-bit one as Q8_0;
//     a scale fp16 cannot hold exactly (bf16 below 2^-24) gives float32;
//   - asymmetric weights, both zero-point layouts, and g_idx come out as f32
//     (q - zp) * scale;
//   - tiny-e2b stored as w4a16 runs, and its Q4_0 GGUF holds every weight on
//     the checkpoint's grid;
//   - what the reader does not support is refused, naming the reason.
#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "test_util.hpp"
#include "qtensor/gemma4/checkpoint.hpp"
#include "qtensor/gemma4/gguf.hpp"
#include "qtensor/gemma4/model.hpp"
#include "qtensor/io/compressed_tensors.hpp"
#include "qtensor/io/gguf.hpp"
#include "qtensor/io/safetensors_writer.hpp"

namespace io_compressed_tensors_test {

using namespace qtensor;
using qtensor_test::message_of;
using qtensor_test::scratch_dir;

namespace {

const std::string fixtures = std::string(QTENSOR_TEST_DATA_DIR) + "/gemma4";

// q[N][K] (signed codes) packed as the specification says.
std::vector<std::int32_t> pack(const std::vector<int>& q, std::size_t N, std::size_t K, int bits) {
    const std::size_t per_word = 32 / static_cast<std::size_t>(bits), words = (K + per_word - 1) / per_word;
    std::vector<std::uint32_t> out(N * words, 0);
    for (std::size_t n = 0; n < N; ++n)
        for (std::size_t k = 0; k < K; ++k) {
            const auto u = static_cast<std::uint32_t>(q[n * K + k] + (1 << (bits - 1)));
            out[n * words + k / per_word] |= u << (k % per_word * static_cast<std::size_t>(bits));
        }
    std::vector<std::int32_t> s(out.size());
    std::memcpy(s.data(), out.data(), out.size() * 4);
    return s;
}

template <class T>
std::span<const std::byte> bytes_of(const std::vector<T>& v) {
    return std::as_bytes(std::span(v));
}

// A one-layer "checkpoint": the tensors of layer `p` in a safetensors file.
struct packed_layer {
    std::string prefix = "layer";
    std::size_t N = 0, K = 0;
    int bits = 4;
    std::vector<int> q;                        // [N, K]
    std::vector<float> scale;                  // [N, G]
    std::size_t G = 1;
    std::vector<std::int8_t> zero_point;       // [N, G], empty when symmetric
    bool pack_zero_point = false;              // I32 packed along N instead of I8
    std::vector<std::int32_t> g_idx;           // [K] or empty
    bool with_shape = true;                    // false: no weight_shape
    std::size_t claimed_K = 0;                 // weight_shape's K if not 0 (a lie, for errors)
    bool bf16_scales = false;
    std::vector<bf16_t> scale_bf16;            // the scales as stored when bf16_scales

    void add_to(io::safetensors_writer& w, std::vector<std::vector<std::int32_t>>& keep,
                std::vector<std::int64_t>& shape) const {
        keep.push_back(pack(q, N, K, bits));
        w.add(prefix + ".weight_packed", "I32", {N, keep.back().size() / N}, bytes_of(keep.back()));
        shape = {static_cast<std::int64_t>(N), static_cast<std::int64_t>(claimed_K ? claimed_K : K)};
        if (with_shape) w.add(prefix + ".weight_shape", "I64", {2}, bytes_of(shape));
        if (bf16_scales) w.add(prefix + ".weight_scale", "BF16", {N, G}, bytes_of(scale_bf16));
        else w.add(prefix + ".weight_scale", {N, G}, scale);
        if (!zero_point.empty()) {
            if (pack_zero_point) { // transpose to [G, N], pack each column along N, back to [rows, G]
                std::vector<int> zt(G * N);
                for (std::size_t n = 0; n < N; ++n)
                    for (std::size_t g = 0; g < G; ++g) zt[g * N + n] = zero_point[n * G + g];
                const std::vector<std::int32_t> pg = pack(zt, G, N, bits);
                const std::size_t rows = pg.size() / G;
                std::vector<std::int32_t> p(rows * G);
                for (std::size_t g = 0; g < G; ++g)
                    for (std::size_t r = 0; r < rows; ++r) p[r * G + g] = pg[g * rows + r];
                keep.push_back(std::move(p));
                w.add(prefix + ".weight_zero_point", "I32", {rows, G}, bytes_of(keep.back()));
            } else {
                w.add(prefix + ".weight_zero_point", "I8", {N, G}, bytes_of(zero_point));
            }
        }
        if (!g_idx.empty()) w.add(prefix + ".weight_g_idx", "I32", {K}, bytes_of(g_idx));
    }

    float expected(std::size_t n, std::size_t k, std::size_t group_size) const {
        const std::size_t g = !g_idx.empty() ? static_cast<std::size_t>(g_idx[k]) : group_size ? k / group_size : 0;
        const int z = zero_point.empty() ? 0 : zero_point[n * G + g];
        return static_cast<float>(q[n * K + k] - z) * scale[n * G + g];
    }
};

// The layer written to a file and opened; packed_weights reads `file`.
struct written_layer {
    io::safetensors_checkpoint file;
    io::packed_weights weights;

    static std::string write(const packed_layer& l, const scratch_dir& tmp) {
        io::safetensors_writer w;
        std::vector<std::vector<std::int32_t>> keep;
        std::vector<std::int64_t> shape;
        l.add_to(w, keep, shape);
        w.write(tmp / "model.safetensors");
        return tmp / "model.safetensors";
    }
    written_layer(const packed_layer& l, const io::packed_weight_args& args, const scratch_dir& tmp)
        : file(write(l, tmp)), weights(file, args) {}

    // <prefix>.weight, decoded.
    const io::tensor_entry& weight() const {
        const io::tensor_entry* e = weights.find("layer.weight");
        REQUIRE(e != nullptr);
        return *e;
    }
};

packed_layer random_layer(std::size_t N, std::size_t K, int bits, std::size_t group_size, std::uint32_t seed) {
    std::mt19937 rng(seed);
    packed_layer l;
    l.N = N;
    l.K = K;
    l.bits = bits;
    l.G = group_size ? (K + group_size - 1) / group_size : 1;
    std::uniform_int_distribution<int> code(-(1 << (bits - 1)), (1 << (bits - 1)) - 1);
    for (std::size_t i = 0; i < N * K; ++i) l.q.push_back(code(rng));
    std::uniform_int_distribution<int> mantissa(1, 255);
    for (std::size_t i = 0; i < N * l.G; ++i) // bf16-like scales around 2^-7: exact in fp16
        l.scale.push_back(std::ldexp(static_cast<float>(mantissa(rng)), -14));
    return l;
}

} // namespace

TEST_CASE("compressed tensors: the format's own packing vectors") {
    // Zero points pack the same way (along N): -8..-1 in 8 rows of one column.
    CHECK(static_cast<std::uint32_t>(pack({-8, -7, -6, -5, -4, -3, -2, -1}, 1, 8, 4)[0]) == 0x76543210u);
    const scratch_dir tmp;
    for (const auto& vector : {std::pair{4, std::int32_t{52137}}, {8, std::int32_t{-2071756159}}}) {
        const int bits = vector.first; // clang 14: no structured binding inside INFO
        const std::int32_t word = vector.second;
        INFO(bits << " bits");
        packed_layer l;
        l.N = 1;
        l.K = 4;
        l.bits = bits;
        l.q = {1, 2, 3, 4};
        l.scale = {0.5f};
        CHECK(pack(l.q, 1, 4, bits)[0] == word); // the writer above is the specification's
        const written_layer r(l, {.bits = bits, .symmetric = true, .group_size = 0}, tmp);
        const io::tensor_entry& e = r.weight();
        CHECK(e.type == ggml_type::f32); // K = 4: not whole blocks of 32
        std::vector<float> w(4);
        std::memcpy(w.data(), e.data.data(), 16);
        CHECK(w == std::vector<float>{0.5f, 1.0f, 1.5f, 2.0f});
        CHECK(r.weights.is_part("layer.weight_packed"));
        CHECK(r.weights.is_part("layer.weight_shape"));
        CHECK(r.weights.is_part("layer.weight_scale"));
        CHECK(r.weights.names() == std::vector<std::string>{"layer.weight"});
    }
}

TEST_CASE("compressed tensors: symmetric 4-bit groups of 32, 128 or one per row are Q4_0, exactly") {
    const scratch_dir tmp;
    for (const std::size_t group : {std::size_t{32}, std::size_t{128}, std::size_t{0}}) {
        INFO("group size " << group);
        const packed_layer l = random_layer(6, 256, 4, group, 5);
        const written_layer r(l, {.bits = 4, .symmetric = true, .group_size = group}, tmp);
        const io::tensor_entry& e = r.weight();
        REQUIRE(e.type == ggml_type::q4_0);
        CHECK(e.shape == std::vector<std::size_t>{6, 256});
        std::vector<block_q4_0> blocks(e.data.size() / sizeof(block_q4_0));
        std::memcpy(blocks.data(), e.data.data(), e.data.size());
        std::vector<float> w(6 * 256);
        q4_0::dequantize_row(blocks.data(), w.data(), w.size());
        for (std::size_t n = 0; n < 6; ++n)
            for (std::size_t k = 0; k < 256; ++k) REQUIRE(w[n * 256 + k] == l.expected(n, k, group));
    }
}

TEST_CASE("compressed tensors: 8-bit symmetric is Q8_0; bf16 scales; a scale fp16 cannot hold gives float32") {
    const scratch_dir tmp;
    {
        const packed_layer l = random_layer(4, 64, 8, 32, 6);
        const written_layer r(l, {.bits = 8, .symmetric = true, .group_size = 32}, tmp);
        const io::tensor_entry& e = r.weight();
        REQUIRE(e.type == ggml_type::q8_0);
        std::vector<block_q8_0> blocks(e.data.size() / sizeof(block_q8_0));
        std::memcpy(blocks.data(), e.data.data(), e.data.size());
        std::vector<float> w(4 * 64);
        q8_0::dequantize_row(blocks.data(), w.data(), w.size());
        for (std::size_t i = 0; i < w.size(); ++i) REQUIRE(w[i] == l.expected(i / 64, i % 64, 32));
    }
    for (const bool tiny : {false, true}) {
        INFO((tiny ? "a scale of 2^-30" : "bf16 scales"));
        packed_layer l = random_layer(4, 64, 4, 32, 7);
        l.bf16_scales = true;
        if (tiny) l.scale[3] = std::ldexp(1.5f, -30); // below fp16's subnormals: not exact there
        for (float& v : l.scale) {
            l.scale_bf16.push_back(fp32_to_bf16(v));
            v = bf16_to_fp32(l.scale_bf16.back());
        }
        const written_layer r(l, {.bits = 4, .symmetric = true, .group_size = 32}, tmp);
        const io::tensor_entry& e = r.weight();
        CHECK(e.type == (tiny ? ggml_type::f32 : ggml_type::q4_0));
        if (!tiny) continue;
        std::vector<float> w(4 * 64);
        std::memcpy(w.data(), e.data.data(), e.data.size());
        for (std::size_t i = 0; i < w.size(); ++i) REQUIRE(w[i] == l.expected(i / 64, i % 64, 32));
    }
}

TEST_CASE("compressed tensors: malformed layers are refused, naming the layer and the reason") {
    const scratch_dir tmp;
    const io::packed_weight_args sym{.bits = 4, .symmetric = true, .group_size = 32};
    const auto refused = [&](const packed_layer& l, const io::packed_weight_args& args, const std::string& why) {
        const written_layer r(l, args, tmp);
        const std::string message = message_of([&] { (void)r.weights.find("layer.weight"); });
        INFO(message);
        CHECK(message.find("layer: " + why) != std::string::npos);
    };
    packed_layer l = random_layer(4, 64, 4, 32, 8);
    l.with_shape = false;
    refused(l, sym, "has weight_packed but no weight_shape");
    l.with_shape = true;
    l.claimed_K = 96; // the file holds words for 64 columns
    refused(l, {.bits = 4, .symmetric = true, .group_size = 32}, "weight_packed is [4, 8], too small");
    l.claimed_K = 0;
    refused(l, {.bits = 4, .symmetric = false, .group_size = 32}, "is asymmetric but has no weight_zero_point");
    refused(l, {.bits = 4, .symmetric = true, .group_size = 16}, "weight_scale must be [4, 4]");
    l.zero_point.assign(4 * 2, 1);
    refused(l, sym, "has non-zero zero points, but the config says the weights are symmetric");
    l.zero_point.clear();
    l.scale[5] = std::numeric_limits<float>::infinity();
    refused(l, sym, "weight_scale[5] is not finite");
}

TEST_CASE("compressed tensors: asymmetric (both zero-point layouts), 8 and 2 bits, g_idx: float32, exactly") {
    const scratch_dir tmp;
    for (const int variant : {0, 1, 2, 3, 4}) { // asym I8 zp, asym packed zp, g_idx, 8-bit asym packed, 2-bit asym
        const int bits = variant == 3 ? 8 : variant == 4 ? 2 : 4;
        packed_layer l = random_layer(10, 96, bits, 32, 11 + static_cast<std::uint32_t>(variant));
        io::packed_weight_args args{.bits = bits, .symmetric = true, .group_size = 32};
        if (variant != 2) {
            args.symmetric = false;
            std::mt19937 rng(3);
            std::uniform_int_distribution<int> z(-(1 << (bits - 1)), (1 << (bits - 1)) - 1);
            for (std::size_t i = 0; i < l.N * l.G; ++i) l.zero_point.push_back(static_cast<std::int8_t>(z(rng)));
            l.pack_zero_point = variant == 1 || variant == 3;
        }
        if (variant == 2)
            for (std::size_t k = 0; k < l.K; ++k) l.g_idx.push_back(static_cast<std::int32_t>((k * 7) % l.G));
        INFO("variant " << variant);
        const written_layer r(l, args, tmp);
        const io::tensor_entry& e = r.weight();
        REQUIRE(e.type == ggml_type::f32);
        std::vector<float> w(l.N * l.K);
        std::memcpy(w.data(), e.data.data(), e.data.size());
        for (std::size_t n = 0; n < l.N; ++n)
            for (std::size_t k = 0; k < l.K; ++k) REQUIRE(w[n * l.K + k] == l.expected(n, k, 32));
    }
}

TEST_CASE("compressed tensors: config.json says which checkpoints are packed, and what is refused") {
    const std::string where = "config.json";
    const auto args = [&](const std::string& text) { return io::compressed_tensors_args(nlohmann::json::parse(text), where); };
    const std::string w4a16 = R"({"quantization_config": {"quant_method": "compressed-tensors", "format": "pack-quantized",
        "config_groups": {"group_0": {"targets": ["Linear"], "input_activations": null,
        "weights": {"num_bits": 4, "type": "int", "symmetric": true, "strategy": "group", "group_size": 128,
                    "dynamic": false}}}, "ignore": ["lm_head"], "sparsity_config": {}, "transform_config": {}}})";
    const auto a = args(w4a16);
    REQUIRE(a.has_value());
    CHECK(a->bits == 4);
    CHECK(a->symmetric);
    CHECK(a->group_size == 128);
    CHECK(!args(R"({"model_type": "gemma4_text"})").has_value());
    CHECK(!args(R"({"quantization_config": {"quant_method": "gptq"}})").has_value());

    const auto refused = [&](std::string from, std::string to, std::string why) {
        from = w4a16.substr(0, w4a16.find(from)) + to + w4a16.substr(w4a16.find(from) + from.size());
        INFO(from);
        CHECK(message_of([&] { (void)args(from); }).find(why) != std::string::npos);
    };
    refused(R"("format": "pack-quantized")", R"("format": "marlin-24")", "\"marlin-24\" format is not supported");
    refused(R"("num_bits": 4)", R"("num_bits": 3)", "3 bits are not supported");
    refused(R"("type": "int")", R"("type": "float")", "of type \"float\" are not supported");
    refused(R"("strategy": "group")", R"("strategy": "block")", "\"block\" strategy");
    refused(R"("input_activations": null)", R"("input_activations": {"num_bits": 8})", "quantizes activations");
    refused(R"("transform_config": {})", R"("transform_config": {"x": 1})", "transform_config");
    refused(R"("dynamic": false)", R"("dynamic": true)", "are dynamic");
    refused(R"("num_bits": 4)", R"("num_bits": 4e40)", "num_bits is not an integer"); // converting it is undefined
    refused(R"("group_size": 128)", R"("group_size": 128.0)", "group_size is not an integer");
}

TEST_CASE("compressed tensors: tiny-e2b as w4a16 runs as its grid does, and its Q4_0 GGUF keeps every weight") {
    // Every projection of tiny-e2b quantized as llm-compressor's W4A16 does it
    // (symmetric, groups of 32, scale amax / 7.5, codes round half to even in
    // -8..7), written in the format; the rest copied as it is.
    const scratch_dir tmp;
    const io::safetensors_checkpoint source(fixtures + "/tiny-e2b");
    io::safetensors_writer w;
    io::safetensors_writer plain; // the same model with each packed weight as its grid's float32 values
    std::vector<std::vector<std::int32_t>> keep;
    std::vector<std::vector<float>> floats, scales; // the writers' bytes, alive until write()
    std::vector<std::vector<std::int64_t>> shapes;
    std::map<std::string, std::vector<float>> grid; // the dequantized values, by weight name
    for (const io::tensor_entry& e : source.entries()) {
        const bool linear = e.shape.size() == 2 && e.shape[1] % 32 == 0 &&
                            (e.name.find("_proj.weight") != std::string::npos) &&
                            e.name.find("per_layer") == std::string::npos; // per_layer stays bf16 in q4_0
        REQUIRE(e.type == ggml_type::f32); // the fixtures are float32
        std::vector<float>& x = floats.emplace_back(e.elements());
        std::memcpy(x.data(), e.data.data(), e.data.size());
        if (!linear) {
            w.add(e.name, e.shape, x);
            plain.add(e.name, e.shape, x);
            continue;
        }
        const std::size_t N = e.shape[0], K = e.shape[1], G = K / 32;
        std::vector<int> q(N * K);
        std::vector<float>& s = scales.emplace_back(N * G);
        std::vector<float>& v = grid[e.name];
        v.resize(N * K);
        for (std::size_t n = 0; n < N; ++n)
            for (std::size_t g = 0; g < G; ++g) {
                float amax = 0;
                for (std::size_t k = 32 * g; k < 32 * g + 32; ++k) amax = std::max(amax, std::fabs(x[n * K + k]));
                const float sc = fp16_to_fp32(fp32_to_fp16(amax / 7.5f)); // stored in fp16
                s[n * G + g] = sc;
                for (std::size_t k = 32 * g; k < 32 * g + 32; ++k) {
                    const int c = sc == 0 ? 0 : static_cast<int>(std::nearbyint(x[n * K + k] / sc));
                    q[n * K + k] = std::clamp(c, -8, 7);
                    v[n * K + k] = static_cast<float>(q[n * K + k]) * sc;
                }
            }
        const std::string prefix = e.name.substr(0, e.name.size() - 7); // minus ".weight"
        keep.push_back(pack(q, N, K, 4));
        w.add(prefix + ".weight_packed", "I32", {N, K / 8}, bytes_of(keep.back()));
        shapes.push_back({static_cast<std::int64_t>(N), static_cast<std::int64_t>(K)});
        w.add(prefix + ".weight_shape", "I64", {2}, bytes_of(shapes.back()));
        w.add(prefix + ".weight_scale", {N, G}, s);
        plain.add(e.name, e.shape, v);
    }
    REQUIRE(grid.size() > 20);
    const std::filesystem::path dir = tmp.path / "w4a16", grid_dir = tmp.path / "grid";
    std::filesystem::create_directories(dir);
    std::filesystem::create_directories(grid_dir);
    w.write((dir / "model.safetensors").string());
    plain.write((grid_dir / "model.safetensors").string());
    nlohmann::json config = gemma4::config::hf_json(fixtures + "/tiny-e2b");
    std::ofstream(grid_dir / "config.json") << config.dump();
    config["quantization_config"] = nlohmann::json::parse(R"({"quant_method": "compressed-tensors",
        "format": "pack-quantized", "config_groups": {"group_0": {"targets": ["Linear"],
        "weights": {"num_bits": 4, "type": "int", "symmetric": true, "strategy": "group", "group_size": 32}}}})");
    std::ofstream(dir / "config.json") << config.dump();

    const gemma4::checkpoint ck(dir);
    for (const auto& item : grid) {
        INFO(item.first); // clang 14: no structured binding inside INFO
        const io::tensor_entry* e = ck.find(item.first);
        REQUIRE(e != nullptr);
        CHECK(e->type == ggml_type::q4_0);
    }
    // The forward of the packed checkpoint is the forward of its grid's values.
    const gemma4::checkpoint reference(grid_dir);
    const std::vector<std::int32_t> ids = {2, 40, 41, 42, 7, 100};
    const auto packed_model = gemma4::model<gemma4::f32_policy>::load(ck.config(), ck, ck.names());
    const auto grid_model = gemma4::model<gemma4::f32_policy>::load(reference.config(), reference, reference.names());
    CHECK(packed_model.forward(ids) == grid_model.forward(ids));
    // It runs, and its Q4_0 file holds the grid's values exactly.
    const std::string file = tmp / "w4a16.gguf";
    gemma4::write_gguf<gemma4::q4_0_policy>(ck.config(), ck, file, ck.names());
    const io::gguf_file gguf(file);
    for (const auto& item : grid) {
        const std::string& name = item.first;
        const std::vector<float>& values = item.second;
        INFO(name);
        const io::tensor_entry& e = io::require(gguf, gemma4::gguf_name(name));
        REQUIRE(e.type == ggml_type::q4_0);
        std::vector<block_q4_0> blocks(e.data.size() / sizeof(block_q4_0));
        std::memcpy(blocks.data(), e.data.data(), e.data.size());
        std::vector<float> back(values.size());
        q4_0::dequantize_row(blocks.data(), back.data(), back.size());
        CHECK(back == values);
    }
}

} // namespace io_compressed_tensors_test
