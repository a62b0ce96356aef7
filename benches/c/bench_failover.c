/* The ranks of the leader-failover soak (benches/failover/soak.py runs
 * them while it writes the secret and kills the leader): PROCS processes of
 * THREADS threads each read HF_TOKEN through one manager, every PERIOD_MS,
 * for SECONDS; each change event makes one thread call st_secrets_refresh.
 * Through the C API only, so the same program runs against an older build
 * (LD_LIBRARY_PATH).
 *
 *   bench_failover SECONDS PROCS THREADS PERIOD_MS OUT_DIR
 *
 * The manager's configuration is ST_FAILOVER_CONFIG (JSON); AppRole from
 * VAULT_ROLE_ID / VAULT_SECRET_ID. Each process writes OUT_DIR/rank-N.json:
 * its gets, refreshes and failures, the slowest get after the first (a
 * cached get), the slowest refresh, the reads of a version older than one
 * already announced to it, and the provider's status line. */
#define _POSIX_C_SOURCE 200809L
#include "bench_util.h"
#include "st_secrets.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static st_secrets *manager;
static double run_until_ns;
static long period_ms;
static atomic_long announced;       /* highest version a change event named */
static atomic_int refresh_wanted;
static atomic_long gets, failed_gets, refreshes, failed_refreshes, stale_reads, slow_gets;
static _Atomic double slowest_get_ns, slowest_refresh_ns, slowest_first_get_ns;
static char first_error[256];
static pthread_mutex_t error_lock = PTHREAD_MUTEX_INITIALIZER;

static void atomic_max(_Atomic double *slot, double v) {
  double seen = atomic_load(slot);
  while (v > seen && !atomic_compare_exchange_weak(slot, &seen, v)) {
  }
}

/* The number after "version": in an info JSON ("3" or 3); -1 if none. */
static long version_of(const char *json) {
  const char *p = json ? strstr(json, "\"version\":") : NULL;
  if (!p) return -1;
  p += strlen("\"version\":");
  while (*p == ' ' || *p == '"') p++;
  if (*p < '0' || *p > '9') return -1;
  return strtol(p, NULL, 10);
}

static void note_error(st_error *err) {
  pthread_mutex_lock(&error_lock);
  if (!first_error[0]) snprintf(first_error, sizeof first_error, "%s", st_result_name(st_error_code(err)));
  pthread_mutex_unlock(&error_lock);
  st_error_free(err);
}

static void on_change(void *user_data, const char *key, const char *info_json) {
  (void)user_data, (void)key;
  long v = version_of(info_json);
  long seen = atomic_load(&announced);
  while (v > seen && !atomic_compare_exchange_weak(&announced, &seen, v)) {
  }
  atomic_store(&refresh_wanted, 1);
}

static void *reader(void *arg) {
  int first = arg != NULL;
  struct timespec pause = {period_ms / 1000, (period_ms % 1000) * 1000000L};
  while (now_ns() < run_until_ns) {
    int expected = 1;
    if (atomic_compare_exchange_strong(&refresh_wanted, &expected, 0)) {
      st_buf *value = NULL;
      bool changed = false;
      st_error *err = NULL;
      double t0 = now_ns();
      st_result rc = st_secrets_refresh(manager, "HF_TOKEN", &value, &changed, &err);
      atomic_max(&slowest_refresh_ns, now_ns() - t0);
      atomic_fetch_add(&refreshes, 1);
      if (rc != ST_OK) atomic_fetch_add(&failed_refreshes, 1), note_error(err);
      st_buf_free(value);
    }
    long before = atomic_load(&announced);
    st_buf *value = NULL, *info = NULL;
    st_error *err = NULL;
    double t0 = now_ns();
    st_result rc = st_secrets_get_with_version(manager, "HF_TOKEN", &value, &info, &err);
    double took = now_ns() - t0;
    atomic_fetch_add(&gets, 1);
    if (first) {
      atomic_max(&slowest_first_get_ns, took);
      first = 0;
    } else {
      atomic_max(&slowest_get_ns, took);
      if (took > 100e3) atomic_fetch_add(&slow_gets, 1);
    }
    if (rc != ST_OK) {
      atomic_fetch_add(&failed_gets, 1);
      note_error(err);
    } else if (version_of(st_buf_str(info)) < before) {
      atomic_fetch_add(&stale_reads, 1);
    }
    st_buf_free(value);
    st_buf_free(info);
    nanosleep(&pause, NULL);
  }
  return NULL;
}

static int rank(int n, int threads, const char *out_dir) {
  st_error *err = NULL;
  const char *config = getenv("ST_FAILOVER_CONFIG");
  if (st_secrets_new(config ? config : "{}", &manager, &err) != ST_OK) {
    fprintf(stderr, "rank %d: st_secrets_new: %s\n", n, st_error_message(err));
    return 1;
  }
  uint64_t id;
  st_secrets_on_change(manager, on_change, NULL, NULL, &id, NULL);
  pthread_t t[64];
  if (threads > 64) threads = 64;
  /* The first get of the process (the cold one) is timed apart. */
  st_buf *value = NULL, *info = NULL;
  double t0 = now_ns();
  st_result rc = st_secrets_get_with_version(manager, "HF_TOKEN", &value, &info, &err);
  slowest_first_get_ns = now_ns() - t0;
  atomic_fetch_add(&gets, 1);
  if (rc != ST_OK) atomic_fetch_add(&failed_gets, 1), note_error(err);
  st_buf_free(value);
  st_buf_free(info);
  for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, reader, NULL);
  for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
  st_buf *status = NULL;
  st_secrets_providers_json(manager, &status, NULL);
  char path[4096];
  snprintf(path, sizeof path, "%s/rank-%d.json", out_dir, n);
  FILE *f = fopen(path, "w");
  if (!f) return 1;
  fprintf(f,
          "{\"gets\": %ld, \"failed_gets\": %ld, \"refreshes\": %ld, \"failed_refreshes\": %ld, "
          "\"stale_reads\": %ld, \"slow_gets\": %ld, \"slowest_get_us\": %.1f, "
          "\"slowest_first_get_ms\": %.1f, \"slowest_refresh_ms\": %.1f, \"first_error\": \"%s\", "
          "\"providers\": %s}\n",
          atomic_load(&gets), atomic_load(&failed_gets), atomic_load(&refreshes),
          atomic_load(&failed_refreshes), atomic_load(&stale_reads), atomic_load(&slow_gets),
          atomic_load(&slowest_get_ns) / 1e3, slowest_first_get_ns / 1e6,
          atomic_load(&slowest_refresh_ns) / 1e6, first_error,
          status ? st_buf_str(status) : "null");
  fclose(f);
  st_buf_free(status);
  st_secrets_free(manager);
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: bench_failover SECONDS PROCS THREADS PERIOD_MS OUT_DIR\n");
    return 2;
  }
  double seconds = atof(argv[1]);
  int procs = atoi(argv[2]), threads = atoi(argv[3]);
  period_ms = atol(argv[4]);
  /* Forked before the library is touched: each rank is a fresh process. */
  run_until_ns = now_ns() + seconds * 1e9;
  for (int n = 0; n < procs; n++) {
    pid_t pid = fork();
    if (pid == 0) _exit(rank(n, threads, argv[5]));
    if (pid < 0) return 1;
  }
  int failed = 0, status;
  while (wait(&status) > 0) failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
  return failed;
}
