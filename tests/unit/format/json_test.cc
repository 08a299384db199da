// Tests for brickfs's JSON rules on top of nlohmann-json (format/json.h):
// strict parsing with size and depth limits, exact integers up to 2^64-1,
// first-wins repeated keys, invalid UTF-8 refused; the writer's layout
// (scalar arrays on one line, integral doubles without ".0", valid UTF-8
// whatever a string holds); and the field helpers.
#include "format/json.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

namespace brickfs {
namespace {

Json MustParse(const std::string& text) {
  auto r = ParseJson(text);
  EXPECT_TRUE(r.ok()) << "\"" << text << "\": " << r.status().ToString();
  return r.ok() ? *r : Json();
}

// Refused as Corruption whose message names the document and `needle`
// ("offset" for syntax errors: where the parse stopped).
void ExpectRejected(const std::string& text, const std::string& needle = "offset") {
  auto r = ParseJson(text, "doc.json");
  EXPECT_FALSE(r.ok()) << "accepted \"" << text << "\"";
  if (!r.ok()) {
    EXPECT_EQ(r.status().code(), Status::Code::kCorruption) << text;
    EXPECT_EQ(r.status().message().rfind("doc.json: ", 0), 0u) << r.status().message();
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
  }
}

TEST(JsonTest, ParsesScalars) {
  EXPECT_TRUE(MustParse("null").is_null());
  EXPECT_TRUE(MustParse("true").get<bool>());
  EXPECT_FALSE(MustParse("false").get<bool>());
  EXPECT_EQ(MustParse("42").get<uint64_t>(), 42u);
  EXPECT_EQ(MustParse("-42").get<int64_t>(), -42);
  EXPECT_DOUBLE_EQ(MustParse("2.5").get<double>(), 2.5);
  EXPECT_DOUBLE_EQ(MustParse("-1.25e2").get<double>(), -125.0);
  EXPECT_DOUBLE_EQ(MustParse("1E3").get<double>(), 1000.0);
  EXPECT_EQ(MustParse("\"hi\"").get<std::string>(), "hi");
  EXPECT_EQ(MustParse("  \t\r\n 7 \n").get<uint64_t>(), 7u);
}

Json SampleDocument() {
  Json doc = Json::object();
  doc["zarr_format"] = 3;
  doc["shape"] = Json::array({uint64_t{13}, uint64_t{19}, uint64_t{23}});
  doc["name"] = "a \"quoted\" \\ name\n\twith\x01control";
  doc["ratio"] = 0.1;
  doc["neg"] = -17;
  doc["flag"] = true;
  doc["nothing"] = nullptr;
  doc["empty_obj"] = Json::object();
  doc["empty_arr"] = Json::array();
  doc["inner"] = Json{{"k", Json::array({Json{{"x", 1}}})}};
  return doc;
}

TEST(JsonTest, DumpParseRoundTripOfNestedDocument) {
  const Json doc = SampleDocument();
  for (int indent : {-1, 0, 2, 4}) {
    std::string text = DumpJson(doc, indent);
    Json back = MustParse(text);
    EXPECT_EQ(DumpJson(back, indent), text) << "indent " << indent;
    EXPECT_EQ(back, doc) << text;
    EXPECT_EQ(back.at("name").get<std::string>(), doc.at("name").get<std::string>());
    EXPECT_DOUBLE_EQ(back.at("ratio").get<double>(), 0.1);
    EXPECT_EQ(back.at("neg").get<int64_t>(), -17);
    EXPECT_TRUE(back.at("nothing").is_null());
    EXPECT_EQ(back.at("shape").at(2).get<uint64_t>(), 23u);
    EXPECT_EQ(back.at("inner").at("k").at(0).at("x").get<int64_t>(), 1);
  }
}

TEST(JsonTest, CompactDumpHasNoWhitespaceAndKeepsInsertionOrder) {
  Json doc = Json::object();
  doc["b"] = 1;
  doc["a"] = Json::array({1, 2});
  EXPECT_EQ(DumpJson(doc), "{\"b\":1,\"a\":[1,2]}");
  EXPECT_EQ(DumpJson(doc, 2), "{\n  \"b\": 1,\n  \"a\": [1, 2]\n}");
}

TEST(JsonTest, PrettyDumpPutsScalarArraysOnOneLineAndNestedOnesOnTheirOwn) {
  Json doc = Json::object();
  doc["shape"] = Json::array({64, 64, 64});
  doc["ranges"] = Json::array({Json::array({0, 3}), Json::array({7, 9})});
  doc["empty"] = Json::array();
  doc["obj"] = Json::object();
  EXPECT_EQ(DumpJson(doc, 2),
            "{\n  \"shape\": [64, 64, 64],\n  \"ranges\": [\n    [0, 3],\n    [7, 9]\n  ],\n"
            "  \"empty\": [],\n  \"obj\": {}\n}");
}

TEST(JsonTest, LargestUint64SurvivesRoundTripExactly) {
  const std::string max = "18446744073709551615";
  Json v = MustParse(max);
  EXPECT_TRUE(JsonIsUint(v));
  EXPECT_EQ(v.get<uint64_t>(), UINT64_MAX);
  EXPECT_EQ(DumpJson(v), max);
  Json built(UINT64_MAX);
  EXPECT_TRUE(JsonIsUint(built));
  EXPECT_EQ(DumpJson(built), max);
  // 2^63 and 2^63 - 1 sit at the int64/uint64 boundary.
  EXPECT_EQ(MustParse("9223372036854775808").get<uint64_t>(), uint64_t{1} << 63);
  EXPECT_EQ(MustParse("9223372036854775807").get<uint64_t>(), (uint64_t{1} << 63) - 1);
  EXPECT_EQ(DumpJson(MustParse("9223372036854775808")), "9223372036854775808");
  // 2^53 + 1 is not representable as a double; it must stay exact.
  EXPECT_EQ(MustParse("9007199254740993").get<uint64_t>(), 9007199254740993ull);
  EXPECT_EQ(MustParse("-9223372036854775808").get<int64_t>(), INT64_MIN);
}

TEST(JsonTest, IsUintOnlyForNonNegativeIntegers) {
  EXPECT_TRUE(JsonIsUint(MustParse("0")));
  EXPECT_TRUE(JsonIsUint(Json(5)));  // built signed, still a count
  EXPECT_FALSE(JsonIsUint(Json(-5)));
  EXPECT_FALSE(JsonIsUint(MustParse("-1")));
  EXPECT_FALSE(JsonIsUint(MustParse("1.5")));
  EXPECT_FALSE(JsonIsUint(MustParse("2.0")));
  EXPECT_FALSE(JsonIsUint(MustParse("\"1\"")));
  EXPECT_FALSE(JsonIsUint(MustParse("18446744073709551616")));  // 2^64: a double
  EXPECT_TRUE(MustParse("18446744073709551616").is_number());
}

TEST(JsonTest, DecodesEscapesAndUnicode) {
  EXPECT_EQ(MustParse(R"("\"\\\/\b\f\n\r\t")").get<std::string>(), "\"\\/\b\f\n\r\t");
  EXPECT_EQ(MustParse(R"("\u0041\u00e9\u20AC")").get<std::string>(), "A\xC3\xA9\xE2\x82\xAC");
  EXPECT_EQ(MustParse(R"("\ud83d\ude00")").get<std::string>(), "\xF0\x9F\x98\x80");
  EXPECT_EQ(MustParse("\"\xC3\xA9\"").get<std::string>(), "\xC3\xA9");  // raw UTF-8 passes
}

TEST(JsonTest, RefusesInvalidUtf8) {
  ExpectRejected("\"scan_\xff.tif\"");
  ExpectRejected("\"caf\xc3\"");            // cut sequence
  ExpectRejected("\"\xc0\xaf\"");           // overlong '/'
  ExpectRejected("\"\xed\xa0\x80\"");       // UTF-16 surrogate
  ExpectRejected("{\"k\xfe\": 1}");         // in a key
  ExpectRejected(R"("\ud83d")");            // lone surrogate escape
}

TEST(JsonTest, DumpWritesValidUtf8WhateverTheStringHolds) {
  // A file name is bytes: what is not UTF-8 becomes U+FFFD (one per bad
  // sequence), so that strict readers (Python's json, browsers) can parse it.
  Json doc = Json::object();
  doc["file"] = std::string("scan_\xff\xfe_3.tif caf\xc3\xa9 \xe2\x82 end");
  doc["ok"] = std::string("\xf0\x9f\x94\xac \xe2\x82\xac");
  const std::string out = DumpJson(doc);
  EXPECT_EQ(out,
            "{\"file\":\"scan_\xef\xbf\xbd\xef\xbf\xbd_3.tif caf\xc3\xa9 "
            "\xef\xbf\xbd end\","
            "\"ok\":\"\xf0\x9f\x94\xac \xe2\x82\xac\"}");
  auto back = ParseJson(out);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->at("ok").get<std::string>(), "\xf0\x9f\x94\xac \xe2\x82\xac");
  Json bad_key = Json::object();
  bad_key["k\xff"] = 1;
  EXPECT_EQ(DumpJson(bad_key), "{\"k\xef\xbf\xbd\":1}");
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
  ExpectRejected("[1] // comment");
  ExpectRejected("/* comment */ 1");
}

// RFC 8259 §6: no leading zeros, and a '.' or exponent needs digits after it.
TEST(JsonTest, RejectsNumbersRfc8259Forbids) {
  ExpectRejected("01");
  ExpectRejected("-01");
  ExpectRejected("00");
  ExpectRejected("1.");
  ExpectRejected("1.e5");
  ExpectRejected("[1.]");
  EXPECT_EQ(MustParse("0").get<uint64_t>(), 0u);
  EXPECT_DOUBLE_EQ(MustParse("0.5").get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(MustParse("-0.0").get<double>(), 0.0);
}

TEST(JsonTest, RejectsNumbersTooLargeForADouble) {
  ExpectRejected("1e999", "1e999");
  ExpectRejected("[0, -1e400]", "-1e400");
}

TEST(JsonTest, AcceptsNestingUpTo64AndRejectsDeeper) {
  auto nested = [](int depth) {
    return std::string(static_cast<size_t>(depth), '[') + std::string(static_cast<size_t>(depth), ']');
  };
  EXPECT_TRUE(ParseJson(nested(64)).ok());
  ExpectRejected(nested(65), "nested deeper than 64");
  ExpectRejected(nested(100000), "nested deeper than 64");  // must not overflow the stack
  ExpectRejected(std::string(1 << 20, '['), "nested deeper than 64");  // unterminated too
  std::string objs;
  for (int i = 0; i < 200; ++i) objs += "{\"a\":";
  objs += "1";
  for (int i = 0; i < 200; ++i) objs += "}";
  ExpectRejected(objs, "nested deeper than 64");
}

TEST(JsonTest, RefusesInputLargerThanTheLimit) {
  const std::string text = "[" + std::string(100, ' ') + "]";
  EXPECT_TRUE(ParseJson(text, "doc.json", text.size()).ok());
  auto r = ParseJson(text, "doc.json", text.size() - 1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kCorruption);
  EXPECT_NE(r.status().message().find("doc.json: 102 bytes"), std::string::npos)
      << r.status().message();
}

TEST(JsonTest, FirstOfRepeatedKeysCounts) {
  Json doc = MustParse(R"({"a": 1, "b": {"x": 1, "x": 2}, "a": {"deep": [1]}, "c": {"x": 3}})");
  EXPECT_EQ(DumpJson(doc), R"({"a":1,"b":{"x":1},"c":{"x":3}})");
}

TEST(JsonTest, ParseErrorsNameTheDocumentAndWhereTheyStopped) {
  auto r = ParseJson("{\"zarr_format\": 3,", "STORE/0/zarr.json");
  ASSERT_FALSE(r.ok());
  // The offset is that of the byte the parse stopped at: here the end of input.
  EXPECT_EQ(r.status().message().rfind("STORE/0/zarr.json: invalid JSON at offset 18: ", 0), 0u)
      << r.status().message();
  auto mid = ParseJson("[1 2]", "doc");
  ASSERT_FALSE(mid.ok());
  EXPECT_EQ(mid.status().message().rfind("doc: invalid JSON at offset 3: ", 0), 0u) << mid.status().message();
  // The token quoted back is cut short.
  auto s = ParseJson("\"" + std::string(100000, 'a'), "doc");
  ASSERT_FALSE(s.ok());
  EXPECT_LT(s.status().message().size(), 400u) << s.status().message().size();
}

TEST(JsonTest, AssigningAnExistingKeyKeepsItsPlace) {
  Json doc = Json::object();
  doc["a"] = 1;
  doc["b"] = 2;
  doc["c"] = 3;
  doc["b"] = "two";
  EXPECT_EQ(DumpJson(doc), "{\"a\":1,\"b\":\"two\",\"c\":3}");
  doc["d"] = 4;
  EXPECT_EQ(doc.size(), 4u);
  EXPECT_EQ(doc.back(), Json(4));
}

TEST(JsonTest, JsonFieldIsNullForMissingKeyOrNonObject) {
  Json doc = MustParse("{\"a\":{\"b\":[1]}}");
  EXPECT_EQ(JsonField(doc, "x"), nullptr);
  ASSERT_NE(JsonField(doc, "a"), nullptr);
  EXPECT_EQ(JsonField(*JsonField(*JsonField(doc, "a"), "b"), "c"), nullptr);
  EXPECT_EQ(JsonField(Json(3), "a"), nullptr);
}

TEST(JsonTest, NonFiniteDoublesDumpAsNull) {
  EXPECT_EQ(DumpJson(Json(std::numeric_limits<double>::infinity())), "null");
  EXPECT_EQ(DumpJson(Json(std::numeric_limits<double>::quiet_NaN())), "null");
}

TEST(JsonTest, DoublesDumpShortestRoundTrippingFormIntegralOnesWithoutPointZero) {
  EXPECT_EQ(DumpJson(Json(0.1)), "0.1");
  EXPECT_EQ(DumpJson(Json(2.5)), "2.5");
  EXPECT_EQ(DumpJson(Json(1.0)), "1");
  EXPECT_EQ(DumpJson(Json(-4096.0)), "-4096");
  EXPECT_EQ(DumpJson(Json::array({2.0, 0.5, 0.5}), 2), "[2, 0.5, 0.5]");
  for (double d : {1.0 / 3.0, 123456.789e-20, 6.02214076e23, -0.000123, 1e23, 123456789.0}) {
    auto back = ParseJson(DumpJson(Json(d)));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back->get<double>(), d) << DumpJson(Json(d));
  }
}

TEST(JsonHelpersTest, JsonUintAndJsonStringValidateFields) {
  Json doc = MustParse(R"({"n": 5, "neg": -1, "s": "x", "f": 1.5, "big": 18446744073709551616})");
  auto n = JsonUint(doc, "n", "doc");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 5u);
  EXPECT_EQ(JsonUint(doc, "neg", "doc").status().code(), Status::Code::kCorruption);
  EXPECT_EQ(JsonUint(doc, "f", "doc").status().code(), Status::Code::kCorruption);
  EXPECT_EQ(JsonUint(doc, "big", "doc").status().code(), Status::Code::kCorruption);
  EXPECT_EQ(JsonUint(doc, "absent", "doc").status().code(), Status::Code::kCorruption);
  EXPECT_EQ(JsonUint(doc, "absent", "mydoc").status().message(),
            "mydoc: \"absent\" missing or not a non-negative integer");
  auto s = JsonString(doc, "s", "doc");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s, "x");
  EXPECT_FALSE(JsonString(doc, "n", "doc").ok());
  EXPECT_FALSE(JsonUint(Json::array({1}), "n", "doc").ok());
}

}  // namespace
}  // namespace brickfs
