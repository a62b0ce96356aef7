/* Result codes, errors, buffers and version through the C ABI. */
#include <stdint.h>
#include "check.h"

static void test_result_names(void) {
  CHECK(strcmp(st_result_name(ST_OK), "ST_OK") == 0);
  CHECK(strcmp(st_result_name(ST_NOT_FOUND), "ST_NOT_FOUND") == 0);
  CHECK(strcmp(st_result_name(ST_INVALID_UTF8), "ST_INVALID_UTF8") == 0);
  CHECK(strcmp(st_result_name(ST_CALLBACK), "ST_CALLBACK") == 0);
  CHECK(strcmp(st_result_name(ST_INTERNAL), "ST_INTERNAL") == 0);
  /* Out-of-range numbers are safe and named. */
  CHECK(strcmp(st_result_name(2), "ST_UNKNOWN") == 0);
  CHECK(strcmp(st_result_name(-1), "ST_UNKNOWN") == 0);
  CHECK(strcmp(st_result_name(INT32_MAX), "ST_UNKNOWN") == 0);
  /* The numbers are the contract's. */
  CHECK(ST_OK == 0 && ST_NOT_FOUND == 1);
  CHECK(ST_NULL_ARGUMENT == 100 && ST_INVALID_UTF8 == 101 && ST_INVALID_ARGUMENT == 102);
  CHECK(ST_IO == 200 && ST_PARSE == 201 && ST_PERMISSION == 202);
  CHECK(ST_PROVIDER_UNAVAILABLE == 300 && ST_NETWORK == 301 && ST_TIMEOUT == 302);
  CHECK(ST_AUTH == 303 && ST_REMOTE == 304);
  CHECK(ST_INVALID_TOKEN == 400 && ST_KEY == 401 && ST_STORE == 500 && ST_CALLBACK == 600);
  CHECK(ST_PANIC == 900 && ST_INTERNAL == 901);
}

static void test_version(void) {
  char expected[64];
  snprintf(expected, sizeof expected, "st-secrets/%d.%d.%d ", ST_VERSION_MAJOR, ST_VERSION_MINOR,
           ST_VERSION_PATCH);
  const char *v = st_version();
  CHECK(v != NULL);
  CHECK(strncmp(v, expected, strlen(expected)) == 0);
  CHECK(st_version_major() == ST_VERSION_MAJOR);
  CHECK(st_version_minor() == ST_VERSION_MINOR);
  CHECK(st_version_patch() == ST_VERSION_PATCH);
  CHECK(st_version() == v); /* static */
}

static void test_errors(void) {
  st_cache *c = NULL;
  st_error *err = NULL;
  st_buf *out = (st_buf *)0x1; /* must stay untouched on failure */
  CHECK(st_cache_new(-1, 0, -1, &c, NULL) == ST_OK);
  CHECK(st_cache_get(c, "missing", &out, &err) == ST_NOT_FOUND);
  CHECK(out == (st_buf *)0x1);
  CHECK(err != NULL);
  CHECK(st_error_code(err) == ST_NOT_FOUND);
  CHECK(strlen(st_error_message(err)) > 0);
  st_error_free(err);
  /* err may be NULL: the code is still returned. */
  CHECK(st_cache_get(c, "missing", &out, NULL) == ST_NOT_FOUND);
  /* NULL error object accessors. */
  CHECK(st_error_code(NULL) == ST_NULL_ARGUMENT);
  CHECK(strcmp(st_error_message(NULL), "(null error)") == 0);
  st_error_free(NULL);
  st_cache_free(c);
}

static void test_buffers(void) {
  st_cache *c = NULL;
  CHECK(st_cache_new(-1, 0, -1, &c, NULL) == ST_OK);
  const uint8_t bin[5] = {'a', 0, 'b', 0, 0xff};
  CHECK(st_cache_set(c, "bin", bin, sizeof bin, -1, NULL) == ST_OK);
  st_buf *b = NULL;
  CHECK(st_cache_get(c, "bin", &b, NULL) == ST_OK);
  CHECK(st_buf_len(b) == 5);
  CHECK(memcmp(st_buf_data(b), bin, 5) == 0);
  CHECK(strcmp(st_buf_str(b), "a") == 0); /* the C-string view stops at the first NUL */
  CHECK(st_buf_data(b)[5] == 0);          /* terminator after the bytes */
  st_buf_free(b);

  CHECK(st_cache_set(c, "empty", NULL, 0, -1, NULL) == ST_OK);
  CHECK(st_cache_get(c, "empty", &b, NULL) == ST_OK);
  CHECK(st_buf_len(b) == 0);
  CHECK(st_buf_data(b) != NULL);
  CHECK(strcmp(st_buf_str(b), "") == 0);
  st_buf_free(b);

  CHECK(st_buf_data(NULL) == NULL);
  CHECK(st_buf_len(NULL) == 0);
  CHECK(st_buf_str(NULL) == NULL);
  st_buf_free(NULL);
  st_cache_free(c);
}

int main(void) {
  test_result_names();
  test_version();
  test_errors();
  test_buffers();
  return st_test_finish("test_core");
}
