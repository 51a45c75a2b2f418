// Hostile and contradictory Gemma 4 checkpoints (config.json, GGUF metadata,
// shard indexes): each must fail with a qtensor::error that names what is
// wrong, without crashing and without allocating much before it does.
//
// "Without allocating much" is measured: this program records the largest
// single allocation made while a check runs (through a replaced operator new,
// or AddressSanitizer's allocation hook in a sanitized build). The
// limit, 1 MiB, is far above what reading a few kilobytes of metadata needs
// and far below what a size taken on trust from a file would cost.
#include <doctest/doctest.h>

#include "test_util.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "qtensor/gemma4/checkpoint.hpp"
#include "qtensor/gemma4/gguf.hpp"
#include "qtensor/gemma4/model.hpp"
#include "qtensor/io/gguf.hpp"
#include "qtensor/io/json.hpp"
#include "qtensor/io/safetensors.hpp"

namespace {
std::atomic<bool> tracking{false};
std::atomic<std::size_t> largest{0};

void note(std::size_t n) {
    if (!tracking.load(std::memory_order_relaxed)) return;
    std::size_t seen = largest.load(std::memory_order_relaxed);
    while (n > seen && !largest.compare_exchange_weak(seen, n)) {
    }
}
} // namespace

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define QTENSOR_TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define QTENSOR_TEST_ASAN 1
#endif

#ifdef QTENSOR_TEST_ASAN
// AddressSanitizer owns the allocator and reports every allocation to a hook
// (declared here: GCC 12 ships no sanitizer/allocator_interface.h).
extern "C" int __sanitizer_install_malloc_and_free_hooks(void (*)(const volatile void*, std::size_t),
                                                         void (*)(const volatile void*));
