/* st_secrets_get through the C ABI, from C: an environment key and a key from
   the (cached) secrets file. Prints JSON lines {"workload", "name",
   "median_ns"}: the median of 31 batches. Run by scripts/bench.sh secrets,
   which passes the secrets file as argv[1] and sets ST_BENCH_ENV_TOKEN.
   With --first-get FILE KEY: one manager on FILE and its first get of KEY,
   printed as {"ns", "rss_kb"} (the time from st_secrets_new to the answer,
   and the process's peak resident memory); benches/python/bench_first_get.py
   runs it.
   With --stall CONFIG_JSON EXPIRIES TTL_S: 4 threads get HF_TOKEN (every
   50 us or so) from a manager on a remote server for EXPIRIES times TTL_S
   seconds, after a first get that gave it a value; prints {"calls", "p50_ns",
   "p99_ns", "max_ns"} of every call; benches/python/bench_stall.py runs it
   against a server that answers 2 s late. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include "bench_util.h"
#include "st_secrets.h"

#define BATCH_OPS 100000

static volatile size_t sink;

static void measure(const char *workload, const char *name, st_secrets *m, const char *key) {
  double per_op[BATCHES];
  for (int b = 0; b < BATCHES; b++) {
    double t0 = now_ns();
    for (int i = 0; i < BATCH_OPS; i++) {
      st_buf *v = NULL;
      if (st_secrets_get(m, key, &v, NULL) != ST_OK) {
        fprintf(stderr, "bench: %s not found\n", key);
        exit(1);
      }
      sink += st_buf_len(v);
      st_buf_free(v);
    }
    per_op[b] = (now_ns() - t0) / BATCH_OPS;
  }
  printf("{\"workload\": \"%s\", \"name\": \"%s\", \"median_ns\": %.2f}\n", workload, name,
         median(per_op));
}

static int first_get(const char *path, const char *key) {
  char config[1024];
  snprintf(config, sizeof config, "{\"file_path\": \"%s\"}", path);
  double t0 = now_ns();
  st_secrets *m = NULL;
  st_buf *v = NULL;
  if (st_secrets_new(config, &m, NULL) != ST_OK || st_secrets_get(m, key, &v, NULL) != ST_OK) {
    fprintf(stderr, "bench: no %s in %s\n", key, path);
    return 1;
  }
  double ns = now_ns() - t0;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("{\"ns\": %.0f, \"rss_kb\": %ld}\n", ns, ru.ru_maxrss);
  st_buf_free(v);
  st_secrets_free(m);
  return 0;
}

#define STALL_THREADS 4

struct stall_thread {
  st_secrets *m;
  double until;
  double *ns;
  size_t n, cap;
  int failed;
};

static void *stall_reader(void *arg) {
  struct stall_thread *t = arg;
  struct timespec pause = {0, 50000};
  while (now_ns() < t->until) {
    st_buf *v = NULL;
    double t0 = now_ns();
    st_result rc = st_secrets_get(t->m, "HF_TOKEN", &v, NULL);
    double ns = now_ns() - t0;
    if (rc != ST_OK) t->failed++;
    st_buf_free(v);
    if (t->n == t->cap) {
      t->cap = t->cap ? 2 * t->cap : 1 << 16;
      t->ns = realloc(t->ns, t->cap * sizeof *t->ns);
      if (!t->ns) exit(1);
    }
    t->ns[t->n++] = ns;
    nanosleep(&pause, NULL);
  }
  return NULL;
}

static int stall(const char *config, int expiries, double ttl_s) {
  st_secrets *m = NULL;
  st_buf *v = NULL;
  if (st_secrets_new(config, &m, NULL) != ST_OK || st_secrets_get(m, "HF_TOKEN", &v, NULL) != ST_OK) {
    fprintf(stderr, "bench: no HF_TOKEN from the server\n");
    return 1;
  }
  st_buf_free(v);
  struct stall_thread t[STALL_THREADS] = {0};
  pthread_t th[STALL_THREADS];
  double until = now_ns() + expiries * ttl_s * 1e9;
  for (int i = 0; i < STALL_THREADS; i++) {
    t[i].m = m;
    t[i].until = until;
    if (pthread_create(&th[i], NULL, stall_reader, &t[i]) != 0) return 1;
  }
  size_t total = 0;
  int failed = 0;
  for (int i = 0; i < STALL_THREADS; i++) {
    pthread_join(th[i], NULL);
    total += t[i].n;
    failed += t[i].failed;
  }
  double *all = malloc(total * sizeof *all);
  if (!all) return 1;
  size_t k = 0;
  for (int i = 0; i < STALL_THREADS; i++) {
    memcpy(all + k, t[i].ns, t[i].n * sizeof *all);
    k += t[i].n;
    free(t[i].ns);
  }
  qsort(all, total, sizeof *all, cmp_double);
  printf("{\"calls\": %zu, \"failed\": %d, \"p50_ns\": %.0f, \"p99_ns\": %.0f, \"max_ns\": %.0f}\n",
         total, failed, all[total / 2], all[total * 99 / 100], all[total - 1]);
  free(all);
  st_secrets_free(m);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "--first-get") == 0) return first_get(argv[2], argv[3]);
  if (argc == 5 && strcmp(argv[1], "--stall") == 0) return stall(argv[2], atoi(argv[3]), atof(argv[4]));
  if (argc != 2) return 2;
  char config[1024];
  snprintf(config, sizeof config, "{\"file_path\": \"%s\"}", argv[1]);
  st_secrets *m = NULL;
  if (st_secrets_new(config, &m, NULL) != ST_OK) return 1;
  measure("env_key", "st_secrets_c_abi", m, "ST_BENCH_ENV_TOKEN");
  measure("file_key", "st_secrets_c_abi", m, "HF_TOKEN");
  st_secrets_free(m);
  return 0;
}
