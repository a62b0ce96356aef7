/* Minimal assertion helpers shared by the C tests. */
#ifndef ST_TEST_CHECK_H
#define ST_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "st_secrets.h"

static int st_test_failures = 0;

#define CHECK(cond)                                                                  \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);       \
      st_test_failures++;                                                            \
    }                                                                                \
  } while (0)

/* Checks a result code; on mismatch prints both names and the error message. */
#define CHECK_RC(expr, expected)                                                     \
  do {                                                                               \
    st_error *check_err_ = NULL;                                                     \
    st_error **check_errp_ = &check_err_;                                            \
    (void)check_errp_;                                                               \
    st_result check_rc_ = (expr);                                                    \
    if (check_rc_ != (expected)) {                                                   \
      fprintf(stderr, "%s:%d: %s returned %s, expected %s\n", __FILE__, __LINE__,    \
              #expr, st_result_name((int)check_rc_), st_result_name((int)(expected))); \
      st_test_failures++;                                                            \
    }                                                                                \
  } while (0)

/* Runs a call that takes `&err` as its last argument; checks the code and that
   an error object was produced exactly when the call failed, with a message. */
#define CHECK_CALL(expected, call_with_err)                                          \
  do {                                                                               \
    st_error *err = NULL;                                                            \
    st_result rc_ = (call_with_err);                                                 \
    if (rc_ != (expected)) {                                                         \
      fprintf(stderr, "%s:%d: %s returned %s, expected %s (%s)\n", __FILE__, __LINE__, \
              #call_with_err, st_result_name((int)rc_), st_result_name((int)(expected)), \
              err ? st_error_message(err) : "no error object");                      \
      st_test_failures++;                                                            \
    } else if ((rc_ == ST_OK) != (err == NULL)) {                                    \
      fprintf(stderr, "%s:%d: %s: error object %s\n", __FILE__, __LINE__,            \
              #call_with_err, err ? "set on success" : "missing on failure");        \
      st_test_failures++;                                                            \
    } else if (err != NULL &&                                                        \
               (st_error_code(err) != rc_ || strlen(st_error_message(err)) == 0)) {  \
      fprintf(stderr, "%s:%d: %s: error object has code %s, message '%s'\n",         \
              __FILE__, __LINE__, #call_with_err, st_result_name((int)st_error_code(err)), \
              st_error_message(err));                                                \
      st_test_failures++;                                                            \
    }                                                                                \
    st_error_free(err);                                                              \
  } while (0)

static inline int st_test_finish(const char *name) {
  if (st_test_failures) {
    fprintf(stderr, "%s: %d check(s) failed\n", name, st_test_failures);
    return 1;
  }
  printf("%s: all checks passed\n", name);
  return 0;
}

/* Iteration scale: valgrind runs set ST_TEST_SCALE to keep run times sane. */
static inline long st_test_scale(long full) {
  const char *s = getenv("ST_TEST_SCALE");
  long div = s ? atol(s) : 1;
  if (div < 1) div = 1;
  long n = full / div;
  return n < 1 ? 1 : n;
}

#endif
