/* Credential encryption through the C ABI: explicit secrets, key sourcing
   order, file modes, the never-overwrite rule, rotation and bad input. */
#define _XOPEN_SOURCE 700 /* POSIX 2008 with XSI: nftw in secrets_util.h */
#include <stdlib.h>
#include "secrets_util.h"

static char key_path[600];

/* Encrypts with the process key into a static buffer (NULL on failure). */
static const char *enc(const char *plaintext, st_result *rc_out) {
  static char out[8192];
  st_buf *b = NULL;
  st_result rc = st_encrypt(plaintext, &b, NULL);
  if (rc_out) *rc_out = rc;
  if (rc != ST_OK) return NULL;
  snprintf(out, sizeof out, "%s", st_buf_str(b));
  st_buf_free(b);
  return out;
}

static int decrypts_to(st_result (*fn)(const char *, st_buf **, st_error **), const char *ct,
                       const char *expected) {
  st_buf *b = NULL;
  if (fn(ct, &b, NULL) != ST_OK) return 0;
  int same = strcmp(st_buf_str(b), expected) == 0;
  st_buf_free(b);
  return same;
}

static int decrypts_with_secret(const char *secret, const char *ct, const char *expected) {
  st_buf *b = NULL;
  if (st_decrypt_with_secret(secret, ct, &b, NULL) != ST_OK) return 0;
  int same = strcmp(st_buf_str(b), expected) == 0;
  st_buf_free(b);
  return same;
}

static void use_home(const char *home) {
  setenv("HOME", home, 1);
  unsetenv("SIMPLETUNER_CREDENTIAL_KEY");
  unsetenv("SIMPLETUNER_CREDENTIAL_KEY_PREVIOUS");
  unsetenv("SIMPLETUNER_CREDENTIAL_KEY_FILE");
  snprintf(key_path, sizeof key_path, "%s/.simpletuner/credential.key", home);
  st_crypto_reset();
}

static void test_explicit_secret(void) {
  st_buf *ct = NULL;
  CHECK_CALL(ST_OK, st_encrypt_with_secret("testsecret", "hello", &ct, &err));
  CHECK(ct && strncmp(st_buf_str(ct), "Z0FBQUFB", 8) == 0);
  CHECK(ct && decrypts_with_secret("testsecret", st_buf_str(ct), "hello"));
  st_error *err = NULL;
  st_buf *out = (st_buf *)0x1;
  CHECK(st_decrypt_with_secret("wrong", st_buf_str(ct), &out, &err) == ST_INVALID_TOKEN);
  CHECK(out == (st_buf *)0x1);
  CHECK(err && strstr(st_error_message(err), "hello") == NULL);
  CHECK(err && strstr(st_error_message(err), "testsecret") == NULL);
  st_error_free(err);
  st_buf_free(ct);
  /* Empty plaintexts are fine; empty or malformed ciphertexts are not. */
  CHECK_CALL(ST_OK, st_encrypt_with_secret("testsecret", "", &ct, &err));
  CHECK(ct && decrypts_with_secret("testsecret", st_buf_str(ct), ""));
  st_buf_free(ct);
  CHECK_CALL(ST_INVALID_TOKEN, st_decrypt_with_secret("testsecret", "", &out, &err));
  CHECK_CALL(ST_INVALID_TOKEN, st_decrypt_with_secret("testsecret", "%%%", &out, &err));
  CHECK_CALL(ST_INVALID_TOKEN, st_decrypt_with_secret("testsecret", "Z0FBQUFBtampered", &out, &err));
}

