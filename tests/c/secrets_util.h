/* Helpers for the secrets C tests: temp dirs, files, managers, values. */
#ifndef ST_TEST_SECRETS_UTIL_H
#define ST_TEST_SECRETS_UTIL_H

#include <ftw.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "check.h"

/* Removes one entry of a temporary tree (nftw callback, children first). */
static inline int st_test_remove_entry(const char *path, const struct stat *sb, int flag,
                                       struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

static char st_test_dirs[16][512];
static int st_test_dir_count = 0;
static pid_t st_test_dirs_owner = 0;

/* Removes every directory make_temp_dir made (they hold secrets files,
 * credential keys and databases): at exit, whether the test passed or not.
 * (A crash skips this; the test command runs the tests with TMPDIR inside
 * its build directory and removes that too.) */
static inline void st_test_remove_temp_dirs(void) {
  if (getpid() != st_test_dirs_owner) return; /* a forked child's exit() */
  for (int i = 0; i < st_test_dir_count && i < 16; i++) {
    if (st_test_dirs[i][0]) nftw(st_test_dirs[i], st_test_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  }
}

static inline char *make_temp_dir(void) {
  if (st_test_dir_count == 0) {
    st_test_dirs_owner = getpid();
    atexit(st_test_remove_temp_dirs);
  }
  char *t = st_test_dirs[st_test_dir_count++ % 16];
  const char *base = getenv("TMPDIR");
  snprintf(t, sizeof st_test_dirs[0], "%s/st-c-XXXXXX", base && *base ? base : "/tmp");
  CHECK(mkdtemp(t) != NULL);
  return t;
}

static inline void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  CHECK(f != NULL);
  if (!f) return;
  fputs(text, f);
  fclose(f);
}

/* Reads a whole (small) file into a static buffer; "" when missing. */
static inline const char *read_file(const char *path) {
  static char buf[65536];
  buf[0] = 0;
  FILE *f = fopen(path, "r");
  if (!f) return buf;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = 0;
  fclose(f);
  return buf;
}

static inline unsigned file_mode(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) return 0;
  return (unsigned)(st.st_mode & 07777);
}

static inline void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

/* A manager on `file` with env prefix `prefix` (NULL: none). */
static inline st_secrets *manager_on(const char *file, const char *prefix) {
  char config[1024];
  if (prefix)
    snprintf(config, sizeof config, "{\"file_path\": \"%s\", \"env_prefix\": \"%s\"}", file, prefix);
  else
    snprintf(config, sizeof config, "{\"file_path\": \"%s\"}", file);
  st_secrets *m = NULL;
  st_error *err = NULL;
  if (st_secrets_new(config, &m, &err) != ST_OK) {
    fprintf(stderr, "st_secrets_new: %s\n", st_error_message(err));
    st_error_free(err);
  }
  CHECK(m != NULL);
  return m;
}

/* The value of `key` in a static buffer, or NULL (with *rc set) when not ST_OK. */
static inline const char *value_of(st_secrets *m, const char *key, st_result *rc_out) {
  static char buf[4096];
  st_buf *b = NULL;
  st_result rc = st_secrets_get(m, key, &b, NULL);
  if (rc_out) *rc_out = rc;
  if (rc != ST_OK) return NULL;
  snprintf(buf, sizeof buf, "%s", st_buf_str(b));
  st_buf_free(b);
  return buf;
}

static inline int value_is(st_secrets *m, const char *key, const char *expected) {
  const char *v = value_of(m, key, NULL);
  if (expected == NULL) return v == NULL;
  return v != NULL && strcmp(v, expected) == 0;
}

#endif
