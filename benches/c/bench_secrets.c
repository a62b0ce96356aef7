/* st_secrets_get through the C ABI, from C: an environment key and a key from
   the (cached) secrets file. Prints JSON lines {"workload", "name",
   "median_ns"}: the median of 31 batches. Run by scripts/bench.sh secrets,
   which passes the secrets file as argv[1] and sets ST_BENCH_ENV_TOKEN.
   With --first-get FILE KEY: one manager on FILE and its first get of KEY,
   printed as {"ns", "rss_kb"} (the time from st_secrets_new to the answer,
   and the process's peak resident memory); benches/python/bench_first_get.py
   runs it. */
#define _POSIX_C_SOURCE 200809L
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

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "--first-get") == 0) return first_get(argv[2], argv[3]);
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
