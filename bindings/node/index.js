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

const fs = require('node:fs');
const path = require('node:path');
const util = require('node:util');
const { Transform } = require('node:stream');
const koffi = require('koffi');

const BINDING_MAJOR = 0;

/** The library's file names on this platform: the bundled copy's, and the
 *  name the system loader knows it by (its SONAME; its install name on
 *  macOS, libst_secrets.0.1.dylib). */
const MACOS = process.platform === 'darwin';
const FILE = MACOS ? 'libst_secrets.dylib' : 'libst_secrets.so';
const SONAME = MACOS ? 'libst_secrets.0.1.dylib' : 'libst_secrets.so.0.1';
const SEARCH_PATH = MACOS ? 'DYLD_LIBRARY_PATH' : 'LD_LIBRARY_PATH';

/** Loads the library from, in order: $ST_SECRETS_LIB; the copy bundled in this
 *  package for this platform (prebuilds/<platform>-<arch>/, put there by
 *  scripts/package.sh npm); the system loader's search path (an installed
 *  prefix in /etc/ld.so.conf or LD_LIBRARY_PATH, DYLD_LIBRARY_PATH on
 *  macOS). */
function loadLibrary() {
  if (process.env.ST_SECRETS_LIB) return koffi.load(process.env.ST_SECRETS_LIB);
  const bundled = path.join(__dirname, 'prebuilds', `${process.platform}-${process.arch}`, FILE);
  if (fs.existsSync(bundled)) return koffi.load(bundled);
  try {
    return koffi.load(SONAME);
  } catch (e) {
    throw new Error(
      `st-secrets: cannot load the native library. Looked in, in order: ` +
      `$ST_SECRETS_LIB (unset); the copy bundled for ${process.platform}-${process.arch} (${bundled}: absent); ` +
      `the system loader's search path for ${SONAME} (${e.message}). ` +
      `Install st-secrets (scripts/install.sh) and add its lib directory to ${SEARCH_PATH}, or set ST_SECRETS_LIB.`,
    );
  }
}

const lib = loadLibrary();

// Every declaration comes from the header, through signatures.js (generated
// by scripts/gen-signatures.js; a test fails when it is stale).
const sig = require('./signatures');
koffi.alias('st_result', 'int');
for (const t of sig.opaque) koffi.opaque(t);
for (const [name, fields] of Object.entries(sig.structs)) koffi.struct(name, fields);
for (const proto of sig.callbacks) koffi.proto(proto);
/** st_cache_stats' struct_size: the size of the struct this binding reads. */
const STATS_SIZE = koffi.sizeof('st_cache_stats');
const C = {};
for (const decl of sig.functions) {
  const fn = lib.func(decl);
  C[fn.info.name] = refusingNul(fn, decl);
}

/** `fn`, refusing a string argument (a `const char *` parameter) that holds
 *  a NUL byte, which C would read only up to the NUL ("user\0admin" as
 *  "user"): an StSecretsError ST_INVALID_ARGUMENT naming the parameter, and
 *  nothing reaches the library. Synchronous and asynchronous calls alike. */
function refusingNul(fn, decl) {
  const params = decl.slice(decl.indexOf('(') + 1, decl.lastIndexOf(')')).split(',');
  const strings = [];
  params.forEach((p, i) => {
    const m = /const char \*\s*(\w+)\s*$/.exec(p.trim());
    if (m) strings.push([i, m[1]]);
  });
  if (strings.length === 0) return fn;
  const refuse = (args) => {
    for (const [i, name] of strings) {
      if (typeof args[i] === 'string' && args[i].includes('\0')) {
        throw new StSecretsError(codes.ST_INVALID_ARGUMENT,
          `argument '${name}' of ${fn.info.name} holds a NUL byte, which a C string cannot carry; refused`);
      }
    }
  };
  const call = (...args) => {
    refuse(args);
    return fn(...args);
  };
  call.info = fn.info;
  call.async = (...args) => {
    refuse(args);
    return fn.async(...args);
  };
  return call;
}

