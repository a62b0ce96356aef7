/* A consumer of an installed st-secrets: a TTL cache, credential encryption,
 * and the secrets chain on the file named by argv[1] (which holds
 * {"HF_TOKEN": ...}). Prints what it did, never a value; exits 0 when all of
 * it worked. Built by tests/consumers/cmake and tests/consumers/make. */
#include <st_secrets.h>

#include <stdio.h>
#include <string.h>

static int fail(const char *what, st_error *err) {
  fprintf(stderr, "consumer: %s failed: %s\n", what, err ? st_error_message(err) : "?");
  st_error_free(err);
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: consumer SECRETS_FILE\n");
    return 2;
  }
  st_error *err = NULL;
  st_cache *cache = NULL;
  if (st_cache_new(ST_CACHE_USE_DEFAULT, 16, ST_CACHE_USE_DEFAULT, &cache, &err) != ST_OK)
    return fail("st_cache_new", err);
  if (st_cache_set(cache, "k", (const uint8_t *)"v", 1, ST_CACHE_USE_DEFAULT, &err) != ST_OK)
    return fail("st_cache_set", err);
  st_buf *buf = NULL;
  if (st_cache_get(cache, "k", &buf, &err) != ST_OK) return fail("st_cache_get", err);
  int cache_ok = st_buf_len(buf) == 1 && memcmp(st_buf_data(buf), "v", 1) == 0;
  st_buf_free(buf);
  st_cache_free(cache);

  st_buf *ct = NULL, *pt = NULL;
  if (st_encrypt_with_secret("consumer-secret", "r8_x", &ct, &err) != ST_OK)
    return fail("st_encrypt_with_secret", err);
  if (st_decrypt_with_secret("consumer-secret", st_buf_str(ct), &pt, &err) != ST_OK)
    return fail("st_decrypt_with_secret", err);
  int crypto_ok = strcmp(st_buf_str(pt), "r8_x") == 0;
  st_buf_free(ct);
  st_buf_free(pt);

  char config[4096];
  snprintf(config, sizeof config, "{\"file_path\": \"%s\", \"providers\": [\"file\"]}", argv[1]);
  st_secrets *m = NULL;
  if (st_secrets_new(config, &m, &err) != ST_OK) return fail("st_secrets_new", err);
  st_buf *value = NULL, *source = NULL;
  if (st_secrets_get_with_source(m, "hf-token", &value, &source, &err) != ST_OK)
    return fail("st_secrets_get_with_source", err);
  printf("st-secrets %s: cache %s, crypto %s, HF_TOKEN from %s (%s)\n", st_version(),
         cache_ok ? "ok" : "WRONG", crypto_ok ? "ok" : "WRONG", st_buf_str(source),
         st_buf_len(value) > 0 ? "non-empty" : "EMPTY");
  int ok = cache_ok && crypto_ok && strcmp(st_buf_str(source), "file") == 0 && st_buf_len(value) > 0;
  st_buf_free(value);
  st_buf_free(source);
  st_secrets_free(m);
  return ok ? 0 : 1;
}
