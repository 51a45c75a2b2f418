// qtensor/io/json.hpp: JSON from files, read defensively. A safetensors
// header, a shard index and a config.json are all untrusted text, so every
// reader goes through parse_json(), which bounds what the text can make the
// program do, and prints values in messages with json_excerpt().
#pragma once

#if !defined(QTENSOR_HAVE_JSON)
#error "qtensor/io/json.hpp needs nlohmann-json: configure qtensor with QTENSOR_WITH_JSON=ON"
#endif

#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace io {

// Parses `text` as one JSON value and refuses, naming `where`:
// - nesting deeper than max_depth: refused while parsing, before the deep tree
//   exists, because printing or copying a value recurses once per level and a
//   file nested 100,000 deep would overflow the stack;
// - a key repeated in one object (nlohmann keeps only the last, the JSON
//   spec leaves it undefined);
// - a NUL byte anywhere: nlohmann stops reading at the first NUL, so anything
//   after it would be silently ignored (JSON has no raw NUL, even in strings);
// - anything but whitespace after the value.
inline nlohmann::json parse_json(std::string_view text, int max_depth, const std::string& where) {
    using json = nlohmann::json;
    if (const std::size_t nul = text.find('\0'); nul != std::string_view::npos)
        throw error(where + ": not valid JSON (a NUL byte at offset " + std::to_string(nul) + ")");
    // One set of seen keys per open object, innermost last.
    std::vector<std::set<std::string, std::less<>>> open;
    const json::parser_callback_t check = [&](int depth, json::parse_event_t event, json& parsed) {
        switch (event) {
        case json::parse_event_t::object_start:
        case json::parse_event_t::array_start:
            if (depth >= max_depth)
                throw error(where + ": nests deeper than " + std::to_string(max_depth) + " levels");
            if (event == json::parse_event_t::object_start) open.emplace_back();
            break;
        case json::parse_event_t::key:
            if (!open.back().insert(parsed.get_ref<const std::string&>()).second)
                throw error(where + ": duplicate key \"" + parsed.get_ref<const std::string&>() + "\"");
            break;
        case json::parse_event_t::object_end: open.pop_back(); break;
        default: break;
        }
        return true;
    };
    try {
        return json::parse(text.begin(), text.end(), check);
    } catch (const json::exception& e) {
        throw error(where + ": not valid JSON (" + e.what() + ")");
    }
}

// A value as JSON text for a message, cut after max_chars: a wrong field may
// be a megabyte-long array, and a message should stay one readable line.
inline std::string json_excerpt(const nlohmann::json& v, std::size_t max_chars = 80) {
    std::string s = v.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
    if (s.size() > max_chars) s = s.substr(0, max_chars) + "...";
    return s;
}

// An integer value; nullopt for anything else, a float included (nlohmann's
// get<integer>() of 1e40 is undefined behaviour, and 4.0 is not a count).
inline std::optional<std::int64_t> json_integer(const nlohmann::json& v) {
    if (v.is_number_unsigned())
        return v.get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)
                   ? std::nullopt
                   : std::optional<std::int64_t>(static_cast<std::int64_t>(v.get<std::uint64_t>()));
    if (v.is_number_integer()) return v.get<std::int64_t>();
    return std::nullopt;
}

} // namespace io
QTENSOR_END_NAMESPACE