namespace {
void on_malloc(const volatile void*, std::size_t n) { note(n); }
void on_free(const volatile void*) {}
const int hooks_installed = __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
} // namespace
#else
// Elsewhere, operator new is replaced (every form that allocates goes
// through these two). GCC cannot see that the frees match the mallocs.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void* operator new(std::size_t n) {
    note(n);
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void* operator new(std::size_t n, std::align_val_t a) {
    note(n);
    const auto align = static_cast<std::size_t>(a);
    if (void* p = std::aligned_alloc(align, (n + align - 1) / align * align)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
#endif

using namespace qtensor;
using qtensor_test::message_of;
using qtensor_test::scratch_dir;
using json = nlohmann::json;

namespace {

const std::string fixtures = std::string(QTENSOR_TEST_DATA_DIR) + "/gemma4";
constexpr std::size_t allocation_limit = std::size_t{1} << 20;

// The message of the qtensor::error f() throws, and the largest allocation
// made on the way.
template <class F>
std::string message_and_largest(F&& f, std::size_t& biggest) {
    largest = 0;
    tracking = true;
    std::string message;
    try {
        f();
        message = "(no qtensor::error thrown)";
    } catch (const qtensor::error& e) {
        message = e.what();
    } catch (const std::exception& e) {
        message = std::string("(not a qtensor::error: ") + e.what() + ")";
    }
    tracking = false;
    biggest = largest;
    return message;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

void write_text(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::binary) << text;
}

json fixture_config(const std::string& name) {
    std::ifstream in(fixtures + "/" + name + "/config.json");
    return json::parse(in);
}

// A Hugging Face directory: `config` beside the fixture's own weights.
std::string hf_dir(const scratch_dir& tmp, const std::string& fixture, const std::string& config_text) {
    std::filesystem::create_directories(tmp / "model");
    write_text(tmp / "model/config.json", config_text);
    std::filesystem::create_symlink(fixtures + "/" + fixture + "/model.safetensors", tmp / "model/model.safetensors");
    return tmp / "model";
}

template <class P = gemma4::f32_policy>
void load(const std::string& path) {
    const gemma4::checkpoint ck(path);
    (void)gemma4::model<P>::load(ck.config(), ck, ck.names());
}

// The model keeps views into its source, so a temporary one is refused at compile time.
template <class Source>
concept loads_from = requires(const gemma4::config& c, Source&& src) {
    gemma4::model<gemma4::f32_policy>::load(c, std::forward<Source>(src));
};
static_assert(loads_from<const gemma4::checkpoint&>);
static_assert(!loads_from<gemma4::checkpoint>);

// `text` nested `depth` arrays deep: [[[...text...]]].
std::string nested(std::size_t depth, const std::string& text) {
    return std::string(depth, '[') + text + std::string(depth, ']');
}

// A copy of the GGUF file `from` at `to` with metadata key `key` set to `value`.
void rewrite_gguf(const std::string& from, const std::string& to, const std::string& key, io::gguf_value value) {
    const io::gguf_file f(from);
    io::gguf_writer w;
    for (const io::gguf_kv& kv : f.metadata()) w.set(kv.key, kv.value);
    w.set(key, std::move(value));
    for (const io::tensor_entry& e : f.entries()) w.add_tensor(e);
    w.write(to);
}

} // namespace

TEST_CASE("JSON nested deeper than the limit is refused while parsing, not overflowing the stack later") {
    const scratch_dir tmp;
    // 100,000 levels: printing such a value in an error message recursed once
    // per level and overflowed the stack.
    json c = fixture_config("tiny-e2b");
    std::string text = c.dump();
    const std::string vocab = "\"vocab_size\":" + c["vocab_size"].dump();
    REQUIRE(contains(text, vocab));
    text.replace(text.find(vocab), vocab.size(), "\"vocab_size\":" + nested(100000, "1"));
    write_text(tmp / "deep.json", text);
    CHECK(contains(message_of([&] { gemma4::config::from_hf_file(tmp / "deep.json"); }), "nests deeper than 32 levels"));

    // The same inside layer_types, whose bad entries are printed.
    c["layer_types"][1] = json::array({json::array({"sliding_attention"})});
    write_text(tmp / "entry.json", c.dump());
    CHECK(contains(message_of([&] { gemma4::config::from_hf_file(tmp / "entry.json"); }),
                   "layer_types entry [[\"sliding_attention\"]]"));
    text = fixture_config("tiny-e2b").dump();
    const std::string first = "\"sliding_attention\"";
    text.replace(text.find(first), first.size(), nested(50000, first));
    write_text(tmp / "deep_entry.json", text);
    CHECK(contains(message_of([&] { gemma4::config::from_hf_file(tmp / "deep_entry.json"); }), "nests deeper"));

    // A huge but shallow value is cut short in the message.
    c = fixture_config("tiny-e2b");
    c["hidden_size"] = std::vector<int>(100000, 7);
    write_text(tmp / "wide.json", c.dump());
    const std::string m = message_of([&] { gemma4::config::from_hf_file(tmp / "wide.json"); });
    CHECK(contains(m, "hidden_size\" must be a non-negative integer, got [7,7,7"));
    CHECK(m.size() < 300);
}

TEST_CASE("bytes after the JSON value are refused, a NUL byte included") {
    const scratch_dir tmp;
    const std::string good = fixture_config("tiny-e2b").dump();
    write_text(tmp / "nul.json", good + std::string(1, '\0') + "{\"vocab_size\": 1}");
    CHECK(contains(message_of([&] { gemma4::config::from_hf_file(tmp / "nul.json"); }), "a NUL byte at offset"));
    write_text(tmp / "junk.json", good + " junk");
    CHECK(contains(message_of([&] { gemma4::config::from_hf_file(tmp / "junk.json"); }), "not valid JSON"));
    write_text(tmp / "ok.json", good + " \n\t");
    CHECK(gemma4::config::from_hf_file(tmp / "ok.json").num_hidden_layers == 6);

    // The shard index: a weight_map, then a NUL and anything.
    const std::string model = fixtures + "/tiny-e2b/model.safetensors";
    std::filesystem::copy_file(model, tmp / "model-00001-of-00001.safetensors");
    const io::safetensors_file shard(model);
    json index = {{"metadata", json::object()}, {"weight_map", json::object()}};
    for (const io::raw_tensor& t : shard.tensors()) index["weight_map"][t.name] = "model-00001-of-00001.safetensors";
    write_text(tmp / "model.safetensors.index.json", index.dump());
    CHECK(io::safetensors_checkpoint(tmp / "model.safetensors.index.json").tensors().size() == shard.tensors().size());
    write_text(tmp / "model.safetensors.index.json", index.dump() + std::string(1, '\0') + "trailing");
    CHECK(contains(message_of([&] { io::safetensors_checkpoint{tmp / "model.safetensors.index.json"}; }),
                   "model.safetensors.index.json: not valid JSON (a NUL byte"));
    CHECK(contains(message_of([] { io::parse_json(std::string_view("{}\0", 3), 4, "x"); }), "x: not valid JSON"));
}

TEST_CASE("sizes from a file are checked before anything is allocated from them") {
    const scratch_dir tmp;
    std::size_t biggest = 0;

    SUBCASE("GGUF block_count 2^26 with a scalar head_count_kv (per-layer vectors were sized by it)") {
        io::gguf_writer w;
        w.set("general.architecture", io::gguf_value::string("gemma4"));
        w.set("gemma4.block_count", io::gguf_value::u64(std::uint64_t{1} << 26));
        w.set("gemma4.attention.head_count_kv", io::gguf_value::u32(1));
        w.set("gemma4.attention.sliding_window_pattern", io::gguf_value::array(std::vector<bool>{true}));
        w.write(tmp / "layers.gguf");
        const std::string m = message_and_largest([&] { load(tmp / "layers.gguf"); }, biggest);
        CHECK(contains(m, "gemma4.block_count = 67108864 is over qtensor's limit of 1024 layers"));
        CHECK_MESSAGE(biggest < allocation_limit, "largest allocation: " << biggest << " bytes");
    }
    SUBCASE("config.json head_dim 2^30 (per-layer RoPE tables were sized by it)") {
        json c = fixture_config("tiny-e2b");
        c["head_dim"] = std::size_t{1} << 30;
        const std::string dir = hf_dir(tmp, "tiny-e2b", c.dump());
        const std::string m = message_and_largest([&] { load(dir); }, biggest);
        CHECK(contains(m, "head_dim 1073741824 is over qtensor's limit of 4096"));
        CHECK_MESSAGE(biggest < allocation_limit, "largest allocation: " << biggest << " bytes");
    }
    SUBCASE("config.json: 1000 layers of head_dim 4096, within the limits but not what the file holds") {
        json c = fixture_config("tiny-e2b");
        c["num_hidden_layers"] = 1000;
        c["layer_types"] = std::vector<std::string>(1000, "full_attention");
        c.erase("per_layer_config");
        c["num_kv_shared_layers"] = 0;
        c["head_dim"] = 4096;
        c["global_head_dim"] = 4096;
        const std::string dir = hf_dir(tmp, "tiny-e2b", c.dump());
        const std::string m = message_and_largest([&] { load(dir); }, biggest);
        CHECK(contains(m, "self_attn.q_proj.weight has shape [128, 128], expected [16384, 128] by the config"));
        CHECK_MESSAGE(biggest < allocation_limit, "largest allocation: " << biggest << " bytes");
    }
    SUBCASE("every limit is named") {
        gemma4::config c = gemma4::config::from_hf_file(fixtures + "/tiny-e2b");
        c.vocab_size = gemma4::config_limits::vocab + 1;
        CHECK(contains(message_of([&] { c.validate(); }), "vocab_size 16777217 is over qtensor's limit"));
        c = gemma4::config::from_hf_file(fixtures + "/tiny-moe");
        c.num_experts = gemma4::config_limits::experts + 1;
        CHECK(contains(message_of([&] { c.validate(); }), "num_experts 4097 is over qtensor's limit"));
    }
}

TEST_CASE("values that do not fit a GGUF field are an error, not cut to their low bits") {
    gemma4::config c = gemma4::config::from_hf_file(fixtures + "/tiny-e2b");
    io::gguf_writer w;
    c.max_position_embeddings = std::size_t{1} << 32; // was written as 0
    CHECK(contains(message_of([&] { gemma4::write_metadata(c, w); }),
                   "gemma4.context_length = 4294967296 does not fit the u32 field"));
    c = gemma4::config::from_hf_file(fixtures + "/tiny-e2b");
    c.sliding_window = (std::size_t{1} << 32) + 8; // was written as 8
    CHECK(contains(message_of([&] { gemma4::write_metadata(c, w); }),
                   "gemma4.attention.sliding_window = 4294967304 does not fit the u32 field"));
    c = gemma4::config::from_hf_file(fixtures + "/tiny-e2b");
    c.rope_full.theta = 1e300; // was written as inf
    CHECK(contains(message_of([&] { gemma4::write_metadata(c, w); }), "gemma4.rope.freq_base = "));
    c.rope_full.theta = 1e6;
    gemma4::write_metadata(c, w);
    CHECK(w.metadata().size() > 10);
}

TEST_CASE("tensors the config does not use are an error") {
    const scratch_dir tmp;
    SUBCASE("Hugging Face: a config without per-layer inputs over a checkpoint that has them") {
        json c = fixture_config("tiny-e2b");
        c["hidden_size_per_layer_input"] = 0;
        CHECK(contains(message_of([&] { load(hf_dir(tmp, "tiny-e2b", c.dump())); }),
                       "tensor model.embed_tokens_per_layer.weight is not used by the model its config describes"));
    }
    SUBCASE("Hugging Face: one layer fewer than the checkpoint holds") {
        json c = fixture_config("tiny-moe");
        c["num_hidden_layers"] = 3;
        c["layer_types"].erase(3);
        c["per_layer_config"].erase("3");
        CHECK(contains(message_of([&] { load(hf_dir(tmp, "tiny-moe", c.dump())); }),
                       "tensor model.layers.3.experts.down_proj is not used"));
    }
    SUBCASE("GGUF: metadata says no per-layer inputs, the file holds their tensors") {
        const gemma4::checkpoint hf(fixtures + "/tiny-e2b");
        gemma4::write_gguf<gemma4::f32_policy>(hf.config(), hf, tmp / "good.gguf");
        load(tmp / "good.gguf");
        rewrite_gguf(tmp / "good.gguf", tmp / "no_ple.gguf", "gemma4.embedding_length_per_layer_input",
                     io::gguf_value::u32(0));
        CHECK(contains(message_of([&] { load(tmp / "no_ple.gguf"); }), "tensor per_layer_token_embd.weight is not used"));
    }
    SUBCASE("a multimodal checkpoint's other towers are not the text model's to use") {
        const io::safetensors_file model(fixtures + "/tiny-e2b/model.safetensors");
        // Keep the fixture's bytes; rename into the multimodal layout and add a vision tensor.
        json header = json::object();
        std::string data;
        for (const io::raw_tensor& t : model.tensors()) {
            const std::string name = t.name.starts_with("model.") ? "model.language_model." + t.name.substr(6) : t.name;
            header[name] = {{"dtype", t.dtype}, {"shape", t.shape},
                            {"data_offsets", {data.size(), data.size() + t.data.size()}}};
            data.append(reinterpret_cast<const char*>(t.data.data()), t.data.size());
        }
        header["model.vision_tower.patch.weight"] = {{"dtype", "F32"}, {"shape", {1}},
                                                     {"data_offsets", {data.size(), data.size() + 4}}};
        data.append(4, '\0');
        std::string h = header.dump();
        h.append((8 - h.size() % 8) % 8, ' ');
        std::string file(8, '\0');
        for (std::size_t b = 0; b < 8; ++b) file[b] = static_cast<char>((h.size() >> (8 * b)) & 0xff);
        std::filesystem::create_directories(tmp / "mm");
        write_text(tmp / "mm/model.safetensors", file + h + data);
        write_text(tmp / "mm/config.json", json({{"text_config", fixture_config("tiny-e2b")}}).dump());
        load(tmp / "mm");
    }
}
