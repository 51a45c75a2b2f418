// qtensor/text/tokenizer.hpp: Gemma's tokenizer, a SentencePiece-style BPE
// over Unicode characters with byte fallback, encoding and decoding exactly
// as the SentencePiece library does (tests/text_tokenizer_test.cpp checks it
// against the library's own output).
//
// Encoding, in four steps:
//  1. normalize: each invalid UTF-8 byte becomes U+FFFD; with
//     escape_whitespaces, ' ' becomes "▁" (U+2581); optionally a "▁" in front
//     (add_dummy_prefix) and runs of spaces collapsed (remove_extra_whitespaces);
//  2. split into symbols: the longest user-defined piece at a position is one
//     symbol that never merges ("frozen"); otherwise one character;
//  3. merge: repeatedly join the adjacent pair of highest priority, leftmost
//     first among equals. SentencePiece's priority is the score of the joined
//     piece (any pair whose concatenation is a piece qualifies); with a merges
//     list (Hugging Face's tokenizer.json, Gemma 4 GGUFs) it is the pair's rank
//     in the list;
//  4. emit: each symbol's id; an "unused" piece splits back into the two it was
//     joined from; a symbol that is no piece becomes its UTF-8 bytes as <0xNN>
//     pieces (byte fallback), or the unknown id.
// Control pieces (<bos>, <eos>, <mask>) are never produced from text: a program
// adds them by id.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <queue>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace text {

// SentencePiece's piece types (the same numbers in tokenizer.model and in GGUF's tokenizer.ggml.token_type).
enum class piece_type : std::uint8_t { normal = 1, unknown = 2, control = 3, user_defined = 4, unused = 5, byte = 6 };

struct vocabulary_entry {
    std::string piece; // "▁" for a space
    float score = 0;   // higher merges first (SentencePiece's rule)
    piece_type type = piece_type::normal;
};

struct tokenizer_options {
    bool add_dummy_prefix = false;         // a "▁" before the text (Gemma: no)
    bool remove_extra_whitespaces = false; // strip and collapse spaces (Gemma: no)
    bool escape_whitespaces = true;        // ' ' as "▁"
    bool byte_fallback = true;             // unknown characters as <0xNN> pieces; needs all 256
};

// The ids a program adds by hand; -1 where the vocabulary has none.
struct special_ids {
    std::int32_t pad = -1, eos = -1, bos = -1, unk = -1;
};

