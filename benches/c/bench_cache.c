/* st_cache through the C ABI, from C: the workload of benches/cache.rs
   (1,000 entries, 32-byte keys, 64-byte values). Prints one JSON object per
   measurement: {"workload":..., "name":..., "median_ns":...}, the median of
   31 batches. Build: see scripts/bench-cache.sh. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "bench_util.h"
#include "st_secrets.h"

#define ENTRIES 1000
#define BATCH_OPS 200000

static char keys[ENTRIES][33];
static uint8_t value[64];
static st_cache *cache;

static void report(const char *workload, double ns) {
  printf("{\"workload\": \"%s\", \"name\": \"st_secrets_c_abi_from_c\", \"median_ns\": %.2f}\n",
         workload, ns);
}

static volatile size_t sink;

static void hot_get(void) {
  double per_op[BATCHES];
  const char *key = keys[ENTRIES / 2];
  for (int b = 0; b < BATCHES; b++) {
    double t0 = now_ns();
    for (int i = 0; i < BATCH_OPS; i++) {
      st_buf *buf = NULL;
      st_cache_get(cache, key, &buf, NULL);
      sink += st_buf_len(buf);
      st_buf_free(buf);
    }
    per_op[b] = (now_ns() - t0) / BATCH_OPS;
  }
  report("hot_get", median(per_op));
}

static void set(void) {
  double per_op[BATCHES];
  int k = 0;
  for (int b = 0; b < BATCHES; b++) {
    double t0 = now_ns();
    for (int i = 0; i < BATCH_OPS; i++) {
      k = (k + 1) % ENTRIES;
      st_cache_set(cache, keys[k], value, sizeof value, -1, NULL);
    }
    per_op[b] = (now_ns() - t0) / BATCH_OPS;
  }
  report("set", median(per_op));
}

typedef struct {
  uint64_t seed;
  long ops;
} mixed_arg;

static pthread_barrier_t go;

static void *mixed_thread(void *p) {
  mixed_arg *a = (mixed_arg *)p;
  uint64_t x = a->seed | 1;
  pthread_barrier_wait(&go);
  for (long i = 0; i < a->ops; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    const char *key = keys[x % ENTRIES];
    if (x % 5 == 0) {
      st_cache_set(cache, key, value, sizeof value, -1, NULL);
    } else {
      st_buf *buf = NULL;
      st_cache_get(cache, key, &buf, NULL);
      sink += st_buf_len(buf);
      st_buf_free(buf);
    }
  }
  return NULL;
}

static void mixed_2t(void) {
  double per_op[BATCHES];
  for (int b = 0; b < BATCHES; b++) {
    mixed_arg args[2] = {{0x9E3779B97F4A7C15ull + (uint64_t)b, BATCH_OPS / 2},
                         {0xD1B54A32D192ED03ull + (uint64_t)b, BATCH_OPS / 2}};
    pthread_t t[2];
    pthread_barrier_init(&go, NULL, 3);
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, mixed_thread, &args[i]);
    pthread_barrier_wait(&go);
    double t0 = now_ns();
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    per_op[b] = (now_ns() - t0) / BATCH_OPS;
    pthread_barrier_destroy(&go);
  }
  report("mixed_2t", median(per_op));
}

int main(void) {
  memset(value, 0x5a, sizeof value);
  if (st_cache_new(300, 2 * ENTRIES, 60, &cache, NULL) != ST_OK) return 1;
  for (int i = 0; i < ENTRIES; i++) {
    snprintf(keys[i], sizeof keys[i], "provider:replicate:conf:%08d", i);
    st_cache_set(cache, keys[i], value, sizeof value, -1, NULL);
  }
  hot_get();
  set();
  mixed_2t();
  st_cache_free(cache);
  return 0;
}
