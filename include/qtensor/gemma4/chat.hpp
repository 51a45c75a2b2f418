// qtensor/gemma4/chat.hpp: prompts in Gemma's chat format, and the ids that
// end a reply. One user turn, ready for the model's answer:
//   Gemma 4:    <bos><|turn>user\n{text}<turn|>\n<|turn>model\n
//   Gemma 1-3:  <bos><start_of_turn>user\n{text}<end_of_turn>\n<start_of_turn>model\n
// The markers are added by id. They are user-defined pieces in Gemma's
// tokenizer.model, which the tokenizer finds in text, so a text that holds one
// is refused: a user cannot forge a turn by typing a marker.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/text/tokenizer.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace gemma4 {

// The turn markers of `tok`: Gemma 4's, else Gemma 1-3's; nullopt when it has neither.
inline std::optional<std::pair<std::int32_t, std::int32_t>> turn_markers(const text::tokenizer& tok) {
    for (const auto& [open, close] : {std::pair{"<|turn>", "<turn|>"}, {"<start_of_turn>", "<end_of_turn>"}})
        if (const auto o = tok.find(open), c = tok.find(close); o && c) return std::pair{*o, *c};
    return std::nullopt;
}

// <bos> (when the vocabulary has one), then the text's ids.
inline std::vector<std::int32_t> plain_prompt(const text::tokenizer& tok, std::string_view text) {
    std::vector<std::int32_t> ids;
    if (tok.special().bos >= 0) ids.push_back(tok.special().bos);
    for (const std::int32_t id : tok.encode(text)) ids.push_back(id);
    return ids;
}

// `text` as one user turn followed by the opening of the model's turn.
inline std::vector<std::int32_t> chat_prompt(const text::tokenizer& tok, std::string_view text) {
    const auto markers = turn_markers(tok);
    if (!markers) throw error("chat prompt: the tokenizer has no turn markers (<|turn>, <start_of_turn>)");
    const std::int32_t open = markers->first, close = markers->second; // clang 14: no lambda capture of a binding
    std::vector<std::int32_t> ids = plain_prompt(tok, "");
    const auto add = [&](std::string_view s) {
        for (const std::int32_t id : tok.encode(s)) {
            if (id == open || id == close)
                throw error("chat prompt: the text holds the turn marker \"" + tok.entry(id).piece + "\"");
            ids.push_back(id);
        }
    };
    ids.push_back(open);
    add("user\n" + std::string(text));
    ids.push_back(close);
    add("\n");
    ids.push_back(open);
    add("model\n");
    return ids;
}

// The ids at which a reply ends: <eos>, and the end-of-turn marker.
inline std::vector<std::int32_t> stop_ids(const text::tokenizer& tok) {
    std::vector<std::int32_t> ids;
    if (tok.special().eos >= 0) ids.push_back(tok.special().eos);
    if (const auto markers = turn_markers(tok)) ids.push_back(markers->second);
    return ids;
}

} // namespace gemma4
QTENSOR_END_NAMESPACE
