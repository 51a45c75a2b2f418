// qtensor/text/gguf_tokenizer.hpp: a tokenizer as GGUF metadata, both ways,
// with llama.cpp's keys:
//   tokenizer.ggml.model        "llama" (SentencePiece: merges by score) or "gemma4" (Gemma 4's
//                               files: merges by their rank in tokenizer.ggml.merges)
//   tokenizer.ggml.tokens       [string] the pieces; their index is the id
//   tokenizer.ggml.scores       [f32]    (llama)
//   tokenizer.ggml.token_type   [i32]    SentencePiece's types, 1..6 (0, undefined, reads as normal)
//   tokenizer.ggml.merges       [string] "left right" (gemma4)
//   tokenizer.ggml.{bos,eos,unknown,padding}_token_id, add_space_prefix, remove_extra_whitespaces,
//   add_bos_token
// "no_vocab" (a file written without a tokenizer) and other models (GPT-2's
// byte-level BPE, WordPiece, ...) are refused with an error saying so.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/io/gguf.hpp"
#include "qtensor/text/tokenizer.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace text {

// The tokenizer a GGUF file describes.
inline tokenizer read_gguf_tokenizer(const io::gguf_file& file) {
    std::string key; // the one being read, for errors
    const auto fail = [&](const std::string& what) -> tokenizer {
        throw error(file.path() + ": tokenizer.ggml." + key + ": " + what);
    };
    const auto find = [&](const char* name) {
        key = name;
        return file.find_metadata("tokenizer.ggml." + key);
    };
    try {
        const io::gguf_value* model_v = find("model");
        if (model_v == nullptr) return fail("missing: the file has no tokenizer");
        const std::string model = model_v->as_string();
        if (model == "no_vocab") return fail("\"no_vocab\": the file has no tokenizer");
        if (model != "llama" && model != "gemma4")
            return fail("\"" + model + "\" is not supported (llama, gemma4: SentencePiece-style BPE)");
        const bool by_rank = model == "gemma4";
        const io::gguf_value* tokens = find("tokens");
        if (tokens == nullptr) return fail("missing");
        const std::vector<std::string>& pieces = tokens->get_array<std::string>();
        std::vector<vocabulary_entry> vocab(pieces.size());
        const auto count_mismatch = [&](std::size_t n) {
            return std::to_string(n) + " entries for " + std::to_string(vocab.size()) + " tokens";
        };
        const auto count_type = [&](piece_type type) {
            return std::count_if(vocab.begin(), vocab.end(), [&](const vocabulary_entry& e) { return e.type == type; });
        };
        for (std::size_t i = 0; i < pieces.size(); ++i) vocab[i].piece = pieces[i];
        if (const io::gguf_value* scores = find("scores")) {
            const std::vector<float>& s = scores->get_array<float>();
            if (s.size() != vocab.size()) return fail(count_mismatch(s.size()));
            for (std::size_t i = 0; i < s.size(); ++i) vocab[i].score = s[i];
        } else if (!by_rank) {
            return fail("missing (the llama model merges by score)");
        }
        if (const io::gguf_value* types = find("token_type")) {
            const std::vector<std::int32_t>& t = types->get_array<std::int32_t>();
            if (t.size() != vocab.size()) return fail(count_mismatch(t.size()));
            for (std::size_t i = 0; i < t.size(); ++i) // 0, undefined, reads as normal; the tokenizer checks the rest
                vocab[i].type = t[i] == 0 ? piece_type::normal : static_cast<piece_type>(std::clamp(t[i], 0, 255));
        }
        special_ids special;
        const auto id = [&](const char* name, std::int32_t& out) {
            if (const io::gguf_value* v = find(name)) {
                const std::int64_t i = v->to_integer();
                if (i < 0 || i >= static_cast<std::int64_t>(vocab.size())) fail(std::to_string(i) + " is not a token");
                out = static_cast<std::int32_t>(i);
            }
        };
        id("bos_token_id", special.bos);
        id("eos_token_id", special.eos);
        id("padding_token_id", special.pad);
        std::int32_t unk = -1;
        id("unknown_token_id", unk);
        // Hugging Face's vocabularies (Gemma 4's) mark <unk> as a control token; its id says which it is.
        if (count_type(piece_type::unknown) == 0 && unk >= 0)
            vocab[static_cast<std::size_t>(unk)].type = piece_type::unknown;
        tokenizer_options options;
        options.add_dummy_prefix = !by_rank; // llama.cpp's default for each
        if (const io::gguf_value* v = find("add_space_prefix")) options.add_dummy_prefix = v->as_bool();
        if (const io::gguf_value* v = find("remove_extra_whitespaces")) options.remove_extra_whitespaces = v->as_bool();
        options.byte_fallback = count_type(piece_type::byte) == 256;
        std::vector<std::pair<std::string, std::string>> merges;
        if (by_rank) {
            const io::gguf_value* m = find("merges");
            if (m == nullptr) return fail("missing (the gemma4 model merges by rank)");
            for (const std::string& pair : m->get_array<std::string>()) {
                const std::size_t space = pair.find(' ', 1);
                if (space == std::string::npos) return fail("holds \"" + pair + "\", not \"left right\"");
                merges.emplace_back(pair.substr(0, space), pair.substr(space + 1));
            }
        }
        key = "tokens"; // what the tokenizer may refuse
        return tokenizer(std::move(vocab), options, special, std::move(merges));
    } catch (const error& e) { // a value of the wrong type, or a vocabulary the tokenizer refuses
        if (e.message().starts_with(file.path())) throw;
        return fail(std::string(e.message()));
    }
}

