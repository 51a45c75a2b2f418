// printable(): text from files, safe to print on a terminal.
#include <doctest/doctest.h>

#include <string>

#include "qtensor/core/error.hpp"
#include "qtensor/core/text.hpp"

using qtensor::printable;

TEST_CASE("printable escapes C0 and C1 controls, DEL and malformed UTF-8, and keeps the rest") {
    CHECK(printable("blk.0.attn_q.weight") == "blk.0.attn_q.weight");
    CHECK(printable("\x1b[31mred\x1b[0m") == "\\x1b[31mred\\x1b[0m");
    CHECK(printable(std::string("a\0b\n\r\t\x7f", 7)) == "a\\x00b\\x0a\\x0d\\x09\\x7f");
    CHECK(printable("\xc2\x9b" "2J") == "\\xc2\\x9b2J"); // U+009B, the 8-bit CSI
    CHECK(printable("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80") == "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    CHECK(printable("\xff\xfe") == "\\xff\\xfe");
    CHECK(printable("\xc3") == "\\xc3");                 // cut short
    CHECK(printable("\xc0\xaf") == "\\xc0\\xaf");         // overlong '/'
    CHECK(printable("\xed\xa0\x80") == "\\xed\\xa0\\x80"); // a surrogate
    CHECK(printable("\xf4\x90\x80\x80") == "\\xf4\\x90\\x80\\x80"); // above U+10FFFF
    CHECK(printable("back\\slash") == "back\\slash");
    CHECK(printable("abcdef", 3) == "abc...");
    const std::string once = printable("\x1b]0;title\x07");
    CHECK(printable(once) == once);
}

TEST_CASE("error messages carry no control characters, however the name they quote was made") {
    const qtensor::error e("tensor \x1b[2J\x9b" "H is bad");
    CHECK(std::string(e.what()) == "qtensor: tensor \\x1b[2J\\x9bH is bad");
}
