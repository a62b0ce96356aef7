// Generated from include/st_secrets.h by scripts/gen-signatures.js: do not edit.
// index.js declares these to koffi; test/signatures.test.js checks this file
// is current.
'use strict';

exports.opaque = ["st_buf","st_cache","st_error","st_secrets","st_sink","st_store"];
exports.structs = {
  "st_cache_stats": {
    "size": "size_t",
    "max_size": "size_t",
    "expired_count": "size_t",
    "default_ttl": "double",
    "hits": "uint64_t",
    "misses": "uint64_t",
    "evictions": "uint64_t",
    "expirations": "uint64_t"
  }
};
exports.callbacks = [
  "st_result st_compute_fn(void *user_data, const char *key, st_sink *sink)"
];
exports.functions = [
  'const uint8_t *st_buf_data(const st_buf *b)',
  'size_t st_buf_len(const st_buf *b)',
  'const char *st_buf_str(const st_buf *b)',
  'void st_buf_free(st_buf *b)',
  'st_result st_cache_new(double default_ttl_s, size_t max_size, double cleanup_interval_s, _Out_ st_cache **out, _Out_ st_error **err)',
  'void st_cache_free(st_cache *c)',
  'st_result st_cache_set(st_cache *c, const char *key, const uint8_t *value, size_t len, double ttl_s, _Out_ st_error **err)',
  'st_result st_cache_get(st_cache *c, const char *key, _Out_ st_buf **out, _Out_ st_error **err)',
  'st_result st_cache_get_into(st_cache *c, const char *key, uint8_t *dst, size_t cap, size_t *out_len, _Out_ st_error **err)',
  'st_result st_sink_write(st_sink *sink, const uint8_t *value, size_t len)',
  'st_result st_cache_get_or_set(st_cache *c, const char *key, st_compute_fn *compute, void *user_data, double ttl_s, _Out_ st_buf **out, _Out_ st_error **err)',
  'bool st_cache_delete(st_cache *c, const char *key)',
  'size_t st_cache_clear(st_cache *c)',
  'size_t st_cache_invalidate_prefix(st_cache *c, const char *prefix)',
  'size_t st_cache_cleanup(st_cache *c)',
  'st_result st_cache_stats_get(const st_cache *c, _Out_ st_cache_stats *out, _Out_ st_error **err)',
  'st_cache *st_provider_config_cache()',
  'st_cache *st_user_permission_cache()',
  'size_t st_invalidate_provider_cache(const char *provider)',
  'size_t st_invalidate_user_cache(int64_t user_id)',
  'st_result st_encrypt(const char *plaintext, _Out_ st_buf **out_ciphertext, _Out_ st_error **err)',
  'st_result st_decrypt(const char *ciphertext, _Out_ st_buf **out_plaintext, _Out_ st_error **err)',
  'st_result st_encrypt_with_secret(const char *master_secret, const char *plaintext, _Out_ st_buf **out_ciphertext, _Out_ st_error **err)',
  'st_result st_decrypt_with_secret(const char *master_secret, const char *ciphertext, _Out_ st_buf **out_plaintext, _Out_ st_error **err)',
  'st_result st_reencrypt(const char *ciphertext, _Out_ st_buf **out_ciphertext, _Out_ st_error **err)',
  'void st_crypto_reset()',
  'const char *st_result_name(int r)',
  'st_result st_error_code(const st_error *e)',
  'const char *st_error_message(const st_error *e)',
  'void st_error_free(st_error *e)',
  'st_result st_secrets_new(const char *config_json, _Out_ st_secrets **out, _Out_ st_error **err)',
  'void st_secrets_free(st_secrets *m)',
  'st_result st_secrets_get(st_secrets *m, const char *key, _Out_ st_buf **out_value, _Out_ st_error **err)',
  'st_result st_secrets_get_with_source(st_secrets *m, const char *key, _Out_ st_buf **out_value, _Out_ st_buf **out_provider, _Out_ st_error **err)',
  'st_result st_secrets_get_with_version(st_secrets *m, const char *key, _Out_ st_buf **out_value, _Out_ st_buf **out_info, _Out_ st_error **err)',
  'st_result st_secrets_refresh(st_secrets *m, const char *key, _Out_ st_buf **out_value, _Out_ bool *out_changed, _Out_ st_error **err)',
  'st_result st_secrets_set(st_secrets *m, const char *key, const char *value, _Out_ st_error **err)',
  'st_result st_secrets_delete(st_secrets *m, const char *key, _Out_ st_error **err)',
  'void st_secrets_clear_cache(st_secrets *m)',
  'st_result st_secrets_reset_default(_Out_ st_error **err)',
  'st_result st_secrets_providers_json(st_secrets *m, _Out_ st_buf **out_json, _Out_ st_error **err)',
  'st_result st_secrets_diagnose_json(st_secrets *m, _Out_ st_buf **out_json, _Out_ st_error **err)',
  'st_result st_store_open(const char *db_path, _Out_ st_store **out, _Out_ st_error **err)',
  'void st_store_free(st_store *s)',
  'st_result st_store_get_provider_config(st_store *s, const char *provider, _Out_ st_buf **out_json, _Out_ st_error **err)',
  'st_result st_store_save_provider_config(st_store *s, const char *provider, const char *config_json, _Out_ st_error **err)',
  'st_result st_store_merge_provider_config(st_store *s, const char *provider, const char *patch_json, _Out_ st_buf **out_json, _Out_ st_error **err)',
  'st_result st_store_set_credential(st_store *s, const char *provider, const char *name, const char *value, _Out_ st_error **err)',
  'st_result st_store_get_credential(st_store *s, const char *provider, const char *name, _Out_ st_buf **out_value, _Out_ st_error **err)',
  'st_result st_store_delete_credential(st_store *s, const char *provider, const char *name, _Out_ st_error **err)',
  'st_result st_store_rotate_credentials(st_store *s, _Out_ st_buf **out_json, _Out_ st_error **err)',
  'st_result st_store_audit_json(st_store *s, size_t limit, _Out_ st_buf **out_json, _Out_ st_error **err)',
  'st_result st_store_audit_verify(st_store *s, _Out_ st_buf **out_json, _Out_ st_error **err)',
  'st_result st_hardware_info_json(st_store *s, _Out_ st_buf **out_json, _Out_ st_error **err)',
  'st_result st_hardware_info_set(const char *json, _Out_ st_error **err)',
  'void st_hardware_info_clear_cache()',
  'st_result st_hardware_hourly_cost(st_store *s, const char *hardware, _Out_ double *out_cost, _Out_ st_error **err)',
  'const char *st_version()',
  'uint32_t st_version_major()',
  'uint32_t st_version_minor()',
  'uint32_t st_version_patch()',
];
