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

#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qtensor/core/config.hpp"
#include "qtensor/gemma4/config.hpp"
#include "qtensor/gemma4/names.hpp"
#include "qtensor/gemma4/policy.hpp"
#include "qtensor/gemma4/weights.hpp"
#include "qtensor/io/gguf_value.hpp"
#include "qtensor/io/tensor_entry.hpp"
#include "qtensor/text/tokenizer.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace gemma4 {

class checkpoint {
public:
    // `path`: a Hugging Face model directory; a .safetensors file or
    // .safetensors.index.json with config.json beside it; or a GGUF file
    // (told apart by its magic). Throws qtensor::error naming the file.
    explicit checkpoint(const std::filesystem::path& path);
    checkpoint(checkpoint&&) noexcept;
    checkpoint& operator=(checkpoint&&) noexcept;
    ~checkpoint();

    const gemma4::config& config() const noexcept { return config_; }
    bool is_gguf() const noexcept;
    // Hugging Face name -> the file's name (empty: the file uses Hugging Face names).
    const name_map& names() const noexcept { return names_; }

    // io::tensor_source, by the file's own names.
    const std::string& path() const noexcept { return path_; }
    const io::tensor_entry* find(std::string_view name) const;
    // Drops the pages of `part`, bytes of a tensor the caller has copied,
    // from resident memory; false when they are not in a mapped file.
    bool drop_pages(std::span<const std::byte> part) const noexcept;

    // Every tensor the file stores, by its own name (load_weights refuses
    // those the config does not use).
    std::vector<std::string_view> tensor_names() const;

    // The tokenizer: a GGUF file's tokenizer.ggml.* keys, or a Hugging Face
    // directory's tokenizer.model (SentencePiece), else its tokenizer.json;
    // nullopt when there is none ("no_vocab", neither file). Throws for one it
    // cannot read.
    std::optional<text::tokenizer> tokenizer() const;

    // The tokenizer.* keys for write_gguf: a GGUF file's, carried over as they
    // are, or a Hugging Face directory's tokenizer, padded to the model's
    // vocabulary with unused [PADn] pieces as llama.cpp's converter does; none
    // without a tokenizer.
    std::vector<io::gguf_kv> tokenizer_metadata() const;

private:
    // The open io::safetensors_checkpoint or io::gguf_file (checkpoint_impl.hpp),
    // behind a pointer so that a TU that only loads a checkpoint does not
    // compile the readers (separate compilation, core/config.hpp).
    struct file;

    std::string path_;
    std::string tokenizer_file_; // a Hugging Face directory's tokenizer.model, else tokenizer.json, if any
    std::unique_ptr<file> file_;
    gemma4::config config_;
    name_map names_;
};

#if defined(QTENSOR_SEPARATE)
// The named policies' weights, loaded from a checkpoint: compiled once, by
// the QTENSOR_DEFINE TU (checkpoint_impl.hpp).
#define QTENSOR_GEMMA4_EXTERN_LOAD_WEIGHTS(P)                                                  \
    extern template weights<P> load_weights<P>(const config&, const std::vector<layer_info>&, \
                                               const checkpoint&, const name_map&, const tensor_callback&);
QTENSOR_GEMMA4_INFERENCE_POLICIES(QTENSOR_GEMMA4_EXTERN_LOAD_WEIGHTS)
#undef QTENSOR_GEMMA4_EXTERN_LOAD_WEIGHTS
#endif

} // namespace gemma4
QTENSOR_END_NAMESPACE

// The readers behind it: compiled once in separate mode.
#if !defined(QTENSOR_DECLARE_ONLY)
#include "qtensor/gemma4/checkpoint_impl.hpp"
#endif
