// qtensor/text/sentencepiece_model.hpp: a SentencePiece tokenizer.model file
// (a protocol buffer, sentencepiece_model.proto's ModelProto) read into a
// text::tokenizer. Only what encoding and decoding need is read:
//   ModelProto      1 pieces (repeated) · 2 trainer_spec · 3 normalizer_spec · 5 denormalizer_spec
//   SentencePiece   1 piece · 2 score (float) · 3 type (default NORMAL)
//   TrainerSpec     3 model_type (default UNIGRAM; BPE = 2) · 24 treat_whitespace_as_suffix
//                   · 35 byte_fallback · 40 unk_id (0) · 41 bos_id (1) · 42 eos_id (2) · 43 pad_id (-1)
//   NormalizerSpec  2 precompiled_charsmap · 3 add_dummy_prefix · 4 remove_extra_whitespaces
//                   · 5 escape_whitespaces (all three default true)
// Unigram models, normalization rules (a precompiled character map, as
// "nmt_nfkc" has) and suffix whitespace are refused: Gemma's models use none.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/io/gguf_value.hpp"
#include "qtensor/io/mapped_file.hpp"
#include "qtensor/text/tokenizer.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace text {
namespace detail {

// A protocol buffer message, field by field.
class proto_reader {
public:
    proto_reader(std::span<const std::byte> bytes, const std::string& where) : bytes_(bytes), where_(where) {}

    struct field {
        std::uint32_t number = 0;
        int wire = 0;                      // 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32
        std::uint64_t value = 0;           // varint or fixed
        std::span<const std::byte> bytes;  // length-delimited
    };
    // The next field; false at the end of the message.
    bool next(field& f) {
        if (at_ == bytes_.size()) return false;
        const std::uint64_t tag = varint();
        f.number = static_cast<std::uint32_t>(tag >> 3);
        f.wire = static_cast<int>(tag & 7);
        if (f.number == 0 || tag >> 32 != 0) fail("a field number out of range");
        switch (f.wire) {
        case 0: f.value = varint(); break;
        case 1: f.value = fixed(8); break;
        case 5: f.value = fixed(4); break;
        case 2: {
            const std::uint64_t n = varint();
            if (n > bytes_.size() - at_) fail("a field longer than the message");
            f.bytes = bytes_.subspan(at_, static_cast<std::size_t>(n));
            at_ += static_cast<std::size_t>(n);
            break;
        }
        default: fail("wire type " + std::to_string(f.wire) + " (groups are not used by this format)");
        }
        return true;
    }
    [[noreturn]] void fail(const std::string& what) const {
        throw error(where_ + ": not a SentencePiece model: " + what + " at byte " + std::to_string(at_));
    }

private:
    std::uint64_t varint() {
        std::uint64_t v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (at_ == bytes_.size()) fail("a truncated number");
            const auto b = std::to_integer<std::uint64_t>(bytes_[at_++]);
            v |= (b & 0x7f) << shift;
            if ((b & 0x80) == 0) return v;
        }
        fail("a number of more than 10 bytes");
    }
    std::uint64_t fixed(std::size_t n) {
        if (bytes_.size() - at_ < n) fail("a truncated number");
        const std::byte* p = bytes_.data() + at_;
        at_ += n;
        return n == 8 ? io::detail::load_le<std::uint64_t>(p) : io::detail::load_le<std::uint32_t>(p);
    }

    std::span<const std::byte> bytes_;
    std::size_t at_ = 0;
    const std::string& where_;
};

inline std::string_view as_text(std::span<const std::byte> b) {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

} // namespace detail

// The tokenizer of a tokenizer.model's bytes; `where` names them in errors.
inline tokenizer read_sentencepiece_model(std::span<const std::byte> bytes, const std::string& where) {
    using detail::proto_reader;
    std::vector<vocabulary_entry> vocab;
    tokenizer_options options{.add_dummy_prefix = true, .remove_extra_whitespaces = true,
                              .escape_whitespaces = true, .byte_fallback = false};
    special_ids special{.pad = -1, .eos = 2, .bos = 1, .unk = 0};
    std::uint64_t model_type = 1;
    proto_reader model(bytes, where);
    proto_reader::field f;
    const auto expect = [&](const proto_reader& r, const proto_reader::field& g, int wire) {
        if (g.wire != wire) r.fail("field " + std::to_string(g.number) + " of the wrong wire type");
    };
    // An id field: int32 on the wire (a negative one as ten bytes); -1 means none.
    const auto id = [&](const proto_reader& r, std::uint64_t v) {
        const auto i = static_cast<std::int64_t>(v);
        if (i < -1 || i > INT32_MAX) r.fail("a special id of " + std::to_string(i));
        return static_cast<std::int32_t>(i);
    };
    while (model.next(f)) {
        if (f.number == 1) { // a piece
            expect(model, f, 2);
            vocabulary_entry e;
            proto_reader p(f.bytes, where);
            proto_reader::field g;
            while (p.next(g)) {
                switch (g.number) {
                case 1:
                    expect(p, g, 2);
                    e.piece = std::string(detail::as_text(g.bytes));
                    break;
                case 2:
                    expect(p, g, 5);
                    e.score = std::bit_cast<float>(static_cast<std::uint32_t>(g.value));
                    break;
                case 3: // the tokenizer refuses types other than 1..6
                    expect(p, g, 0);
                    e.type = static_cast<piece_type>(std::min<std::uint64_t>(g.value, 255));
                    break;
                default: break;
                }
            }
            vocab.push_back(std::move(e));
        } else if (f.number == 2) { // trainer_spec
            expect(model, f, 2);
            proto_reader t(f.bytes, where);
            proto_reader::field g;
            while (t.next(g)) {
                if (g.wire != 0) continue;
                switch (g.number) {
                case 3: model_type = g.value; break;
                case 24:
                    if (g.value != 0) t.fail("treat_whitespace_as_suffix (not supported)");
                    break;
                case 35: options.byte_fallback = g.value != 0; break;
                case 40: special.unk = id(t, g.value); break;
                case 41: special.bos = id(t, g.value); break;
                case 42: special.eos = id(t, g.value); break;
                case 43: special.pad = id(t, g.value); break;
                default: break;
                }
            }
        } else if (f.number == 3 || f.number == 5) { // normalizer_spec, denormalizer_spec
            expect(model, f, 2);
            proto_reader n(f.bytes, where);
            proto_reader::field g;
            while (n.next(g)) {
                if (g.number == 2 && !g.bytes.empty())
                    n.fail("a normalization rule map (only the \"identity\" normalizer is supported)");
                if (f.number == 5 || g.wire != 0) continue;
                if (g.number == 3) options.add_dummy_prefix = g.value != 0;
                if (g.number == 4) options.remove_extra_whitespaces = g.value != 0;
                if (g.number == 5) options.escape_whitespaces = g.value != 0;
            }
        }
    }
    if (model_type != 2)
        model.fail("model_type " + std::to_string(model_type) + " (only BPE, 2, is supported; 1 is unigram)");
    try {
        return tokenizer(std::move(vocab), options, special);
    } catch (const error& e) {
        throw error(where + ": " + std::string(e.message()));
    }
}

// The tokenizer of a tokenizer.model file.
inline tokenizer read_sentencepiece_model(const std::string& path) {
    const io::mapped_file file(path);
    return read_sentencepiece_model(file.bytes(), path);
}

} // namespace text
QTENSOR_END_NAMESPACE
