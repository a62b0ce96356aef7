/* The provider-configuration store and hardware pricing through the C ABI. */
#define _XOPEN_SOURCE 700 /* POSIX 2008 with XSI: nftw in secrets_util.h */
#include <math.h>
#include <stdlib.h>
#include <sys/wait.h>
#include "secrets_util.h"

static char db[600];

static st_store *open_store(void) {
  st_store *s = NULL;
  st_error *err = NULL;
  if (st_store_open(db, &s, &err) != ST_OK) {
    fprintf(stderr, "st_store_open: %s\n", st_error_message(err));
    st_error_free(err);
  }
  CHECK(s != NULL);
  return s;
}

/* 1 when the provider's configuration (JSON text) contains `needle`. */
static int config_has(st_store *s, const char *provider, const char *needle) {
  st_buf *json = NULL;
  if (st_store_get_provider_config(s, provider, &json, NULL) != ST_OK) return 0;
  int found = strstr(st_buf_str(json), needle) != NULL;
  st_buf_free(json);
  return found;
}

static void test_open_default_and_modes(void) {
  const char *state = make_temp_dir();
  setenv("SIMPLETUNER_STATE_DIR", state, 1);
  st_store *s = NULL;
  CHECK_CALL(ST_OK, st_store_open(NULL, &s, &err));
  char path[600];
  snprintf(path, sizeof path, "%s/cloud/jobs.db", state);
  CHECK(file_mode(path) == 0600);
  st_buf *json = NULL;
  CHECK_CALL(ST_OK, st_store_get_provider_config(s, "nobody", &json, &err));
  CHECK(json && strcmp(st_buf_str(json), "{}") == 0);
  st_buf_free(json);
  st_store_free(s);
  unsetenv("SIMPLETUNER_STATE_DIR");
}