// `tok` as the GGUF keys above ("llama", or "gemma4" when it merges by rank).
// llama.cpp wants one token per row of the model's token table: a tokenizer
// smaller than `vocab_size` is padded with unused pieces [PAD<id>] (score
// -1000), as llama.cpp's converter pads; a larger one is an error.
inline std::vector<io::gguf_kv> gguf_tokenizer_metadata(const tokenizer& tok, std::size_t vocab_size = 0) {
    const auto size = static_cast<std::size_t>(tok.size());
    if (vocab_size != 0 && vocab_size < size)
        throw error("tokenizer: " + std::to_string(size) + " pieces, more than the model's vocabulary of " +
                    std::to_string(vocab_size));
    if (!tok.options().escape_whitespaces)
        throw error("tokenizer: spaces not written as \"\xe2\x96\x81\" have no GGUF key (llama.cpp always escapes them)");
    std::vector<std::string> tokens;
    std::vector<float> scores;
    std::vector<std::int32_t> types;
    for (const vocabulary_entry& e : tok.vocabulary()) {
        tokens.push_back(e.piece);
        scores.push_back(e.score);
        types.push_back(static_cast<std::int32_t>(e.type));
    }
    for (std::size_t id = size; id < vocab_size; ++id) {
        tokens.push_back("[PAD" + std::to_string(id) + "]");
        if (tok.find(tokens.back()))
            throw error("tokenizer: the padding piece " + tokens.back() + " is already a piece");
        scores.push_back(-1000.0f);
        types.push_back(static_cast<std::int32_t>(piece_type::unused));
    }
    using io::gguf_value;
    std::vector<io::gguf_kv> kv = {
        {"tokenizer.ggml.model", gguf_value::string(tok.merges().empty() ? "llama" : "gemma4")},
        {"tokenizer.ggml.tokens", gguf_value::array(std::move(tokens))},
        {"tokenizer.ggml.scores", gguf_value::array(std::move(scores))},
        {"tokenizer.ggml.token_type", gguf_value::array(std::move(types))},
        {"tokenizer.ggml.add_space_prefix", gguf_value::boolean(tok.options().add_dummy_prefix)},
        {"tokenizer.ggml.remove_extra_whitespaces", gguf_value::boolean(tok.options().remove_extra_whitespaces)},
        {"tokenizer.ggml.add_bos_token", gguf_value::boolean(tok.special().bos >= 0)},
    };
    if (!tok.merges().empty()) {
        std::vector<std::string> merges;
        for (const auto& [left, right] : tok.merges()) merges.push_back(left + " " + right);
        kv.push_back({"tokenizer.ggml.merges", gguf_value::array(std::move(merges))});
    }
    const special_ids& s = tok.special();
    for (const auto& [key, id] : {std::pair{"bos", s.bos}, {"eos", s.eos}, {"unknown", s.unk}, {"padding", s.pad}})
        if (id >= 0)
            kv.push_back({std::string("tokenizer.ggml.") + key + "_token_id", gguf_value::u32(static_cast<std::uint32_t>(id))});
    return kv;
}

} // namespace text
QTENSOR_END_NAMESPACE
