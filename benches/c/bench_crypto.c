/* Credential encryption through the C ABI, from C: encrypt and decrypt of a
   64-byte token with the key cached, and the one-time key derivation
   (st_crypto_reset + first use). Prints JSON lines {"workload", "name",
   "median_ns"}. Needs SIMPLETUNER_CREDENTIAL_KEY (scripts/bench.sh crypto). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include "bench_util.h"
#include "st_secrets.h"

#define OPS 20000

static void report(const char *workload, double ns) {
  printf("{\"workload\": \"%s\", \"name\": \"st_secrets_c_abi\", \"median_ns\": %.1f}\n", workload, ns);
}

int main(void) {
  char token[65];
  memset(token, 'k', 64);
  token[64] = 0;
  st_buf *ct = NULL, *pt = NULL;
  if (st_encrypt(token, &ct, NULL) != ST_OK) return 1; /* derives and caches the key */
  double per_op[BATCHES];
  for (int b = 0; b < BATCHES; b++) {
    double t0 = now_ns();
    for (int i = 0; i < OPS; i++) {
      st_buf *c = NULL;
      st_encrypt(token, &c, NULL);
      st_buf_free(c);
    }
    per_op[b] = (now_ns() - t0) / OPS;
  }
  report("encrypt_64b", median(per_op));
  for (int b = 0; b < BATCHES; b++) {
    double t0 = now_ns();
    for (int i = 0; i < OPS; i++) {
      st_decrypt(st_buf_str(ct), &pt, NULL);
      st_buf_free(pt);
    }
    per_op[b] = (now_ns() - t0) / OPS;
  }
  report("decrypt_64b", median(per_op));
  double derive[BATCHES];
  for (int b = 0; b < BATCHES; b++) {
    st_crypto_reset();
    double t0 = now_ns();
    st_buf *c = NULL;
    st_encrypt(token, &c, NULL);
    st_buf_free(c);
    derive[b] = now_ns() - t0;
  }
  report("key_derivation", median(derive));
  st_buf_free(ct);
  return 0;
}