static void test_cache_save_merge(void) {
  st_store *s = open_store();
  CHECK_CALL(ST_OK, st_store_save_provider_config(s, "replicate", "{\"version\": 1}", &err));
  CHECK(config_has(s, "replicate", "\"version\":1"));
  /* Another process saves: this process serves the change at once (the
     database's data_version moved), not its cached copy. */
  pid_t pid = fork();
  if (pid == 0) {
    st_store *child = open_store();
    st_result rc = st_store_save_provider_config(child, "replicate", "{\"version\": 2}", NULL);
    st_store_free(child);
    _exit(rc == ST_OK ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  CHECK(config_has(s, "replicate", "\"version\":2"));
  /* Served from the cache again, which an invalidation drops. */
  CHECK(st_invalidate_provider_cache("replicate") >= 1);
  CHECK(config_has(s, "replicate", "\"version\":2"));
  /* A save in this process invalidates at once; merges are patches. */
  CHECK_CALL(ST_OK, st_store_save_provider_config(s, "replicate", "{\"a\": 1, \"b\": 2}", &err));
  CHECK(config_has(s, "replicate", "\"a\":1"));
  st_buf *merged = NULL;
  CHECK_CALL(ST_OK, st_store_merge_provider_config(s, "replicate", "{\"b\": null, \"c\": 3}", &merged, &err));
  CHECK(merged && strcmp(st_buf_str(merged), "{\"a\":1,\"c\":3}") == 0);
  st_buf_free(merged);
  CHECK(config_has(s, "replicate", "\"c\":3"));
  st_buf *report = NULL;
  CHECK_CALL(ST_OK, st_store_audit_verify(s, &report, &err));
  CHECK(report && strstr(st_buf_str(report), "\"entries\":4") != NULL);
  st_buf_free(report);
  st_buf *audit = NULL;
  CHECK_CALL(ST_OK, st_store_audit_json(s, 1, &audit, &err));
  CHECK(audit && strstr(st_buf_str(audit), "\"action\":\"config.merge\"") != NULL);
  st_buf_free(audit);
  st_store_free(s);
}

static void test_processes_merging_at_once(void) {
  enum { CHILDREN = 5 };
  long keys = st_test_scale(10);
  pid_t pids[CHILDREN];
  for (int c = 0; c < CHILDREN; c++) {
    pids[c] = fork();
    if (pids[c] == 0) {
      st_store *s = open_store();
      int failures = 0;
      for (long i = 0; i < keys; i++) {
        char patch[64];
        snprintf(patch, sizeof patch, "{\"c%d_%ld\": %ld}", c, i, i);
        st_buf *out = NULL;
        if (st_store_merge_provider_config(s, "shared", patch, &out, NULL) != ST_OK) failures++;
        st_buf_free(out);
      }
      st_store_free(s);
      _exit(failures ? 1 : 0);
    }
  }
  for (int c = 0; c < CHILDREN; c++) {
    int status = 0;
    waitpid(pids[c], &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  st_store *s = open_store();
  st_invalidate_provider_cache("shared");
  for (int c = 0; c < CHILDREN; c++) {
    for (long i = 0; i < keys; i++) {
      char needle[64];
      snprintf(needle, sizeof needle, "\"c%d_%ld\":%ld", c, i, i);
      if (!config_has(s, "shared", needle)) {
        fprintf(stderr, "lost update %s\n", needle);
        st_test_failures++;
      }
    }
  }
  st_buf *report = NULL;
  CHECK_CALL(ST_OK, st_store_audit_verify(s, &report, &err));
  st_buf_free(report);
  st_store_free(s);
}

static void test_credentials(void) {
  setenv("SIMPLETUNER_CREDENTIAL_KEY", "c-store-test-key", 1);
  st_crypto_reset();
  st_store *s = open_store();
  CHECK_CALL(ST_OK, st_store_set_credential(s, "replicate", "api_token", "r8_SECRET", &err));
  st_buf *v = NULL;
  CHECK_CALL(ST_OK, st_store_get_credential(s, "replicate", "api_token", &v, &err));
  CHECK(v && strcmp(st_buf_str(v), "r8_SECRET") == 0);
  st_buf_free(v);
  v = (st_buf *)0x1;
  CHECK_CALL(ST_NOT_FOUND, st_store_get_credential(s, "replicate", "nope", &v, &err));
  CHECK(v == (st_buf *)0x1);
  /* Rotate to a new key with the old one as previous. */
  setenv("SIMPLETUNER_CREDENTIAL_KEY", "c-store-test-key-2", 1);
  setenv("SIMPLETUNER_CREDENTIAL_KEY_PREVIOUS", "c-store-test-key", 1);
  st_crypto_reset();
  st_buf *report = NULL;
  CHECK_CALL(ST_OK, st_store_rotate_credentials(s, &report, &err));
  CHECK(report && strstr(st_buf_str(report), "\"rotated\":1") != NULL);
  CHECK(report && strstr(st_buf_str(report), "\"current\":0") != NULL);
  CHECK(report && strstr(st_buf_str(report), "\"failed\":0") != NULL);
  st_buf_free(report);
  unsetenv("SIMPLETUNER_CREDENTIAL_KEY_PREVIOUS");
  st_crypto_reset();
  CHECK_CALL(ST_OK, st_store_get_credential(s, "replicate", "api_token", &v, &err));
  st_buf_free(v);
  CHECK_CALL(ST_OK, st_store_delete_credential(s, "replicate", "api_token", &err));
  CHECK_CALL(ST_NOT_FOUND, st_store_delete_credential(s, "replicate", "api_token", &err));
  st_store_free(s);
  unsetenv("SIMPLETUNER_CREDENTIAL_KEY");
  st_crypto_reset();
}

static void test_hardware(void) {
  st_hardware_info_clear_cache();
  st_buf *json = NULL;
  CHECK_CALL(ST_OK, st_hardware_info_json(NULL, &json, &err));
  CHECK(json && strstr(st_buf_str(json), "\"gpu-l40s\":{") != NULL);
  CHECK(json && strstr(st_buf_str(json), "\"cost_per_second\":0.000975") != NULL);
  CHECK(json && strstr(st_buf_str(json), "\"name\":\"L40S (48GB)\"") != NULL);
  CHECK(json && strstr(st_buf_str(json), "\"gpu-a100-large\"") != NULL);
  st_buf_free(json);
  double cost = 0;
  CHECK_CALL(ST_OK, st_hardware_hourly_cost(NULL, NULL, &cost, &err));
  CHECK(fabs(cost - 3.51) < 1e-9);
  CHECK_CALL(ST_OK, st_hardware_hourly_cost(NULL, "gpu-a100-large", &cost, &err));
  CHECK(fabs(cost - 5.04) < 1e-9);
  CHECK_CALL(ST_NOT_FOUND, st_hardware_hourly_cost(NULL, "gpu-none", &cost, &err));

  /* The store's replicate hardware_info wins over the defaults. */
  st_store *s = open_store();
  CHECK_CALL(ST_OK, st_store_save_provider_config(
                        s, "replicate", "{\"hardware_info\": {\"gpu-h100\": {\"name\": \"H100\", \"cost_per_second\": 0.002}}}", &err));
  CHECK_CALL(ST_OK, st_hardware_hourly_cost(s, "gpu-h100", &cost, &err));
  CHECK(fabs(cost - 7.2) < 1e-9);
  CHECK_CALL(ST_INVALID_ARGUMENT, st_store_save_provider_config(
                                      s, "replicate", "{\"hardware_info\": {\"g\": {\"cost_per_second\": -1}}}", &err));
  CHECK_CALL(ST_OK, st_hardware_info_set("{\"gpu-x\": {\"cost_per_second\": 0.5}}", &err));
  CHECK_CALL(ST_OK, st_hardware_hourly_cost(s, "gpu-x", &cost, &err));
  CHECK(fabs(cost - 1800.0) < 1e-9);
  CHECK_CALL(ST_INVALID_ARGUMENT, st_hardware_info_set("{\"g\": {\"cost_per_second\": \"1\"}}", &err));
  CHECK_CALL(ST_INVALID_ARGUMENT, st_hardware_info_set("not json", &err));
  CHECK_CALL(ST_INVALID_ARGUMENT, st_hardware_info_set("{}", &err));
  st_hardware_info_clear_cache();
  st_store_free(s);
}

static void test_bad_input_and_corrupt_database(void) {
  static const char bad[] = {'p', (char)0xff, 0};
  st_store *s = open_store();
  st_buf *out = (st_buf *)0x1;
  CHECK_CALL(ST_NULL_ARGUMENT, st_store_get_provider_config(NULL, "p", &out, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_store_get_provider_config(s, NULL, &out, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_store_get_provider_config(s, "p", NULL, &err));
  CHECK_CALL(ST_INVALID_UTF8, st_store_get_provider_config(s, bad, &out, &err));
  CHECK_CALL(ST_INVALID_ARGUMENT, st_store_get_provider_config(s, "", &out, &err));
  CHECK_CALL(ST_INVALID_ARGUMENT, st_store_save_provider_config(s, "p", "{broken", &err));
  CHECK_CALL(ST_INVALID_ARGUMENT, st_store_save_provider_config(s, "p", "[1]", &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_store_save_provider_config(s, "p", NULL, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_store_merge_provider_config(s, "p", "{}", NULL, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_store_set_credential(s, "p", "n", NULL, &err));
  CHECK_CALL(ST_INVALID_ARGUMENT, st_store_set_credential(s, "p", "", "v", &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_store_audit_json(s, 10, NULL, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_store_audit_verify(NULL, &out, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_hardware_info_json(NULL, NULL, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_hardware_hourly_cost(NULL, NULL, NULL, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_store_open(db, NULL, &err));
  CHECK(out == (st_buf *)0x1);
  st_store_free(s);
  st_store_free(NULL);

  /* A file that is not a database: ST_STORE, and it is left as it was. */
  char garbage[640];
  snprintf(garbage, sizeof garbage, "%s.garbage", db);
  write_file(garbage, "definitely not an SQLite database file, just some text");
  st_store *g = (st_store *)0x1;
  st_error *err = NULL;
  CHECK(st_store_open(garbage, &g, &err) == ST_STORE);
  CHECK(g == (st_store *)0x1);
  CHECK(err && strstr(st_error_message(err), ".garbage") != NULL);
  st_error_free(err);
  CHECK(strcmp(read_file(garbage), "definitely not an SQLite database file, just some text") == 0);
}

int main(void) {
  const char *dir = make_temp_dir();
  snprintf(db, sizeof db, "%s/jobs.db", dir);
  test_open_default_and_modes();
  test_cache_save_merge();
  test_processes_merging_at_once();
  test_credentials();
  test_hardware();
  test_bad_input_and_corrupt_database();
  return st_test_finish("test_store");
}
