/* A minimal training launcher built on st-secrets.
 *
 * What it does, in the order a launcher does it:
 *   1. checks that the library matches the header it was compiled against;
 *   2. resolves the well-known secrets through the provider chain on the
 *      embedded defaults (environment > ~/.simpletuner/secrets.{json,yaml,yml}
 *      > AWS Secrets Manager > Vault, the remote two when configured)
 *      and says which provider answered each one, never the value;
 *   3. resolves a provider's settings once through the process-wide
 *      provider-config cache and shows the cache counters.
 *
 * Build and run: scripts/run-example.sh (it gives the launcher a demo home with
 * a secrets file, and one variable, so that the chain has something to find).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "st_secrets.h"

static int loads = 0;

/* Computes a provider's settings: the step the cache saves. */
static st_result load_provider_config(void *user_data, const char *key, st_sink *sink) {
  char json[256];
  (void)key;
  loads++;
  snprintf(json, sizeof json, "{\"provider\":\"%s\",\"hardware\":\"gpu-l40s\"}",
           (const char *)user_data);
  return st_sink_write(sink, (const uint8_t *)json, strlen(json));
}

int main(void) {
  if (st_version_major() != ST_VERSION_MAJOR) {
    fprintf(stderr, "launcher: built for st-secrets %d.x, loaded %s\n", ST_VERSION_MAJOR,
            st_version());
    return 1;
  }
  printf("launcher: using %s\n", st_version());

  /* The chain, as configured from the environment (NULL = default manager). */
  st_buf *chain = NULL;
  st_error *err = NULL;
  if (st_secrets_providers_json(NULL, &chain, &err) != ST_OK) {
    fprintf(stderr, "launcher: %s\n", st_error_message(err));
    st_error_free(err);
    return 1;
  }
  printf("launcher: provider chain: %s\n", st_buf_str(chain));
  st_buf_free(chain);

  const char *keys[] = {ST_KEY_REPLICATE_API_TOKEN, ST_KEY_HF_TOKEN, ST_KEY_WEBHOOK_SECRET};
  int missing = 0;
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    st_buf *value = NULL, *provider = NULL;
    err = NULL;
    st_result rc = st_secrets_get_with_source(NULL, keys[i], &value, &provider, &err);
    if (rc == ST_OK) {
      printf("launcher: %-22s resolved by '%s'\n", keys[i], st_buf_str(provider));
      /* ...hand the value to the training job here, e.g. in its environment... */
    } else if (rc == ST_NOT_FOUND) {
      printf("launcher: %-22s not set (checked every provider)\n", keys[i]);
      missing++;
    } else {
      printf("launcher: %-22s FAILED: %s: %s\n", keys[i], st_result_name((int)rc),
             st_error_message(err));
      missing++;
    }
    st_buf_free(value);
    st_buf_free(provider);
    st_error_free(err);
  }

  st_cache *configs = st_provider_config_cache();
  for (int attempt = 0; attempt < 3; attempt++) {
    st_buf *config = NULL;
    err = NULL;
    if (st_cache_get_or_set(configs, "provider:replicate:config", load_provider_config,
                            (void *)"replicate", ST_CACHE_USE_DEFAULT, &config, &err) != ST_OK) {
      fprintf(stderr, "launcher: provider config: %s\n", st_error_message(err));
      st_error_free(err);
      return 1;
    }
    st_buf_free(config);
  }
  st_cache_stats stats = {.struct_size = sizeof stats};
  if (st_cache_stats_get(configs, &stats, NULL) == ST_OK) {
    printf("launcher: provider config resolved 3 times, loaded %d time(s); cache: %llu hits, "
           "%llu misses\n",
           loads, (unsigned long long)stats.hits, (unsigned long long)stats.misses);
  }
  if (missing) {
    printf("launcher: %d secret(s) missing; run 'st-secrets doctor' for details\n", missing);
  }
  return 0;
}
