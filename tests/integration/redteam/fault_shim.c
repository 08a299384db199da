// LD_PRELOAD fault injection for brickfs red-team repros: when the daemon is
// about to rename (rename or renameat) a shard's "*.tmp" file (or truncate the journal to 0), it
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

// The same for renameat (brickfs renames inside a directory it opened
// without following links): the source's directory comes from its fd.
int renameat(int olddirfd, const char* a, int newdirfd, const char* b) {
  static int (*real)(int, const char*, int, const char*);
  if (!real) real = dlsym(RTLD_NEXT, "renameat");
  const char* want = getenv("RT_RENAME");
  char full[4096] = "";
  if (a[0] != '/' && olddirfd != AT_FDCWD) {
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", olddirfd);
    ssize_t k = readlink(p, full, sizeof full - 1);
    full[k > 0 ? k : 0] = 0;
  }
  size_t used = strlen(full);
  snprintf(full + used, sizeof full - used, "%s%s", used ? "/" : "", a);
  size_t n = strlen(full);
  if (want && n > 4 && strcmp(full + n - 4, ".tmp") == 0 && strstr(full, want)) mark_and_sleep(full);
  return real(olddirfd, a, newdirfd, b);
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
