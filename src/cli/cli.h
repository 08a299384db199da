// The brickfs command line. Each subcommand is a function that takes its
// arguments and returns the process exit code, so tests can call it
// in-process. Status -> exit code/message translation happens only here.
// The arguments of each subcommand are parsed by CLI11 through ArgParser
// (args.h: the help texts and usage messages, exit 2); RunCli picks the
// subcommand (or mount.brickfs by argv[0], or the fstab form) by hand.
//
//   brickfs create STORE --shape Z,Y,X --dtype T [--block z,y,x] [--brick z,y,x] [--zstd-level N]
//   brickfs mount  STORE MOUNT [-o opts] [-f]
//   brickfs umount MOUNT [--timeout S]
//   brickfs info   STORE|MOUNT [--json]
//   brickfs status MOUNT [--watch]
//   brickfs fsck   STORE [--repair] [--deep] [--json]   (cmd_fsck.cc)
//   brickfs compact STORE [--dry-run]          (cmd_compact.cc)
//   brickfs cache info | clear [URL]           (cmd_cache.cc)
//   mount.brickfs  STORE MOUNT [-o opts]      (argv[0] dispatch, for mount -t)
#ifndef BRICKFS_CLI_CLI_H_
#define BRICKFS_CLI_CLI_H_

#include <string>
#include <vector>

namespace brickfs {

int RunCli(int argc, char** argv);

int CmdCreate(const std::vector<std::string>& args);
int CmdMount(const std::vector<std::string>& args);
int CmdUmount(const std::vector<std::string>& args);
int CmdInfo(const std::vector<std::string>& args);
int CmdStatus(const std::vector<std::string>& args);
// Exit codes: 0 clean, 1 problems found and all repaired, 4 problems left,
// 8 could not run (no store, unreadable metadata, in use by a daemon).
int CmdFsck(const std::vector<std::string>& args);
// Exit codes: 0 done, 4 some shards left alone, 8 could not run.
int CmdCompact(const std::vector<std::string>& args);
// The cache of remote stores. Exit codes: 0 done, 1 failed, 2 usage.
int CmdCache(const std::vector<std::string>& args);

}  // namespace brickfs

#endif  // BRICKFS_CLI_CLI_H_
