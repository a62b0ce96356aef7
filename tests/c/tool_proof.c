/* Proves that the memory checkers are really watching, including memory the
   library allocated: it reads an st_error's message after st_error_free (a
   use after free of the library's heap), or, with "ubsan", overflows a
   signed int. The tests expect the checker's own report in the output; a
   run that prints nothing of the kind fails. (An st_buf is not the probe:
   values live in the library's secret memory, its own mapping, which the
   checkers do not track; docs/leak-guard.md says so.) */
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
  st_error *err = NULL;
  if (st_cache_new(-1, 0, -1, &c, NULL) != ST_OK) return 2;
  if (st_cache_get(c, NULL, &b, &err) != ST_NULL_ARGUMENT || err == NULL) return 2;
  const volatile char *message = st_error_message(err);
  st_error_free(err);
  printf("read after free: %d\n", message[3]); /* the checker must flag this */
  st_cache_free(c);
  return 0;
}
