// qtensor/text/hf_tokenizer.hpp: Hugging Face's tokenizer.json (the format of
// the `tokenizers` library) for SentencePiece-style BPE, as transformers
// writes Gemma's, read into a text::tokenizer that merges by rank:
//   model         {"type": "BPE", "vocab": {piece: id}, "merges": ["l r", ...] or [["l", "r"], ...],
//                  "unk_token", "byte_fallback"}
//   added_tokens  [{"id", "content", "special"}]: special ones are control pieces (added by id,
//                 never read from text), the others user-defined (always one piece)
//   normalizer    null, Replace(" " -> "▁"), Prepend("▁") (a dummy prefix), or a Sequence of them
//   pre_tokenizer null
// Other models (WordPiece, Unigram, byte-level BPE), normalizers (NFKC, ...),
// pre-tokenizers and BPE options that change the output (dropout, subword
// prefixes, ignore_merges; lstrip/rstrip on added tokens) are refused with an
// error that names them. <bos>, <eos> and <pad> are found by those names. The
// decoder is SentencePiece's: "▁" as a space, byte runs as UTF-8.
#pragma once
#if !defined(QTENSOR_HAVE_JSON)
#error "qtensor/text/hf_tokenizer.hpp needs nlohmann-json: configure qtensor with QTENSOR_WITH_JSON=ON"
#endif

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/io/json.hpp"
#include "qtensor/io/mapped_file.hpp"
#include "qtensor/text/tokenizer.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace text {

