/* Instructions per C-ABI call, for callgrind (scripts/bench.sh boundary):
 * N hot st_cache_get_into calls (the bindings' get) and N st_result_name
 * calls (the cheapest entry point: the boundary alone); or, with the
 * argument "get", N hot st_cache_get + st_buf_free (the cache benchmark's
 * hot get). Prints nothing timing-related; callgrind counts the
 * instructions. */
#include <stdio.h>
#include <stdlib.h>

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

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 100000;
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