const version = C.st_version();
if (C.st_version_major() !== BINDING_MAJOR) {
  throw new Error(`st-secrets binding for major version ${BINDING_MAJOR} cannot use ${version}`);
}

/** Result codes, from the library itself: {ST_NOT_FOUND: 1, ...}. */
const codes = {};
for (let n = 0; n < 1000; n++) {
  const name = C.st_result_name(n);
  if (name !== 'ST_UNKNOWN') codes[name] = n;
}

/** A library failure: `code` (e.g. 'ST_AUTH'), `number`, and a message that never contains a secret. */
class StSecretsError extends Error {
  constructor(number, message) {
    const code = C.st_result_name(number);
    super(`${code}: ${message}`);
    this.name = 'StSecretsError';
    this.code = code;
    this.number = number;
  }
}

const NOT_FOUND = codes.ST_NOT_FOUND;
const CALLBACK = codes.ST_CALLBACK;

/** Calls a fallible function whose last two arguments are (out?, err). */
function check(rc, err) {
  if (rc === 0) return;
  const message = err[0] ? C.st_error_message(err[0]) : C.st_result_name(rc);
  if (err[0]) C.st_error_free(err[0]);
  throw new StSecretsError(rc, message);
}

/** For calls that answer yes/no: true on success, false on ST_NOT_FOUND,
 *  throws on any other failure. */
function found(rc, err) {
  if (rc === NOT_FOUND) {
    if (err[0]) C.st_error_free(err[0]);
    return false;
  }
  check(rc, err);
  return true;
}

/** Copies an st_buf into a Buffer and frees it (the library zeroes it). */
function takeBuf(b) {
  try {
    const n = Number(C.st_buf_len(b));
    return n === 0 ? Buffer.alloc(0) : Buffer.from(koffi.decode(C.st_buf_data(b), koffi.array('uint8_t', n)));
  } finally {
    C.st_buf_free(b);
  }
}

/** Calls the C function `fn` with `args` on a worker thread; resolves with
 *  its result code. `owner` (a Handle, or null) is pinned meanwhile: its
 *  native object is neither freed by close() nor collected until the call
 *  has returned. */
function callAsync(owner, fn, ...args) {
  return new Promise((resolve, reject) => {
    let pinned = false;
    try {
      checkTypes(fn, args);
      const handle = owner ? owner._pin() : undefined; // throws when closed
      pinned = owner !== null;
      fn.async(...args.map((a) => (a === PINNED ? handle : a)), (e, rc) => {
        if (pinned) owner._unpin();
        if (e) reject(e);
        else resolve(rc);
      });
    } catch (e) {
      if (pinned) owner._unpin(); // the arguments were refused: nothing runs
      reject(e);
    }
  });
}

/** The koffi primitive of each parameter of `fn`, cached per function. */
const primitives = new WeakMap();

/** Throws the TypeError a synchronous call would for an argument of the
 *  wrong type. koffi 2.15 checked types in asynchronous calls too, but then
 *  crashed the process (SIGSEGV) instead of throwing: an asynchronous call
 *  is made only with arguments of the declared types. */
function checkTypes(fn, args) {
  let kinds = primitives.get(fn);
  if (!kinds) {
    kinds = fn.info.arguments.map((a) => a.type.primitive);
    primitives.set(fn, kinds);
  }
  kinds.forEach((kind, i) => {
    const a = args[i];
    const ok = kind === 'String' ? a === null || typeof a === 'string'
      : kind === 'Pointer' ? true // handles (or PINNED), out-parameter arrays, buffers
        : typeof a === 'number' || typeof a === 'bigint' || typeof a === 'boolean';
    if (!ok) throw new TypeError(`Unexpected ${typeof a} value for argument ${i + 1} of ${fn.info.name}, expected ${kind}`);
  });
}

/** Stands for the pinned owner's native handle in callAsync's arguments. */
const PINNED = Symbol('pinned handle');

