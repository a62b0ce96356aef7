'use strict';
// The Node binding's Store: the provider-configuration store (SQLite) and
// the hardware prices read through it.

const {
  C,
  check,
  found,
  callAsync,
  PINNED,
  bufCallAsync,
  checkAsync,
  foundAsync,
  bufCall,
  Handle,
  text,
} = require('./native');

/** An open provider-configuration store (SQLite). */
class Store extends Handle {
  /** dbPath: undefined for <state dir>/cloud/jobs.db. */
  constructor(dbPath, _handle = null) {
    if (_handle) {
      super(_handle, C.st_store_free);
      return;
    }
    const out = [null];
    const err = [null];
    check(C.st_store_open(dbPath === undefined ? null : String(dbPath), out, err), err);
    super(out[0], C.st_store_free);
  }

  getProviderConfig(provider) {
    return JSON.parse(text(bufCall((o, e) => C.st_store_get_provider_config(this.handle, provider, o, e))));
  }

  saveProviderConfig(provider, config) {
    const err = [null];
    check(C.st_store_save_provider_config(this.handle, provider, JSON.stringify(config), err), err);
  }

  mergeProviderConfig(provider, patch) {
    return JSON.parse(text(bufCall((o, e) =>
      C.st_store_merge_provider_config(this.handle, provider, JSON.stringify(patch), o, e))));
  }

  setCredential(provider, name, value) {
    const err = [null];
    check(C.st_store_set_credential(this.handle, provider, name, String(value), err), err);
  }

  /** The credential (string), or undefined when absent. */
  getCredential(provider, name) {
    const b = bufCall((o, e) => C.st_store_get_credential(this.handle, provider, name, o, e), true);
    return b === undefined ? undefined : text(b);
  }

  deleteCredential(provider, name) {
    const err = [null];
    return found(C.st_store_delete_credential(this.handle, provider, name, err), err);
  }

  rotateCredentials() { return JSON.parse(text(bufCall((o, e) => C.st_store_rotate_credentials(this.handle, o, e)))); }
  auditEntries(limit = 100) { return JSON.parse(text(bufCall((o, e) => C.st_store_audit_json(this.handle, limit, o, e)))); }
  verifyAudit() { return JSON.parse(text(bufCall((o, e) => C.st_store_audit_verify(this.handle, o, e)))).entries; }

  /** Opens the store off the event loop (creating or migrating the database). */
  static async open(dbPath) {
    const out = [null];
    const err = [null];
    check(await callAsync(null, C.st_store_open, dbPath === undefined ? null : String(dbPath), out, err), err);
    return new Store(undefined, out[0]);
  }

  async getProviderConfigAsync(provider) {
    return JSON.parse(text(await bufCallAsync(this, C.st_store_get_provider_config, [PINNED, provider])));
  }

  saveProviderConfigAsync(provider, config) {
    return checkAsync(this, C.st_store_save_provider_config, [PINNED, provider, JSON.stringify(config)]);
  }

  async mergeProviderConfigAsync(provider, patch) {
    return JSON.parse(text(await bufCallAsync(this, C.st_store_merge_provider_config,
      [PINNED, provider, JSON.stringify(patch)])));
  }

  setCredentialAsync(provider, name, value) {
    return checkAsync(this, C.st_store_set_credential, [PINNED, provider, name, String(value)]);
  }

  async getCredentialAsync(provider, name) {
    const b = await bufCallAsync(this, C.st_store_get_credential, [PINNED, provider, name], true);
    return b === undefined ? undefined : text(b);
  }

  deleteCredentialAsync(provider, name) {
    return foundAsync(this, C.st_store_delete_credential, [PINNED, provider, name]);
  }

  async rotateCredentialsAsync() {
    return JSON.parse(text(await bufCallAsync(this, C.st_store_rotate_credentials, [PINNED])));
  }

  async auditEntriesAsync(limit = 100) {
    return JSON.parse(text(await bufCallAsync(this, C.st_store_audit_json, [PINNED, limit])));
  }

  async verifyAuditAsync() {
    return JSON.parse(text(await bufCallAsync(this, C.st_store_audit_verify, [PINNED]))).entries;
  }
}

const storeHandle = (s) => (s === undefined || s === null ? null : s.handle);
const storeOwner = (s) => (s === undefined || s === null ? null : s);

function hourlyCost(hardware, store) {
  const out = [0];
  const err = [null];
  check(C.st_hardware_hourly_cost(storeHandle(store), hardware === undefined ? null : hardware, out, err), err);
  return out[0];
}

async function hourlyCostAsync(hardware, store) {
  const out = [0];
  const err = [null];
  const owner = storeOwner(store);
  const rc = await callAsync(owner, C.st_hardware_hourly_cost, owner ? PINNED : null,
    hardware === undefined ? null : hardware, out, err);
  check(rc, err);
  return out[0];
}

async function hardwareInfoAsync(store) {
  const owner = storeOwner(store);
  return JSON.parse(text(await bufCallAsync(owner, C.st_hardware_info_json, [owner ? PINNED : null])));
}

module.exports = { Store, storeHandle, storeOwner, hourlyCost, hourlyCostAsync, hardwareInfoAsync };
