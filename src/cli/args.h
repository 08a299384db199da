// Argument parsing of the brickfs subcommands, through CLI11.
//
// Each Cmd* function (cli.h) declares its options and positionals on an
// ArgParser's CLI::App and calls Parse. CLI11 does the parsing (long and
// short options anywhere among the positionals, --opt=value, -oVALUE, "--",
// negative numbers as values, repeated options: the last one counts, each
// -o added to a list); ArgParser gives every subcommand the same behaviour
// around it:
//   -h/--help     prints the subcommand's hand-written help text (stdout),
//                 exit 0;
//   usage errors  one line "brickfs: COMMAND: ..." on stderr naming the
//                 option or argument ("unknown option --x (see brickfs
//                 COMMAND --help)", "unexpected argument x", "--unit expects
//                 a value (see ...)"), exit 2 (kExitUsage).
// Values are taken as text and checked by the subcommand, whose messages say
// what a value must look like ("--shape expects Z,Y,X").
//
// Thread-safety: an ArgParser is used by one thread.
#ifndef BRICKFS_CLI_ARGS_H_
#define BRICKFS_CLI_ARGS_H_

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

namespace brickfs {

// The exit code of a usage error, for every subcommand.
inline constexpr int kExitUsage = 2;

class ArgParser {
 public:
  // `command` names the subcommand in messages ("create"); `help` is
  // printed for -h/--help.
  ArgParser(std::string command, const char* help);

  CLI::App& app() { return app_; }

  // Parses a subcommand's arguments (without the subcommand itself).
  // nullopt: parsed, the options hold their values. Else the exit code to
  // return at once: 0 after the help, kExitUsage after the message.
  std::optional<int> Parse(const std::vector<std::string>& args);

  // Prints "brickfs: `msg`" to stderr; returns kExitUsage.
  static int Usage(const std::string& msg);

 private:
  std::string command_;
  const char* help_;
  CLI::App app_;
};

}  // namespace brickfs

#endif  // BRICKFS_CLI_ARGS_H_
