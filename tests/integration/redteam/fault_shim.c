// LD_PRELOAD fault injection for brickfs red-team repros: when the daemon is
// about to rename a shard's "*.tmp" file (or truncate the journal to 0), it
// touches $RT_MARK and sleeps $RT_SLEEP seconds first, so a test can kill -9
// it inside that window.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/types.h>

static void mark_and_sleep(const char* what) {
  const char* m = getenv("RT_MARK");
  if (m) { int fd = open(m, O_WRONLY | O_CREAT | O_APPEND, 0644); if (fd >= 0) { write(fd, what, strlen(what)); write(fd, "\n", 1); close(fd); } }
  const char* s = getenv("RT_SLEEP");
  sleep(s ? atoi(s) : 10);
}

int rename(const char* a, const char* b) {
  static int (*real)(const char*, const char*);
  if (!real) real = dlsym(RTLD_NEXT, "rename");
  const char* want = getenv("RT_RENAME");   // substring of the source path
  size_t n = strlen(a);
  if (want && n > 4 && strcmp(a + n - 4, ".tmp") == 0 && strstr(a, want)) mark_and_sleep(a);
  return real(a, b);
}

int ftruncate(int fd, off_t len) {
  static int (*real)(int, off_t);
  if (!real) real = dlsym(RTLD_NEXT, "ftruncate");
  int rc = real(fd, len);
  if (getenv("RT_JTRUNC") && len == 0) {
    char p[64], t[4096]; snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    ssize_t k = readlink(p, t, sizeof t - 1);
    if (k > 0) { t[k] = 0; if (strstr(t, "/.brickfs/journal")) mark_and_sleep(t); }
  }
  return rc;
}

// RT_SYNCGAP=ms: after writing a 40-byte sync-log record header, pause (widens
// the window between the header and the data of SyncLog::Append).
ssize_t pwrite(int fd, const void* buf, size_t n, off_t off) {
  static ssize_t (*real)(int, const void*, size_t, off_t);
  if (!real) real = dlsym(RTLD_NEXT, "pwrite");
  ssize_t rc = real(fd, buf, n, off);
  const char* gap = getenv("RT_SYNCGAP");
  if (gap && n == 40) {
    char p[64], t[4096]; snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    ssize_t k = readlink(p, t, sizeof t - 1);
    if (k > 0) { t[k] = 0; if (strstr(t, "/.brickfs/synced/")) usleep(atoi(gap) * 1000); }
  }
  return rc;
}
ssize_t pwrite64(int fd, const void* buf, size_t n, off_t off) { return pwrite(fd, buf, n, off); }
