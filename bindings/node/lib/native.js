'use strict';
// The native layer of the Node binding: the library loaded, its declarations
// (from the header, through signatures.js), the result codes and errors, the
// call helpers every class uses (synchronous and on libuv's pool), and the
// handle base class. The classes live beside it: cache.js, manager.js,
// store.js; index.js puts the package together.

const fs = require('node:fs');
const path = require('node:path');
const util = require('node:util');
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
  const bundled = path.join(__dirname, '..', 'prebuilds', `${process.platform}-${process.arch}`, FILE);
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
const sig = require('../signatures');
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
  const out = { value, provider: info.provider, version: info.version, stages: info.stages };
  // Only for a version standing in for one reported failed (reportFailure).
  if (info.instead_of) out.insteadOf = info.instead_of;
  return out;
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

/** A library buffer's bytes as UTF-8 text. */
const text = (b) => b.toString('utf8');

module.exports = {
  koffi,
  C,
  STATS_SIZE,
  text,
  version,
  codes,
  StSecretsError,
  NOT_FOUND,
  CALLBACK,
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
  toBytes,
  seconds,
  scratch,
  registry,
  Handle,
};
