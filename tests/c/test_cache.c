/* TTL cache semantics through the C ABI. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <time.h>
#include "check.h"

static void sleep_s(double s) {
  struct timespec ts;
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &ts) != 0) {
  }
}

static void set_str(st_cache *c, const char *k, const char *v, double ttl) {
  CHECK_CALL(ST_OK, st_cache_set(c, k, (const uint8_t *)v, strlen(v), ttl, &err));
}

/* 1 when `k` holds exactly `v`, 0 when missing; anything else fails a check. */
static int has(st_cache *c, const char *k, const char *v) {
  st_buf *b = NULL;
  st_result rc = st_cache_get(c, k, &b, NULL);
  if (rc == ST_NOT_FOUND) return 0;
  CHECK(rc == ST_OK);
  if (rc != ST_OK) return -1;
  int same = v && st_buf_len(b) == strlen(v) && memcmp(st_buf_data(b), v, strlen(v)) == 0;
  CHECK(same);
  st_buf_free(b);
  return 1;
}

static st_cache_stats stats(st_cache *c) {
  st_cache_stats s;
  memset(&s, 0, sizeof s);
  s.struct_size = sizeof s;
  CHECK_CALL(ST_OK, st_cache_stats_get(c, &s, &err));
  return s;
}

static void test_defaults(void) {
  st_cache *c = NULL;
  CHECK_CALL(ST_OK, st_cache_new(ST_CACHE_USE_DEFAULT, 0, ST_CACHE_USE_DEFAULT, &c, &err));
  st_cache_stats s = stats(c);
  CHECK(s.max_size == ST_CACHE_DEFAULT_MAX_SIZE && s.max_size == 1000);
  CHECK(s.default_ttl == ST_CACHE_DEFAULT_TTL_S && s.default_ttl == 300.0);
  CHECK(s.size == 0 && s.hits == 0 && s.misses == 0);
  st_cache_free(c);
  CHECK_CALL(ST_OK, st_cache_new(NAN, 0, NAN, &c, &err));
  CHECK(stats(c).default_ttl == 300.0);
  st_cache_free(c);
  CHECK_CALL(ST_OK, st_cache_new(INFINITY, 7, INFINITY, &c, &err));
  s = stats(c);
  CHECK(isinf(s.default_ttl) && s.max_size == 7);
  st_cache_free(c);
}

static void test_set_get_ttl(void) {
  st_cache *c = NULL;
  CHECK_CALL(ST_OK, st_cache_new(1.0, 10, 0, &c, &err));
  set_str(c, "default", "d", ST_CACHE_USE_DEFAULT);
  set_str(c, "long", "l", 3600);
  set_str(c, "forever", "f", INFINITY);
  set_str(c, "zero", "z", 0);
  CHECK(has(c, "zero", NULL) == 0);
  CHECK(has(c, "default", "d") == 1);
  set_str(c, "long", "l2", 3600); /* overwrite */
  CHECK(has(c, "long", "l2") == 1);
  sleep_s(1.2);
  CHECK(has(c, "default", NULL) == 0); /* expired is never returned */
  CHECK(has(c, "long", "l2") == 1);
  CHECK(has(c, "forever", "f") == 1);
  st_cache_stats s = stats(c);
  CHECK(s.expirations >= 1);
  CHECK(s.expired_count == 0);
  /* negative TTL = default TTL */
  set_str(c, "neg", "n", -5);
  CHECK(has(c, "neg", "n") == 1);
  sleep_s(1.2);
  CHECK(has(c, "neg", NULL) == 0);
  st_cache_free(c);
}

static void test_lru(void) {
  st_cache *c = NULL;
  CHECK_CALL(ST_OK, st_cache_new(-1, 3, -1, &c, &err));
  set_str(c, "a", "1", -1);
  set_str(c, "b", "2", -1);
  set_str(c, "c", "3", -1);
  CHECK(has(c, "a", "1") == 1); /* a is now most recent: order b c a */
  set_str(c, "d", "4", -1);     /* evicts b */
  CHECK(has(c, "b", NULL) == 0);
  CHECK(has(c, "a", "1") == 1 && has(c, "c", "3") == 1 && has(c, "d", "4") == 1);
  CHECK(stats(c).evictions == 1);
  set_str(c, "c", "3b", -1); /* overwrite: no eviction */
  CHECK(stats(c).evictions == 1 && stats(c).size == 3);
  st_cache_free(c);
}

static void test_delete_clear_prefix_cleanup(void) {
  st_cache *c = NULL;
  CHECK_CALL(ST_OK, st_cache_new(-1, 100, INFINITY, &c, &err));
  set_str(c, "provider:replicate:config", "x", -1);
  set_str(c, "provider:replicate:hardware", "x", -1);
  set_str(c, "provider:replicated:config", "x", -1);
  set_str(c, "user:1:perms", "x", -1);
  CHECK(st_cache_delete(c, "user:1:perms") == true);
  CHECK(st_cache_delete(c, "user:1:perms") == false);
  CHECK(st_cache_invalidate_prefix(c, "provider:replicate:") == 2);
  CHECK(has(c, "provider:replicated:config", "x") == 1);
  set_str(c, "short", "s", 0.05);
  sleep_s(0.15);
  st_cache_stats s = stats(c);
  CHECK(s.size == 2 && s.expired_count == 1); /* no periodic sweep (INFINITY) */
  CHECK(st_cache_cleanup(c) == 1);
  CHECK(stats(c).size == 1);
  CHECK(st_cache_clear(c) == 1);
  CHECK(st_cache_clear(c) == 0);
  set_str(c, "p", "x", -1);
  CHECK(st_cache_invalidate_prefix(c, "") == 1);
  st_cache_free(c);
}

