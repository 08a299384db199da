// The brickfs binary: every subcommand, and mount.brickfs by argv[0].
#include "cli/cli.h"

int main(int argc, char** argv) { return brickfs::RunCli(argc, argv); }
