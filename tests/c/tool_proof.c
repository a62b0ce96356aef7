/* Proves that the memory checkers are really watching, including memory the
   library allocated: it reads an st_buf after st_buf_free (a use after free),
   or, with "ubsan", overflows a signed int. The tests expect the checker's own
   report in the output; a run that prints nothing of the kind fails. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "st_secrets.h"

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "ubsan") == 0) {
    volatile int big = INT_MAX;
    int wrapped = big + argc; /* signed overflow: UBSan reports it */
    printf("%d\n", wrapped);
    return 0;
  }
  st_cache *c = NULL;
  st_buf *b = NULL;
  if (st_cache_new(-1, 0, -1, &c, NULL) != ST_OK) return 2;
  st_cache_set(c, "k", (const uint8_t *)"0123456789abcdef", 16, -1, NULL);
  st_cache_get(c, "k", &b, NULL);
  const volatile uint8_t *data = st_buf_data(b);
  st_buf_free(b);
  printf("read after free: %d\n", data[3]); /* the checker must flag this */
  st_cache_free(c);
  return 0;
}
