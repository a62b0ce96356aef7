/* st_secrets_write_files, st_secrets_refresh_files and
   st_secrets_revoke_ledger: what a program acting for a whole job (the Slurm
   plugin) calls. Files on /dev/shm (skipped where
   it is not memory-backed), bad input everywhere, out-parameters untouched
   on failure, no value in any message. */
#define _XOPEN_SOURCE 700 /* POSIX 2008 with XSI: mkdtemp, nftw in secrets_util.h */
#include <sys/vfs.h>
#include "secrets_util.h"

static const char SECRET[] = "hf_DO-NOT-LEAK-0123456789";

static int memory_backed(const char *path) {
  struct statfs fs;
  return statfs(path, &fs) == 0 && (unsigned long)fs.f_type == 0x01021994UL;
}

int main(void) {
  char *tmp = make_temp_dir();
  char file[600], json[1400], ledger[600];
  snprintf(file, sizeof file, "%s/secrets.json", tmp);
  snprintf(json, sizeof json, "{\"HF_TOKEN\": \"%s\", \"WANDB_API_KEY\": \"has space\", \"db-pass\": \"p4ss\"}",
           SECRET);
  write_file(file, json);
  chmod(file, 0600);
  st_secrets *m = manager_on(file, NULL);
  st_buf *sentinel = (st_buf *)0x1, *out = sentinel;

  /* Bad input: NULLs, UTF-8, the list, the layout, the ids, the directory. */
  CHECK_CALL(ST_NULL_ARGUMENT, st_secrets_write_files(m, NULL, tmp, "files", -1, -1, &out, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_secrets_write_files(m, "HF_TOKEN", NULL, "files", -1, -1, &out, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_secrets_write_files(m, "HF_TOKEN", tmp, NULL, -1, -1, &out, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_secrets_write_files(m, "HF_TOKEN", tmp, "files", -1, -1, NULL, &err));
  CHECK_CALL(ST_INVALID_UTF8, st_secrets_write_files(m, "HF\xff", tmp, "files", -1, -1, &out, &err));
  CHECK_CALL(ST_INVALID_ARGUMENT, st_secrets_write_files(m, "1BAD", tmp, "files", -1, -1, &out, &err));
  CHECK_CALL(ST_INVALID_ARGUMENT, st_secrets_write_files(m, "A,,B", tmp, "files", -1, -1, &out, &err));
  CHECK_CALL(ST_INVALID_ARGUMENT, st_secrets_write_files(m, "A=../x", tmp, "files", -1, -1, &out, &err));
  CHECK_CALL(ST_INVALID_ARGUMENT, st_secrets_write_files(m, "HF_TOKEN", tmp, "env", -1, -1, &out, &err));
  CHECK_CALL(ST_INVALID_ARGUMENT, st_secrets_write_files(m, "HF_TOKEN", tmp, "files", -2, -1, &out, &err));
  CHECK_CALL(ST_INVALID_ARGUMENT, st_secrets_write_files(m, "HF_TOKEN", tmp, "files", 0, -1, &out, &err));
  CHECK_CALL(ST_INVALID_ARGUMENT,
             st_secrets_write_files(m, "HF_TOKEN", tmp, "files", 1L << 32, 0, &out, &err));
  CHECK(out == sentinel);

  if (!memory_backed("/dev/shm")) {
    printf("test_job_files: /dev/shm is not tmpfs here: the writing part skipped\n");
  } else {
    char dir[] = "/dev/shm/st-c-job-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    /* A key set nowhere: named, nothing written. */
    st_error *e = NULL;
    CHECK(st_secrets_write_files(m, "HF_TOKEN,GONE=nowhere", dir, "files", -1, -1, &out, &e) ==
          ST_NOT_FOUND);
    CHECK(e && strstr(st_error_message(e), "GONE") && strstr(st_error_message(e), "nowhere"));
    st_error_free(e);
    e = NULL;
    /* A netrc cannot hold a space: refused naming the variable, never the value. */
    CHECK(st_secrets_write_files(m, "WANDB_API_KEY", dir, "files", -1, -1, &out, &e) == ST_INVALID_ARGUMENT);
    CHECK(e && strstr(st_error_message(e), "WANDB_API_KEY") && !strstr(st_error_message(e), "has space"));
    st_error_free(e);
    CHECK(out == sentinel);

    char expect[512], path[512];
    CHECK_CALL(ST_OK, st_secrets_write_files(m, "HF_TOKEN,DB_PASSWORD=db-pass", dir, "files", -1, -1, &out, &err));
    snprintf(expect, sizeof expect, "{\"HF_TOKEN_PATH\":\"%s/hf-token\",\"DB_PASSWORD_FILE\":\"%s/DB_PASSWORD\"}",
             dir, dir);
    CHECK(out != sentinel && strcmp(st_buf_str(out), expect) == 0);
    CHECK(strstr(st_buf_str(out), SECRET) == NULL);
    st_buf_free(out);
    snprintf(path, sizeof path, "%s/hf-token", dir);
    CHECK(strcmp(read_file(path), SECRET) == 0 && file_mode(path) == 0600);
    /* Never through an existing name. */
    out = sentinel;
    CHECK_CALL(ST_IO, st_secrets_write_files(m, "HF_TOKEN", dir, "files", -1, -1, &out, &err));
    CHECK(out == sentinel);
    /* References: one file per key, NAME=st://KEY and the directory. The
       caller's own ids are accepted as an owner. */
    char refs[64];
    snprintf(refs, sizeof refs, "%s/refs", dir);
    CHECK(mkdir(refs, 0700) == 0);
    CHECK_CALL(ST_OK, st_secrets_write_files(m, "DB=db-pass", refs, "refs", (int64_t)getuid(), (int64_t)getgid(),
                                             &out, &err));
    snprintf(expect, sizeof expect, "{\"DB\":\"st://db-pass\",\"SIMPLETUNER_SECRETS_DIRS\":\"%s\"}", refs);
    CHECK(out != sentinel && strcmp(st_buf_str(out), expect) == 0);
    st_buf_free(out);
    snprintf(path, sizeof path, "%s/db-pass", refs);
    CHECK(strcmp(read_file(path), "p4ss") == 0);
    /* Refreshing: bad input named; files of no short-lived credential are
       left as they are and need no other look. */
    out = sentinel;
    CHECK_CALL(ST_NULL_ARGUMENT, st_secrets_refresh_files(m, NULL, refs, "refs", &out, &err));
    CHECK_CALL(ST_NULL_ARGUMENT, st_secrets_refresh_files(m, "DB=db-pass", NULL, "refs", &out, &err));
    CHECK_CALL(ST_NULL_ARGUMENT, st_secrets_refresh_files(m, "DB=db-pass", refs, "refs", NULL, &err));
    CHECK_CALL(ST_INVALID_UTF8, st_secrets_refresh_files(m, "DB=db-pass", "/dev/shm/\xff", "refs", &out, &err));
    CHECK_CALL(ST_INVALID_ARGUMENT, st_secrets_refresh_files(m, "DB=db-pass", refs, "env", &out, &err));
    CHECK_CALL(ST_INVALID_ARGUMENT, st_secrets_refresh_files(m, "1BAD", refs, "refs", &out, &err));
    CHECK_CALL(ST_INVALID_ARGUMENT, st_secrets_refresh_files(m, "DB=db-pass", tmp, "refs", &out, &err));
    CHECK(out == sentinel);
    CHECK_CALL(ST_OK, st_secrets_refresh_files(m, "DB=db-pass", refs, "refs", &out, &err));
    CHECK(out != sentinel && strcmp(st_buf_str(out), "{\"rewritten\":[],\"next_in\":null}") == 0);
    st_buf_free(out);
    CHECK(strcmp(read_file(path), "p4ss") == 0);
    nftw(dir, st_test_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  }

  /* The ledger: bad input; a missing or empty one revokes nothing; one
     readable by others is refused. */
  out = sentinel;
  CHECK_CALL(ST_NULL_ARGUMENT, st_secrets_revoke_ledger(m, NULL, &out, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_secrets_revoke_ledger(m, "/x", NULL, &err));
  CHECK_CALL(ST_INVALID_UTF8, st_secrets_revoke_ledger(m, "/x\xff", &out, &err));
  CHECK(out == sentinel);
  snprintf(ledger, sizeof ledger, "%s/ledger", tmp);
  CHECK_CALL(ST_OK, st_secrets_revoke_ledger(m, ledger, &out, &err));
  CHECK(out != sentinel && strcmp(st_buf_str(out), "{\"leases\":0,\"tokens\":0,\"failed\":[],\"entity\":null}") == 0);
  st_buf_free(out);
  /* Private, listing a login, but the manager has no Vault address. */
  write_file(ledger, "{\"at\":{\"addresses\":[\"http://127.0.0.1:9\"]},\"login\":\"s.x\"}\n");
  chmod(ledger, 0600);
  CHECK_CALL(ST_PROVIDER_UNAVAILABLE, st_secrets_revoke_ledger(m, ledger, &out, &err));
  /* With one: a ledger others may write is refused before any request; a
     private one is revoked, and what failed (nothing listens) is reported
     without the token. */
  st_secrets *v = NULL;
  snprintf(json, sizeof json,
           "{\"file_path\": \"%s\", \"vault_url\": \"http://127.0.0.1:9\", \"vault_token\": \"s.root\", "
           "\"retries\": 0, \"vault_election_timeout\": 0.05, \"connect_timeout\": 1}", file);
  CHECK_CALL(ST_OK, st_secrets_new(json, &v, &err));
  chmod(ledger, 0620);
  out = sentinel;
  CHECK_CALL(ST_PERMISSION, st_secrets_revoke_ledger(v, ledger, &out, &err));
  CHECK(out == sentinel);
  chmod(ledger, 0600);
  CHECK_CALL(ST_OK, st_secrets_revoke_ledger(v, ledger, &out, &err));
  CHECK(out != sentinel);
  if (out != sentinel) {
    const char *r = st_buf_str(out);
    CHECK(strstr(r, "\"tokens\":0") && strstr(r, "\"failed\":[\"") && !strstr(r, "s.x"));
    st_buf_free(out);
  }
  st_secrets_free(v);

  /* The job token: bad input, a key others may read, then a token and the
     JWKS that publishes its key. */
  char key[600], keys[700], request[900], cmd[800];
  snprintf(key, sizeof key, "%s/job-key.pem", tmp);
  snprintf(cmd, sizeof cmd, "openssl genpkey -out '%s' -algorithm RSA -pkeyopt rsa_keygen_bits:2048 2>/dev/null", key);
  CHECK(system(cmd) == 0);
  chmod(key, 0600);
  snprintf(keys, sizeof keys, "[\"%s\"]", key);
  snprintf(request, sizeof request,
           "{\"issuer\": \"https://slurm.example.org\", \"audience\": \"openbao\", \"lifetime\": 600, "
           "\"job\": {\"cluster\": \"c1\", \"job_id\": 7, \"user\": \"alice\", \"uid\": 1001, "
           "\"account\": \"vision\", \"partition\": \"gpu\"}}");
  out = sentinel;
  CHECK_CALL(ST_NULL_ARGUMENT, st_job_token_mint(NULL, request, &out, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_job_token_mint(key, NULL, &out, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_job_token_mint(key, request, NULL, &err));
  CHECK_CALL(ST_INVALID_UTF8, st_job_token_mint("/x\xff", request, &out, &err));
  CHECK_CALL(ST_PARSE, st_job_token_mint(key, "{\"issuer\": 1}", &out, &err));
  CHECK_CALL(ST_PARSE, st_job_token_mint(key, "not json", &out, &err));
  CHECK_CALL(ST_PROVIDER_UNAVAILABLE, st_job_token_mint("/nonexistent/key.pem", request, &out, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_job_token_jwks(NULL, &out, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_job_token_jwks(keys, NULL, &err));
  CHECK_CALL(ST_PARSE, st_job_token_jwks("{}", &out, &err));
  CHECK_CALL(ST_INVALID_ARGUMENT, st_job_token_jwks("[]", &out, &err));
  chmod(key, 0644);
  CHECK_CALL(ST_PERMISSION, st_job_token_mint(key, request, &out, &err));
  CHECK_CALL(ST_PERMISSION, st_job_token_jwks(keys, &out, &err));
  CHECK(out == sentinel);
  chmod(key, 0600);
  CHECK_CALL(ST_OK, st_job_token_mint(key, request, &out, &err));
  if (out != sentinel) {
    const char *t = st_buf_str(out);
    const char *dot = strchr(t, '.');
    CHECK(dot && strchr(dot + 1, '.') && strncmp(t, "eyJ", 3) == 0);
    st_buf_free(out);
  }
  out = sentinel;
  CHECK_CALL(ST_OK, st_job_token_jwks(keys, &out, &err));
  if (out != sentinel) {
    const char *j = st_buf_str(out);
    CHECK(strstr(j, "\"kty\":\"RSA\"") && strstr(j, "\"kid\"") && !strstr(j, "\"d\""));
    st_buf_free(out);
  }

  st_secrets_free(m);
  return st_test_finish("test_job_files");
}
