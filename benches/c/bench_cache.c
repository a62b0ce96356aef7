/* st_cache through the C ABI, from C, side by side in one process with its
   peers behind the same kind of C ABI (benches/peers: the Mutex<HashMap> +
   copy floor and quick_cache 0.7), on the workload of benches/cache.rs:
   1,000 entries, 32-byte keys, 64-byte values, every get returning a copy
   the caller frees. Batches of the contenders alternate (each batch starting
   with the next one), so a slow moment of this noisy machine costs all of
   them alike. Prints one JSON object per
   contender and workload: {"workload":..., "name":..., "median_ns":...},
   the median of 31 batches. Build: see scripts/bench.sh cache. */
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

/* benches/peers/src/lib.rs */
typedef struct Peer Peer;
Peer *peer_new(int kind, size_t capacity);
void peer_free(Peer *p);
int peer_get(const Peer *p, const char *key, uint8_t **out, size_t *len);
void peer_free_copy(uint8_t *ptr, size_t len);
void peer_set(const Peer *p, const char *key, const uint8_t *value, size_t len);

static char keys[ENTRIES][33];
static uint8_t value[64];

typedef struct {
  const char *name;
  void *self;
  size_t (*get)(void *self, const char *key);
  void (*set)(void *self, const char *key);
} contender;

static size_t st_get(void *self, const char *key) {
  st_buf *buf = NULL;
  st_cache_get((st_cache *)self, key, &buf, NULL);
  size_t n = st_buf_len(buf);
  st_buf_free(buf);
  return n;
}

static void st_set(void *self, const char *key) {
  st_cache_set((st_cache *)self, key, value, sizeof value, -1, NULL);
}

static size_t peer_get_copy(void *self, const char *key) {
  uint8_t *copy = NULL;
  size_t n = 0;
  if (peer_get((Peer *)self, key, &copy, &n) == 0) peer_free_copy(copy, n);
  return n;
}

static void peer_set_copy(void *self, const char *key) {
  peer_set((Peer *)self, key, value, sizeof value);
}

#define CONTENDERS 3
static contender all[CONTENDERS];

static volatile size_t sink;

static double hot_get(const contender *c) {
  const char *key = keys[ENTRIES / 2];
  size_t local = 0;
  double t0 = now_ns();
  for (int i = 0; i < BATCH_OPS; i++) local += c->get(c->self, key);
  double t = (now_ns() - t0) / BATCH_OPS;
  sink += local;
  return t;
}

static double set(const contender *c) {
  int k = 0;
  double t0 = now_ns();
  for (int i = 0; i < BATCH_OPS; i++) {
    k = (k + 1) % ENTRIES;
    c->set(c->self, keys[k]);
  }
  return (now_ns() - t0) / BATCH_OPS;
}

typedef struct {
  const contender *c;
  uint64_t seed;
  long ops;
  pthread_barrier_t *go;
} mixed_arg;

static void *mixed_thread(void *p) {
  mixed_arg *a = (mixed_arg *)p;
  uint64_t x = a->seed | 1;
  /* A sink per thread: one shared by both threads would bounce its cache
     line between the cores on every operation and time that instead. */
  size_t local = 0;
  pthread_barrier_wait(a->go);
  for (long i = 0; i < a->ops; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    const char *key = keys[x % ENTRIES];
    if (x % 5 == 0) {
      a->c->set(a->c->self, key);
    } else {
      local += a->c->get(a->c->self, key);
    }
  }
  sink += local;
  return NULL;
}

static double mixed_2t(const contender *c, int batch) {
  pthread_barrier_t go;
  mixed_arg args[2] = {{c, 0x9E3779B97F4A7C15ull + (uint64_t)batch, BATCH_OPS / 2, &go},
                       {c, 0xD1B54A32D192ED03ull + (uint64_t)batch, BATCH_OPS / 2, &go}};
  pthread_t t[2];
  pthread_barrier_init(&go, NULL, 3);
  for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, mixed_thread, &args[i]);
  pthread_barrier_wait(&go);
  double t0 = now_ns();
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  double per_op = (now_ns() - t0) / BATCH_OPS;
  pthread_barrier_destroy(&go);
  return per_op;
}

static void report(const char *workload, double per_op[CONTENDERS][BATCHES]) {
  for (int c = 0; c < CONTENDERS; c++)
    printf("{\"workload\": \"%s\", \"name\": \"%s\", \"median_ns\": %.2f}\n", workload,
           all[c].name, median(per_op[c]));
}

int main(void) {
  memset(value, 0x5a, sizeof value);
  st_cache *cache = NULL;
  if (st_cache_new(300, 2 * ENTRIES, 60, &cache, NULL) != ST_OK) return 1;
  Peer *floor_peer = peer_new(0, 2 * ENTRIES), *quick = peer_new(1, 2 * ENTRIES);
  all[0] = (contender){"st_secrets_c_abi_from_c", cache, st_get, st_set};
  all[1] = (contender){"floor_mutex_hashmap_copy_from_c", floor_peer, peer_get_copy, peer_set_copy};
  all[2] = (contender){"quick_cache_from_c", quick, peer_get_copy, peer_set_copy};
  for (int i = 0; i < ENTRIES; i++) {
    snprintf(keys[i], sizeof keys[i], "provider:replicate:conf:%08d", i);
    for (int c = 0; c < CONTENDERS; c++) all[c].set(all[c].self, keys[i]);
  }
  static double per_op[CONTENDERS][BATCHES];
  for (int b = 0; b < BATCHES; b++)
    for (int i = 0, c = b % CONTENDERS; i < CONTENDERS; i++, c = (c + 1) % CONTENDERS)
      per_op[c][b] = hot_get(&all[c]);
  report("hot_get", per_op);
  for (int b = 0; b < BATCHES; b++)
    for (int i = 0, c = b % CONTENDERS; i < CONTENDERS; i++, c = (c + 1) % CONTENDERS)
      per_op[c][b] = set(&all[c]);
  report("set", per_op);
  for (int b = 0; b < BATCHES; b++)
    for (int i = 0, c = b % CONTENDERS; i < CONTENDERS; i++, c = (c + 1) % CONTENDERS)
      per_op[c][b] = mixed_2t(&all[c], b);
  report("mixed_2t", per_op);
  st_cache_free(cache);
  peer_free(floor_peer);
  peer_free(quick);
  return 0;
}
