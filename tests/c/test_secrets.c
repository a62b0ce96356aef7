/* The secrets manager through the C ABI: every rule of the env and file
   providers and of the chain. */
#define _XOPEN_SOURCE 700 /* POSIX 2008 with XSI: nftw in secrets_util.h */
#include <pthread.h>
#include <stdlib.h>
#include "secrets_util.h"

static char path[512];

static void at(const char *dir, const char *name) { snprintf(path, sizeof path, "%s/%s", dir, name); }

static void test_env_normalization_prefix_live_and_empty(void) {
  const char *dir = make_temp_dir();
  at(dir, "secrets.json");
  write_file(path, "{\"HF_TOKEN\": \"from-file\", \"OTHER\": \"o\"}");
  st_secrets *m = manager_on(path, NULL);
  setenv("REPLICATE_API_TOKEN", "r8_env", 1);
  CHECK(value_is(m, "replicate-api-token", "r8_env"));
  CHECK(value_is(m, "replicate.api.token", "r8_env"));
  CHECK(value_is(m, ST_KEY_REPLICATE_API_TOKEN, "r8_env"));
  unsetenv("REPLICATE_API_TOKEN");
  CHECK(value_is(m, "REPLICATE_API_TOKEN", NULL));

  /* File value first (and cached in the snapshot), then the environment wins. */
  CHECK(value_is(m, "HF_TOKEN", "from-file"));
  setenv("HF_TOKEN", "from-env", 1);
  CHECK(value_is(m, "HF_TOKEN", "from-env"));
  /* An empty variable counts as unset: it does not hide the file's token. */
  setenv("HF_TOKEN", "", 1);
  CHECK(value_is(m, "HF_TOKEN", "from-file"));
  unsetenv("HF_TOKEN");

  st_buf *v = NULL, *src = NULL;
  CHECK_CALL(ST_OK, st_secrets_get_with_source(m, "hf-token", &v, &src, &err));
  CHECK(v && strcmp(st_buf_str(v), "from-file") == 0);
  CHECK(src && strcmp(st_buf_str(src), "file") == 0);
  st_buf_free(v);
  st_buf_free(src);
  /* The version: none for the file (remote versions: the Rust suites
     against moto and OpenBao). */
  st_buf *info = NULL;
  v = NULL;
  CHECK_CALL(ST_OK, st_secrets_get_with_version(m, "hf-token", &v, &info, &err));
  CHECK(v && strcmp(st_buf_str(v), "from-file") == 0);
  CHECK(info && strcmp(st_buf_str(info),
                       "{\"provider\":\"file\",\"version\":null,\"stages\":[]}") == 0);
  st_buf_free(v);
  st_buf_free(info);
  v = info = NULL;
  CHECK_CALL(ST_NOT_FOUND, st_secrets_get_with_version(m, "absent-key", &v, &info, &err));
  CHECK(v == NULL && info == NULL);
  /* "This value failed me": the file read again, and whether it changed. */
  bool changed = true;
  v = NULL;
  CHECK_CALL(ST_OK, st_secrets_refresh(m, "hf-token", &v, &changed, &err));
  CHECK(v && strcmp(st_buf_str(v), "from-file") == 0 && !changed);
  st_buf_free(v);
  v = NULL;
  CHECK_CALL(ST_NOT_FOUND, st_secrets_refresh(m, "absent-key", &v, &changed, &err));
  CHECK(v == NULL);
  /* A failure reported: the file has no versions, so it is read again as a
     refresh; the answer says what is held (the stages of a rotation: the
     Rust suites against moto and OpenBao). */
  v = info = NULL;
  CHECK_CALL(ST_OK, st_secrets_report_failure(m, "hf-token", NULL, &v, &info, &err));
  CHECK(v && strcmp(st_buf_str(v), "from-file") == 0);
  CHECK(info && strcmp(st_buf_str(info), "{\"provider\":\"file\",\"version\":null,\"stages\":[],"
                                         "\"changed\":false}") == 0);
  st_buf_free(v);
  st_buf_free(info);
  v = info = NULL;
  CHECK_CALL(ST_INVALID_ARGUMENT, st_secrets_report_failure(m, "hf-token", "", &v, &info, &err));
  CHECK(v == NULL && info == NULL);
  CHECK_CALL(ST_NOT_FOUND, st_secrets_report_failure(m, "absent-key", "3", &v, &info, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_secrets_report_failure(m, NULL, NULL, &v, &info, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_secrets_report_failure(m, "hf-token", NULL, NULL, &info, &err));
  CHECK(v == NULL && info == NULL);
  /* Provenance: off unless asked; then a fingerprint per key, no value. */
  st_buf *json = NULL;
  CHECK_CALL(ST_INVALID_ARGUMENT, st_secrets_provenance_json(m, &json, &err));
  CHECK(json == NULL);
  st_secrets_free(m);
  char config[1024];
  snprintf(config, sizeof config, "{\"file_path\": \"%s\", \"provenance\": true}", path);
  CHECK_CALL(ST_OK, st_secrets_new(config, &m, &err));
  CHECK(value_is(m, "hf-token", "from-file"));
  CHECK_CALL(ST_OK, st_secrets_provenance_json(m, &json, &err));
  CHECK(json && strstr(st_buf_str(json), "\"key\":\"hf-token\"") &&
        strstr(st_buf_str(json), "\"fingerprint\":\"hmac-sha256:") && !strstr(st_buf_str(json), "from-file"));
  st_buf_free(json);
  json = NULL;
  CHECK_CALL(ST_OK, st_secrets_metrics_json(m, &json, &err));
  CHECK(json && st_buf_str(json)[0] == '{');
  st_buf_free(json);
  st_secrets_free(m);

  /* With a prefix, only <prefix>_<KEY> is read. */
  m = manager_on(path, "SIMPLETUNER");
  setenv("SIMPLETUNER_OTHER", "prefixed", 1);
  setenv("OTHER", "unprefixed", 1);
  CHECK(value_is(m, "other", "prefixed"));
  unsetenv("SIMPLETUNER_OTHER");
  CHECK(value_is(m, "OTHER", "o")); /* falls to the file, not to $OTHER */
  unsetenv("OTHER");
  st_secrets_free(m);
}

static void test_default_locations_and_default_manager(void) {
  const char *home = make_temp_dir();
  setenv("HOME", home, 1);
  unsetenv("SIMPLETUNER_SECRETS_FILE");
  CHECK_CALL(ST_OK, st_secrets_reset_default(&err));
  CHECK(value_is(NULL, "K", NULL));

  char dir[512];
  snprintf(dir, sizeof dir, "%s/.simpletuner", home);
  CHECK(mkdir(dir, 0700) == 0);
  at(dir, "secrets.yml");
  write_file(path, "K: from-yml\n");
  st_secrets_clear_cache(NULL);
  CHECK(value_is(NULL, "K", "from-yml"));
  at(dir, "secrets.yaml");
  write_file(path, "K: from-yaml\n");
  st_secrets_clear_cache(NULL);
  CHECK(value_is(NULL, "K", "from-yaml"));
  at(dir, "secrets.json");
  write_file(path, "{\"K\": \"from-json\"}");
  st_secrets_clear_cache(NULL);
  CHECK(value_is(NULL, "K", "from-json"));

  /* The default manager saves to the file it reads. */
  CHECK_CALL(ST_OK, st_secrets_set(NULL, "NEW", "n", &err));
  CHECK(strstr(read_file(path), "\"NEW\": \"n\"") != NULL);

  /* SIMPLETUNER_SECRETS_FILE is read when the default manager is (re)built. */
  char other[600];
  snprintf(other, sizeof other, "%s/elsewhere.json", home);
  write_file(other, "{\"K\": \"elsewhere\"}");
  setenv("SIMPLETUNER_SECRETS_FILE", other, 1);
  CHECK(value_is(NULL, "K", "from-json"));
  CHECK_CALL(ST_OK, st_secrets_reset_default(&err));
  CHECK(value_is(NULL, "K", "elsewhere"));
  unsetenv("SIMPLETUNER_SECRETS_FILE");
  CHECK_CALL(ST_OK, st_secrets_reset_default(&err));
}

static void test_configured_path_created_on_first_save(void) {
  const char *dir = make_temp_dir();
  char sub[512], file[600];
  snprintf(sub, sizeof sub, "%s/new/dirs", dir);
  snprintf(file, sizeof file, "%s/secrets.yaml", sub);
  st_secrets *m = manager_on(file, NULL);
  CHECK(value_is(m, "K", NULL));
  mode_t old = umask(0); /* the file must still be 0600 */
  CHECK_CALL(ST_OK, st_secrets_set(m, "K", "v: with colon", &err));
  umask(old);
  CHECK(file_mode(file) == 0600);
  CHECK(file_mode(sub) == 0700);
  CHECK(strstr(read_file(file), "{") == NULL); /* YAML, not JSON */
  CHECK(value_is(m, "K", "v: with colon"));
  st_secrets_free(m);
}

static void test_scalars_nested_and_detail(void) {
  const char *dir = make_temp_dir();
  at(dir, "secrets.json");
  write_file(path, "{\"n\": 42, \"f\": 1.5, \"b\": false, \"nested\": {\"x\": 1}, \"arr\": [1]}");
  st_secrets *m = manager_on(path, "STC_NONE");
  CHECK(value_is(m, "n", "42"));
  CHECK(value_is(m, "f", "1.5"));
  CHECK(value_is(m, "b", "false"));
  CHECK(value_is(m, "nested", NULL));
  st_buf *json = NULL;
  CHECK_CALL(ST_OK, st_secrets_providers_json(m, &json, &err));
  const char *j = json ? st_buf_str(json) : "";
  CHECK(strstr(j, "\"name\":\"env\"") != NULL);
  CHECK(strstr(j, "\"name\":\"file\"") != NULL);
  CHECK(strstr(j, "\"name\":\"env\"") < strstr(j, "\"name\":\"file\"")); /* chain order */
  CHECK(strstr(j, "arr, nested") != NULL);
  st_buf_free(json);
  st_secrets_free(m);
}

static void test_changes_seen_and_format_kept(void) {
  const char *dir = make_temp_dir();
  at(dir, "secrets.yaml");
  write_file(path, "zeta: 1\nHF_TOKEN: old\nalpha: a\n");
  st_secrets *m = manager_on(path, "STC_NONE");
  CHECK(value_is(m, "HF_TOKEN", "old"));
  /* Another process rewrites the file: seen within a second, no restart. */
  write_file(path, "zeta: 1\nHF_TOKEN: new\nalpha: a\n");
  sleep_ms(1000);
  CHECK(value_is(m, "HF_TOKEN", "new"));
  CHECK_CALL(ST_OK, st_secrets_set(m, "added", "x", &err));
  CHECK_CALL(ST_OK, st_secrets_set(m, "HF_TOKEN", "newer", &err));
  CHECK(strcmp(read_file(path), "zeta: 1\nHF_TOKEN: newer\nalpha: a\nadded: x\n") == 0);
  CHECK_CALL(ST_OK, st_secrets_delete(m, "alpha", &err));
  CHECK_CALL(ST_NOT_FOUND, st_secrets_delete(m, "alpha", &err));
  CHECK(strcmp(read_file(path), "zeta: 1\nHF_TOKEN: newer\nadded: x\n") == 0);
  /* clear_cache forces a re-read at once. */
  write_file(path, "HF_TOKEN: external\n");
  st_secrets_clear_cache(m);
  CHECK(value_is(m, "HF_TOKEN", "external"));
  st_secrets_free(m);
}

/* What a change listener was told; written from the refresher thread too. */
struct told {
  pthread_mutex_t lock;
  int events, released;
  char key[64], info[256];
};

static void on_change(void *user_data, const char *key, const char *info) {
  struct told *t = user_data;
  pthread_mutex_lock(&t->lock);
  t->events++;
  snprintf(t->key, sizeof t->key, "%s", key);
  snprintf(t->info, sizeof t->info, "%s", info);
  pthread_mutex_unlock(&t->lock);
}

static void on_release(void *user_data) {
  struct told *t = user_data;
  pthread_mutex_lock(&t->lock);
  t->released++;
  pthread_mutex_unlock(&t->lock);
}

static int events_of(struct told *t) {
  pthread_mutex_lock(&t->lock);
  int n = t->events;
  pthread_mutex_unlock(&t->lock);
  return n;
}

static void test_change_events(void) {
  const char *dir = make_temp_dir();
  at(dir, "secrets.json");
  write_file(path, "{\"HF_TOKEN\": \"one\", \"KEEP\": \"k\"}");
  st_secrets *m = manager_on(path, "STC_NONE");
  CHECK(value_is(m, "HF_TOKEN", "one"));
  struct told t = {.lock = PTHREAD_MUTEX_INITIALIZER};
  uint64_t id = 0;
  CHECK_CALL(ST_NULL_ARGUMENT, st_secrets_on_change(m, NULL, NULL, &t, &id, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_secrets_on_change(m, on_change, on_release, &t, NULL, &err));
  CHECK(t.released == 0); /* a failed registration releases nothing */
  CHECK_CALL(ST_OK, st_secrets_on_change(m, on_change, on_release, &t, &id, &err));
  /* A save is told on the saving thread, before the call returns. */
  CHECK_CALL(ST_OK, st_secrets_set(m, "HF_TOKEN", "two", &err));
  CHECK(events_of(&t) == 1 && strcmp(t.key, "HF_TOKEN") == 0);
  CHECK(strcmp(t.info, "{\"provider\":\"file\",\"version\":null,\"stages\":[],\"removed\":false}") == 0);
  /* Rewritten by another process; no get here: the watch tells it. */
  write_file(path, "{\"HF_TOKEN\": \"three\", \"KEEP\": \"k\"}");
  for (int i = 0; i < 600 && events_of(&t) < 2; i++) sleep_ms(50);
  CHECK(events_of(&t) == 2 && strcmp(t.key, "HF_TOKEN") == 0);
  CHECK_CALL(ST_OK, st_secrets_remove_listener(m, id, &err));
  CHECK(t.released == 1);
  CHECK_CALL(ST_NOT_FOUND, st_secrets_remove_listener(m, id, &err));
  CHECK_CALL(ST_OK, st_secrets_set(m, "HF_TOKEN", "four", &err));
  CHECK(events_of(&t) == 2);
  /* Freeing the manager releases the listeners it still has. */
  CHECK_CALL(ST_OK, st_secrets_on_change(m, on_change, on_release, &t, &id, &err));
  st_secrets_free(m);
  for (int i = 0; i < 600 && t.released < 2; i++) sleep_ms(50);
  CHECK(t.released == 2);
}

static void test_malformed_file(void) {
  const char *dir = make_temp_dir();
  at(dir, "secrets.json");
  const char *broken = "{\n  \"HF_TOKEN\": \"hf_DO_NOT_LEAK\",\n  broken\n}\n";
  write_file(path, broken);
  st_secrets *m = manager_on(path, "STC_NONE");
  st_error *err = NULL;
  st_buf *out = (st_buf *)0x1;
  CHECK(st_secrets_get(m, "HF_TOKEN", &out, &err) == ST_PARSE);
  CHECK(out == (st_buf *)0x1);
  CHECK(err && strstr(st_error_message(err), "secrets.json") != NULL);
  CHECK(err && strstr(st_error_message(err), "line 3") != NULL);
  CHECK(err && strstr(st_error_message(err), "provider 'file'") != NULL);
  CHECK(err && strstr(st_error_message(err), "DO_NOT_LEAK") == NULL);
  st_error_free(err);
  /* A save refuses to overwrite it: nothing is lost. */
  CHECK_CALL(ST_PARSE, st_secrets_set(m, "K", "v", &err));
  CHECK_CALL(ST_PARSE, st_secrets_delete(m, "HF_TOKEN", &err));
  CHECK(strcmp(read_file(path), broken) == 0);
  /* The failure shows in the chain; the environment still answers. */
  st_buf *json = NULL;
  CHECK_CALL(ST_OK, st_secrets_providers_json(m, &json, &err));
  CHECK(json && strstr(st_buf_str(json), "\"code\":\"ST_PARSE\"") != NULL);
  CHECK(json && strstr(st_buf_str(json), "DO_NOT_LEAK") == NULL);
  st_buf_free(json);
  setenv("STC_M_HF_TOKEN", "env-ok", 1);
  st_secrets_free(m);
  m = manager_on(path, "STC_M");
  CHECK(value_is(m, "HF_TOKEN", "env-ok"));
  unsetenv("STC_M_HF_TOKEN");
  st_secrets_free(m);
}

static void test_permissions_warning(void) {
  const char *dir = make_temp_dir();
  at(dir, "secrets.json");
  write_file(path, "{\"K\": \"v\"}");
  chmod(path, 0644);
  st_secrets *m = manager_on(path, NULL);
  st_buf *json = NULL;
  CHECK_CALL(ST_OK, st_secrets_providers_json(m, &json, &err));
  CHECK(json && strstr(st_buf_str(json), "group or others (mode 0644)") != NULL);
  st_buf_free(json);
  st_secrets_free(m);
}

static void test_config_errors_and_bad_input(void) {
  st_secrets *m = (st_secrets *)0x1;
  st_error *err = NULL;
  CHECK(st_secrets_new("{\"file_pth\": \"x\"}", &m, &err) == ST_INVALID_ARGUMENT);
  CHECK(err && strstr(st_error_message(err), "'file_pth'") != NULL);
  st_error_free(err);
  err = NULL;
  CHECK(st_secrets_new("{\"vault_kv_version\": 3, \"vault_token\": \"s.TOPSECRET\"}", &m, &err) ==
        ST_INVALID_ARGUMENT);
  CHECK(err && strstr(st_error_message(err), "TOPSECRET") == NULL);
  st_error_free(err);
  CHECK_CALL(ST_INVALID_ARGUMENT, st_secrets_new("{not json", &m, &err));
  CHECK_CALL(ST_INVALID_ARGUMENT, st_secrets_new("{\"providers\": [\"nope\"]}", &m, &err));
  CHECK_CALL(ST_INVALID_ARGUMENT, st_secrets_new("{\"cache_ttl\": -5}", &m, &err));
  CHECK(m == (st_secrets *)0x1);
  static const char bad[] = {'k', (char)0xc3, 0};
  CHECK_CALL(ST_INVALID_UTF8, st_secrets_new(bad, &m, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_secrets_new(NULL, NULL, &err));
  m = NULL;
  CHECK_CALL(ST_OK, st_secrets_new("{}", &m, &err));
  st_secrets_free(m);
  m = NULL;
  CHECK_CALL(ST_OK, st_secrets_new(NULL, &m, &err));

  st_buf *b = (st_buf *)0x1;
  CHECK_CALL(ST_NULL_ARGUMENT, st_secrets_get(m, NULL, &b, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_secrets_get(m, "K", NULL, &err));
  CHECK_CALL(ST_INVALID_UTF8, st_secrets_get(m, bad, &b, &err));
  CHECK_CALL(ST_INVALID_ARGUMENT, st_secrets_get(m, "", &b, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_secrets_get_with_source(m, "K", &b, NULL, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_secrets_set(m, NULL, "v", &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_secrets_set(m, "K", NULL, &err));
  CHECK_CALL(ST_INVALID_UTF8, st_secrets_set(m, "K", bad, &err));
  CHECK_CALL(ST_INVALID_ARGUMENT, st_secrets_set(m, "", "v", &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_secrets_delete(m, NULL, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_secrets_providers_json(m, NULL, &err));
  CHECK(b == (st_buf *)0x1);
  st_secrets_clear_cache(m);
  st_secrets_free(m);
  st_secrets_free(NULL);

  /* A chain without the file provider cannot save. */
  CHECK_CALL(ST_OK, st_secrets_new("{\"providers\": [\"env\"]}", &m, &err));
  CHECK_CALL(ST_PROVIDER_UNAVAILABLE, st_secrets_set(m, "K", "v", &err));
  st_secrets_free(m);
  CHECK(strcmp(ST_KEY_HF_TOKEN, "HF_TOKEN") == 0);
  CHECK(strcmp(ST_KEY_WEBHOOK_SECRET, "CLOUD_WEBHOOK_SECRET") == 0);
}

static void test_not_found_everywhere(void) {
  const char *dir = make_temp_dir();
  at(dir, "secrets.json");
  st_secrets *m = manager_on(path, "STC_NF");
  st_error *err = NULL;
  st_buf *b = NULL;
  CHECK(st_secrets_get(m, "NOWHERE", &b, &err) == ST_NOT_FOUND);
  CHECK(err && strstr(st_error_message(err), "NOWHERE") != NULL);
  st_error_free(err);
  st_secrets_free(m);
}

/* The AWS provider through the C ABI, against a port nobody listens on: the
   configuration keys, the failure's code and message, providers_json's
   last_error and the doctor's checks. The provider against a real server is
   tested in Rust (tests/aws_moto.rs, moto) and in src/aws/tests.rs. */
static void test_aws_unreachable(void) {
  setenv("AWS_ACCESS_KEY_ID", "AKIDCTEST", 1);
  setenv("AWS_SECRET_ACCESS_KEY", "c-test-secret-access-key", 1);
  setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
  st_secrets *m = NULL;
  CHECK_CALL(ST_INVALID_ARGUMENT, st_secrets_new("{\"aws_region\": 5}", &m, &err));
  CHECK_CALL(ST_INVALID_ARGUMENT, st_secrets_new("{\"aws_endpoint\": \"ftp://x\"}", &m, &err));
  CHECK_CALL(ST_INVALID_ARGUMENT, st_secrets_new("{\"retries\": 11}", &m, &err));
  CHECK_CALL(ST_OK, st_secrets_new("{\"providers\": [\"aws\"], \"aws_secret_name\": \"t/k\", "
                                   "\"aws_region\": \"us-east-1\", \"aws_endpoint\": \"http://127.0.0.1:9\", "
                                   "\"retries\": 0, \"connect_timeout\": 0.5}",
                                   &m, &err));
  st_buf *v = NULL;
  st_error *e = NULL;
  CHECK(st_secrets_get(m, "HF_TOKEN", &v, &e) == ST_NETWORK);
  CHECK(v == NULL);
  CHECK(e && strstr(st_error_message(e), "provider 'aws'") != NULL);
  CHECK(e && strstr(st_error_message(e), "c-test-secret") == NULL);
  st_error_free(e);
  st_buf *json = NULL;
  CHECK_CALL(ST_OK, st_secrets_providers_json(m, &json, &err));
  CHECK(json && strstr(st_buf_str(json), "\"code\":\"ST_NETWORK\"") != NULL);
  st_buf_free(json);
  json = NULL;
  CHECK_CALL(ST_OK, st_secrets_diagnose_json(m, &json, &err));
  CHECK(json && strstr(st_buf_str(json), "\"credentials\":\"environment variables\"") != NULL);
  CHECK(json && strstr(st_buf_str(json), "\"readable\":false") != NULL);
  CHECK(json && strstr(st_buf_str(json), "c-test-secret") == NULL);
  st_buf_free(json);
  CHECK_CALL(ST_NULL_ARGUMENT, st_secrets_diagnose_json(m, NULL, &err));
  st_secrets_free(m);
  unsetenv("AWS_ACCESS_KEY_ID");
  unsetenv("AWS_SECRET_ACCESS_KEY");
  unsetenv("AWS_EC2_METADATA_DISABLED");
}

int main(void) {
  test_env_normalization_prefix_live_and_empty();
  test_default_locations_and_default_manager();
  test_configured_path_created_on_first_save();
  test_scalars_nested_and_detail();
  test_changes_seen_and_format_kept();
  test_change_events();
  test_malformed_file();
  test_permissions_warning();
  test_config_errors_and_bad_input();
  test_not_found_everywhere();
  test_aws_unreachable();
  return st_test_finish("test_secrets");
}