// The tokenizer of a tokenizer.json's text; `where` names it in errors.
inline tokenizer read_hf_tokenizer(std::string_view json_text, const std::string& where) {
    const auto fail = [&](const std::string& what) -> tokenizer { throw error(where + ": " + what); };
    const nlohmann::json j = io::parse_json(json_text, 8, where);
    try {
        const nlohmann::json& model = j.at("model");
        if (const std::string type = model.value("type", std::string()); type != "BPE")
            return fail("model type \"" + type + "\" is not supported (only BPE)");
        const nlohmann::json& vocab_json = model.at("vocab");
        std::vector<vocabulary_entry> vocab(vocab_json.size());
        std::vector<bool> seen(vocab.size());
        for (const auto& [piece, id_json] : vocab_json.items()) {
            const std::optional<std::int64_t> given = io::json_integer(id_json);
            if (!given) return fail("model.vocab: the id of \"" + piece + "\" is not an integer");
            const std::int64_t id = *given;
            if (id < 0 || static_cast<std::size_t>(id) >= vocab.size() || seen[static_cast<std::size_t>(id)])
                return fail("model.vocab: id " + std::to_string(id) + " of \"" + piece +
                            "\" is repeated or leaves a gap (ids must be 0.." + std::to_string(vocab.size() - 1) + ")");
            seen[static_cast<std::size_t>(id)] = true;
            vocab[static_cast<std::size_t>(id)].piece = piece;
        }
        const bool byte_fallback = model.value("byte_fallback", false);
        // Options of the BPE model that change its output and that this reader does not implement.
        for (const char* key : {"dropout", "continuing_subword_prefix", "end_of_word_suffix"})
            if (const auto it = model.find(key); it != model.end() && !it->is_null() && *it != "" && *it != 0)
                return fail(std::string("model.") + key + " is not supported");
        if (model.value("ignore_merges", false)) return fail("model.ignore_merges is not supported");
        if (!byte_fallback && !model.value("fuse_unk", false))
            return fail("model.fuse_unk false is not supported (unknown characters are one unknown id per run)");
        for (vocabulary_entry& e : vocab)
            if (byte_fallback && e.piece.size() == 6 && e.piece.starts_with("<0x") && e.piece.ends_with(">"))
                e.type = piece_type::byte;
        if (const auto it = j.find("added_tokens"); it != j.end() && !it->is_null())
            for (const nlohmann::json& t : *it) {
                const std::optional<std::int64_t> given = io::json_integer(t.at("id"));
                if (!given) return fail("an added token's id is not an integer");
                const std::int64_t id = *given;
                for (const char* key : {"lstrip", "rstrip", "single_word"})
                    if (t.value(key, false)) return fail(std::string("added tokens with ") + key + " are not supported");
                const std::string content = t.at("content").get<std::string>();
                const auto i = static_cast<std::size_t>(id);
                if (id < 0 || i >= vocab.size() || vocab[i].piece != content)
                    return fail("added token \"" + content + "\" (id " + std::to_string(id) + ") is not in model.vocab");
                vocab[i].type = t.value("special", false) ? piece_type::control : piece_type::user_defined;
            }
        if (const auto it = model.find("unk_token"); it != model.end() && it->is_string()) {
            const auto unk =
                std::find_if(vocab.begin(), vocab.end(), [&](const vocabulary_entry& e) { return e.piece == *it; });
            if (unk == vocab.end()) return fail("model.unk_token \"" + it->get<std::string>() + "\" is not in model.vocab");
            unk->type = piece_type::unknown;
        }

        tokenizer_options options{.add_dummy_prefix = false, .remove_extra_whitespaces = false,
                                  .escape_whitespaces = false, .byte_fallback = byte_fallback};
        const auto normalizer = [&](const auto& self, const nlohmann::json& n) -> void {
            if (n.is_null()) return;
            const std::string type = n.value("type", std::string());
            if (type == "Sequence") {
                for (const nlohmann::json& m : n.at("normalizers")) self(self, m);
            } else if (type == "Replace" && n.at("pattern").value("String", std::string()) == " " &&
                       n.value("content", std::string()) == "\xe2\x96\x81") {
                options.escape_whitespaces = true;
            } else if (type == "Prepend" && n.value("prepend", std::string()) == "\xe2\x96\x81") {
                options.add_dummy_prefix = true;
            } else {
                fail("normalizer " + io::json_excerpt(n) +
                     " is not supported (Replace \" \" by \"\xe2\x96\x81\", Prepend \"\xe2\x96\x81\")");
            }
        };
        if (const auto it = j.find("normalizer"); it != j.end()) normalizer(normalizer, *it);
        if (const auto it = j.find("pre_tokenizer"); it != j.end() && !it->is_null())
            return fail("pre_tokenizer " + io::json_excerpt(*it) + " is not supported (only none)");

        std::vector<std::pair<std::string, std::string>> merges;
        for (const nlohmann::json& m : model.at("merges")) {
            if (m.is_array() && m.size() == 2) {
                merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
            } else {
                const std::string pair = m.get<std::string>();
                const std::size_t space = pair.find(' ', 1);
                if (space == std::string::npos) return fail("model.merges holds \"" + pair + "\", not \"left right\"");
                merges.emplace_back(pair.substr(0, space), pair.substr(space + 1));
            }
        }
        special_ids special;
        for (std::size_t i = 0; i < vocab.size(); ++i) {
            const std::string& p = vocab[i].piece;
            const auto id = static_cast<std::int32_t>(i);
            if (p == "<bos>" || p == "<s>") special.bos = id;
            if (p == "<eos>" || p == "</s>") special.eos = id;
            if (p == "<pad>") special.pad = id;
        }
        return tokenizer(std::move(vocab), options, special, std::move(merges));
    } catch (const nlohmann::json::exception& e) {
        return fail(std::string("not a tokenizer.json: ") + e.what());
    } catch (const error& e) {
        if (e.message().starts_with(where)) throw;
        return fail(std::string(e.message()));
    }
}

// The tokenizer of a tokenizer.json file.
inline tokenizer read_hf_tokenizer(const std::string& path) {
    const io::mapped_file file(path);
    return read_hf_tokenizer(std::string_view(reinterpret_cast<const char*>(file.bytes().data()), file.size()), path);
}

} // namespace text
QTENSOR_END_NAMESPACE
