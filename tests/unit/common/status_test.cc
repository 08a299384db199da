// Tests for Status, Result<T> and the early-return macros.
#include "brickfs/status.h"

#include <cerrno>
#include <memory>
#include <string>

#include <gtest/gtest.h>

namespace brickfs {
namespace {

TEST(StatusTest, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), Status::Code::kOk);
  EXPECT_EQ(s.ToString(), "OK");
  EXPECT_TRUE(Status::Ok().ok());
}

TEST(StatusTest, EveryCodeHasANameInToString) {
  EXPECT_EQ(Status::InvalidArgument("m").ToString(), "Invalid argument: m");
  EXPECT_EQ(Status::Corruption("m").ToString(), "Corruption: m");
  EXPECT_EQ(Status::NotFound("m").ToString(), "Not found: m");
  EXPECT_EQ(Status::Unsupported("m").ToString(), "Unsupported: m");
  EXPECT_EQ(Status::Busy("m").ToString(), "Busy: m");
  EXPECT_EQ(Status::NoSpace("m").ToString(), "No space: m");
  EXPECT_EQ(Status::Corruption("m").code(), Status::Code::kCorruption);
  EXPECT_EQ(Status::Busy("m").code(), Status::Code::kBusy);
  EXPECT_EQ(Status::NoSpace("m").code(), Status::Code::kNoSpace);
}

TEST(StatusTest, IOErrorCarriesErrnoAndStrerror) {
  Status s = Status::IOError("open /x", ENOENT);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Status::Code::kIOError);
  EXPECT_EQ(s.err(), ENOENT);
  EXPECT_EQ(s.message(), "open /x: No such file or directory");
  EXPECT_EQ(s.ToString(), "I/O error: open /x: No such file or directory");
}

TEST(StatusTest, WithContextPrefixesAndKeepsCodeAndErrno) {
  Status s = Status::IOError("read", EIO).WithContext("brick 0/1/2");
  EXPECT_EQ(s.code(), Status::Code::kIOError);
  EXPECT_EQ(s.err(), EIO);
  EXPECT_EQ(s.message().rfind("brick 0/1/2: read", 0), 0u) << s.message();
  EXPECT_TRUE(Status::Ok().WithContext("ignored").ok());
  EXPECT_EQ(Status::Ok().WithContext("ignored").message(), "");
}

Status FailsWith(Status::Code code) {
  if (code == Status::Code::kOk) return Status::Ok();
  return Status::NotFound("nope");
}

Status UsesReturnIfError(Status::Code code, int* reached) {
  BRICKFS_RETURN_IF_ERROR(FailsWith(code));
  ++*reached;
  return Status::Ok();
}

Result<int> MaybeInt(bool ok) {
  if (ok) return 41;
  return Status::Corruption("bad int");
}

Result<int> UsesAssignOrReturn(bool ok) {
  BRICKFS_ASSIGN_OR_RETURN(int v, MaybeInt(ok));
  return v + 1;
}

TEST(StatusTest, ReturnIfErrorReturnsEarlyOnlyOnError) {
  int reached = 0;
  EXPECT_TRUE(UsesReturnIfError(Status::Code::kOk, &reached).ok());
  EXPECT_EQ(reached, 1);
  EXPECT_EQ(UsesReturnIfError(Status::Code::kNotFound, &reached).code(),
            Status::Code::kNotFound);
  EXPECT_EQ(reached, 1);
}

TEST(ResultTest, HoldsValueOrStatus) {
  Result<int> good = MaybeInt(true);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 41);
  EXPECT_TRUE(good.status().ok());
  Result<int> bad = Status::NotFound("x");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Status::Code::kNotFound);
}

TEST(ResultTest, AssignOrReturnPropagates) {
  auto a = UsesAssignOrReturn(true);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, 42);
  auto b = UsesAssignOrReturn(false);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().message(), "bad int");
}

TEST(ResultTest, MoveOnlyValuesCanBeTakenOut) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(9);
  ASSERT_TRUE(r.ok());
  std::unique_ptr<int> p = std::move(r).value();
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 9);
  Result<std::string> s = std::string("abc");
  EXPECT_EQ(s->size(), 3u);
}

}  // namespace
}  // namespace brickfs
