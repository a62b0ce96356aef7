/* A minimal training launcher built on st-secrets.
 *
 * What it shows, in the order a launcher does it:
 *   1. check that the library matches the header it was compiled against;
 *   2. resolve a provider's settings through the process-wide
 *      provider-config cache: computed once (here: from the environment),
 *      then served from the cache, with hit/miss counters to watch;
 *   3. invalidate the provider's entries after a settings change.
 * It prints what it did, never a secret value.
 *
 * (The secrets-manager chain, env > file > AWS > Vault, arrives with the next
 * issues; this example will resolve REPLICATE_API_TOKEN / HF_TOKEN through it.)
 *
 * Build and run: scripts/run-example.sh
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "st_secrets.h"

static int lookups = 0;

/* Computes a provider's settings: the expensive step the cache avoids. */
static st_result load_provider_config(void *user_data, const char *key, st_sink *sink) {
  const char *provider = (const char *)user_data;
  char json[256];
  const char *hw = getenv("SIMPLETUNER_HARDWARE");
  lookups++;
  snprintf(json, sizeof json, "{\"provider\":\"%s\",\"hardware\":\"%s\",\"key\":\"%s\"}", provider,
           hw && *hw ? hw : "gpu-l40s", key);
  return st_sink_write(sink, (const uint8_t *)json, strlen(json));
}

static int fail(const char *what, st_error *err) {
  fprintf(stderr, "launcher: %s failed: %s (%s)\n", what,
          st_result_name((int)st_error_code(err)), st_error_message(err));
  st_error_free(err);
  return 1;
}

int main(void) {
  if (st_version_major() != ST_VERSION_MAJOR) {
    fprintf(stderr, "launcher: built for st-secrets %d.x, loaded %s\n", ST_VERSION_MAJOR,
            st_version());
    return 1;
  }
  printf("launcher: using %s\n", st_version());

  st_cache *configs = st_provider_config_cache();
  const char *provider = "replicate";
  for (int attempt = 1; attempt <= 3; attempt++) {
    st_buf *config = NULL;
    st_error *err = NULL;
    if (st_cache_get_or_set(configs, "provider:replicate:config", load_provider_config,
                            (void *)provider, ST_CACHE_USE_DEFAULT, &config, &err) != ST_OK) {
      return fail("provider config lookup", err);
    }
    printf("launcher: attempt %d: provider config for '%s' resolved (%zu bytes, %d load%s so far)\n",
           attempt, provider, st_buf_len(config), lookups, lookups == 1 ? "" : "s");
    st_buf_free(config);
  }

  size_t dropped = st_invalidate_provider_cache(provider);
  printf("launcher: settings changed: invalidated %zu cached entr%s for '%s'\n", dropped,
         dropped == 1 ? "y" : "ies", provider);

  st_cache_stats stats;
  st_error *err = NULL;
  if (st_cache_stats_get(configs, &stats, &err) != ST_OK) return fail("cache stats", err);
  printf("launcher: provider-config cache: %llu hits, %llu misses, %zu entries (TTL %.0f s, max %zu)\n",
         (unsigned long long)stats.hits, (unsigned long long)stats.misses, stats.size,
         stats.default_ttl, stats.max_size);
  return lookups == 1 ? 0 : 1;
}
