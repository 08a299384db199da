#include "mount/foreign_fs.h"

#include <gtest/gtest.h>

#include <fstream>

#include <boost/filesystem.hpp>

namespace brickfs {
namespace {

using K = ForeignPath::Kind;

ForeignShape FiveD() {
  ForeignShape s;
  s.other_names = {"t", "c"};
  s.other_sizes = {2, 3};
  s.spatial = 3;
  s.level_shapes = {{10, 20, 30}, {5, 10, 15}};
  return s;
}

TEST(ForeignPathTest, FiveDNamespace) {
  const ForeignShape s = FiveD();
  EXPECT_EQ(ParseForeignPath(s, "/").kind, K::kIndexDir);
  EXPECT_EQ(ParseForeignPath(s, "/t1").kind, K::kIndexDir);
  EXPECT_EQ(ParseForeignPath(s, "/t1").fixed, (std::vector<uint64_t>{1}));
  ForeignPath p = ParseForeignPath(s, "/t1/c2");
  EXPECT_EQ(p.kind, K::kViewDir);
  EXPECT_EQ(p.fixed, (std::vector<uint64_t>{1, 2}));
  p = ParseForeignPath(s, "/t0/c1/x/00029.tif");
  EXPECT_EQ(p.kind, K::kPlane);
  EXPECT_EQ(p.axis, Axis::kX);
  EXPECT_EQ(p.index, 29u);
  EXPECT_EQ(p.level, 0);
  p = ParseForeignPath(s, "/t0/c1/levels/1/y/00009.tif");
  EXPECT_EQ(p.kind, K::kPlane);
  EXPECT_EQ(p.level, 1);
  EXPECT_EQ(p.axis, Axis::kY);
  EXPECT_EQ(ParseForeignPath(s, "/t0/c1/levels").kind, K::kLevelsDir);
  EXPECT_EQ(ParseForeignPath(s, "/t0/c1/levels/1").kind, K::kLevelDir);
  EXPECT_EQ(ParseForeignPath(s, "/t0/c1/levels/1/z").kind, K::kAxisDir);
  EXPECT_EQ(ParseForeignPath(s, "/.brickfs").kind, K::kStateDir);
  EXPECT_EQ(ParseForeignPath(s, "/.brickfs/status").kind, K::kStatus);
  for (const char* bad : {"/t2", "/t01", "/c0", "/t", "/t0/t0", "/t0/c3", "/t0/c1/w",
                          "/t0/c1/x/00030.tif", "/t0/c1/x/0029.tif", "/t0/c1/x/000029.tif",
                          "/t0/c1/levels/2", "/t0/c1/levels/01", "/t0/c1/levels/1/y/00010.tif",
                          "/t0/c1/z/00001.tif/x", "/z", "/.brickfs/x", "/t0/c1/z/00001.tiff"}) {
    EXPECT_EQ(ParseForeignPath(s, bad).kind, K::kNotFound) << bad;
  }
}

TEST(ForeignPathTest, ThreeAndTwoD) {
  ForeignShape s;
  s.spatial = 3;
  s.level_shapes = {{4, 5, 6}};
  EXPECT_EQ(ParseForeignPath(s, "/").kind, K::kViewDir);
  EXPECT_EQ(ParseForeignPath(s, "/z/00003.tif").kind, K::kPlane);
  EXPECT_EQ(ParseForeignPath(s, "/z/00004.tif").kind, K::kNotFound);
  ForeignShape t;
  t.spatial = 2;
  t.other_names = {"c"};
  t.other_sizes = {2};
  t.level_shapes = {{1, 5, 6}};
  EXPECT_EQ(ParseForeignPath(t, "/c1/z/00000.tif").kind, K::kPlane);
  EXPECT_EQ(ParseForeignPath(t, "/c1/z/00001.tif").kind, K::kNotFound);
  EXPECT_EQ(ParseForeignPath(t, "/c1/y").kind, K::kNotFound);
  EXPECT_EQ(ParseForeignPath(t, "/c1/x").kind, K::kNotFound);
}

TEST(ForeignStoreTest, DetectsForeignStoresOnly) {
  namespace fs = boost::filesystem;
  const fs::path root = fs::temp_directory_path() / fs::unique_path("foreign-detect-%%%%%%");
  auto put = [&](const std::string& rel, const std::string& text) {
    fs::create_directories((root / rel).parent_path());
    std::ofstream(root / rel) << text;
  };
  const std::string d = root.string();
  fs::create_directories(root / "none");
  EXPECT_FALSE(IsForeignStore(d + "/none"));
  EXPECT_FALSE(IsForeignStore(d + "/missing"));
  put("v2/.zgroup", R"({"zarr_format": 2})");
  EXPECT_TRUE(IsForeignStore(d + "/v2"));
  put("v3/zarr.json", R"({"zarr_format": 3, "node_type": "group"})");
  put("v3/0/zarr.json", R"({"zarr_format": 3, "node_type": "array"})");
  EXPECT_TRUE(IsForeignStore(d + "/v3"));
  put("bad/zarr.json", "{not json");
  EXPECT_TRUE(IsForeignStore(d + "/bad"));
  // brickfs's own: a .brickfs/ directory, or a brickfs array.
  put("own/zarr.json", R"({"zarr_format": 3, "node_type": "group"})");
  fs::create_directories(root / "own/.brickfs");
  EXPECT_FALSE(IsForeignStore(d + "/own"));
  put("own2/zarr.json", R"({"zarr_format": 3, "node_type": "group"})");
  put("own2/0/zarr.json", R"({"zarr_format": 3, "attributes": {"brickfs": {}}})");
  EXPECT_FALSE(IsForeignStore(d + "/own2"));
  fs::remove_all(root);
}

}  // namespace
}  // namespace brickfs
