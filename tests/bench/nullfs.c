/* A minimal FUSE file system for measuring the FUSE read ceiling: one file,
 * /zero, of the size given by ZERO_SIZE (bytes), whose reads return zeros.
 * Built and run by read_bench.py:  nullfs MOUNT -f   (libfuse 3 API). */
#define FUSE_USE_VERSION 314
#include <errno.h>
#include <fuse3/fuse.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static off_t size;

static void *null_init(struct fuse_conn_info *conn, struct fuse_config *cfg) {
  conn->max_readahead = 1 << 20;
  cfg->attr_timeout = 1.0;
  cfg->entry_timeout = 1.0;
  return NULL;
}

static int null_getattr(const char *path, struct stat *st, struct fuse_file_info *fi) {
  (void)fi;
  memset(st, 0, sizeof *st);
  if (strcmp(path, "/") == 0) {
    st->st_mode = S_IFDIR | 0755;
    st->st_nlink = 2;
    return 0;
  }
  if (strcmp(path, "/zero") == 0) {
    st->st_mode = S_IFREG | 0444;
    st->st_nlink = 1;
    st->st_size = size;
    return 0;
  }
  return -ENOENT;
}

static int null_open(const char *path, struct fuse_file_info *fi) {
  (void)fi;
  return strcmp(path, "/zero") == 0 ? 0 : -ENOENT;
}

static int null_read(const char *path, char *buf, size_t n, off_t off, struct fuse_file_info *fi) {
  (void)path;
  (void)fi;
  if (off >= size) return 0;
  if ((off_t)n > size - off) n = (size_t)(size - off);
  memset(buf, 0, n);
  return (int)n;
}

static const struct fuse_operations ops = {
    .init = null_init, .getattr = null_getattr, .open = null_open, .read = null_read};

int main(int argc, char *argv[]) {
  const char *s = getenv("ZERO_SIZE");
  size = s ? atoll(s) : (1 << 20);
  return fuse_main(argc, argv, &ops, NULL);
}
