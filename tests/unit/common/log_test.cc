// Tests for the daemon log: one line per event whatever a message holds
// (names written to the mount can carry newlines, escape sequences and bytes
// that are not UTF-8), and a log file that is a symlink is refused.
#include "common/log.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <regex>
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

TEST_F(LogTest, EveryMessageIsOneLineWithControlAndInvalidBytesSpelledOut) {
  const std::string path = dir_ + "/daemon.log";
  ASSERT_TRUE(SetLogFile(path).ok());
  LogWarning("bad\nname_4.tif: is not a TIFF\n2025-01-01 00:00:00 brickfs[1] E forged");
  LogError("esc\x1b[31mred_5.tif: refused");
  LogAlways("scan_\xff\xfe_3.tif: \r\t done");
  const std::vector<std::string> lines = Lines(path);
  ASSERT_EQ(lines.size(), 3u);
  const std::regex head(R"(^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d brickfs\[\d+\] [EWID] .*)");
  for (const auto& l : lines) {
    EXPECT_TRUE(std::regex_match(l, head)) << l;
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
