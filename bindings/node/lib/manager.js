'use strict';
// The Node binding's Manager: the secrets chain, its change events and the
// leak guard's redaction (RedactStream).

const util = require('node:util');
const { Transform } = require('node:stream');
const {
  koffi,
  C,
  text,
  version,
  check,
  found,
  takeBuf,
  callAsync,
  PINNED,
  bufCallAsync,
  checkAsync,
  foundAsync,
  bufCall,
  withVersion,
  Handle,
} = require('./native');

/** reportFailure's answer: the version now held, and whether it changed. */
function reported(value, info) {
  return { ...withVersion(value, info), changed: Boolean(info.changed) };
}

/** A secrets chain (environment > secrets file > AWS Secrets Manager > Vault by default). */
class Manager extends Handle {
  /** cfg: the library's configuration keys (docs/configuration.md, section
   *  "Configuration keys"); undefined configures from the environment. */
  constructor(cfg, _default = false) {
    if (_default) {
      super(null, null);
      this._default = true;
      return;
    }
    const out = [null];
    const err = [null];
    check(C.st_secrets_new(cfg === undefined ? null : JSON.stringify(cfg), out, err), err);
    super(out[0], C.st_secrets_free);
  }

  static default() { return defaultManager; }

  get handle() {
    return this._default ? null : super.handle;
  }

  _pin() {
    return this._default ? null : super._pin();
  }

  _unpin() {
    if (!this._default) super._unpin();
  }

  /** The value (string) from the first provider that has it; undefined when
   *  every provider answered "absent"; throws the first provider failure. */
  get(key) {
    const b = bufCall((o, e) => C.st_secrets_get(this.handle, key, o, e), true);
    return b === undefined ? undefined : b.toString('utf8');
  }

  /** Like get, also naming the provider that answered:
   *  {value, provider} ('env', 'mounted', 'file', 'aws', 'gcp', 'azure', 'vault'), or undefined. */
  getWithSource(key) {
    const value = [null];
    const provider = [null];
    const err = [null];
    if (!found(C.st_secrets_get_with_source(this.handle, key, value, provider, err), err)) return undefined;
    return { value: text(takeBuf(value[0])), provider: text(takeBuf(provider[0])) };
  }

  /** Like getWithSource, also giving the version of the remote secret the
   *  value comes from: {value, provider, version, stages} (version: the AWS
   *  VersionId or the Vault KV v2 version, null for env, file and KV v1;
   *  stages: AWS's), or undefined. Record the version, never the value. */
  getWithVersion(key) {
    const value = [null];
    const info = [null];
    const err = [null];
    if (!found(C.st_secrets_get_with_version(this.handle, key, value, info, err), err)) return undefined;
    return withVersion(text(takeBuf(value[0])), JSON.parse(text(takeBuf(info[0]))));
  }

  /** Reads key again now, whatever the caches say ("this value failed me"):
   *  {value, changed}, or undefined when no provider has it. A remote secret
   *  is fetched at most once per refresh_min_interval, single-flight. */
  refresh(key) {
    const value = [null];
    const changed = [false];
    const err = [null];
    if (!found(C.st_secrets_refresh(this.handle, key, value, changed, err), err)) return undefined;
    return { value: text(takeBuf(value[0])), changed: Boolean(changed[0]) };
  }

  /** "This value failed me": a login with key's value of version (as
   *  getWithVersion gave it; undefined: the version held) was refused. Reads
   *  key again as refresh does, except that a remote secret whose version in
   *  force is the one that failed is answered with the version beside it
   *  (AWS AWSPENDING, then AWSPREVIOUS; the Vault KV v2 version before), held
   *  until the service's version in force is another; a leased credential
   *  is issued anew. Returns {value,
   *  provider, version, stages, insteadOf (only for a stand-in), changed},
   *  or undefined when no provider has the key. */
  reportFailure(key, version) {
    const value = [null];
    const info = [null];
    const err = [null];
    const v = version === undefined || version === null ? null : String(version);
    if (!found(C.st_secrets_report_failure(this.handle, key, v, value, info, err), err)) return undefined;
    return reported(text(takeBuf(value[0])), JSON.parse(text(takeBuf(info[0]))));
  }

  /** reportFailure's Promise form. */
  async reportFailureAsync(key, version) {
    const value = [null];
    const info = [null];
    const err = [null];
    const v = version === undefined || version === null ? null : String(version);
    const rc = await callAsync(this, C.st_secrets_report_failure, PINNED, key, v, value, info, err);
    if (!found(rc, err)) return undefined;
    return reported(text(takeBuf(value[0])), JSON.parse(text(takeBuf(info[0]))));
  }

