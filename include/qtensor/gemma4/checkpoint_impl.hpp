// qtensor/gemma4/checkpoint_impl.hpp: the bodies of checkpoint's members,
// over the safetensors and GGUF readers. checkpoint.hpp includes this file,
// except in the TUs of a separately compiled program (core/config.hpp) that
// only declare them.
#pragma once

#include <array>
#include <concepts>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <variant>
#include <vector>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/gemma4/checkpoint.hpp"
#include "qtensor/gemma4/config.hpp"
#include "qtensor/gemma4/gguf.hpp"
#include "qtensor/gemma4/names.hpp"
#include "qtensor/gemma4/weights.hpp"
#include "qtensor/io/compressed_tensors.hpp"
#include "qtensor/io/gguf.hpp"
#include "qtensor/io/safetensors.hpp"
#include "qtensor/io/tensor_entry.hpp"
#include "qtensor/text/gguf_tokenizer.hpp"
#include "qtensor/text/hf_tokenizer.hpp"
#include "qtensor/text/sentencepiece_model.hpp"

#if defined(QTENSOR_DECLARE_ONLY)
#error "qtensor/gemma4/checkpoint_impl.hpp is compiled by the QTENSOR_DEFINE TU only"
#endif

QTENSOR_BEGIN_NAMESPACE
namespace gemma4 {

struct checkpoint::file {
    std::variant<std::monostate, io::safetensors_checkpoint, io::gguf_file> reader; // monostate only while opening
    std::optional<io::packed_weights> packed; // a Compressed Tensors checkpoint's weights, unpacked
};

namespace detail {

inline bool has_gguf_magic(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::array<char, 4> magic{};
    return in.read(magic.data(), magic.size()) && std::string_view(magic.data(), magic.size()) == "GGUF";
}

} // namespace detail

QTENSOR_INLINE checkpoint::checkpoint(const std::filesystem::path& path)
    : path_(path.string()), file_(std::make_unique<file>()) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::file_status st = fs::status(path, ec);
    if (!fs::exists(st)) throw error(path_ + ": no such file or directory");
    if (!fs::is_directory(st) && detail::has_gguf_magic(path)) {
        const io::gguf_file& f = file_->reader.emplace<io::gguf_file>(path_);
        config_ = config_from_gguf(f);
        names_ = [](std::string_view hf) { return gguf_name(hf); };
    } else {
        const fs::path dir = fs::is_directory(st) ? path : path.has_parent_path() ? path.parent_path() : ".";
        config_ = config::from_hf_file(dir);
        const auto& f = file_->reader.emplace<io::safetensors_checkpoint>(path_);
        if (const auto args = io::compressed_tensors_args(config::hf_json(dir), (dir / "config.json").string()))
            file_->packed.emplace(f, *args);
        for (const char* name : {"tokenizer.json", "tokenizer.model"}) // the second wins: SentencePiece's own
            if (fs::exists(dir / name, ec)) tokenizer_file_ = (dir / name).string();
    }
}

QTENSOR_INLINE checkpoint::checkpoint(checkpoint&&) noexcept = default;
QTENSOR_INLINE checkpoint& checkpoint::operator=(checkpoint&&) noexcept = default;
QTENSOR_INLINE checkpoint::~checkpoint() = default;

QTENSOR_INLINE bool checkpoint::is_gguf() const noexcept {
    return std::holds_alternative<io::gguf_file>(file_->reader);
}

QTENSOR_INLINE const io::tensor_entry* checkpoint::find(std::string_view name) const {
    if (file_->packed)
        if (const io::tensor_entry* e = file_->packed->find(name)) return e;
    return std::visit([&]<class F>(const F& f) -> const io::tensor_entry* {
        if constexpr (std::same_as<F, std::monostate>) return nullptr;
        else return f.find(name);
    }, file_->reader);
}

QTENSOR_INLINE bool checkpoint::drop_pages(std::span<const std::byte> part) const noexcept {
    return std::visit([&]<class F>(const F& f) {
        if constexpr (std::same_as<F, std::monostate>) return false;
        else return f.drop_pages(part); // false for a Compressed Tensors weight: it is not in a mapping
    }, file_->reader);
}

QTENSOR_INLINE std::vector<std::string_view> checkpoint::tensor_names() const {
    std::vector<std::string_view> names = std::visit([]<class F>(const F& f) {
        if constexpr (std::same_as<F, std::monostate>) return std::vector<std::string_view>{};
        else return detail::stored_names(f);
    }, file_->reader);
    if (file_->packed) { // the packed parts of a weight stand for <p>.weight
        std::erase_if(names, [&](std::string_view n) { return file_->packed->is_part(n); });
        for (const std::string& n : file_->packed->names()) names.push_back(n);
    }
    return names;
}

QTENSOR_INLINE std::optional<text::tokenizer> checkpoint::tokenizer() const {
    if (const auto* f = std::get_if<io::gguf_file>(&file_->reader)) {
        const io::gguf_value* model = f->find_metadata("tokenizer.ggml.model");
        if (model == nullptr || (model->type() == io::gguf_type::string && model->as_string() == "no_vocab"))
            return std::nullopt;
        return text::read_gguf_tokenizer(*f);
    }
    if (tokenizer_file_.empty()) return std::nullopt;
    if (tokenizer_file_.ends_with(".json")) return text::read_hf_tokenizer(tokenizer_file_);
    return text::read_sentencepiece_model(tokenizer_file_);
}

QTENSOR_INLINE std::vector<io::gguf_kv> checkpoint::tokenizer_metadata() const {
    std::vector<io::gguf_kv> out;
    if (const auto* f = std::get_if<io::gguf_file>(&file_->reader)) {
        for (const io::gguf_kv& kv : f->metadata())
            if (kv.key.starts_with("tokenizer.")) out.push_back(kv);
    } else if (const std::optional<text::tokenizer> tok = tokenizer()) {
        out = text::gguf_tokenizer_metadata(*tok, config_.vocab_size);
    }
    return out;
}

#if defined(QTENSOR_DEFINE)
#define QTENSOR_GEMMA4_LOAD_WEIGHTS(P)                                                  \
    template weights<P> load_weights<P>(const config&, const std::vector<layer_info>&, \
                                        const checkpoint&, const name_map&, const tensor_callback&);
QTENSOR_GEMMA4_INFERENCE_POLICIES(QTENSOR_GEMMA4_LOAD_WEIGHTS)
#undef QTENSOR_GEMMA4_LOAD_WEIGHTS
#endif

} // namespace gemma4
QTENSOR_END_NAMESPACE
