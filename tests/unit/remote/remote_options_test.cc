#include "remote/remote_options.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "remote/auth.h"
#include "remote/validator.h"

namespace brickfs {
namespace {

TEST(StoreUrlTest, NormalizesSchemeAndTrailingSlash) {
  auto u = NormalizeStoreUrl("HTTPS://example.org/data/vol.zarr/");
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(*u, "https://example.org/data/vol.zarr");
  EXPECT_TRUE(IsRemoteUrl("http://h/x"));
  EXPECT_TRUE(IsRemoteUrl("Https://h/x"));
  EXPECT_FALSE(IsRemoteUrl("/data/vol.zarr"));
  EXPECT_FALSE(IsRemoteUrl("ftp://h/x"));
}

TEST(StoreUrlTest, RefusesCredentialsQueriesAndOtherSchemes) {
  auto creds = NormalizeStoreUrl("https://alice:secret@example.org/v.zarr");
  ASSERT_FALSE(creds.ok());
  EXPECT_EQ(creds.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(creds.status().message().find("auth_file"), std::string::npos);
  EXPECT_EQ(creds.status().message().find("secret"), std::string::npos);
  EXPECT_FALSE(NormalizeStoreUrl("https://example.org/v.zarr?x=1").ok());
  EXPECT_FALSE(NormalizeStoreUrl("https://example.org/v.zarr#f").ok());
  EXPECT_FALSE(NormalizeStoreUrl("ftp://example.org/v.zarr").ok());
  EXPECT_FALSE(NormalizeStoreUrl("https:///v.zarr").ok());
  EXPECT_FALSE(NormalizeStoreUrl("https://example.org/a b").ok());
  EXPECT_EQ(RedactUrl("https://u:p@h/x"), "https://***@h/x");
  EXPECT_EQ(RedactUrl("https://h/x@y"), "https://h/x@y");
}

TEST(DefaultCacheDirTest, UsesXdgCacheHomeThenHome) {
  const char* old_xdg = std::getenv("XDG_CACHE_HOME");
  const std::string saved = old_xdg ? old_xdg : "";
  ::setenv("XDG_CACHE_HOME", "/tmp/xdg-test", 1);
  EXPECT_EQ(*DefaultCacheDir(), "/tmp/xdg-test/brickfs");
  ::setenv("XDG_CACHE_HOME", "relative", 1);  // ignored: not absolute
  const char* home = std::getenv("HOME");
  if (home != nullptr && home[0] == '/') {
    EXPECT_EQ(*DefaultCacheDir(), std::string(home) + "/.cache/brickfs");
  }
  if (old_xdg) {
    ::setenv("XDG_CACHE_HOME", saved.c_str(), 1);
  } else {
    ::unsetenv("XDG_CACHE_HOME");
  }
}

class AuthFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/brickfs-auth-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }
  std::string Write(const std::string& text, mode_t mode) {
    const std::string path = dir_ + "/auth";
    ::unlink(path.c_str());
    std::ofstream(path) << text;
    ::chmod(path.c_str(), mode);
    return path;
  }
  std::string dir_;
};

TEST_F(AuthFileTest, ReadsBasicAndBearer) {
  auto basic = ReadAuthFile(Write("alice:s3cr:et\n", 0600));
  ASSERT_TRUE(basic.ok()) << basic.status().ToString();
  EXPECT_EQ(basic->kind, Credentials::Kind::kBasic);
  EXPECT_EQ(basic->user, "alice");
  EXPECT_EQ(basic->password, "s3cr:et");
  auto bearer = ReadAuthFile(Write("bearer abc.def-123", 0400));
  ASSERT_TRUE(bearer.ok()) << bearer.status().ToString();
  EXPECT_EQ(bearer->kind, Credentials::Kind::kBearer);
  EXPECT_EQ(bearer->token, "abc.def-123");
}

TEST_F(AuthFileTest, RefusesGroupOrWorldReadableFiles) {
  for (mode_t mode : {0644, 0640, 0604, 0660}) {
    auto r = ReadAuthFile(Write("alice:pw", mode));
    ASSERT_FALSE(r.ok()) << mode;
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(r.status().message().find("chmod 600"), std::string::npos) << r.status().ToString();
    EXPECT_EQ(r.status().message().find("pw"), std::string::npos) << "leaks the password";
  }
}

TEST_F(AuthFileTest, RefusesMalformedContentAndLinks) {
  EXPECT_FALSE(ReadAuthFile(Write("", 0600)).ok());
  EXPECT_FALSE(ReadAuthFile(Write("no-colon", 0600)).ok());
  EXPECT_FALSE(ReadAuthFile(Write(":password", 0600)).ok());
  EXPECT_FALSE(ReadAuthFile(Write("a:b\nc:d\n", 0600)).ok());
  EXPECT_FALSE(ReadAuthFile(Write("bearer ", 0600)).ok());
  EXPECT_FALSE(ReadAuthFile(Write("bearer a b", 0600)).ok());
  EXPECT_FALSE(ReadAuthFile(Write("a:b\x01", 0600)).ok());
  const std::string real = Write("a:b", 0600);
  const std::string link = dir_ + "/link";
  ASSERT_EQ(::symlink(real.c_str(), link.c_str()), 0);
  EXPECT_FALSE(ReadAuthFile(link).ok());
  EXPECT_EQ(ReadAuthFile(dir_ + "/missing").status().code(), Status::Code::kNotFound);
}

TEST(ValidatorTest, ConflictsComparesWhatBothKnow) {
  Validator a{"\"1-a\"", "Mon, 01 Jan 2024 00:00:00 GMT", 100};
  Validator b = a;
  EXPECT_FALSE(a.Conflicts(b));
  b.etag = "\"1-b\"";
  EXPECT_TRUE(a.Conflicts(b));
  b = a;
  b.size = 101;
  EXPECT_TRUE(a.Conflicts(b));
  b = a;
  b.size = Validator::kUnknownSize;  // a HEAD without Content-Length
  EXPECT_FALSE(a.Conflicts(b));
  Validator lm_only{"", "Mon, 01 Jan 2024 00:00:00 GMT", 100};
  Validator lm_later{"", "Tue, 02 Jan 2024 00:00:00 GMT", 100};
  EXPECT_TRUE(lm_only.Conflicts(lm_later));
  const Validator strong{"\"x\"", "", 1}, weak{"W/\"x\"", "", 1};
  EXPECT_TRUE(strong.strong_etag());
  EXPECT_FALSE(weak.strong_etag());
}

TEST(ValidatorTest, ParsesContentRange) {
  auto cr = ParseContentRange("bytes 10-19/100");
  ASSERT_TRUE(cr);
  EXPECT_EQ(cr->first, 10u);
  EXPECT_EQ(cr->last, 19u);
  EXPECT_EQ(cr->total, 100u);
  auto star = ParseContentRange("bytes 0-9/*");
  ASSERT_TRUE(star);
  EXPECT_EQ(star->total, Validator::kUnknownSize);
  auto unsat = ParseContentRange("bytes */42");
  ASSERT_TRUE(unsat);
  EXPECT_TRUE(unsat->unsatisfied);
  EXPECT_EQ(unsat->total, 42u);
  EXPECT_FALSE(ParseContentRange("bytes 10-9/100"));
  EXPECT_FALSE(ParseContentRange("bytes 10-100/100"));   // past the end
  EXPECT_FALSE(ParseContentRange("bytes -1-9/100"));
  EXPECT_FALSE(ParseContentRange("items 0-9/100"));
  EXPECT_FALSE(ParseContentRange("bytes 0-99999999999999999999/1"));
  EXPECT_FALSE(ParseContentRange("bytes */*"));
  EXPECT_FALSE(ParseContentRange(""));
}

}  // namespace
}  // namespace brickfs
