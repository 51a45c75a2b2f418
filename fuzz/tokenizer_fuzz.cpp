// fuzz/tokenizer_fuzz.cpp: libFuzzer target for the tokenizer readers. The
// bytes are a SentencePiece tokenizer.model (text::read_sentencepiece_model),
// or, when they start with '{', a Hugging Face tokenizer.json
// (text::read_hf_tokenizer). A tokenizer they accept then encodes a few texts
// (user-defined pieces, byte fallback, invalid UTF-8, spaces) and decodes
// every id, and its encodings must decode without error.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "qtensor/core/error.hpp"
#include "qtensor/text/hf_tokenizer.hpp"
#include "qtensor/text/sentencepiece_model.hpp"
#include "qtensor/text/tokenizer.hpp"

using namespace qtensor;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
    try {
        const text::tokenizer tok =
            size > 0 && data[0] == '{'
                ? text::read_hf_tokenizer(std::string_view(reinterpret_cast<const char*>(data), size), "tokenizer.json")
                : text::read_sentencepiece_model(bytes, "tokenizer.model");
        std::size_t sum = 0;
        for (const std::string_view s : {"", " ", "Hello  world\n", "<|turn>user\nHi<turn|>", "caf\xc3\xa9 \xf0\x9f\x98\x80",
                                         "\xff\x80 bad \xe2\x96", "\xe2\x96\x81\xe2\x96\x81x  y"}) {
            const std::vector<std::int32_t> ids = tok.encode(s);
            for (const std::int32_t id : ids)
                if (id < 0 || id >= tok.size()) std::abort(); // encode gives only pieces
            sum += tok.decode(ids).size();
        }
        std::vector<std::int32_t> all(static_cast<std::size_t>(std::min(tok.size(), 4096)));
        for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<std::int32_t>(i);
        sum += tok.decode(all).size();
        volatile std::size_t sink = sum;
        (void)sink;
    } catch (const error&) {
        // A refused file: the expected outcome for most inputs.
    }
    return 0;
}
