// Tests for the JSON value, parser and writer: round trips, exact integers
// up to 2^64-1, strict rejection of malformed input, and object editing.
#include "format/json.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

namespace brickfs {
namespace {

Json MustParse(const std::string& text) {
  auto r = Json::Parse(text);
  EXPECT_TRUE(r.ok()) << "\"" << text << "\": " << r.status().ToString();
  return r.ok() ? *r : Json();
}

void ExpectRejected(const std::string& text) {
  auto r = Json::Parse(text);
  EXPECT_FALSE(r.ok()) << "accepted \"" << text << "\"";
  if (!r.ok()) {
    EXPECT_EQ(r.status().code(), Status::Code::kCorruption) << text;
    EXPECT_NE(r.status().message().find("offset"), std::string::npos) << r.status().message();
  }
}

TEST(JsonTest, ParsesScalars) {
  EXPECT_TRUE(MustParse("null").is_null());
  EXPECT_TRUE(MustParse("true").as_bool());
  EXPECT_FALSE(MustParse("false").as_bool());
  EXPECT_EQ(MustParse("42").as_uint(), 42u);
  EXPECT_EQ(MustParse("-42").as_int(), -42);
  EXPECT_DOUBLE_EQ(MustParse("2.5").as_double(), 2.5);
  EXPECT_DOUBLE_EQ(MustParse("-1.25e2").as_double(), -125.0);
  EXPECT_DOUBLE_EQ(MustParse("1E3").as_double(), 1000.0);
  EXPECT_EQ(MustParse("\"hi\"").as_string(), "hi");
  EXPECT_EQ(MustParse("  \t\r\n 7 \n").as_uint(), 7u);
}

TEST(JsonTest, DumpParseRoundTripOfNestedDocument) {
  Json doc = Json::MakeObject();
  doc.Set("zarr_format", 3);
  doc.Set("shape", Json(Json::Array{Json(uint64_t{13}), Json(uint64_t{19}), Json(uint64_t{23})}));
  doc.Set("name", "a \"quoted\" \\ name\n\twith\x01control");
  doc.Set("ratio", 0.1);
  doc.Set("neg", -17);
  doc.Set("flag", true);
  doc.Set("nothing", Json());
  doc.Set("empty_obj", Json::MakeObject());
  doc.Set("empty_arr", Json::MakeArray());
  Json inner = Json::MakeObject().Set("k", Json(Json::Array{Json::MakeObject().Set("x", 1)}));
  doc.Set("inner", inner);
  for (int indent : {-1, 0, 2, 4}) {
    std::string text = doc.Dump(indent);
    Json back = MustParse(text);
    EXPECT_EQ(back.Dump(indent), text) << "indent " << indent;
    EXPECT_EQ(back.Get("name")->as_string(), doc.Get("name")->as_string());
    EXPECT_DOUBLE_EQ(back.Get("ratio")->as_double(), 0.1);
    EXPECT_EQ(back.Get("neg")->as_int(), -17);
    EXPECT_TRUE(back.Get("nothing")->is_null());
    EXPECT_EQ(back.Get("shape")->as_array()[2].as_uint(), 23u);
    EXPECT_EQ(back.Get("inner")->Get("k")->as_array()[0].Get("x")->as_int(), 1);
  }
}

TEST(JsonTest, CompactDumpHasNoWhitespaceAndKeepsInsertionOrder) {
  Json doc = Json::MakeObject().Set("b", 1).Set("a", Json(Json::Array{Json(1), Json(2)}));
  EXPECT_EQ(doc.Dump(), "{\"b\":1,\"a\":[1,2]}");
  EXPECT_EQ(doc.Dump(2), "{\n  \"b\": 1,\n  \"a\": [1, 2]\n}");
}

TEST(JsonTest, LargestUint64SurvivesRoundTripExactly) {
  const std::string max = "18446744073709551615";
  Json v = MustParse(max);
  EXPECT_TRUE(v.is_uint());
  EXPECT_EQ(v.as_uint(), UINT64_MAX);
  EXPECT_EQ(v.Dump(), max);
  Json built(UINT64_MAX);
  EXPECT_TRUE(built.is_uint());
  EXPECT_EQ(built.Dump(), max);
  // 2^63 and 2^63 - 1 sit at the int64/uint64 boundary.
  EXPECT_EQ(MustParse("9223372036854775808").as_uint(), uint64_t{1} << 63);
  EXPECT_EQ(MustParse("9223372036854775807").as_uint(), (uint64_t{1} << 63) - 1);
  EXPECT_EQ(MustParse("9223372036854775808").Dump(), "9223372036854775808");
  // 2^53 + 1 is not representable as a double; it must stay exact.
  EXPECT_EQ(MustParse("9007199254740993").as_uint(), 9007199254740993ull);
  EXPECT_EQ(MustParse("-9223372036854775808").as_int(), INT64_MIN);
}

TEST(JsonTest, IsUintOnlyForNonNegativeIntegers) {
  EXPECT_TRUE(MustParse("0").is_uint());
  EXPECT_FALSE(MustParse("-1").is_uint());
  EXPECT_FALSE(MustParse("1.5").is_uint());
  EXPECT_FALSE(MustParse("\"1\"").is_uint());
  EXPECT_FALSE(MustParse("18446744073709551616").is_uint());  // 2^64: a double
  EXPECT_TRUE(MustParse("18446744073709551616").is_number());
}

TEST(JsonTest, DecodesEscapesAndUnicode) {
  EXPECT_EQ(MustParse(R"("\"\\\/\b\f\n\r\t")").as_string(), "\"\\/\b\f\n\r\t");
  EXPECT_EQ(MustParse(R"("\u0041\u00e9\u20AC")").as_string(), "A\xC3\xA9\xE2\x82\xAC");
  EXPECT_EQ(MustParse(R"("\ud83d\ude00")").as_string(), "\xF0\x9F\x98\x80");
  EXPECT_EQ(MustParse("\"\xC3\xA9\"").as_string(), "\xC3\xA9");  // raw UTF-8 passes
}

TEST(JsonTest, DumpWritesValidUtf8WhateverTheStringHolds) {
  // A file name is bytes: what is not UTF-8 becomes U+FFFD, so that strict
  // readers (Python's json, browsers) can parse the status.
  Json doc = Json::MakeObject();
  doc.Set("file", std::string("scan_\xff\xfe_3.tif caf\xc3\xa9 \xe2\x82 end"));
  doc.Set("ok", std::string("\xf0\x9f\x94\xac \xe2\x82\xac"));
  const std::string out = doc.Dump();
  EXPECT_EQ(out,
            "{\"file\":\"scan_\xef\xbf\xbd\xef\xbf\xbd_3.tif caf\xc3\xa9 "
            "\xef\xbf\xbd\xef\xbf\xbd end\","
            "\"ok\":\"\xf0\x9f\x94\xac \xe2\x82\xac\"}");
  auto back = Json::Parse(out);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->Get("ok")->as_string(), "\xf0\x9f\x94\xac \xe2\x82\xac");
}

TEST(JsonTest, RejectsTrailingGarbage) {
  ExpectRejected("{} x");
  ExpectRejected("1 2");
  ExpectRejected("[1]]");
  ExpectRejected("nullx");
  ExpectRejected("\"a\"\"b\"");
}

TEST(JsonTest, RejectsBadEscapes) {
  ExpectRejected(R"("\x41")");
  ExpectRejected(R"("\u12")");
  ExpectRejected(R"("\u12G4")");
  ExpectRejected(R"("\ud83d\u0041")");  // high surrogate + non-low
  ExpectRejected("\"\\");
  ExpectRejected("\"abc");
  ExpectRejected("\"a\nb\"");  // raw control character
}

TEST(JsonTest, RejectsStructuralErrors) {
  ExpectRejected("");
  ExpectRejected("   ");
  ExpectRejected("{");
  ExpectRejected("[1,");
  ExpectRejected("[1 2]");
  ExpectRejected("[1,]");
  ExpectRejected("{\"a\" 1}");
  ExpectRejected("{\"a\":1,}");
  ExpectRejected("{a:1}");
  ExpectRejected("{1:1}");
  ExpectRejected("tru");
  ExpectRejected("True");
  ExpectRejected("'a'");
  ExpectRejected("-");
  ExpectRejected("+1");
  ExpectRejected(".5");
  ExpectRejected("1e");
  ExpectRejected("1-2");
  ExpectRejected("NaN");
  ExpectRejected("Infinity");
}

// RFC 8259 §6: no leading zeros, and a '.' or exponent needs digits after it.
// json.h promises a strict RFC 8259 parser.
TEST(JsonTest, RejectsNumbersRfc8259Forbids) {
  ExpectRejected("01");
  ExpectRejected("-01");
  ExpectRejected("00");
  ExpectRejected("1.");
  ExpectRejected("1.e5");
  ExpectRejected("[1.]");
  EXPECT_EQ(MustParse("0").as_uint(), 0u);
  EXPECT_DOUBLE_EQ(MustParse("0.5").as_double(), 0.5);
  EXPECT_DOUBLE_EQ(MustParse("-0.0").as_double(), 0.0);
}

TEST(JsonTest, AcceptsNestingUpTo64AndRejectsDeeper) {
  auto nested = [](int depth) {
    return std::string(static_cast<size_t>(depth), '[') + std::string(static_cast<size_t>(depth), ']');
  };
  EXPECT_TRUE(Json::Parse(nested(64)).ok());
  ExpectRejected(nested(66));
  ExpectRejected(nested(100000));  // must not overflow the stack
  std::string objs;
  for (int i = 0; i < 200; ++i) objs += "{\"a\":";
  objs += "1";
  for (int i = 0; i < 200; ++i) objs += "}";
  ExpectRejected(objs);
}

TEST(JsonTest, SetReplacesExistingKeyInPlace) {
  Json doc = Json::MakeObject().Set("a", 1).Set("b", 2).Set("c", 3);
  doc.Set("b", "two");
  EXPECT_EQ(doc.Dump(), "{\"a\":1,\"b\":\"two\",\"c\":3}");
  EXPECT_EQ(doc.as_object().size(), 3u);
  doc.Set("d", 4);
  EXPECT_EQ(doc.as_object().back().first, "d");
}

TEST(JsonTest, SetOnNonObjectTurnsItIntoAnObject) {
  Json v(5);
  v.Set("k", true);
  ASSERT_TRUE(v.is_object());
  EXPECT_TRUE(v.Get("k")->as_bool());
}

TEST(JsonTest, GetReturnsNullForMissingKeyOrNonObject) {
  Json doc = MustParse("{\"a\":{\"b\":[1]}}");
  EXPECT_EQ(doc.Get("x"), nullptr);
  EXPECT_EQ(doc.Get("a")->Get("b")->Get("c"), nullptr);
  EXPECT_EQ(Json(3).Get("a"), nullptr);
}

TEST(JsonTest, NonFiniteDoublesDumpAsNull) {
  EXPECT_EQ(Json(1.0 / 0.0).Dump(), "null");
}

TEST(JsonTest, DoublesDumpShortestRoundTrippingForm) {
  EXPECT_EQ(Json(0.1).Dump(), "0.1");
  EXPECT_EQ(Json(2.5).Dump(), "2.5");
  for (double d : {1.0 / 3.0, 123456.789e-20, 6.02214076e23, -0.000123}) {
    auto back = Json::Parse(Json(d).Dump());
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back->as_double(), d) << Json(d).Dump();
  }
}

TEST(JsonHelpersTest, JsonUintAndJsonStringValidateFields) {
  Json doc = MustParse(R"({"n": 5, "neg": -1, "s": "x", "f": 1.5})");
  auto n = JsonUint(doc, "n", "doc");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 5u);
  EXPECT_EQ(JsonUint(doc, "neg", "doc").status().code(), Status::Code::kCorruption);
  EXPECT_EQ(JsonUint(doc, "f", "doc").status().code(), Status::Code::kCorruption);
  EXPECT_EQ(JsonUint(doc, "absent", "doc").status().code(), Status::Code::kCorruption);
  EXPECT_NE(JsonUint(doc, "absent", "mydoc").status().message().find("mydoc"), std::string::npos);
  auto s = JsonString(doc, "s", "doc");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s, "x");
  EXPECT_FALSE(JsonString(doc, "n", "doc").ok());
}

}  // namespace
}  // namespace brickfs
