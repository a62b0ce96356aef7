/* Several processes on one secrets file: concurrent savers lose no update,
   and a writer killed mid-save leaves a file that parses and holds either the
   old or the new content. */
#define _XOPEN_SOURCE 700 /* POSIX 2008 with XSI: nftw in secrets_util.h */
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include "secrets_util.h"

#define CHILDREN 6

static char file[512];

static void child_saves(int id, int keys) {
  st_secrets *m = manager_on(file, NULL);
  char key[64], value[64];
  int failures = 0;
  for (int i = 0; i < keys; i++) {
    snprintf(key, sizeof key, "proc%d_key%d", id, i);
    snprintf(value, sizeof value, "value-%d-%d", id, i);
    if (st_secrets_set(m, key, value, NULL) != ST_OK) failures++;
  }
  st_secrets_free(m);
  _exit(failures ? 1 : 0);
}

static void test_concurrent_processes(void) {
  const char *dir = make_temp_dir();
  snprintf(file, sizeof file, "%s/secrets.json", dir);
  int keys = (int)st_test_scale(20);
  pid_t pids[CHILDREN];
  for (int c = 0; c < CHILDREN; c++) {
    pids[c] = fork();
    CHECK(pids[c] >= 0);
    if (pids[c] == 0) child_saves(c, keys);
  }
  for (int c = 0; c < CHILDREN; c++) {
    int status = 0;
    waitpid(pids[c], &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  st_secrets *m = manager_on(file, NULL);
  char key[64], value[64];
  for (int c = 0; c < CHILDREN; c++) {
    for (int i = 0; i < keys; i++) {
      snprintf(key, sizeof key, "proc%d_key%d", c, i);
      snprintf(value, sizeof value, "value-%d-%d", c, i);
      if (!value_is(m, key, value)) {
        fprintf(stderr, "lost update: %s\n", key);
        st_test_failures++;
      }
    }
  }
  CHECK(file_mode(file) == 0600);
  st_secrets_free(m);
}

static void writer_forever(void) {
  st_secrets *m = manager_on(file, NULL);
  char value[8192];
  for (unsigned long n = 0;; n++) {
    /* Large values so that a kill often lands inside a write. */
    memset(value, 'a' + (int)(n % 26), sizeof value - 1);
    value[sizeof value - 1] = 0;
    char gen[32];
    snprintf(gen, sizeof gen, "%lu", n);
    st_secrets_set(m, "BIG", value, NULL);
    st_secrets_set(m, "GEN", gen, NULL);
  }
}

static void test_killed_writers(void) {
  const char *dir = make_temp_dir();
  snprintf(file, sizeof file, "%s/secrets.json", dir);
  write_file(file, "{\"KEEP\": \"kept\"}");
  long rounds = st_test_scale(25);
  for (long r = 0; r < rounds; r++) {
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) writer_forever();
    sleep_ms(5 + (r * 7) % 40);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    /* The file always parses and holds a complete state. */
    st_secrets *m = manager_on(file, NULL);
    st_result rc;
    const char *keep = value_of(m, "KEEP", &rc);
    CHECK(rc == ST_OK && keep && strcmp(keep, "kept") == 0);
    st_buf *big = NULL;
    rc = st_secrets_get(m, "BIG", &big, NULL);
    if (rc == ST_OK) {
      const uint8_t *data = st_buf_data(big);
      size_t len = st_buf_len(big);
      CHECK(len == 8191);
      for (size_t i = 1; i < len; i++) {
        if (data[i] != data[0]) {
          st_test_failures++;
          fprintf(stderr, "torn value in round %ld\n", r);
          break;
        }
      }
      st_buf_free(big);
    } else {
      CHECK(rc == ST_NOT_FOUND);
    }
    st_secrets_free(m);
  }
  /* The next successful save removes temporary files left by killed writers. */
  st_secrets *m = manager_on(file, NULL);
  CHECK(st_secrets_set(m, "AFTER", "x", NULL) == ST_OK);
  st_secrets_free(m);
  DIR *d = opendir(dir);
  struct dirent *e;
  int leftovers = 0;
  while (d && (e = readdir(d)) != NULL) {
    if (strstr(e->d_name, ".tmp.") != NULL) leftovers++;
  }
  if (d) closedir(d);
  CHECK(leftovers == 0);
  CHECK(file_mode(file) == 0600);
}

int main(void) {
  test_concurrent_processes();
  test_killed_writers();
  return st_test_finish("test_secrets_processes");
}
