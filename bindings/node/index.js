'use strict';
// Node binding of libst_secrets over koffi, mirroring the Go binding with
// camelCase names. Every call that may block (a secrets get or set that can
// reach AWS or Vault, the providers' diagnosis, the store's SQLite calls,
// encryption that may derive the key) also has a Promise form, `...Async`,
// run on a worker thread of libuv's pool (koffi's asynchronous calls) so the
// event loop keeps running. It wraps the C header and re-implements nothing;
// its declarations are generated from the header (signatures.js).
// The library is loaded from $ST_SECRETS_LIB, the copy bundled in the package,
// or the system loader's search path (see loadLibrary).
// The pieces: lib/native.js (loading, declarations, call helpers), lib/cache.js,
// lib/manager.js, lib/store.js.

const { C, text, version, codes, StSecretsError, check, checkAsync, bufCall, bufCallAsync } = require('./lib/native');
const { Cache, providerCache, permissionCache } = require('./lib/cache');
const { Manager, defaultManager, REDACT_HELD } = require('./lib/manager');
const { Store, storeHandle, hourlyCost, hourlyCostAsync, hardwareInfoAsync } = require('./lib/store');

const textAsync = async (fn, args) => text(await bufCallAsync(null, fn, args));
const encrypt = (p) => text(bufCall((o, e) => C.st_encrypt(p, o, e)));
const decrypt = (c) => text(bufCall((o, e) => C.st_decrypt(c, o, e)));
const encryptWithSecret = (s, p) => text(bufCall((o, e) => C.st_encrypt_with_secret(s, p, o, e)));
const decryptWithSecret = (s, c) => text(bufCall((o, e) => C.st_decrypt_with_secret(s, c, o, e)));
const reencrypt = (c) => text(bufCall((o, e) => C.st_reencrypt(c, o, e)));

module.exports = {
  version,
  codes,
  StSecretsError,
  Manager,
  Cache,
  Store,
  providerConfigCache: () => providerCache,
  userPermissionCache: () => permissionCache,
  invalidateProviderCache: (provider) => Number(C.st_invalidate_provider_cache(provider)),
  invalidateUserCache: (userId) => Number(C.st_invalidate_user_cache(userId)),
  encrypt,
  decrypt,
  encryptWithSecret,
  decryptWithSecret,
  reencrypt,
  resetCrypto: () => C.st_crypto_reset(),
  hardwareInfo: (store) => JSON.parse(text(bufCall((o, e) => C.st_hardware_info_json(storeHandle(store), o, e)))),
  setHardwareInfo: (info) => {
    const err = [null];
    check(C.st_hardware_info_set(JSON.stringify(info), err), err);
  },
  clearHardwareInfoCache: () => C.st_hardware_info_clear_cache(),
  hourlyCost,
  REDACT_HELD,
  redact: (data, flags = 0) => defaultManager.redact(data, flags),
  createRedactStream: (flags = 0) => defaultManager.createRedactStream(flags),
  // The Promise forms, run off the event loop.
  encryptAsync: (p) => textAsync(C.st_encrypt, [p]),
  decryptAsync: (c) => textAsync(C.st_decrypt, [c]),
  encryptWithSecretAsync: (s, p) => textAsync(C.st_encrypt_with_secret, [s, p]),
  decryptWithSecretAsync: (s, c) => textAsync(C.st_decrypt_with_secret, [s, c]),
  reencryptAsync: (c) => textAsync(C.st_reencrypt, [c]),
  hardwareInfoAsync,
  setHardwareInfoAsync: (info) => checkAsync(null, C.st_hardware_info_set, [JSON.stringify(info)]),
  hourlyCostAsync,
};
