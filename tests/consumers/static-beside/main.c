/* A trainer-shaped program that links libst_secrets.a beside the system's
 * SQLite (-lsqlite3) and a second Rust static library (wordcount/), as a
 * launcher that stores its own metadata in SQLite and links a tokenizer
 * would. Checks that each library answers its own calls:
 *   - sqlite3_* reach the system's SQLite (its version is the header's, not
 *     the one bundled in st-secrets), and a database of its own works;
 *   - the secrets chain reads HF_TOKEN from the file argv[1], and the
 *     provider-config store (st-secrets' bundled SQLite) writes and reads the
 *     database argv[2];
 *   - the other Rust library works, panics caught inside it included.
 * Prints what it did, never a value; exits 0 when all of it worked. */
#include <sqlite3.h>
#include <st_secrets.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t wc_distinct_words(const uint8_t *text, size_t len);

static int failed(const char *what, st_error *err) {
  fprintf(stderr, "static-beside: %s failed%s%s\n", what, err ? ": " : "",
          err ? st_error_message(err) : "");
  st_error_free(err);
  return 1;
}

static int count_cb(void *out, int n, char **values, char **names) {
  (void)n;
  (void)names;
  *(int *)out = values[0] ? (int)strtol(values[0], NULL, 10) : -1;
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: static-beside SECRETS_FILE STORE_DB\n");
    return 2;
  }
  /* The system's SQLite, by the program's own calls. */
  if (strcmp(sqlite3_libversion(), SQLITE_VERSION) != 0) {
    fprintf(stderr, "static-beside: sqlite3_libversion() is %s, the system header says %s: "
            "the program's SQLite calls reach another SQLite\n", sqlite3_libversion(), SQLITE_VERSION);
    return 1;
  }
  sqlite3 *db = NULL;
  int rows = 0;
  if (sqlite3_open(":memory:", &db) != SQLITE_OK ||
      sqlite3_exec(db, "CREATE TABLE runs(id); INSERT INTO runs VALUES (1), (2), (3);", NULL, NULL, NULL) != SQLITE_OK ||
      sqlite3_exec(db, "SELECT count(*) FROM runs", count_cb, &rows, NULL) != SQLITE_OK || rows != 3)
    return failed("the system SQLite", NULL);
  sqlite3_close(db);

  /* st-secrets: the chain and its store. */
  st_error *err = NULL;
  char config[4096];
  snprintf(config, sizeof config, "{\"file_path\": \"%s\", \"providers\": [\"file\"]}", argv[1]);
  st_secrets *m = NULL;
  if (st_secrets_new(config, &m, &err) != ST_OK) return failed("st_secrets_new", err);
  st_buf *value = NULL, *source = NULL;
  if (st_secrets_get_with_source(m, "hf-token", &value, &source, &err) != ST_OK)
    return failed("st_secrets_get_with_source", err);
  int secret_ok = strcmp(st_buf_str(source), "file") == 0 && st_buf_len(value) > 0;
  st_buf_free(value);
  st_buf_free(source);
  st_secrets_free(m);
  st_store *store = NULL;
  st_buf *json = NULL;
  if (st_store_open(argv[2], &store, &err) != ST_OK) return failed("st_store_open", err);
  if (st_store_save_provider_config(store, "replicate", "{\"region\": \"us-east-1\"}", &err) != ST_OK)
    return failed("st_store_save_provider_config", err);
  if (st_store_get_provider_config(store, "replicate", &json, &err) != ST_OK)
    return failed("st_store_get_provider_config", err);
  int store_ok = strstr(st_buf_str(json), "us-east-1") != NULL;
  st_buf_free(json);
  st_store_free(store);

  /* The other Rust library. */
  const char *text = "the quick fox and The lazy dog and the cat";
  int64_t words = wc_distinct_words((const uint8_t *)text, strlen(text));
  int64_t bad = wc_distinct_words((const uint8_t *)"\xff\xfe", 2);

  printf("static-beside: system SQLite %s ok; st-secrets %s: HF_TOKEN %s, store %s; "
         "wordcount %lld distinct (caught panic: %lld)\n", sqlite3_libversion(), st_version(),
         secret_ok ? "from file" : "WRONG", store_ok ? "ok" : "WRONG", (long long)words, (long long)bad);
  return secret_ok && store_ok && words == 7 && bad == -1 ? 0 : 1;
}
