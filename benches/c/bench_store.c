/* The provider-config store through the C ABI, from C: a cached
   st_store_get_provider_config against an uncached one (the provider's cache
   entries invalidated before each get, so every call reads SQLite). Prints
   JSON lines; argv[1] is the database (scripts/bench.sh store). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include "bench_util.h"
#include "st_secrets.h"

static void report(const char *workload, double ns) {
  printf("{\"workload\": \"%s\", \"name\": \"st_secrets_c_abi\", \"median_ns\": %.1f}\n", workload, ns);
}

static double run(st_store *s, int invalidate, int ops) {
  double per_op[BATCHES];
  for (int b = 0; b < BATCHES; b++) {
    double t0 = now_ns();
    for (int i = 0; i < ops; i++) {
      if (invalidate) st_invalidate_provider_cache("replicate");
      st_buf *json = NULL;
      if (st_store_get_provider_config(s, "replicate", &json, NULL) != ST_OK) return -1;
      st_buf_free(json);
    }
    per_op[b] = (now_ns() - t0) / ops;
  }
  return median(per_op);
}

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  st_store *s = NULL;
  if (st_store_open(argv[1], &s, NULL) != ST_OK) return 1;
  const char *config =
      "{\"webhook_url\": \"https://example.invalid/hook\", \"cost_limit_amount\": 50.0,"
      " \"hardware_info\": {\"gpu-l40s\": {\"name\": \"L40S (48GB)\", \"cost_per_second\": 0.000975}}}";
  if (st_store_save_provider_config(s, "replicate", config, NULL) != ST_OK) return 1;
  report("cached_get", run(s, 0, 100000));
  report("uncached_get", run(s, 1, 2000));
  st_store_free(s);
  return 0;
}
