/* The header alone, included twice, compiles as strict C11 and links. */
#include "st_secrets.h"
#include "st_secrets.h"

#include <stdio.h>

/* The enum has a tag, so code that must not include the header can name
 * `enum st_result`, and the tagged and typedef names are one type. */
static enum st_result tagged(void) { return ST_NOT_FOUND; }

/* ST_CACHE_USE_DEFAULT is parenthesised: it expands safely in an expression
 * (without parentheses `2-ST_CACHE_USE_DEFAULT` would read as `2--1.0`). */
_Static_assert(sizeof(2 - ST_CACHE_USE_DEFAULT) == sizeof(double), "a double expression");

int main(void) {
  st_result r = ST_OK;
  if (tagged() != ST_NOT_FOUND || 2 - ST_CACHE_USE_DEFAULT != 3.0) return 2;
  st_compute_fn fn = NULL;
  st_cache_stats stats = {sizeof(st_cache_stats), 0, 0, 0, 0.0, 0, 0, 0, 0};
  (void)fn;
  (void)stats;
  printf("%s %s %d.%d.%d\n", st_result_name((int)r), st_version(), ST_VERSION_MAJOR,
         ST_VERSION_MINOR, ST_VERSION_PATCH);
  return st_version_major() == ST_VERSION_MAJOR ? 0 : 1;
}
