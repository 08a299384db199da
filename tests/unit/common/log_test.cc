// Tests for the daemon log: one line per event whatever a message holds
// (names written to the mount can carry newlines, escape sequences and bytes
// that are not UTF-8), and a log file that is a symlink is refused.
#include "common/log.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "common/file_util.h"
#include "common/text.h"

namespace brickfs {
namespace {

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "brickfs_log_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    ASSERT_TRUE(SetLogFile("").ok());
    std::string cmd = "rm -rf '" + dir_ + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }
  std::vector<std::string> Lines(const std::string& path) {
    auto text = ReadFileToString(path);
    EXPECT_TRUE(text.ok());
    std::vector<std::string> out;
    std::stringstream ss(text.ok() ? *text : "");
    for (std::string line; std::getline(ss, line);) out.push_back(line);
    return out;
  }
  std::string dir_;
};

// "YYYY-MM-DD HH:MM:SS brickfs[PID] L " at the start of a line (no
// std::regex: gcc 12 warns inside it under the sanitizers).
bool StartsLikeALogLine(const std::string& l) {
  auto digits = [&](size_t from, size_t n) {
    if (l.size() < from + n) return false;
    for (size_t i = from; i < from + n; ++i) {
      if (l[i] < '0' || l[i] > '9') return false;
    }
    return true;
  };
  if (!digits(0, 4) || l[4] != '-' || !digits(5, 2) || l[7] != '-' || !digits(8, 2) ||
      l[10] != ' ' || !digits(11, 2) || l[13] != ':' || !digits(14, 2) || l[16] != ':' ||
      !digits(17, 2) || l.compare(19, 9, " brickfs[") != 0) {
    return false;
  }
  size_t i = 28;
  while (i < l.size() && l[i] >= '0' && l[i] <= '9') ++i;
  return i > 28 && l.size() >= i + 4 && l[i] == ']' && l[i + 1] == ' ' &&
         std::string("EWID").find(l[i + 2]) != std::string::npos && l[i + 3] == ' ';
}

TEST_F(LogTest, EveryMessageIsOneLineWithControlAndInvalidBytesSpelledOut) {
  const std::string path = dir_ + "/daemon.log";
  ASSERT_TRUE(SetLogFile(path).ok());
  LogWarning("bad\nname_4.tif: is not a TIFF\n2025-01-01 00:00:00 brickfs[1] E forged");
  LogError("esc\x1b[31mred_5.tif: refused");
  LogAlways("scan_\xff\xfe_3.tif: \r\t done");
  const std::vector<std::string> lines = Lines(path);
  ASSERT_EQ(lines.size(), 3u);
  for (const auto& l : lines) {
    EXPECT_TRUE(StartsLikeALogLine(l)) << l;
    EXPECT_TRUE(IsValidUtf8(l)) << l;
    for (unsigned char c : l) EXPECT_TRUE(c >= 0x20 && c != 0x7f) << l;
  }
  EXPECT_NE(lines[0].find("bad\\nname_4.tif: is not a TIFF\\n2025-01-01"), std::string::npos)
      << lines[0];
  EXPECT_NE(lines[1].find("esc\\x1b[31mred_5.tif"), std::string::npos) << lines[1];
  EXPECT_NE(lines[2].find("scan_\\xff\\xfe_3.tif: \\r\\t done"), std::string::npos) << lines[2];
}

TEST_F(LogTest, SetLogFileRefusesASymlinkAndKeepsLoggingWhereItWas) {
  const std::string victim = dir_ + "/victim";
  ASSERT_TRUE(WriteFileAtomic(victim, "precious\n").ok());
  const std::string path = dir_ + "/daemon.log";
  ASSERT_EQ(::symlink(victim.c_str(), path.c_str()), 0);
  Status s = SetLogFile(path);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("symbolic link"), std::string::npos) << s.ToString();
  LogError("after the refusal");
  EXPECT_EQ(*ReadFileToString(victim), "precious\n");
}

}  // namespace
}  // namespace brickfs
