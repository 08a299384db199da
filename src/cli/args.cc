#include "cli/args.h"

#include <iostream>
#include <utility>

namespace brickfs {

ArgParser::ArgParser(std::string command, const char* help)
    : command_(std::move(command)), help_(help), app_("brickfs " + command_) {
  app_.set_help_flag("-h,--help");
  // Unknown options and surplus arguments are kept (remaining()) so that
  // Parse names them the way every brickfs message does.
  app_.allow_extras();
  app_.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
}

std::optional<int> ArgParser::Parse(const std::vector<std::string>& args) {
  // CLI11 takes the arguments in reverse order (it pops them off the back).
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app_.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    std::cout << help_;
    return 0;
  } catch (const CLI::ArgumentMismatch& e) {
    // "--unit: 1 required TEXT missing": an option given last, without its value.
    const std::string what = e.what();
    const size_t colon = what.find(':');
    if (colon != std::string::npos && what.find(" missing") != std::string::npos) {
      return Usage(command_ + ": " + what.substr(0, colon) + " expects a value (see brickfs " + command_ +
                   " --help)");
    }
    return Usage(command_ + ": " + what + " (see brickfs " + command_ + " --help)");
  } catch (const CLI::ParseError& e) {
    return Usage(command_ + ": " + e.what() + " (see brickfs " + command_ + " --help)");
  }
  const std::vector<std::string> extra = app_.remaining();
  if (extra.empty()) return std::nullopt;
  const std::string& first = extra.front();
  if (first.size() > 1 && first[0] == '-') {
    return Usage(command_ + ": unknown option " + first + " (see brickfs " + command_ + " --help)");
  }
  return Usage(command_ + ": unexpected argument " + first);
}

int ArgParser::Usage(const std::string& msg) {
  std::cerr << "brickfs: " << msg << "\n";
  return kExitUsage;
}

}  // namespace brickfs
