// qtensor/gemma4/checkpoint.hpp: a Gemma 4 checkpoint on disk, whichever
// form it has: a Hugging Face model (config.json beside model.safetensors or
// its sharded index) or a GGUF file. It gives the config, the tensors under
// the file's own names, and the name map that model<P>::load needs:
//
//   const gemma4::checkpoint ck("model.gguf");
//   const auto m = gemma4::model<gemma4::q4_0_policy>::load(ck.config(), ck, ck.names());
//
// The model's weights may be views into the checkpoint's mapping, so the
// checkpoint must outlive the model.
#pragma once

#include <array>
#include <concepts>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/gemma4/config.hpp"
#include "qtensor/gemma4/gguf.hpp"
#include "qtensor/gemma4/names.hpp"
#include "qtensor/gemma4/weights.hpp"
#include "qtensor/io/gguf.hpp"
#include "qtensor/io/safetensors.hpp"
#include "qtensor/io/tensor_entry.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace gemma4 {

class checkpoint {
public:
    // `path`: a Hugging Face model directory; a .safetensors file or
    // .safetensors.index.json with config.json beside it; or a GGUF file
    // (told apart by its magic). Throws qtensor::error naming the file.
    explicit checkpoint(const std::filesystem::path& path) : path_(path.string()) {
        namespace fs = std::filesystem;
        std::error_code ec;
        const fs::file_status st = fs::status(path, ec);
        if (!fs::exists(st)) throw error(path_ + ": no such file or directory");
        if (!fs::is_directory(st) && has_gguf_magic(path)) {
            const io::gguf_file& f = file_.emplace<io::gguf_file>(path_);
            config_ = config_from_gguf(f);
            names_ = [](std::string_view hf) { return gguf_name(hf); };
        } else {
            const fs::path dir = fs::is_directory(st) ? path : path.has_parent_path() ? path.parent_path() : ".";
            config_ = config::from_hf_file(dir);
            file_.emplace<io::safetensors_checkpoint>(path_);
        }
    }

    const gemma4::config& config() const noexcept { return config_; }
    bool is_gguf() const noexcept { return std::holds_alternative<io::gguf_file>(file_); }
    // Hugging Face name -> the file's name (empty: the file uses Hugging Face names).
    const name_map& names() const noexcept { return names_; }

    // io::tensor_source, by the file's own names.
    const std::string& path() const noexcept { return path_; }
    const io::tensor_entry* find(std::string_view name) const {
        return std::visit([&]<class F>(const F& f) -> const io::tensor_entry* {
            if constexpr (std::same_as<F, std::monostate>) return nullptr;
            else return f.find(name);
        }, file_);
    }

    // Every tensor the file stores, by its own name (load_weights refuses
    // those the config does not use).
    std::vector<std::string_view> tensor_names() const {
        return std::visit([]<class F>(const F& f) {
            if constexpr (std::same_as<F, std::monostate>) return std::vector<std::string_view>{};
            else return detail::stored_names(f);
        }, file_);
    }

private:
    static bool has_gguf_magic(const std::filesystem::path& path) {
        std::ifstream in(path, std::ios::binary);
        std::array<char, 4> magic{};
        return in.read(magic.data(), magic.size()) && std::string_view(magic.data(), magic.size()) == "GGUF";
    }

    std::string path_;
    std::variant<std::monostate, io::safetensors_checkpoint, io::gguf_file> file_; // monostate only while opening
    gemma4::config config_;
    name_map names_;
};

} // namespace gemma4
QTENSOR_END_NAMESPACE