namespace detail {

struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

// Bytes of the UTF-8 character that starts with `lead`, read from the lead
// byte only (SentencePiece's OneCharLen): 1 for ASCII and stray continuation bytes.
constexpr std::size_t utf8_length(unsigned char lead) noexcept {
    return lead < 0xc0 ? 1 : lead < 0xe0 ? 2 : lead < 0xf0 ? 3 : 4;
}

// The length of the valid UTF-8 character at the start of `s`, or 0 when it is
// not one (overlong, a surrogate, above U+10FFFF, truncated).
constexpr std::size_t valid_utf8_length(std::string_view s) noexcept {
    if (s.empty()) return 0;
    const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
    const unsigned char c = byte(0);
    if (c < 0x80) return 1;
    const std::size_t n = c >= 0xc0 && c < 0xe0 ? 2 : c >= 0xe0 && c < 0xf0 ? 3 : c >= 0xf0 && c < 0xf8 ? 4 : 0;
    if (n == 0 || s.size() < n) return 0;
    char32_t cp = c & (0x7f >> n);
    for (std::size_t i = 1; i < n; ++i) {
        if ((byte(i) & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (byte(i) & 0x3f);
    }
    const char32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < least[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return n;
}

inline constexpr std::string_view space_mark = "\xe2\x96\x81"; // ▁
inline constexpr std::string_view replacement = "\xef\xbf\xbd"; // U+FFFD

// `bytes` as text: valid UTF-8 characters as they are, every other byte as U+FFFD.
inline void append_utf8_or_replacement(std::string& out, std::string_view bytes) {
    while (!bytes.empty()) {
        const std::size_t n = valid_utf8_length(bytes);
        out += n == 0 ? replacement : bytes.substr(0, n);
        bytes.remove_prefix(n == 0 ? 1 : n);
    }
}

} // namespace detail

class tokenizer {
public:
    // `merges`, when given, are "left right" pairs in priority order (rank 0
    // first) and replace the scores' rule. Throws for a vocabulary
    // SentencePiece would refuse: an empty or repeated piece, not exactly one
    // unknown piece, byte pieces other than the 256 <0xNN> (with byte_fallback),
    // a merge naming pieces the vocabulary lacks.
    tokenizer(std::vector<vocabulary_entry> vocab, tokenizer_options options, special_ids special = {},
              std::vector<std::pair<std::string, std::string>> merges = {})
        : vocab_(std::move(vocab)), options_(options), special_(special), merges_(std::move(merges)) {
        const auto fail = [](const std::string& what) { throw error("tokenizer: " + what); };
        if (vocab_.size() > static_cast<std::size_t>(INT32_MAX)) fail("too many pieces");
        std::size_t unknown = 0, bytes = 0;
        for (std::size_t i = 0; i < vocab_.size(); ++i) {
            const vocabulary_entry& e = vocab_[i];
            const auto id = static_cast<std::int32_t>(i);
            if (e.piece.empty()) fail("piece " + std::to_string(i) + " is empty");
            const bool mergeable = e.type == piece_type::normal || e.type == piece_type::user_defined ||
                                   e.type == piece_type::unused;
            auto& table = mergeable ? pieces_ : reserved_;
            if (!std::isfinite(e.score)) fail("piece " + std::to_string(i) + " has a score that is not finite");
            if (pieces_.contains(e.piece) || reserved_.contains(e.piece))
                fail("piece " + std::to_string(i) + " repeats an earlier one");
            table.emplace(e.piece, id);
            switch (e.type) {
            case piece_type::unknown:
                if (++unknown == 1 && special_.unk != -1 && special_.unk != id)
                    fail("the unknown id " + std::to_string(special_.unk) + " is not the unknown piece (" +
                         std::to_string(id) + ")");
                special_.unk = id;
                break;
            case piece_type::user_defined: {
                std::vector<std::size_t>& lengths = user_defined_lengths_[static_cast<unsigned char>(e.piece[0])];
                if (std::find(lengths.begin(), lengths.end(), e.piece.size()) == lengths.end())
                    lengths.insert(std::upper_bound(lengths.begin(), lengths.end(), e.piece.size(), std::greater<>()),
                                   e.piece.size()); // longest first
                break;
            }
            case piece_type::byte: {
                unsigned value = 0;
                if (e.piece.size() != 6 || std::sscanf(e.piece.c_str(), "<0x%2X>", &value) != 1 ||
                    e.piece != byte_piece(static_cast<unsigned char>(value)))
                    fail("byte piece " + std::to_string(i) + " is not of the form <0xNN>");
                ++bytes;
                break;
            }
            case piece_type::normal:
            case piece_type::control:
            case piece_type::unused: break;
            default: fail("piece " + std::to_string(i) + " has type " + std::to_string(int(e.type)) + " (1..6)");
            }
        }
        if (unknown != 1) fail("has " + std::to_string(unknown) + " unknown pieces (exactly one is needed)");
        if (options_.byte_fallback && bytes != 256)
            fail("byte fallback needs the 256 pieces <0x00>..<0xFF>; " + std::to_string(bytes) + " are there");
        if (!options_.byte_fallback && bytes != 0) fail("has byte pieces, but byte fallback is off");
        for (const std::int32_t id : {special_.pad, special_.eos, special_.bos})
            if (id < -1 || id >= size()) fail("special id " + std::to_string(id) + " is not a piece");
        for (std::size_t rank = 0; rank < merges_.size(); ++rank) {
            const auto& [left, right] = merges_[rank];
            const std::optional<std::int32_t> l = find(left), r = find(right);
            if (!l || !r || !find(left + right))
                fail("merge " + std::to_string(rank) + " (\"" + left + "\" \"" + right +
                     "\") names a piece the vocabulary lacks");
            if (!pieces_.contains(left + right))
                fail("merge " + std::to_string(rank) + " (\"" + left + "\" \"" + right +
                     "\") makes a control, unknown or byte piece");
            ranks_.try_emplace(pair_key(*l, *r), rank); // the first listing counts
        }
    }

    std::int32_t size() const noexcept { return static_cast<std::int32_t>(vocab_.size()); }
    const vocabulary_entry& entry(std::int32_t id) const { return vocab_.at(checked(id)); }
    const special_ids& special() const noexcept { return special_; }
    const tokenizer_options& options() const noexcept { return options_; }
    const std::vector<vocabulary_entry>& vocabulary() const noexcept { return vocab_; }
    // The merges list, in rank order; empty when scores rank the merges.
    const std::vector<std::pair<std::string, std::string>>& merges() const noexcept { return merges_; }
    // The id of a piece, of any type; nullopt when there is none.
    std::optional<std::int32_t> find(std::string_view piece) const {
        if (const auto it = reserved_.find(piece); it != reserved_.end()) return it->second;
        if (const auto it = pieces_.find(piece); it != pieces_.end()) return it->second;
        return std::nullopt;
    }

    // Step 1: the text as the merges see it.
    std::string normalize(std::string_view text) const {
        const std::string_view space = options_.escape_whitespaces ? detail::space_mark : " ";
        std::string out;
        out.reserve(text.size() + 16);
        if (options_.remove_extra_whitespaces) text.remove_prefix(std::min(text.size(), text.find_first_not_of(' ')));
        if (text.empty()) return out;
        if (options_.add_dummy_prefix) out += space;
        bool previous_space = options_.remove_extra_whitespaces;
        while (!text.empty()) {
            // A user-defined piece is copied whole; otherwise one character, or U+FFFD for a bad byte.
            std::size_t n = longest_user_defined(text);
            std::string_view piece = text.substr(0, n);
            if (n == 0) {
                n = detail::valid_utf8_length(text);
                piece = n == 0 ? detail::replacement : text.substr(0, n);
                n = std::max<std::size_t>(n, 1);
            }
            if (previous_space) piece.remove_prefix(std::min(piece.size(), piece.find_first_not_of(' ')));
            for (const char c : piece) c == ' ' ? void(out += space) : void(out += c);
            if (!piece.empty()) previous_space = options_.remove_extra_whitespaces && piece.back() == ' ';
            text.remove_prefix(n);
        }
        if (options_.remove_extra_whitespaces)
            while (out.ends_with(space)) out.resize(out.size() - space.size());
        return out;
    }

    // Steps 1 to 4. The text's ids, without <bos> or <eos>.
    std::vector<std::int32_t> encode(std::string_view text) const {
        const std::string normalized = normalize(text);
        const std::string_view s = normalized;
        std::vector<symbol> symbols;
        for (std::size_t at = 0; at < s.size();) { // step 2
            std::size_t n = longest_user_defined(s.substr(at));
            const bool frozen = n != 0;
            if (!frozen) n = std::min(s.size() - at, detail::utf8_length(static_cast<unsigned char>(s[at])));
            const auto i = static_cast<int>(symbols.size());
            symbols.push_back({s.substr(at, n), i - 1, -1, frozen});
            if (i > 0) symbols[static_cast<std::size_t>(i) - 1].next = i;
            at += n;
        }

        // Step 3. Agenda entries go stale when a side has merged since; `size` tells.
        std::priority_queue<candidate> agenda;
        std::map<std::string_view, std::pair<std::string_view, std::string_view>> split_back; // unused pieces
        const auto consider = [&](int left, int right) {
            if (left < 0 || right < 0) return;
            const symbol &a = symbols[static_cast<std::size_t>(left)], &b = symbols[static_cast<std::size_t>(right)];
            if (a.frozen || b.frozen) return;
            const std::string_view joined(a.piece.data(), a.piece.size() + b.piece.size()); // adjacent in `s`
            const auto it = pieces_.find(joined);
            if (it == pieces_.end()) return;
            double priority = vocab_[static_cast<std::size_t>(it->second)].score;
            if (!merges_.empty()) {
                const std::optional<std::int32_t> l = find(a.piece), r = find(b.piece);
                if (!l || !r) return;
                const auto rank = ranks_.find(pair_key(*l, *r));
                if (rank == ranks_.end()) return;
                priority = -static_cast<double>(rank->second);
            }
            agenda.push({priority, left, right, joined.size()});
            if (vocab_[static_cast<std::size_t>(it->second)].type == piece_type::unused)
                split_back.insert_or_assign(joined, std::pair{a.piece, b.piece}); // the last split, as SentencePiece keeps
        };
        for (std::size_t i = 1; i < symbols.size(); ++i) consider(static_cast<int>(i) - 1, static_cast<int>(i));
        while (!agenda.empty()) {
            const candidate top = agenda.top();
            agenda.pop();
            symbol &a = symbols[static_cast<std::size_t>(top.left)], &b = symbols[static_cast<std::size_t>(top.right)];
            if (a.piece.empty() || b.piece.empty() || a.piece.size() + b.piece.size() != top.size) continue;
            a.piece = std::string_view(a.piece.data(), top.size);
            b.piece = {};
            a.next = b.next;
            if (b.next >= 0) symbols[static_cast<std::size_t>(b.next)].prev = top.left;
            consider(a.prev, top.left);
            consider(top.left, a.next);
        }

        // Step 4.
        std::vector<std::int32_t> ids;
        bool previous_unknown = false;
        const std::function<void(std::string_view)> emit = [&](std::string_view piece) {
            const std::optional<std::int32_t> id = find(piece);
            if (id && vocab_[static_cast<std::size_t>(*id)].type == piece_type::unused)
                if (const auto it = split_back.find(piece); it != split_back.end()) {
                    emit(it->second.first);
                    emit(it->second.second);
                    return;
                }
            if (id && *id != special_.unk) {
                ids.push_back(*id);
                previous_unknown = false;
            } else if (options_.byte_fallback) {
                for (const char c : piece) ids.push_back(*find(byte_piece(static_cast<unsigned char>(c))));
            } else if (!previous_unknown) { // a run of unknown characters is one unknown id
                ids.push_back(special_.unk);
                previous_unknown = true;
            }
        };
        if (!symbols.empty())
            for (int i = 0; i >= 0; i = symbols[static_cast<std::size_t>(i)].next)
                emit(symbols[static_cast<std::size_t>(i)].piece);
        return ids;
    }

    // The text of `ids`: "▁" as a space, runs of byte pieces as UTF-8 (each
    // invalid byte as U+FFFD), control pieces as nothing, the unknown piece as
    // " ⁇ ". Throws for an id out of range.
    std::string decode(std::span<const std::int32_t> ids) const {
        std::string out, bytes;
        bool at_start = true, stripped = false; // whether the leading "▁" is still to be removed
        for (const std::int32_t id : ids) {
            const vocabulary_entry& e = vocab_[checked(id)];
            if (e.type == piece_type::byte) {
                bytes += byte_of(e);
                continue;
            }
            detail::append_utf8_or_replacement(out, bytes);
            bytes.clear();
            if (stripped || !out.empty()) at_start = false;
            stripped = false;
            if (e.type == piece_type::control) continue;
            if (e.type == piece_type::unknown) {
                out += " \xe2\x81\x87 ";
                continue;
            }
            std::string_view piece = e.piece;
            if (at_start && (options_.add_dummy_prefix || options_.remove_extra_whitespaces) &&
                piece.starts_with(detail::space_mark)) {
                piece.remove_prefix(detail::space_mark.size());
                stripped = !options_.remove_extra_whitespaces;
            }
            for (std::size_t at = 0; at < piece.size();) {
                if (piece.substr(at).starts_with(detail::space_mark)) {
                    out += ' ';
                    at += detail::space_mark.size();
                } else {
                    out += piece[at++];
                }
            }
        }
        detail::append_utf8_or_replacement(out, bytes);
        return out;
    }

    // Whether the text of `ids` ends in part of a character: a run of byte
    // pieces whose last bytes begin a UTF-8 character that the next ids may
    // finish. A program that prints text as it is generated holds it back then.
    bool ends_mid_character(std::span<const std::int32_t> ids) const {
        std::size_t start = ids.size();
        while (start > 0 && vocab_[checked(ids[start - 1])].type == piece_type::byte) --start;
        std::string run;
        for (std::size_t i = start; i < ids.size(); ++i) run += byte_of(vocab_[checked(ids[i])]);
        const std::string_view s = run;
        for (std::size_t at = 0; at < s.size();) {
            if (const std::size_t n = detail::valid_utf8_length(s.substr(at))) {
                at += n;
                continue;
            }
            const auto lead = static_cast<unsigned char>(s[at]);
            const bool continues = std::all_of(s.begin() + static_cast<std::ptrdiff_t>(at) + 1, s.end(),
                                               [](char c) { return (static_cast<unsigned char>(c) & 0xc0) == 0x80; });
            if (lead >= 0xc2 && lead <= 0xf4 && s.size() - at < detail::utf8_length(lead) && continues) return true;
            ++at; // an invalid byte: U+FFFD already
        }
        return false;
    }

    // "<0x41>" for 'A': the name of a byte piece.
    static std::string byte_piece(unsigned char b) {
        char name[8];
        std::snprintf(name, sizeof name, "<0x%02X>", b);
        return name;
    }

private:
    struct symbol {
        std::string_view piece; // empty once merged into its left neighbour
        int prev, next;
        bool frozen;
    };
    struct candidate {
        double priority;
        int left, right;
        std::size_t size;
        bool operator<(const candidate& o) const noexcept { // the queue's top: highest, then leftmost
            return priority < o.priority || (priority == o.priority && left > o.left);
        }
    };
    // The byte a <0xNN> piece stands for (checked by the constructor).
    static char byte_of(const vocabulary_entry& e) {
        return static_cast<char>(std::stoi(e.piece.substr(3, 2), nullptr, 16));
    }
    static std::uint64_t pair_key(std::int32_t l, std::int32_t r) {
        return static_cast<std::uint64_t>(static_cast<std::uint32_t>(l)) << 32 | static_cast<std::uint32_t>(r);
    }
    // Bytes of the longest user-defined piece that starts `s`; 0 when none does.
    std::size_t longest_user_defined(std::string_view s) const {
        if (s.empty()) return 0;
        for (const std::size_t n : user_defined_lengths_[static_cast<unsigned char>(s[0])])
            if (n <= s.size())
                if (const auto it = pieces_.find(s.substr(0, n));
                    it != pieces_.end() && vocab_[static_cast<std::size_t>(it->second)].type == piece_type::user_defined)
                    return n;
        return 0;
    }
    std::size_t checked(std::int32_t id) const {
        if (id < 0 || id >= size())
            throw error("tokenizer: id " + std::to_string(id) + " is not a piece (0.." + std::to_string(size() - 1) + ")");
        return static_cast<std::size_t>(id);
    }

    std::vector<vocabulary_entry> vocab_;
    tokenizer_options options_;
    special_ids special_;
    std::unordered_map<std::string, std::int32_t, detail::string_hash, std::equal_to<>> pieces_; // normal, user-defined, unused
    std::unordered_map<std::string, std::int32_t, detail::string_hash, std::equal_to<>> reserved_; // control, unknown, byte
    std::vector<std::pair<std::string, std::string>> merges_;
    std::unordered_map<std::uint64_t, std::size_t> ranks_; // (left id, right id) -> rank in merges_
    // By first byte, the lengths of the user-defined pieces that start with it, longest first.
    std::array<std::vector<std::size_t>, 256> user_defined_lengths_;
};

} // namespace text
QTENSOR_END_NAMESPACE
