/* Instructions per C-ABI call, for callgrind (scripts/bench-boundary.sh):
 * N hot st_cache_get_into calls (the bindings' get) and N st_result_name
 * calls (the cheapest entry point: the boundary alone). Prints nothing
 * timing-related; callgrind counts the instructions. */
#include <stdio.h>
#include <stdlib.h>

#include "st_secrets.h"

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 100000;
  st_cache *c = NULL;
  if (st_cache_new(ST_CACHE_USE_DEFAULT, 1000, ST_CACHE_USE_DEFAULT, &c, NULL) != ST_OK) return 1;
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
