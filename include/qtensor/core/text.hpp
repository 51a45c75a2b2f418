// qtensor/core/text.hpp: text that came from a file, made safe to print.
//
// Keys, tensor names and string values in GGUF and safetensors files are
// arbitrary bytes. Printed raw, a name could hold an escape sequence that
// rewrites the user's terminal (ESC [ ..., or the 8-bit CSI 0x9B), so every
// message and every listing passes such text through printable() first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "qtensor/core/config.hpp"

QTENSOR_BEGIN_NAMESPACE

// `s` with every byte that is not printable text written as \xNN: C0 controls
// and DEL, C1 controls (U+0080..U+009F), and bytes that are not well-formed
// UTF-8. Backslashes are kept as they are, so printable(printable(s)) ==
// printable(s): a message that is escaped again when rethrown reads the same.
// Cut after max_bytes input bytes with "..." appended.
inline std::string printable(std::string_view s, std::size_t max_bytes = static_cast<std::size_t>(-1)) {
    const auto hex = [](std::string& out, unsigned char c) {
        constexpr char digits[] = "0123456789abcdef";
        out += "\\x";
        out += digits[c >> 4];
        out += digits[c & 15];
    };
    // Length of the well-formed UTF-8 sequence of 2 to 4 bytes at s[i], 0 if none.
    const auto utf8_length = [&](std::size_t i) -> std::size_t {
        const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
        const std::size_t n = b(0) >= 0xF0 ? 4 : b(0) >= 0xE0 ? 3 : 2;
        if (b(0) < 0xC2 || b(0) > 0xF4 || i + n > s.size()) return 0;
        std::uint32_t cp = b(0) & (0x7F >> n);
        for (std::size_t k = 1; k < n; ++k) {
            if ((b(k) & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (b(k) & 0x3F);
        }
        const std::uint32_t least = n == 2 ? 0x80 : n == 3 ? 0x800 : 0x10000;
        if (cp < least || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0; // overlong, surrogate
        return cp <= 0x9F ? 0 : n;                                                   // C1 controls
    };
    std::string out;
    const std::size_t end = s.size() < max_bytes ? s.size() : max_bytes;
    for (std::size_t i = 0; i < end;) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c < 0x7F) {
            out += static_cast<char>(c);
            ++i;
        } else if (const std::size_t n = c >= 0x80 ? utf8_length(i) : 0; n != 0) {
            out.append(s.substr(i, n));
            i += n;
        } else {
            hex(out, c);
            ++i;
        }
    }
    if (end < s.size()) out += "...";
    return out;
}

QTENSOR_END_NAMESPACE