/** bufCall's Promise form: fn with (...args, out, err) on a worker thread. */
async function bufCallAsync(owner, fn, args, optional = false) {
  const out = [null];
  const err = [null];
  const rc = await callAsync(owner, fn, ...args, out, err);
  if (optional) {
    return found(rc, err) ? takeBuf(out[0]) : undefined;
  }
  check(rc, err);
  return takeBuf(out[0]);
}

/** A call that only fails: fn with (...args, err) on a worker thread. */
async function checkAsync(owner, fn, args) {
  const err = [null];
  check(await callAsync(owner, fn, ...args, err), err);
}

/** A yes/no call: fn with (...args, err) on a worker thread. */
async function foundAsync(owner, fn, args) {
  const err = [null];
  return found(await callAsync(owner, fn, ...args, err), err);
}

/** Runs fn(out, err); returns the buffer, or undefined on ST_NOT_FOUND when `optional`. */
function bufCall(fn, optional = false) {
  const out = [null];
  const err = [null];
  const rc = fn(out, err);
  if (optional) {
    return found(rc, err) ? takeBuf(out[0]) : undefined;
  }
  check(rc, err);
  return takeBuf(out[0]);
}

function withVersion(value, info) {
  return { value, provider: info.provider, version: info.version, stages: info.stages };
}

function toBytes(value) {
  return Buffer.isBuffer(value) ? value : Buffer.from(String(value), 'utf8');
}

function seconds(ttl) {
  return ttl === undefined || ttl === null ? -1 : Number(ttl);
}

// The destination of st_cache_get_into (Node runs one thread per module instance).
const scratch = { buf: Buffer.alloc(4096), len: new BigUint64Array(1) };

const registry = new FinalizationRegistry(({ free, handle }) => free(handle));

class Handle {
  constructor(handle, free) {
    this._handle = handle;
    this._free = free;
    this._pending = 0; // asynchronous calls running on it
    this._closing = false;
    if (free) registry.register(this, { free, handle }, this);
  }

  get handle() {
    if (this._handle === null || this._closing) {
      throw new StSecretsError(codes.ST_INVALID_ARGUMENT, 'the handle is closed');
    }
    return this._handle;
  }

  /** The native handle, kept alive until the matching _unpin (an
   *  asynchronous call holds `this`, so the finalizer cannot run either). */
  _pin() {
    const h = this.handle;
    this._pending += 1;
    return h;
  }

  _unpin() {
    this._pending -= 1;
    if (this._pending === 0 && this._closing) this._release();
  }

  _release() {
    if (this._handle !== null && this._free) {
      registry.unregister(this);
      this._free(this._handle);
    }
    this._handle = null;
    this._closing = false;
  }

  /** Frees the native object now, or, while asynchronous calls are running on
   *  it, once the last has returned (new calls fail at once). A finalizer is
   *  the backstop. Idempotent. */
  close() {
    if (this._pending > 0) {
      this._closing = true;
      return;
    }
    this._release();
  }
}

/** The library's thread-safe TTL cache with LRU eviction, exact for each thread's own operations (byte values). */
class Cache extends Handle {
  /** Options in seconds; omitted values take the defaults (300 s, 1,000, 60 s). */
  constructor({ defaultTtl, maxSize, cleanupInterval } = {}, _handle = null) {
    if (_handle) {
      super(_handle, null);
      return;
    }
    const out = [null];
    const err = [null];
    check(C.st_cache_new(seconds(defaultTtl), maxSize || 0, seconds(cleanupInterval), out, err), err);
    super(out[0], C.st_cache_free);
  }

  /** The value (a Buffer), or undefined when absent or expired. One FFI call
   *  (st_cache_get_into a reused scratch buffer), then a copy into a new Buffer. */
  get(key) {
    const rc = C.st_cache_get_into(this.handle, key, scratch.buf, scratch.buf.length, scratch.len, null);
    if (rc === NOT_FOUND) return undefined;
    if (rc !== 0) return bufCall((o, e) => C.st_cache_get(this.handle, key, o, e), true); // reports the error
    const n = Number(scratch.len[0]);
    if (n > scratch.buf.length) {
      scratch.buf = Buffer.alloc(n * 2);
      return this.get(key);
    }
    return Buffer.from(scratch.buf.subarray(0, n));
  }

