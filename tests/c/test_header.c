/* The header alone, included twice, compiles as strict C11 and links. */
#include "st_secrets.h"
#include "st_secrets.h"

#include <stdio.h>

int main(void) {
  st_result r = ST_OK;
  st_compute_fn fn = NULL;
  st_cache_stats stats = {0, 0, 0, 0.0, 0, 0, 0, 0};
  (void)fn;
  (void)stats;
  printf("%s %s %d.%d.%d\n", st_result_name((int)r), st_version(), ST_VERSION_MAJOR,
         ST_VERSION_MINOR, ST_VERSION_PATCH);
  return st_version_major() == ST_VERSION_MAJOR ? 0 : 1;
}
