#include "mount/fuse_session.h"

#include <iostream>

namespace brickfs {

FuseSession::~FuseSession() {
  if (mounted_) fuse_unmount(f_);
  Destroy();
}

bool FuseSession::Mount(const MountConfig& config, const fuse_operations* ops, size_t ops_size,
                        void* fs) {
  const std::string fuse_opts = FuseOptionString(config);
  argv_s_ = {"brickfs", "-o", fuse_opts};
  for (auto& a : argv_s_) argv_.push_back(a.data());
  args_ = FUSE_ARGS_INIT(static_cast<int>(argv_.size()), argv_.data());
  f_ = fuse_new(&args_, ops, ops_size, fs);
  if (!f_) {
    std::cerr << "brickfs: libfuse rejected the options (" << fuse_opts << ")\n";
    return false;
  }
  if (fuse_mount(f_, config.mountpoint.c_str()) != 0) {
    std::cerr << "brickfs: mounting " << config.mountpoint
              << " failed (is fuse3 installed and /dev/fuse usable?)\n";
    Destroy();
    return false;
  }
  mounted_ = true;
  return true;
}

bool FuseSession::Daemonize(bool foreground) {
  if (fuse_daemonize(foreground ? 1 : 0) == 0) return true;
  fuse_unmount(f_);
  mounted_ = false;
  Destroy();
  return false;
}

int FuseSession::Loop() {
  fuse_session* se = fuse_get_session(f_);
  fuse_set_signal_handlers(se);
  fuse_loop_config* loop = fuse_loop_cfg_create();
  fuse_loop_cfg_set_max_threads(loop, 16);
  const int rc = fuse_loop_mt(f_, loop);
  fuse_loop_cfg_destroy(loop);
  fuse_remove_signal_handlers(se);
  fuse_unmount(f_);
  mounted_ = false;
  return rc;
}

void FuseSession::Destroy() {
  if (f_) {
    fuse_destroy(f_);
    f_ = nullptr;
  }
  if (!argv_.empty()) {
    fuse_opt_free_args(&args_);
    argv_.clear();
  }
}

}  // namespace brickfs
