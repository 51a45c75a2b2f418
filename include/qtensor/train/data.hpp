// qtensor/train/data.hpp: training text as token ids, and the windows a
// step trains on.
//
// Byte-level tokens: byte b of the text is id b + byte_offset, so ids 0, 1
// and 2 stay free for pad, eos and bos as Gemma numbers them; a model needs a
// vocabulary of at least 259. No tokenizer to train, every text encodes.
//
// windows: sequence i of step s starts at a position drawn from (seed, s, i)
// alone, so a run resumed at step s reads exactly what the uninterrupted run
// would have read, whatever ran before.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/train/random.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace train {

inline constexpr std::int32_t byte_offset = 3;
inline constexpr std::size_t byte_vocab = 256 + byte_offset; // the smallest vocabulary byte tokens fit

inline std::vector<std::int32_t> byte_tokens(std::string_view text) {
    std::vector<std::int32_t> ids(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]) + byte_offset;
    return ids;
}

// The text of byte tokens; other ids (pad, eos, bos, anything past a byte) are left out.
inline std::string text_of(std::span<const std::int32_t> ids) {
    std::string out;
    for (const std::int32_t id : ids)
        if (id >= byte_offset && id < static_cast<std::int32_t>(byte_vocab)) out += static_cast<char>(id - byte_offset);
    return out;
}

class windows {
public:
    // Windows of `length` ids of `tokens` (which must outlive this).
    windows(std::span<const std::int32_t> tokens, std::size_t length, std::uint64_t seed)
        : tokens_(tokens), length_(length), seed_(seed) {
        if (length < 2) throw error("train::windows: a window needs at least 2 tokens (each predicts the next)");
        if (tokens.size() < length)
            throw error("train::windows: the text has " + std::to_string(tokens.size()) +
                        " tokens, fewer than one window of " + std::to_string(length));
    }

    // Sequence `index` of step `step`: tokens[start, start + length).
    std::span<const std::int32_t> at(std::uint64_t step, std::uint64_t index) const {
        const std::uint64_t starts = tokens_.size() - length_ + 1;
        const std::uint64_t r = mix(mix(mix(seed_) ^ step) ^ index);
        return tokens_.subspan(static_cast<std::size_t>(r % starts), length_);
    }

    std::size_t length() const noexcept { return length_; }

private:
    std::span<const std::int32_t> tokens_;
    std::size_t length_;
    std::uint64_t seed_;
};

} // namespace train
QTENSOR_END_NAMESPACE