static void test_bad_input(void) {
  static const char bad[] = {'x', (char)0xff, 0};
  st_buf *out = (st_buf *)0x1;
  CHECK_CALL(ST_NULL_ARGUMENT, st_encrypt(NULL, &out, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_encrypt("x", NULL, &err));
  CHECK_CALL(ST_INVALID_UTF8, st_encrypt(bad, &out, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_decrypt(NULL, &out, &err));
  CHECK_CALL(ST_INVALID_UTF8, st_decrypt(bad, &out, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_encrypt_with_secret(NULL, "x", &out, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_encrypt_with_secret("s", NULL, &out, &err));
  CHECK_CALL(ST_INVALID_UTF8, st_encrypt_with_secret(bad, "x", &out, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_decrypt_with_secret("s", NULL, &out, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_decrypt_with_secret("s", "x", NULL, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_reencrypt(NULL, &out, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_reencrypt("x", NULL, &err));
  CHECK(out == (st_buf *)0x1);
}

static void test_generated_then_file_then_env(void) {
  const char *home = make_temp_dir();
  use_home(home);
  mode_t old = umask(0);
  st_result rc;
  const char *ct = enc("first", &rc);
  umask(old);
  CHECK(rc == ST_OK && ct);
  char saved_ct[8192];
  snprintf(saved_ct, sizeof saved_ct, "%s", ct ? ct : "");
  CHECK(file_mode(key_path) == 0600);
  char dir[600];
  snprintf(dir, sizeof dir, "%s/.simpletuner", home);
  CHECK(file_mode(dir) == 0700);
  char secret[128];
  snprintf(secret, sizeof secret, "%s", read_file(key_path));
  CHECK(strlen(secret) == 43);
  CHECK(decrypts_with_secret(secret, saved_ct, "first"));

  /* A fresh start reads the same key from the file (not a new one). */
  st_crypto_reset();
  CHECK(decrypts_to(st_decrypt, saved_ct, "first"));
  CHECK(strcmp(read_file(key_path), secret) == 0);

  /* The environment wins over the file. */
  setenv("SIMPLETUNER_CREDENTIAL_KEY", "env-master", 1);
  st_crypto_reset();
  ct = enc("second", &rc);
  CHECK(ct && decrypts_with_secret("env-master", ct, "second"));
  /* ...and the file's secret still opens older credentials. */
  CHECK(decrypts_to(st_decrypt, saved_ct, "first"));
  /* An empty variable counts as unset. */
  setenv("SIMPLETUNER_CREDENTIAL_KEY", "", 1);
  st_crypto_reset();
  ct = enc("third", &rc);
  CHECK(ct && decrypts_with_secret(secret, ct, "third"));
  unsetenv("SIMPLETUNER_CREDENTIAL_KEY");
}

static void test_never_overwrite(void) {
  const char *home = make_temp_dir();
  use_home(home);
  char dir[600];
  snprintf(dir, sizeof dir, "%s/.simpletuner", home);
  CHECK(mkdir(dir, 0700) == 0);
  write_file(key_path, "\n");
  st_result rc;
  CHECK(enc("x", &rc) == NULL && rc == ST_KEY);
  CHECK(strcmp(read_file(key_path), "\n") == 0);
  st_buf *unused = (st_buf *)0x1;
  CHECK_CALL(ST_KEY, st_decrypt("Z0FBQUFB", &unused, &err));
  CHECK(unused == (st_buf *)0x1);
  /* A key file that cannot be read (here: a directory) is not replaced. */
  unlink(key_path);
  CHECK(mkdir(key_path, 0700) == 0);
  st_crypto_reset();
  st_error *err = NULL;
  st_buf *out = NULL;
  CHECK(st_encrypt("x", &out, &err) == ST_KEY);
  CHECK(err && strstr(st_error_message(err), "not replaced") != NULL);
  st_error_free(err);
  struct stat st;
  CHECK(stat(key_path, &st) == 0 && S_ISDIR(st.st_mode));
  rmdir(key_path);
}

static void test_rotation(void) {
  const char *home = make_temp_dir();
  use_home(home);
  char dir[600];
  snprintf(dir, sizeof dir, "%s/.simpletuner", home);
  CHECK(mkdir(dir, 0700) == 0);
  st_buf *by_old = NULL, *by_older = NULL;
  CHECK_CALL(ST_OK, st_encrypt_with_secret("old-master", "token-a", &by_old, &err));
  CHECK_CALL(ST_OK, st_encrypt_with_secret("older-master", "token-b", &by_older, &err));
  /* New secret first; the old one on the next line; an older one in the env. */
  write_file(key_path, "new-master\nold-master\n");
  setenv("SIMPLETUNER_CREDENTIAL_KEY_PREVIOUS", "older-master", 1);
  st_crypto_reset();
  CHECK(decrypts_to(st_decrypt, st_buf_str(by_old), "token-a"));
  CHECK(decrypts_to(st_decrypt, st_buf_str(by_older), "token-b"));
  st_buf *rotated = NULL;
  CHECK_CALL(ST_OK, st_reencrypt(st_buf_str(by_old), &rotated, &err));
  CHECK(rotated && decrypts_with_secret("new-master", st_buf_str(rotated), "token-a"));
  /* Idempotent: a current ciphertext comes back byte for byte. */
  st_buf *again = NULL;
  CHECK_CALL(ST_OK, st_reencrypt(st_buf_str(rotated), &again, &err));
  CHECK(again && rotated && strcmp(st_buf_str(again), st_buf_str(rotated)) == 0);
  /* Unknown keys: nothing to rotate to, the error says so, nothing changes. */
  st_buf *stranger = NULL, *out = (st_buf *)0x1;
  CHECK_CALL(ST_OK, st_encrypt_with_secret("stranger", "t", &stranger, &err));
  CHECK_CALL(ST_INVALID_TOKEN, st_reencrypt(st_buf_str(stranger), &out, &err));
  CHECK(out == (st_buf *)0x1);
  unsetenv("SIMPLETUNER_CREDENTIAL_KEY_PREVIOUS");
  st_buf_free(by_old);
  st_buf_free(by_older);
  st_buf_free(rotated);
  st_buf_free(again);
  st_buf_free(stranger);
  st_crypto_reset();
}

int main(void) {
  test_explicit_secret();
  test_bad_input();
  test_generated_then_file_then_env();
  test_never_overwrite();
  test_rotation();
  return st_test_finish("test_crypto");
}
