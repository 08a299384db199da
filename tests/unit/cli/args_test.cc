// Tests for ArgParser (cli/args.h): what CLI11 parses for the subcommands,
// and the help and usage messages brickfs gives around it.
#include "cli/args.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace brickfs {
namespace {

constexpr char kHelp[] = "Usage: brickfs demo STORE [--json] [-o OPTIONS] [--level N]\n";

struct Demo {
  ArgParser parser{"demo", kHelp};
  std::string store, level;
  std::vector<std::string> options;
  bool json = false;
  std::string out, err;

  Demo() {
    CLI::App& app = parser.app();
    app.add_option("STORE", store);
    app.add_flag("--json", json);
    app.add_option("-o", options)->allow_extra_args(false)->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    app.add_option("--level", level);
  }

  // The exit code Parse asks for (-1: parsed, go on); keeps stdout and stderr.
  int Parse(const std::vector<std::string>& args) {
    ::testing::internal::CaptureStdout();
    ::testing::internal::CaptureStderr();
    const auto rc = parser.Parse(args);
    out = ::testing::internal::GetCapturedStdout();
    err = ::testing::internal::GetCapturedStderr();
    return rc ? *rc : -1;
  }
};

TEST(ArgParserTest, OptionsAnywhereAmongPositionalsInEveryForm) {
  Demo d;
  EXPECT_EQ(d.Parse({"-o", "a=1", "--level=-5", "s.zarr", "-ob=2", "--json", "-o", "c"}), -1) << d.err;
  EXPECT_EQ(d.store, "s.zarr");
  EXPECT_EQ(d.level, "-5");  // a negative number is a value, not an option
  EXPECT_EQ(d.options, (std::vector<std::string>{"a=1", "b=2", "c"}));
  EXPECT_TRUE(d.json);
  EXPECT_EQ(d.err, "");
}

TEST(ArgParserTest, ARepeatedOptionTakesItsLastValue) {
  Demo d;
  EXPECT_EQ(d.Parse({"s", "--level", "1", "--level", "2"}), -1) << d.err;
  EXPECT_EQ(d.level, "2");
}

TEST(ArgParserTest, HelpPrintsTheHelpTextAndExitsZeroWhateverElseIsGiven) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--help"}, {"-h"}, {"s.zarr", "--json", "-h"}}) {
    Demo d;
    EXPECT_EQ(d.Parse(args), 0) << args[0];
    EXPECT_EQ(d.out, kHelp);
    EXPECT_EQ(d.err, "");
  }
}

TEST(ArgParserTest, UsageErrorsNameTheCommandAndTheArgumentAndExitTwo) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"s", "--bogus"}, "brickfs: demo: unknown option --bogus (see brickfs demo --help)\n"},
      {{"--bogus", "s"}, "brickfs: demo: unknown option --bogus (see brickfs demo --help)\n"},
      {{"s", "-x"}, "brickfs: demo: unknown option -x (see brickfs demo --help)\n"},
      {{"s", "t"}, "brickfs: demo: unexpected argument t\n"},
      {{"s", "--level"}, "brickfs: demo: --level expects a value (see brickfs demo --help)\n"},
      {{"s", "-o"}, "brickfs: demo: -o expects a value (see brickfs demo --help)\n"}};
  for (const auto& [args, message] : cases) {
    Demo d;
    EXPECT_EQ(d.Parse(args), kExitUsage) << args.back();
    EXPECT_EQ(d.err, message);
    EXPECT_EQ(d.out, "");
  }
}

}  // namespace
}  // namespace brickfs
