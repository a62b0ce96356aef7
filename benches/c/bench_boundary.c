/* Instructions per C-ABI call, for callgrind (scripts/bench.sh boundary):
 * N hot st_cache_get_into calls (the bindings' get) and N st_result_name
 * calls (the cheapest entry point: the boundary alone); or, with the
 * argument "get", N hot st_cache_get + st_buf_free (the cache benchmark's
 * hot get); or, with "remote URL TOKEN", N hot st_secrets_get + st_buf_free
 * of a Vault value the manager already holds. Prints nothing
 * timing-related; callgrind counts the instructions. With "cold URL TOKEN",
 * N times a new manager's first get (a new process's), timed: the median
 * in microseconds, as JSON (benches/python/bench_node_cache.py). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "st_secrets.h"

/* The cache benchmark's hot get (benches/c/bench_cache.c): a 32-byte key, a
 * 64-byte value, an owned copy returned and freed. */
static long hot_get(st_cache *c, long n) {
  static const char key[] = "provider:replicate:conf:00000500";
  uint8_t value[64] = {0};
  if (st_cache_set(c, key, value, sizeof value, ST_CACHE_USE_DEFAULT, NULL) != ST_OK) return -1;
  long ok = 0;
  for (long i = 0; i < n; i++) {
    st_buf *b = NULL;
    ok += st_cache_get(c, key, &b, NULL) == ST_OK;
    st_buf_free(b);
  }
  return ok;
}

static st_secrets *vault_manager(const char *url, const char *token) {
  char config[512];
  snprintf(config, sizeof config,
           "{\"providers\": [\"vault\"], \"vault_url\": \"%s\", \"vault_token\": \"%s\", "
           "\"vault_kv_version\": 2}",
           url, token);
  st_secrets *m = NULL;
  return st_secrets_new(config, &m, NULL) == ST_OK ? m : NULL;
}

static int get_once(st_secrets *m) {
  st_buf *b = NULL;
  int ok = st_secrets_get(m, "HF_TOKEN", &b, NULL) == ST_OK;
  st_buf_free(b);
  return ok;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int remote(long n, const char *mode, const char *url, const char *token) {
  if (strcmp(mode, "cold") == 0) {
    double *us = calloc((size_t)n, sizeof *us);
    for (long i = 0; i < n; i++) {
      struct timespec a, b;
      clock_gettime(CLOCK_MONOTONIC, &a);
      st_secrets *m = vault_manager(url, token);
      if (!m || !get_once(m)) return 1;
      clock_gettime(CLOCK_MONOTONIC, &b);
      st_secrets_free(m);
      us[i] = (double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) / 1e3;
    }
    qsort(us, (size_t)n, sizeof *us, cmp_double);
    printf("{\"cold_get_us_median\": %.1f}\n", us[n / 2]);
    free(us);
    return 0;
  }
  st_secrets *m = vault_manager(url, token);
  if (!m || !get_once(m)) return 1;
  long ok = 0;
  for (long i = 0; i < n; i++) ok += get_once(m);
  st_secrets_free(m);
  printf("%ld calls ok\n", ok);
  return ok == n ? 0 : 1;
}

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 100000;
  if (argc > 4) return remote(n, argv[2], argv[3], argv[4]);
  int owned = argc > 2 && argv[2][0] == 'g'; /* "get": hot_get only */
  st_cache *c = NULL;
  if (st_cache_new(ST_CACHE_USE_DEFAULT, 1000, ST_CACHE_USE_DEFAULT, &c, NULL) != ST_OK) return 1;
  if (owned) {
    long ok = hot_get(c, n);
    st_cache_free(c);
    printf("%ld calls ok\n", ok);
    return ok == n ? 0 : 1;
  }
  if (st_cache_set(c, "provider:replicate:config", (const uint8_t *)"0123456789abcdef", 16,
                   ST_CACHE_USE_DEFAULT, NULL) != ST_OK)
    return 1;
  uint8_t buf[64];
  size_t len = 0;
  long ok = 0;
  for (long i = 0; i < n; i++) {
    ok += st_cache_get_into(c, "provider:replicate:config", buf, sizeof buf, &len, NULL) == ST_OK;
  }
  for (long i = 0; i < n; i++) ok += st_result_name((int)(i & 1)) != NULL;
  st_cache_free(c);
  printf("%ld calls ok\n", ok);
  return ok == 2 * n ? 0 : 1;
}
