/* Every entry point with bad input: NULL pointers, non-UTF-8, empty, huge,
   and out-parameters left untouched on failure. Nothing may crash. */
#include <stdint.h>
#include "check.h"

static const char BAD_UTF8[] = {'k', (char)0xff, (char)0xfe, 0};
static const char SECRET[] = "sk-live-DO-NOT-LEAK-0123456789";

static st_result noop_compute(void *u, const char *k, st_sink *s) {
  (void)u;
  (void)k;
  return st_sink_write(s, (const uint8_t *)"v", 1);
}

static st_result sink_abuse(void *u, const char *k, st_sink *s) {
  (void)u;
  (void)k;
  CHECK(st_sink_write(NULL, (const uint8_t *)"v", 1) == ST_NULL_ARGUMENT);
  CHECK(st_sink_write(s, NULL, 3) == ST_NULL_ARGUMENT);
  CHECK(st_sink_write(s, NULL, 0) == ST_OK);
  return ST_OK;
}

int main(void) {
  st_cache *c = NULL;
  st_cache *sentinel_cache = (st_cache *)0x1;
  st_buf *sentinel_buf = (st_buf *)0x1;
  st_buf *b = sentinel_buf;

  /* st_cache_new */
  CHECK_CALL(ST_NULL_ARGUMENT, st_cache_new(-1, 0, -1, NULL, &err));
  CHECK_CALL(ST_OK, st_cache_new(-1, 0, -1, &c, &err));
  (void)sentinel_cache;

  /* st_cache_set */
  CHECK_CALL(ST_NULL_ARGUMENT, st_cache_set(NULL, "k", (const uint8_t *)"v", 1, -1, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_cache_set(c, NULL, (const uint8_t *)"v", 1, -1, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_cache_set(c, "k", NULL, 1, -1, &err));
  CHECK_CALL(ST_INVALID_UTF8, st_cache_set(c, BAD_UTF8, (const uint8_t *)"v", 1, -1, &err));
  CHECK_CALL(ST_INVALID_ARGUMENT, st_cache_set(c, "k", (const uint8_t *)"v", SIZE_MAX, -1, &err));
  CHECK_CALL(ST_OK, st_cache_set(c, "", (const uint8_t *)"empty key", 9, -1, &err));
  CHECK_CALL(ST_OK, st_cache_set(c, "k", NULL, 0, -1, &err));

  /* A huge key and a huge value (8 MiB) round-trip. */
  size_t huge = (size_t)8 << 20;
  char *big_key = malloc(4097);
  uint8_t *big_val = malloc(huge);
  CHECK(big_key && big_val);
  memset(big_key, 'K', 4096);
  big_key[4096] = 0;
  for (size_t i = 0; i < huge; i++) big_val[i] = (uint8_t)(i * 131u);
  CHECK_CALL(ST_OK, st_cache_set(c, big_key, big_val, huge, -1, &err));
  CHECK_CALL(ST_OK, st_cache_get(c, big_key, &b, &err));
  CHECK(st_buf_len(b) == huge && memcmp(st_buf_data(b), big_val, huge) == 0);
  st_buf_free(b);
  free(big_key);
  free(big_val);

  /* st_cache_get: failures leave *out untouched. */
  b = sentinel_buf;
  CHECK_CALL(ST_NULL_ARGUMENT, st_cache_get(NULL, "k", &b, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_cache_get(c, NULL, &b, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_cache_get(c, "k", NULL, &err));
  CHECK_CALL(ST_INVALID_UTF8, st_cache_get(c, BAD_UTF8, &b, &err));
  CHECK_CALL(ST_NOT_FOUND, st_cache_get(c, "absent", &b, &err));
  CHECK(b == sentinel_buf);
  CHECK_CALL(ST_OK, st_cache_get(c, "", &b, &err));
  st_buf_free(b);

  /* st_cache_get_or_set */
  b = sentinel_buf;
  CHECK_CALL(ST_NULL_ARGUMENT, st_cache_get_or_set(NULL, "k", noop_compute, NULL, -1, &b, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_cache_get_or_set(c, NULL, noop_compute, NULL, -1, &b, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_cache_get_or_set(c, "gs", NULL, NULL, -1, &b, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_cache_get_or_set(c, "gs", noop_compute, NULL, -1, NULL, &err));
  CHECK_CALL(ST_INVALID_UTF8, st_cache_get_or_set(c, BAD_UTF8, noop_compute, NULL, -1, &b, &err));
  CHECK(b == sentinel_buf);
  CHECK_CALL(ST_OK, st_cache_get_or_set(c, "abuse", sink_abuse, NULL, -1, &b, &err));
  CHECK(b != sentinel_buf && st_buf_len(b) == 0);
  st_buf_free(b);

  /* Functions without an error channel answer false / 0. */
  CHECK(st_cache_delete(NULL, "k") == false);
  CHECK(st_cache_delete(c, NULL) == false);
  CHECK(st_cache_delete(c, BAD_UTF8) == false);
  CHECK(st_cache_clear(NULL) == 0);
  CHECK(st_cache_invalidate_prefix(NULL, "k") == 0);
  CHECK(st_cache_invalidate_prefix(c, NULL) == 0);
  CHECK(st_cache_invalidate_prefix(c, BAD_UTF8) == 0);
  CHECK(st_cache_cleanup(NULL) == 0);
  CHECK(st_invalidate_provider_cache(NULL) == 0);
  CHECK(st_invalidate_provider_cache(BAD_UTF8) == 0);

  /* st_cache_stats_get */
  st_cache_stats s = {.struct_size = sizeof s};
  CHECK_CALL(ST_NULL_ARGUMENT, st_cache_stats_get(NULL, &s, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_cache_stats_get(c, NULL, &err));
  /* An unset or too small struct_size is refused and nothing is written; a
     larger one (a newer header) gets this version's fields and their size. */
  memset(&s, 0xAB, sizeof s);
  s.struct_size = 0;
  CHECK_CALL(ST_INVALID_ARGUMENT, st_cache_stats_get(c, &s, &err));
  CHECK(s.struct_size == 0 && s.max_size == (size_t)0xABABABABABABABABull);
  s.struct_size = sizeof s - 1;
  CHECK_CALL(ST_INVALID_ARGUMENT, st_cache_stats_get(c, &s, &err));
  struct {
    st_cache_stats now;
    uint64_t later;
  } newer;
  memset(&newer, 0xCD, sizeof newer);
  newer.now.struct_size = sizeof newer;
  CHECK_CALL(ST_OK, st_cache_stats_get(c, &newer.now, &err));
  CHECK(newer.now.struct_size == sizeof(st_cache_stats));
  CHECK(newer.now.expirations != 0xCDCDCDCDCDCDCDCDull);
  CHECK(newer.later == 0xCDCDCDCDCDCDCDCDull);

  /* Error messages never carry a value. */
  CHECK_CALL(ST_OK, st_cache_set(c, "secret", (const uint8_t *)SECRET, strlen(SECRET), -1, &err));
  {
    st_error *err = NULL;
    CHECK(st_cache_set(c, BAD_UTF8, (const uint8_t *)SECRET, strlen(SECRET), -1, &err) ==
          ST_INVALID_UTF8);
    CHECK(strstr(st_error_message(err), "DO-NOT-LEAK") == NULL);
    CHECK(strstr(st_error_message(err), "'key'") != NULL); /* names the argument */
    st_error_free(err);
  }

  /* The manager's configuration (hardening findings 3 and 6): an empty
   * string, a key given twice and numbers out of range are
   * ST_INVALID_ARGUMENT naming the key, never a panic. */
  {
    st_secrets *m = (st_secrets *)0x1;
    CHECK_CALL(ST_INVALID_ARGUMENT, st_secrets_new("", &m, &err));
    CHECK_CALL(ST_INVALID_ARGUMENT, st_secrets_new("{\"cache_ttl\": 5, \"cache_ttl\": 6}", &m, &err));
    const char *huge[] = {"{\"cache_ttl\": 1e308}", "{\"negative_ttl\": 1e20}",
                          "{\"request_timeout\": 1e308}", "{\"max_stale\": 1e300}",
                          "{\"max_file_size\": 0}"};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
      st_error *e = NULL;
      CHECK(st_secrets_new(huge[i], &m, &e) == ST_INVALID_ARGUMENT);
      CHECK(e != NULL && strstr(st_error_message(e), "config key '") != NULL);
      st_error_free(e);
    }
    CHECK(m == (st_secrets *)0x1); /* out-parameter untouched on failure */
  }

  /* Frees of NULL are no-ops. */
  st_cache_free(NULL);
  st_buf_free(NULL);
  st_error_free(NULL);
  st_cache_free(c);
  return st_test_finish("test_bad_input");
}