  /** Stores value (Buffer or string) with the default TTL. */
  set(key, value) {
    this.setTtl(key, value, undefined);
  }

  /** Stores value for ttl seconds (0: already expired; Infinity: never). */
  setTtl(key, value, ttl) {
    const bytes = toBytes(value);
    const err = [null];
    check(C.st_cache_set(this.handle, key, bytes, bytes.length, seconds(ttl), err), err);
  }

  /** The value, or fn()'s (Buffer or string), stored with the default TTL. A
   *  throwing fn caches nothing and its error is rethrown. */
  getOrSet(key, fn) {
    let failure = null;
    const compute = (_user, _key, sink) => {
      try {
        const bytes = toBytes(fn());
        return C.st_sink_write(sink, bytes, bytes.length);
      } catch (e) {
        failure = e;
        return CALLBACK;
      }
    };
    const out = [null];
    const err = [null];
    const rc = C.st_cache_get_or_set(this.handle, key, compute, null, -1, out, err);
    if (rc !== 0 && failure) {
      if (err[0]) C.st_error_free(err[0]);
      throw failure;
    }
    check(rc, err);
    return takeBuf(out[0]);
  }

  delete(key) { return C.st_cache_delete(this.handle, key); }
  clear() { return Number(C.st_cache_clear(this.handle)); }
  invalidatePrefix(prefix) { return Number(C.st_cache_invalidate_prefix(this.handle, prefix)); }
  /** Removes the expired entries now (otherwise swept lazily); how many. */
  cleanup() { return Number(C.st_cache_cleanup(this.handle)); }

  stats() {
    const out = { struct_size: STATS_SIZE };
    const err = [null];
    check(C.st_cache_stats_get(this.handle, out, err), err);
    return {
      size: Number(out.size), maxSize: Number(out.max_size), expiredCount: Number(out.expired_count),
      defaultTtl: out.default_ttl, hits: Number(out.hits), misses: Number(out.misses),
      evictions: Number(out.evictions), expirations: Number(out.expirations),
    };
  }

  [util.inspect.custom]() {
    const s = this._handle ? this.stats() : null;
    return s ? `Cache(defaultTtl=${s.defaultTtl}, maxSize=${s.maxSize}, size=${s.size})` : 'Cache(<closed>)';
  }
}

const providerCache = new Cache({}, C.st_provider_config_cache());
const permissionCache = new Cache({}, C.st_user_permission_cache());

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
   *  {value, provider} ('env', 'file', 'aws', 'vault'), or undefined. */
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
        fn({ key, provider: i.provider, version: i.version, stages: i.stages, removed: i.removed });
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

  /** The doctor's live checks: providers() with, under `checks`, what each
   *  remote provider found (credential source, identity, whether the secret
   *  is readable). Sends requests; never returns a value. */
  diagnose() {
    return JSON.parse(bufCall((o, e) => C.st_secrets_diagnose_json(this.handle, o, e)).toString());
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

const defaultManager = new Manager(undefined, true);

const text = (b) => b.toString('utf8');
const textAsync = async (fn, args) => text(await bufCallAsync(null, fn, args));
const encrypt = (p) => text(bufCall((o, e) => C.st_encrypt(p, o, e)));
const decrypt = (c) => text(bufCall((o, e) => C.st_decrypt(c, o, e)));
const encryptWithSecret = (s, p) => text(bufCall((o, e) => C.st_encrypt_with_secret(s, p, o, e)));
const decryptWithSecret = (s, c) => text(bufCall((o, e) => C.st_decrypt_with_secret(s, c, o, e)));
const reencrypt = (c) => text(bufCall((o, e) => C.st_reencrypt(c, o, e)));

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