  /** Calls fn({key, provider, version, stages, removed}) whenever the value
   *  this manager serves for a key changes (a remote secret refreshed or
   *  rotated, the secrets file rewritten): never the value (read it with
   *  get). While a listener is registered the library also watches without
   *  gets; a change it notices on its own thread reaches fn on this one,
   *  when the event loop runs. An exception in fn is dropped. Returns the
   *  id for removeListener. */
  onChange(fn) {
    if (typeof fn !== 'function') throw new TypeError('onChange: fn must be a function');
    const callback = koffi.register((_user, key, info) => {
      try {
        const i = JSON.parse(info);
        const change = { key, provider: i.provider, version: i.version, stages: i.stages, removed: i.removed };
        if (i.instead_of) change.insteadOf = i.instead_of;
        fn(change);
      } catch (_) {
        // The listener's own failure: nothing to hand it to.
      }
    }, koffi.pointer('st_change_fn'));
    const id = [0n];
    const err = [null];
    const rc = C.st_secrets_on_change(this.handle, callback, null, null, id, err);
    if (rc !== 0) koffi.unregister(callback);
    check(rc, err);
    // Kept registered (never unregistered): a call the library's thread
    // queued before a removal may still run on this one.
    this._listeners = this._listeners || new Map();
    this._listeners.set(Number(id[0]), callback);
    return Number(id[0]);
  }

  /** Unregisters listener id: no call of it starts after this returns.
   *  Throws ST_NOT_FOUND for an unknown id. */
  removeListener(id) {
    const err = [null];
    check(C.st_secrets_remove_listener(this.handle, BigInt(id), err), err);
  }

  /** refresh's Promise form. */
  async refreshAsync(key) {
    const value = [null];
    const changed = [false];
    const err = [null];
    const rc = await callAsync(this, C.st_secrets_refresh, PINNED, key, value, changed, err);
    if (!found(rc, err)) return undefined;
    return { value: text(takeBuf(value[0])), changed: Boolean(changed[0]) };
  }

  /** getWithVersion's Promise form. */
  async getWithVersionAsync(key) {
    const value = [null];
    const info = [null];
    const err = [null];
    const rc = await callAsync(this, C.st_secrets_get_with_version, PINNED, key, value, info, err);
    if (!found(rc, err)) return undefined;
    return withVersion(text(takeBuf(value[0])), JSON.parse(text(takeBuf(info[0]))));
  }

  /** Saves key to the secrets file (0600, atomic, locked). */
  set(key, value) {
    const err = [null];
    check(C.st_secrets_set(this.handle, key, String(value), err), err);
  }

  /** Removes key from the secrets file; false when it was not there. */
  delete(key) {
    const err = [null];
    return found(C.st_secrets_delete(this.handle, key, err), err);
  }

  clearCache() { C.st_secrets_clear_cache(this.handle); }

  /** get's Promise form, run off the event loop. Concurrent calls for one key
   *  wait for one remote request (the providers' single flight). */
  async getAsync(key) {
    const b = await bufCallAsync(this, C.st_secrets_get, [PINNED, key], true);
    return b === undefined ? undefined : b.toString('utf8');
  }

  /** getWithSource's Promise form. */
  async getWithSourceAsync(key) {
    const value = [null];
    const provider = [null];
    const err = [null];
    const rc = await callAsync(this, C.st_secrets_get_with_source, PINNED, key, value, provider, err);
    if (!found(rc, err)) return undefined;
    return { value: text(takeBuf(value[0])), provider: text(takeBuf(provider[0])) };
  }

  /** set's Promise form. */
  setAsync(key, value) {
    return checkAsync(this, C.st_secrets_set, [PINNED, key, String(value)]);
  }

  /** delete's Promise form. */
  deleteAsync(key) {
    return foundAsync(this, C.st_secrets_delete, [PINNED, key]);
  }

  /** providers' Promise form. */
  async providersAsync() {
    return JSON.parse(text(await bufCallAsync(this, C.st_secrets_providers_json, [PINNED])));
  }

  /** diagnose's Promise form (it sends requests). */
  async diagnoseAsync() {
    return JSON.parse(text(await bufCallAsync(this, C.st_secrets_diagnose_json, [PINNED])));
  }

  providers() {
    return JSON.parse(bufCall((o, e) => C.st_secrets_providers_json(this.handle, o, e)).toString());
  }

  /** The remote providers' counters (the process's): {aws: {requests:
   *  [{operation, method, outcome, count, seconds, buckets}], retries,
   *  failovers, stale_served, refreshes_ahead, logins, renewals,
   *  leases_issued, leases_renewed, leases_revoked, tokens_revoked}, vault:
   *  ...}. Never a key name or a value. */
  metrics() {
    return JSON.parse(bufCall((o, e) => C.st_secrets_metrics_json(this.handle, o, e)).toString());
  }

