/* Secret memory through the C ABI: a process holding 100 values (a secrets
   file of 100 random tokens, every one got, 10 returned buffers still held)
   is dumped by gdb's gcore, and no value may be in the core; a control
   value the test keeps in ordinary heap memory must be (the dump and the
   search work). Then the same in a forked child, and in a child whose
   mlock is refused (RLIMIT_MEMLOCK 0 and no CAP_IPC_LOCK): it must still
   answer every get.

   The test itself keeps the expected values only in memory it marks
   MADV_DONTDUMP, and writes the file with write(2) from there: a stdio
   buffer would leave them in its own heap. Plain only (no ASan or valgrind
   variant): both change what memory holds, and gcore cannot attach under
   valgrind. */
#define _GNU_SOURCE /* memmem, MADV_DONTDUMP, prctl */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include "secrets_util.h"

#define N 100
#define LEN 40
#define HELD 10

static char *values;   /* N values of LEN bytes, in memory left out of dumps */
static char *document; /* the secrets file's text, there too */

static void make_values(void) {
  size_t size = 1 << 16;
  values = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(values != MAP_FAILED);
  CHECK(madvise(values, size, MADV_DONTDUMP) == 0);
  document = values + N * LEN;
  int fd = open("/dev/urandom", O_RDONLY);
  CHECK(fd >= 0);
  unsigned char raw[N * LEN];
  CHECK(read(fd, raw, sizeof raw) == (ssize_t)sizeof raw);
  close(fd);
  static const char abc[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  for (int i = 0; i < N * LEN; i++) values[i] = abc[raw[i] % 36];
  memset(raw, 0, sizeof raw);
  size_t o = 0;
  document[o++] = '{';
  for (int i = 0; i < N; i++) {
    o += (size_t)sprintf(document + o, "%s\"key%03d\": \"", i ? ", " : "", i);
    memcpy(document + o, values + i * LEN, LEN);
    o += LEN;
    document[o++] = '"';
  }
  document[o++] = '}';
  document[o] = 0;
}

/* Dumps this process with gcore into `prefix`.PID and reads the core. */
static unsigned char *dump_self(const char *prefix, size_t *len) {
  char pid[32], path[600];
  snprintf(pid, sizeof pid, "%d", (int)getpid());
  prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0); /* Yama: let gcore attach */
  pid_t child = fork();
  CHECK(child >= 0);
  if (child == 0) {
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    execlp("gcore", "gcore", "-o", prefix, pid, (char *)NULL);
    _exit(127);
  }
  int status = 0;
  CHECK(waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  snprintf(path, sizeof path, "%s.%s", prefix, pid);
  FILE *f = fopen(path, "rb");
  CHECK(f != NULL);
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  *len = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *core = malloc(*len);
  CHECK(core != NULL && fread(core, 1, *len, f) == *len);
  fclose(f);
  remove(path);
  return core;
}

/* How many of the N values (raw) the core holds. */
static int hits_in(const unsigned char *core, size_t len) {
  int hits = 0;
  for (int i = 0; i < N; i++)
    if (memmem(core, len, values + i * LEN, LEN)) hits++;
  return hits;
}

/* Gets every value and checks it; returns how many were right. */
static int get_all(st_secrets *m, st_buf **held) {
  int right = 0;
  for (int i = 0; i < N; i++) {
    char key[16];
    snprintf(key, sizeof key, "key%03d", i);
    st_buf *b = NULL;
    if (st_secrets_get(m, key, &b, NULL) != ST_OK) continue;
    right += st_buf_len(b) == LEN && memcmp(st_buf_data(b), values + i * LEN, LEN) == 0;
    if (held && i < HELD)
      held[i] = b; /* a returned buffer the caller still holds */
    else
      st_buf_free(b);
  }
  return right;
}

/* Drops CAP_IPC_LOCK from the effective set and the lock limit to 0. */
static int refuse_mlock(void) {
  struct rlimit none = {0, 0};
  if (setrlimit(RLIMIT_MEMLOCK, &none) != 0) return 0;
  struct {
    uint32_t version;
    int pid;
  } header = {0x20080522, 0};
  struct {
    uint32_t effective, permitted, inheritable;
  } data[2];
  if (syscall(SYS_capget, &header, data) != 0) return 0;
  data[0].effective &= ~(1u << 14); /* CAP_IPC_LOCK */
  if (syscall(SYS_capset, &header, data) != 0) return 0;
  void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  int refused = mlock(p, 4096) != 0;
  munmap(p, 4096);
  return refused;
}

int main(void) {
  make_values();
  char *dir = make_temp_dir();
  char file[600], prefix[600];
  snprintf(file, sizeof file, "%s/secrets.json", dir);
  snprintf(prefix, sizeof prefix, "%s/core", dir);
  int fd = open(file, O_WRONLY | O_CREAT | O_EXCL, 0600);
  CHECK(fd >= 0);
  size_t doc_len = strlen(document);
  CHECK(write(fd, document, doc_len) == (ssize_t)doc_len);
  close(fd);
  memset(document, 0, doc_len);

  st_secrets *m = manager_on(file, "ST_C_COREDUMP");
  st_buf *held[HELD] = {0};
  CHECK(get_all(m, held) == N);
  /* The control: one value copied to ordinary heap memory by the test. */
  char *control = malloc(LEN);
  CHECK(control != NULL);
  memcpy(control, values + 7 * LEN, LEN);

  size_t len = 0;
  unsigned char *core = dump_self(prefix, &len);
  CHECK(core != NULL && len > 100000);
  int hits = core ? hits_in(core, len) : -1;
  printf("core of a process holding %d values (%d returned buffers held): %zu bytes, %d "
         "values in it (the control, copied by the test: 1 expected)\n",
         N, HELD, len, hits);
  CHECK(hits == 1); /* the control alone */
  free(core);
  memset(control, 0, LEN);
  free(control);

  /* A forked child: the cache it inherited answers, its core holds none. */
  pid_t child = fork();
  CHECK(child >= 0);
  if (child == 0) {
    int ok = get_all(m, NULL) == N;
    size_t clen = 0;
    unsigned char *ccore = dump_self(prefix, &clen);
    ok = ok && ccore && hits_in(ccore, clen) == 0;
    free(ccore);
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0);

  /* mlock refused: every get still answers, from a new manager too. */
  child = fork();
  CHECK(child >= 0);
  if (child == 0) {
    if (!refuse_mlock()) _exit(3);
    st_secrets *fresh = manager_on(file, "ST_C_COREDUMP2");
    int ok = get_all(fresh, NULL) == N && get_all(m, NULL) == N;
    st_secrets_free(fresh);
    _exit(ok ? 0 : 1);
  }
  CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);

  for (int i = 0; i < HELD; i++) st_buf_free(held[i]);
  st_secrets_free(m);
  printf("test_coredump: %s\n", st_test_failures ? "FAILED" : "ok");
  return st_test_failures ? 1 : 0;
}