static void test_periodic_sweep(void) {
  st_cache *c = NULL;
  CHECK_CALL(ST_OK, st_cache_new(0.05, 100, 0.2, &c, &err));
  for (int i = 0; i < 5; i++) {
    char k[16];
    snprintf(k, sizeof k, "k%d", i);
    set_str(c, k, "v", -1);
  }
  set_str(c, "keep", "v", 3600);
  sleep_s(0.4);
  (void)has(c, "keep", "v"); /* any operation sweeps once the interval has passed */
  st_cache_stats s = stats(c);
  CHECK(s.size == 1 && s.expired_count == 0 && s.expirations == 5);
  st_cache_free(c);
}

static void test_get_into(void) {
  st_cache *c = NULL;
  CHECK_CALL(ST_OK, st_cache_new(-1, 10, -1, &c, &err));
  const uint8_t value[6] = {'a', 0, 'b', 'c', 'd', 'e'};
  CHECK_CALL(ST_OK, st_cache_set(c, "k", value, sizeof value, -1, &err));
  uint8_t dst[16];
  size_t len = 99;
  memset(dst, 0x7f, sizeof dst);
  CHECK_CALL(ST_OK, st_cache_get_into(c, "k", dst, sizeof dst, &len, &err));
  CHECK(len == 6 && memcmp(dst, value, 6) == 0 && dst[6] == 0x7f);
  /* Too small: the length is reported, nothing copied. */
  memset(dst, 0x7f, sizeof dst);
  len = 99;
  CHECK_CALL(ST_OK, st_cache_get_into(c, "k", dst, 3, &len, &err));
  CHECK(len == 6 && dst[0] == 0x7f);
  CHECK_CALL(ST_OK, st_cache_get_into(c, "k", NULL, 0, &len, &err));
  CHECK(len == 6);
  /* Misses and bad input leave *out_len alone. */
  len = 99;
  CHECK_CALL(ST_NOT_FOUND, st_cache_get_into(c, "nope", dst, sizeof dst, &len, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_cache_get_into(c, "k", NULL, 4, &len, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_cache_get_into(c, "k", dst, sizeof dst, NULL, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_cache_get_into(NULL, "k", dst, sizeof dst, &len, &err));
  CHECK_CALL(ST_INVALID_ARGUMENT, st_cache_get_into(c, "k", dst, SIZE_MAX, &len, &err));
  CHECK(len == 99);
  st_cache_free(c);
}

static void test_hit_miss_counters(void) {
  st_cache *c = NULL;
  CHECK_CALL(ST_OK, st_cache_new(-1, 10, -1, &c, &err));
  set_str(c, "a", "1", -1);
  (void)has(c, "a", "1");
  (void)has(c, "a", "1");
  (void)has(c, "zz", NULL);
  st_cache_stats s = stats(c);
  CHECK(s.hits == 2 && s.misses == 1);
  st_cache_free(c);
}

/* ---- get_or_set ---- */

typedef struct {
  int calls;
  st_result rc;         /* what to return */
  const char *value;    /* NULL: do not write */
  st_cache *reenter;    /* when set: call get_or_set on the same key inside */
  st_result inner_rc;
} compute_ctx;

static st_result compute(void *user_data, const char *key, st_sink *sink) {
  compute_ctx *ctx = (compute_ctx *)user_data;
  ctx->calls++;
  CHECK(key != NULL);
  if (ctx->reenter) {
    st_buf *b = NULL;
    compute_ctx inner = {0, ST_OK, "inner", NULL, ST_OK};
    ctx->inner_rc = st_cache_get_or_set(ctx->reenter, key, compute, &inner, -1, &b, NULL);
    st_buf_free(b);
    /* Other keys and other operations on the same cache are fine inside. */
    st_buf *o = NULL;
    CHECK(st_cache_get_or_set(ctx->reenter, "other-key", compute, &inner, -1, &o, NULL) == ST_OK);
    st_buf_free(o);
    CHECK(st_cache_set(ctx->reenter, "side", (const uint8_t *)"s", 1, -1, NULL) == ST_OK);
  }
  if (ctx->value) {
    size_t n = strlen(ctx->value), half = n / 2;
    CHECK(st_sink_write(sink, (const uint8_t *)ctx->value, half) == ST_OK);
    CHECK(st_sink_write(sink, (const uint8_t *)ctx->value + half, n - half) == ST_OK);
  }
  return ctx->rc;
}

static st_result return_garbage(void *user_data, const char *key, st_sink *sink) {
  (void)user_data;
  (void)key;
  CHECK(st_sink_write(sink, (const uint8_t *)"x", 1) == ST_OK);
  return (st_result)7; /* not a code */
}

static st_result write_empty(void *user_data, const char *key, st_sink *sink) {
  (void)user_data;
  (void)key;
  return st_sink_write(sink, NULL, 0);
}

static void test_get_or_set(void) {
  st_cache *c = NULL;
  CHECK_CALL(ST_OK, st_cache_new(-1, 10, -1, &c, &err));
  st_buf *b = NULL;

  compute_ctx ok = {0, ST_OK, "computed-value", NULL, ST_OK};
  for (int i = 0; i < 3; i++) {
    CHECK_CALL(ST_OK, st_cache_get_or_set(c, "k", compute, &ok, -1, &b, &err));
    CHECK(b && st_buf_len(b) == strlen("computed-value"));
    CHECK(b && memcmp(st_buf_data(b), "computed-value", st_buf_len(b)) == 0);
    st_buf_free(b);
    b = NULL;
  }
  CHECK(ok.calls == 1);
  CHECK(has(c, "k", "computed-value") == 1);

  /* A failing compute returns its code and caches nothing. */
  compute_ctx fail = {0, ST_AUTH, "partial", NULL, ST_OK};
  b = (st_buf *)0x1;
  CHECK_CALL(ST_AUTH, st_cache_get_or_set(c, "f", compute, &fail, -1, &b, &err));
  CHECK(b == (st_buf *)0x1);
  CHECK(has(c, "f", NULL) == 0);
  CHECK_CALL(ST_AUTH, st_cache_get_or_set(c, "f", compute, &fail, -1, &b, &err));
  CHECK(fail.calls == 2);

  /* ST_OK without a write is a callback error; garbage codes too. */
  compute_ctx nowrite = {0, ST_OK, NULL, NULL, ST_OK};
  CHECK_CALL(ST_CALLBACK, st_cache_get_or_set(c, "nw", compute, &nowrite, -1, &b, &err));
  CHECK_CALL(ST_CALLBACK, st_cache_get_or_set(c, "g", return_garbage, NULL, -1, &b, &err));
  CHECK(has(c, "g", NULL) == 0);

  /* An empty value is a value. */
  b = NULL;
  CHECK_CALL(ST_OK, st_cache_get_or_set(c, "e", write_empty, NULL, -1, &b, &err));
  CHECK(b && st_buf_len(b) == 0);
  st_buf_free(b);
  CHECK(has(c, "e", "") == 1);

  /* A TTL of 0 returns the value but stores nothing. */
  compute_ctx z = {0, ST_OK, "zz", NULL, ST_OK};
  b = NULL;
  CHECK_CALL(ST_OK, st_cache_get_or_set(c, "z", compute, &z, 0, &b, &err));
  st_buf_free(b);
  CHECK(has(c, "z", NULL) == 0);

  /* Re-entering for the same key is refused, not a deadlock; others work. */
  compute_ctx re = {0, ST_OK, "outer", c, ST_OK};
  b = NULL;
  CHECK_CALL(ST_OK, st_cache_get_or_set(c, "re", compute, &re, -1, &b, &err));
  st_buf_free(b);
  CHECK(re.inner_rc == ST_INVALID_ARGUMENT);
  CHECK(has(c, "re", "outer") == 1);
  CHECK(has(c, "other-key", "inner") == 1);
  CHECK(has(c, "side", "s") == 1);
  st_cache_free(c);
}

static void test_process_wide(void) {
  st_cache *p = st_provider_config_cache();
  st_cache *u = st_user_permission_cache();
  CHECK(p != NULL && u != NULL && p != u);
  CHECK(p == st_provider_config_cache());
  st_cache_stats s = stats(p);
  CHECK(s.max_size == 100 && s.default_ttl == 300.0);
  s = stats(u);
  CHECK(s.max_size == 500 && s.default_ttl == 60.0);

  set_str(p, "provider:replicate:config", "{}", -1);
  set_str(p, "provider:replicate:hardware", "{}", -1);
  set_str(p, "provider:replicate-staging:config", "{}", -1);
  CHECK(st_invalidate_provider_cache("replicate") == 2);
  CHECK(has(p, "provider:replicate-staging:config", "{}") == 1);
  set_str(u, "user:42:perms", "admin", -1);
  set_str(u, "user:421:perms", "viewer", -1);
  CHECK(st_invalidate_user_cache(42) == 1);
  CHECK(has(u, "user:421:perms", "viewer") == 1);
  CHECK(st_invalidate_user_cache(-7) == 0);
  /* Freeing a process-wide cache is a no-op: it keeps working. */
  st_cache_free(p);
  CHECK(has(p, "provider:replicate-staging:config", "{}") == 1);
}

int main(void) {
  test_defaults();
  test_set_get_ttl();
  test_lru();
  test_delete_clear_prefix_cleanup();
  test_periodic_sweep();
  test_hit_miss_counters();
  test_get_into();
  test_get_or_set();
  test_process_wide();
  return st_test_finish("test_cache");
}
