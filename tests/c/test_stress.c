/* Many threads on one cache: mixed operations, and single-flight get_or_set. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include "check.h"

#define THREADS 8
#define KEYS 256

static st_cache *cache;
static atomic_int computes;
static atomic_int failures;
static pthread_barrier_t start;

static st_result slow_compute(void *user_data, const char *key, st_sink *sink) {
  (void)user_data;
  atomic_fetch_add(&computes, 1);
  struct timespec ts = {0, 50 * 1000 * 1000};
  nanosleep(&ts, NULL);
  return st_sink_write(sink, (const uint8_t *)key, strlen(key));
}

static st_result echo_compute(void *user_data, const char *key, st_sink *sink) {
  (void)user_data;
  return st_sink_write(sink, (const uint8_t *)key, strlen(key));
}

static void *single_flight(void *arg) {
  (void)arg;
  pthread_barrier_wait(&start);
  st_buf *b = NULL;
  if (st_cache_get_or_set(cache, "the-one-key", slow_compute, NULL, -1, &b, NULL) != ST_OK ||
      st_buf_len(b) != strlen("the-one-key")) {
    atomic_fetch_add(&failures, 1);
  }
  st_buf_free(b);
  return NULL;
}

static void *mixed(void *arg) {
  uint64_t x = (uint64_t)(uintptr_t)arg * 0x9E3779B97F4A7C15ull + 1;
  long ops = st_test_scale(40000);
  char key[32];
  pthread_barrier_wait(&start);
  for (long i = 0; i < ops; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    snprintf(key, sizeof key, "key:%u", (unsigned)(x % KEYS));
    st_buf *b = NULL;
    switch (i % 8) {
      case 0:
        st_cache_delete(cache, key);
        break;
      case 1:
      case 2:
        if (st_cache_set(cache, key, (const uint8_t *)key, strlen(key), -1, NULL) != ST_OK)
          atomic_fetch_add(&failures, 1);
        break;
      case 3:
        if (st_cache_get_or_set(cache, key, echo_compute, NULL, -1, &b, NULL) != ST_OK ||
            st_buf_len(b) != strlen(key) || memcmp(st_buf_data(b), key, strlen(key)) != 0)
          atomic_fetch_add(&failures, 1);
        st_buf_free(b);
        break;
      case 4:
        if (x % 97 == 0) st_cache_invalidate_prefix(cache, "key:1");
        break;
      case 5:
        if (x % 501 == 0) {
          st_cache_stats s = {.struct_size = sizeof s};
          if (st_cache_stats_get(cache, &s, NULL) != ST_OK || s.size > s.max_size)
            atomic_fetch_add(&failures, 1);
        }
        break;
      default: {
        st_result rc = st_cache_get(cache, key, &b, NULL);
        if (rc == ST_OK) {
          /* A key never returns another key's value. */
          if (st_buf_len(b) != strlen(key) || memcmp(st_buf_data(b), key, strlen(key)) != 0)
            atomic_fetch_add(&failures, 1);
          st_buf_free(b);
        } else if (rc != ST_NOT_FOUND) {
          atomic_fetch_add(&failures, 1);
        }
      }
    }
  }
  return NULL;
}

static void run(void *(*fn)(void *)) {
  pthread_t t[THREADS];
  pthread_barrier_init(&start, NULL, THREADS);
  for (uintptr_t i = 0; i < THREADS; i++) CHECK(pthread_create(&t[i], NULL, fn, (void *)i) == 0);
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  pthread_barrier_destroy(&start);
}

int main(void) {
  CHECK(st_cache_new(3600, 64, 0.01, &cache, NULL) == ST_OK);
  run(single_flight);
  CHECK(atomic_load(&computes) == 1);
  CHECK(atomic_load(&failures) == 0);

  run(mixed);
  CHECK(atomic_load(&failures) == 0);
  st_cache_stats s = {.struct_size = sizeof s};
  CHECK(st_cache_stats_get(cache, &s, NULL) == ST_OK);
  CHECK(s.size <= 64);
  CHECK(s.evictions > 0);
  printf("stress: hits=%llu misses=%llu evictions=%llu\n", (unsigned long long)s.hits,
         (unsigned long long)s.misses, (unsigned long long)s.evictions);
  st_cache_free(cache);
  return st_test_finish("test_stress");
}
