/* The leak guard through the C ABI: st_redact and the st_redactor stream on
   random data with values planted raw, base64 (three alignments), URL-safe
   base64, hex and percent-encoded; a value split across writes of every
   size; clean data unchanged; ST_REDACT_HELD; bad input. */
#define _XOPEN_SOURCE 700 /* POSIX 2008 with XSI: nftw in secrets_util.h */
#include <stdlib.h>
#include "secrets_util.h"

static const char PH[] = "<concealed by st-secrets>";

static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint64_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static size_t b64(const unsigned char *in, size_t n, char *out, int url) {
  const char *abc = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                        : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t o = 0;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                 (i + 2 < n ? in[i + 2] : 0);
    out[o++] = abc[v >> 18 & 63];
    out[o++] = abc[v >> 12 & 63];
    out[o++] = i + 1 < n ? abc[v >> 6 & 63] : '=';
    out[o++] = i + 2 < n ? abc[v & 63] : '=';
  }
  return o;
}

static size_t hexed(const unsigned char *in, size_t n, char *out) {
  for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", in[i]);
  return 2 * n;
}

static size_t percent(const unsigned char *in, size_t n, char *out) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = in[i];
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~')
      out[o++] = (char)c;
    else
      o += (size_t)sprintf(out + o, "%%%02X", c);
  }
  return o;
}

static int contains(const unsigned char *hay, size_t n, const void *needle, size_t m) {
  for (size_t i = 0; i + m <= n; i++)
    if (memcmp(hay + i, needle, m) == 0) return 1;
  return 0;
}

/* Whether `needle` is in `buf` outside the placeholders. */
static int left_in(const unsigned char *buf, size_t n, const void *needle, size_t m) {
  size_t start = 0;
  for (size_t i = 0; i <= n; i++) {
    int at_ph = i + sizeof PH - 1 <= n && memcmp(buf + i, PH, sizeof PH - 1) == 0;
    if (at_ph || i == n) {
      if (contains(buf + start, i - start, needle, m)) return 1;
      if (at_ph) {
        i += sizeof PH - 2;
        start = i + 1;
      }
    }
  }
  return 0;
}

/* The stream in pieces of `piece` bytes; a malloc'd copy of the output. */
static unsigned char *streamed(st_secrets *m, uint32_t flags, const unsigned char *in, size_t n,
                               size_t piece, size_t *out_len) {
  st_redactor *r = NULL;
  CHECK_CALL(ST_OK, st_redactor_new(m, flags, &r, &err));
  unsigned char *out = malloc(n * 2 + 64);
  size_t len = 0;
  for (size_t i = 0; i < n; i += piece) {
    size_t k = n - i < piece ? n - i : piece;
    st_buf *b = NULL;
    CHECK_CALL(ST_OK, st_redactor_write(r, in + i, k, &b, &err));
    memcpy(out + len, st_buf_data(b), st_buf_len(b));
    len += st_buf_len(b);
    st_buf_free(b);
  }
  st_buf *b = NULL;
  CHECK_CALL(ST_OK, st_redactor_finish(r, &b, &err));
  memcpy(out + len, st_buf_data(b), st_buf_len(b));
  len += st_buf_len(b);
  st_buf_free(b);
  st_redactor_free(r);
  *out_len = len;
  return out;
}

