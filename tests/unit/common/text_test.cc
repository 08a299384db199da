// Tests for EscapeUntrusted: what a name written to the mount becomes before
// it goes into the status JSON or the daemon log (one line, valid UTF-8).
#include "common/text.h"

#include <gtest/gtest.h>

#include <string>

namespace brickfs {
namespace {

TEST(EscapeUntrustedTest, KeepsPrintableAsciiAndValidUtf8) {
  EXPECT_EQ(EscapeUntrusted("scan_0007.tif"), "scan_0007.tif");
  EXPECT_EQ(EscapeUntrusted("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\xac.tif"),
            "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\xac.tif");
  EXPECT_EQ(EscapeUntrusted("a\\b"), "a\\b");  // backslashes stay (no double escaping)
  EXPECT_EQ(EscapeUntrusted(""), "");
}

TEST(EscapeUntrustedTest, SpellsOutControlCharacters) {
  EXPECT_EQ(EscapeUntrusted("bad\nname"), "bad\\nname");
  EXPECT_EQ(EscapeUntrusted("a\rb\tc"), "a\\rb\\tc");
  EXPECT_EQ(EscapeUntrusted("esc\x1b[31m"), "esc\\x1b[31m");
  EXPECT_EQ(EscapeUntrusted(std::string("nul\0x", 5)), "nul\\x00x");
  EXPECT_EQ(EscapeUntrusted("del\x7f"), "del\\x7f");
  // C1 controls are valid UTF-8 but steer terminals (U+009B is CSI)
  EXPECT_EQ(EscapeUntrusted("c1\xc2\x9b" "2J"), "c1\\xc2\\x9b2J");
}

TEST(EscapeUntrustedTest, SpellsOutBytesThatAreNotUtf8) {
  EXPECT_EQ(EscapeUntrusted("scan_\xff\xfe_3.tif"), "scan_\\xff\\xfe_3.tif");
  EXPECT_EQ(EscapeUntrusted("trunc\xe2\x82"), "trunc\\xe2\\x82");  // cut 3-byte sequence
  EXPECT_EQ(EscapeUntrusted("\xc3"), "\\xc3");
  EXPECT_EQ(EscapeUntrusted("over\xc0\xaf"), "over\\xc0\\xaf");            // overlong '/'
  EXPECT_EQ(EscapeUntrusted("sur\xed\xa0\x80"), "sur\\xed\\xa0\\x80");     // UTF-16 surrogate
  EXPECT_EQ(EscapeUntrusted("big\xf4\x90\x80\x80"), "big\\xf4\\x90\\x80\\x80");  // > U+10FFFF
  EXPECT_EQ(EscapeUntrusted("\x80\xbf"), "\\x80\\xbf");  // stray continuation bytes
}

TEST(EscapeUntrustedTest, ResultIsValidUtf8OnOneLineForEveryByte) {
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  const std::string out = EscapeUntrusted(all + all);
  EXPECT_TRUE(IsValidUtf8(out));
  for (unsigned char c : out) {
    EXPECT_GE(c, 0x20);
    EXPECT_NE(c, 0x7f);
  }
}

TEST(Utf8Test, ValidatesSequences) {
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x94\xac"));
  EXPECT_FALSE(IsValidUtf8("\xff"));
  EXPECT_FALSE(IsValidUtf8("\xe2\x82"));
  EXPECT_FALSE(IsValidUtf8("\xc0\x80"));
  EXPECT_FALSE(IsValidUtf8("\xed\xbf\xbf"));
  EXPECT_EQ(Utf8SequenceLength("a\xc3\xa9", 1), 2u);
  EXPECT_EQ(Utf8SequenceLength("a\xc3", 1), 0u);
}

}  // namespace
}  // namespace brickfs
