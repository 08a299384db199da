/* A minimal FUSE file system for measuring the FUSE *write* ceiling: files
 * created under /z are accepted and their bytes discarded (only the size is
 * kept, so that cp's fstat and close see a normal file). It answers with the
 * same settings brickfs uses (libfuse 3 high-level API, max_write 1 MiB,
 * direct_io, entry/attr/negative timeouts of 1 s, multi-threaded loop), so
 * `cp stack/* MNT/z/` here costs what the FUSE round trips alone cost.
 * Built and run by ingest_bench.py:  sinkfs MOUNT -f -o max_threads=16 */
#define FUSE_USE_VERSION 314
#include <errno.h>
#include <fuse3/fuse.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_FILES 65536

static struct {
  char *name;
  off_t size;
} files[MAX_FILES];
static int nfiles;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static int find(const char *path) { /* caller holds mu */
  for (int i = 0; i < nfiles; ++i)
    if (strcmp(files[i].name, path) == 0) return i;
  return -1;
}

static void *sink_init(struct fuse_conn_info *conn, struct fuse_config *cfg) {
  conn->max_write = 1 << 20;
  conn->max_readahead = 1 << 20;
  cfg->entry_timeout = 1.0;
  cfg->attr_timeout = 1.0;
  cfg->negative_timeout = 1.0;
  return NULL;
}

static int sink_getattr(const char *path, struct stat *st, struct fuse_file_info *fi) {
  (void)fi;
  memset(st, 0, sizeof *st);
  st->st_blksize = 1 << 20; /* as brickfs: cp then writes 1 MiB per request */
  if (strcmp(path, "/") == 0 || strcmp(path, "/z") == 0) {
    st->st_mode = S_IFDIR | 0755;
    st->st_nlink = 2;
    return 0;
  }
  pthread_mutex_lock(&mu);
  int i = find(path);
  if (i >= 0) {
    st->st_mode = S_IFREG | 0644;
    st->st_nlink = 1;
    st->st_size = files[i].size;
  }
  pthread_mutex_unlock(&mu);
  return i >= 0 ? 0 : -ENOENT;
}

static int sink_create(const char *path, mode_t mode, struct fuse_file_info *fi) {
  (void)mode;
  if (strncmp(path, "/z/", 3) != 0) return -EACCES;
  fi->direct_io = 1;
  pthread_mutex_lock(&mu);
  int err = 0;
  if (find(path) < 0) {
    if (nfiles == MAX_FILES) {
      err = -ENOSPC;
    } else {
      files[nfiles].name = strdup(path);
      files[nfiles].size = 0;
      ++nfiles;
    }
  }
  pthread_mutex_unlock(&mu);
  return err;
}

static int sink_open(const char *path, struct fuse_file_info *fi) {
  fi->direct_io = 1;
  pthread_mutex_lock(&mu);
  int i = find(path);
  pthread_mutex_unlock(&mu);
  return i >= 0 ? 0 : -ENOENT;
}

static int sink_write(const char *path, const char *buf, size_t n, off_t off,
                      struct fuse_file_info *fi) {
  (void)buf;
  (void)fi;
  pthread_mutex_lock(&mu);
  int i = find(path);
  if (i >= 0 && off + (off_t)n > files[i].size) files[i].size = off + (off_t)n;
  pthread_mutex_unlock(&mu);
  return i >= 0 ? (int)n : -ENOENT;
}

static int sink_truncate(const char *path, off_t size, struct fuse_file_info *fi) {
  (void)fi;
  pthread_mutex_lock(&mu);
  int i = find(path);
  if (i >= 0) files[i].size = size;
  pthread_mutex_unlock(&mu);
  return i >= 0 ? 0 : -ENOENT;
}

static int sink_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi) {
  (void)path;
  (void)tv;
  (void)fi;
  return 0;
}

static const struct fuse_operations ops = {.init = sink_init,
                                           .getattr = sink_getattr,
                                           .create = sink_create,
                                           .open = sink_open,
                                           .write = sink_write,
                                           .truncate = sink_truncate,
                                           .utimens = sink_utimens};

int main(int argc, char *argv[]) { return fuse_main(argc, argv, &ops, NULL); }