int main(void) {
  char *dir = make_temp_dir();
  char file[600], config[800];
  snprintf(file, sizeof file, "%s/secrets.json", dir);
  write_file(file, "{\"HELD\": \"r8_held_in_the_file_only_0001\"}");
  snprintf(config, sizeof config, "{\"file_path\": \"%s\", \"env_prefix\": \"CTREDACT\"}", file);
  /* A value with characters every encoding changes. */
  setenv("CTREDACT_TOKEN", "hf_C+/Tok=en&?%\"x\\ 0123456789ABC", 1);
  st_secrets *m = NULL;
  CHECK_CALL(ST_OK, st_secrets_new(config, &m, &err));
  const char *v = value_of(m, "TOKEN", NULL); /* served: remembered */
  CHECK(v != NULL);
  unsigned char value[64];
  size_t vn = strlen(v);
  memcpy(value, v, vn);

  /* Random data with the value planted in every form, many times. */
  size_t n = 1 << 16;
  unsigned char *in = malloc(n + 4096);
  for (size_t i = 0; i < n; i++) in[i] = (unsigned char)next();
  char form[256];
  unsigned char shifted[80];
  for (int round = 0; round < 24; round++) {
    size_t at = (size_t)(next() % (n - 200)), k = 0;
    switch (round % 6) {
      case 0: memcpy(form, value, vn); k = vn; break;
      case 1: case 2: case 3: {
        /* base64 of the value after 0, 1 or 2 other bytes */
        size_t pre = (size_t)(round % 6 - 1);
        memset(shifted, 'q', pre);
        memcpy(shifted + pre, value, vn);
        k = b64(shifted, pre + vn, form, round % 2);
        break;
      }
      case 4: k = hexed(value, vn, form); break;
      default: k = percent(value, vn, form); break;
    }
    memcpy(in + at, form, k);
  }
  st_buf *out = NULL;
  CHECK_CALL(ST_OK, st_redact(m, 0, in, n, &out, &err));
  const unsigned char *o = st_buf_data(out);
  size_t on = st_buf_len(out);
  char hex[160];
  size_t hn = hexed(value, vn, hex);
  CHECK(!left_in(o, on, value, vn));
  CHECK(!left_in(o, on, hex, hn));
  CHECK(contains(o, on, PH, sizeof PH - 1));
  for (size_t piece = 1; piece < 5000; piece = piece * 3 + 1) {
    size_t sn = 0;
    unsigned char *s = streamed(m, 0, in, n, piece, &sn);
    CHECK(sn == on && memcmp(s, o, on) == 0);
    free(s);
  }
  st_buf_free(out);

  /* Clean data comes back byte for byte, in one call and in pieces. */
  for (size_t i = 0; i < n; i++) in[i] = (unsigned char)next();
  CHECK_CALL(ST_OK, st_redact(m, ST_REDACT_HELD, in, n, &out, &err));
  CHECK(st_buf_len(out) == n && memcmp(st_buf_data(out), in, n) == 0);
  st_buf_free(out);
  size_t sn = 0;
  unsigned char *s = streamed(m, ST_REDACT_HELD, in, n, 4093, &sn);
  CHECK(sn == n && memcmp(s, in, n) == 0);
  free(s);

  /* A value held by the file but never served: only with ST_REDACT_HELD. */
  const char *held = "x r8_held_in_the_file_only_0001 y";
  CHECK_CALL(ST_OK, st_redact(m, 0, (const uint8_t *)held, strlen(held), &out, &err));
  CHECK(strcmp(st_buf_str(out), held) == 0);
  st_buf_free(out);
  CHECK_CALL(ST_OK, st_redact(m, ST_REDACT_HELD, (const uint8_t *)held, strlen(held), &out, &err));
  CHECK(strcmp(st_buf_str(out), "x <concealed by st-secrets> y") == 0);
  st_buf_free(out);

  /* Bad input: a clear code, nothing written. */
  out = NULL;
  CHECK_CALL(ST_INVALID_ARGUMENT, st_redact(m, 0x80, in, 4, &out, &err));
  CHECK(out == NULL);
  CHECK_CALL(ST_NULL_ARGUMENT, st_redact(m, 0, NULL, 4, &out, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_redact(m, 0, in, 4, NULL, &err));
  CHECK_CALL(ST_OK, st_redact(m, 0, NULL, 0, &out, &err));
  CHECK(out != NULL && st_buf_len(out) == 0);
  st_buf_free(out);
  st_buf *b = NULL;
  CHECK_CALL(ST_NULL_ARGUMENT, st_redactor_write(NULL, in, 1, &b, &err));
  CHECK_CALL(ST_NULL_ARGUMENT, st_redactor_finish(NULL, &b, &err));
  st_redactor_free(NULL);

  free(in);
  st_secrets_free(m);
  return st_test_finish("test_redact");
}
