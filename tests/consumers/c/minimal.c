/* The smallest useful program: the version and one cache round trip. Built
   fully static with and without -Wl,--gc-sections to show what section GC
   keeps (tests/consumers/run.sh). */
#include <stdio.h>
#include <string.h>
#include <st_secrets.h>

int main(void) {
  st_cache *c = NULL;
  st_buf *v = NULL;
  if (st_cache_new(ST_CACHE_USE_DEFAULT, 0, ST_CACHE_USE_DEFAULT, &c, NULL) != ST_OK) return 1;
  int ok = st_cache_set(c, "k", (const uint8_t *)"v", 1, ST_CACHE_USE_DEFAULT, NULL) == ST_OK &&
           st_cache_get(c, "k", &v, NULL) == ST_OK && st_buf_len(v) == 1;
  st_buf_free(v);
  st_cache_free(c);
  printf("st-secrets %s: cache %s\n", st_version(), ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