  /** Which version of each secret this manager used: [{key, provider,
   *  version, stages, fingerprint, first_used, last_used}], never a value
   *  (fingerprint: hmac-sha256:<hex> of the value under the job's salt).
   *  Throws ST_INVALID_ARGUMENT when the manager does not record it (the
   *  config key provenance, SIMPLETUNER_PROVENANCE_FILE). */
  provenance() {
    return JSON.parse(bufCall((o, e) => C.st_secrets_provenance_json(this.handle, o, e)).toString());
  }

  /** The doctor's live checks: providers() with, under `checks`, what each
   *  remote provider found (credential source, identity, whether the secret
   *  is readable). Sends requests; never returns a value. */
  diagnose() {
    return JSON.parse(bufCall((o, e) => C.st_secrets_diagnose_json(this.handle, o, e)).toString());
  }

  /** Writes the secrets a job asks for (`names`: "NAME[=KEY],...") into
   *  `dir` (existing, on tmpfs or ramfs) for processes that will run as
   *  uid:gid (-1, -1: the caller's), and returns the variables they get, in
   *  order: paths, the directory, st://KEY references; never a value.
   *  `layout`: "files" (the `st-secrets run --as-files` conventions) or
   *  "refs" (one file per key and NAME=st://KEY). Files are new, 0600, the
   *  user's; nothing is written unless every key is found. */
  writeFiles(names, dir, layout = 'files', uid = -1, gid = -1) {
    return JSON.parse(bufCall((o, e) =>
      C.st_secrets_write_files(this.handle, names, dir, layout, uid, gid, o, e)).toString());
  }

  /** Rewrites, in dir where writeFiles wrote them for the same names and
   *  layout, the files of short-lived credentials (a token exchange's) whose
   *  contents changed, each atomically with the access of the file it
   *  replaces: {rewritten: [file, ...], next_in: seconds or null (nothing to
   *  refresh)}. Other secrets' keys are not read again. */
  refreshFiles(names, dir, layout = 'files') {
    return JSON.parse(bufCall((o, e) =>
      C.st_secrets_refresh_files(this.handle, names, dir, layout, o, e)).toString());
  }

  /** Revokes what a job's ledger lists (the private file `st-secrets run`
   *  names by SIMPLETUNER_JOB_LEDGER) with this manager's Vault settings:
   *  {leases, tokens, failed}. A ledger others may read or write is refused;
   *  a missing or empty one revokes nothing. */
  revokeLedger(path) {
    return JSON.parse(bufCall((o, e) => C.st_secrets_revoke_ledger(this.handle, path, o, e)).toString());
  }

  /** Drops the process-wide default manager: its next use reads the
   *  environment again. Managers made with `new Manager` are not affected. */
  static resetDefault() {
    const err = [null];
    check(C.st_secrets_reset_default(err), err);
  }

  /** data (a Buffer or a string) with every secret value this process has
   *  served (any manager, any language) concealed as
   *  "<concealed by st-secrets>", raw and encoded (base64 and URL-safe
   *  base64 at any alignment, percent-encoded, inside a JSON string, hex);
   *  the same type back. flags: 0, or REDACT_HELD for every value the
   *  providers hold now as well. Values under 8 bytes are not matched. */
  redact(data, flags = 0) {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    const out = bufCall((o, e) => C.st_redact(this.handle, flags, bytes, bytes.length, o, e));
    return typeof data === 'string' ? text(out) : out;
  }

  /** A Transform stream concealing what redact(_, flags) conceals, also a
   *  value split across chunks (a possible start of a value is held until
   *  the next chunk or the end). */
  createRedactStream(flags = 0) {
    return new RedactStream(this, flags);
  }

  toString() {
    return `Manager(${this.providers().map((p) => p.name).join(' > ')})`;
  }

  [util.inspect.custom]() { return this.toString(); }
}

/** Flag of redact and createRedactStream: also every value the providers
 *  hold now (the header's ST_REDACT_HELD). */
const REDACT_HELD = 1;

/** The redacted stream of Manager.createRedactStream. */
class RedactStream extends Transform {
  constructor(manager, flags) {
    super();
    const out = [null];
    const err = [null];
    check(C.st_redactor_new(manager.handle, flags, out, err), err);
    this._r = new Handle(out[0], C.st_redactor_free);
  }

  _transform(chunk, encoding, done) {
    try {
      const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk, encoding);
      const out = bufCall((o, e) => C.st_redactor_write(this._r.handle, bytes, bytes.length, o, e));
      if (out.length) this.push(out);
      done();
    } catch (e) {
      done(e);
    }
  }

  _flush(done) {
    try {
      const out = bufCall((o, e) => C.st_redactor_finish(this._r.handle, o, e));
      if (out.length) this.push(out);
      this._r.close();
      done();
    } catch (e) {
      done(e);
    }
  }

  _destroy(error, done) {
    this._r.close();
    done(error);
  }
}

/** The process-wide manager: the library's default chain (st_secrets_default). */
const defaultManager = new Manager(undefined, true);

module.exports = { Manager, defaultManager, REDACT_HELD, RedactStream };
