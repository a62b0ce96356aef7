'use strict';
const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const util = require('node:util');
const st = require('..');

// Temporary directories hold secrets files and databases: removed after the
// tests, whether they passed or not.
const made = [];
const tmp = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'st-node-'));
  made.push(dir);
  return dir;
};
after(() => {
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true });
});

test('version and error codes come from the library', () => {
  assert.match(st.version, /^st-secrets\/0\./);
  assert.equal(st.codes.ST_NOT_FOUND, 1);
  assert.equal(st.codes.ST_AUTH, 303);
  assert.equal(Object.keys(st.codes).length, 19);
});

test('cache: get, set, TTL, LRU, stats', async () => {
  const c = new st.Cache({ defaultTtl: 300, maxSize: 2 });
  assert.equal(c.get('missing'), undefined);
  c.set('a', 'text');
  c.set('bin', Buffer.from([0, 1, 255]));
  assert.equal(c.get('a').toString(), 'text');
  assert.deepEqual([...c.get('bin')], [0, 1, 255]);
  const big = Buffer.alloc(10000, 0x42); // larger than the get scratch buffer
  c.set('big', big);
  assert.ok(c.get('big').equals(big) && c.get('big').equals(big));
  c.delete('big');
  c.set('c', 'x'); // evicts a, the least recently used
  assert.equal(c.get('a'), undefined);
  c.setTtl('short', 'x', 0.03);
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(c.get('short'), undefined);
  const s = c.stats();
  assert.equal(s.maxSize, 2);
  assert.ok(s.evictions >= 1 && s.hits >= 2 && s.misses >= 2, JSON.stringify(s));
  c.set('e', 'y');
  assert.equal(c.delete('e'), true);
  assert.equal(c.delete('e'), false);
  c.set('p:1', '1');
  assert.equal(c.invalidatePrefix('p:'), 1);
  c.clear();
  assert.match(util.inspect(c), /^Cache\(defaultTtl=300/);
  c.close();
  c.close();
  assert.throws(() => c.get('x'), (e) => e instanceof st.StSecretsError);
});

test('cache: getOrSet computes once, rethrows failures, caches nothing then', () => {
  const c = new st.Cache();
  let calls = 0;
  for (let i = 0; i < 3; i++) {
    assert.equal(c.getOrSet('k', () => { calls++; return 'v'; }).toString(), 'v');
  }
  assert.equal(calls, 1);
  const boom = new Error('upstream failed');
  assert.throws(() => c.getOrSet('bad', () => { throw boom; }), (e) => e === boom);
  assert.equal(c.get('bad'), undefined);
  c.close();
});

test('process-wide caches and invalidation', () => {
  const p = st.providerConfigCache();
  assert.equal(p.stats().maxSize, 100);
  assert.equal(st.userPermissionCache().stats().defaultTtl, 60);
  p.set('provider:nodetest:config', '{}');
  assert.equal(st.invalidateProviderCache('nodetest'), 1);
  st.userPermissionCache().set('user:9:perms', 'x');
  assert.equal(st.invalidateUserCache(9), 1);
});

test('manager: chain, env wins, file 0600, errors with codes', () => {
  const dir = tmp();
  const file = path.join(dir, 'secrets.json');
  const m = new st.Manager({ file_path: file, env_prefix: 'NODETEST' });
  assert.equal(m.get('HF_TOKEN'), undefined);
  m.set('HF_TOKEN', 'hf_node');
  assert.equal(m.get('hf-token'), 'hf_node');
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  process.env.NODETEST_HF_TOKEN = 'from-env';
  assert.equal(m.get('HF_TOKEN'), 'from-env');
  delete process.env.NODETEST_HF_TOKEN;
  assert.deepEqual(m.providers().map((p) => p.name), ['env', 'mounted', 'file', 'aws', 'gcp', 'azure', 'vault']);
  assert.equal(String(m), 'Manager(env > mounted > file > aws > gcp > azure > vault)');
  assert.ok(!util.inspect(m).includes('hf_node'));
  assert.equal(m.delete('HF_TOKEN'), true);
  assert.equal(m.delete('HF_TOKEN'), false);
  assert.throws(() => new st.Manager({ nope: 1 }),
    (e) => e instanceof st.StSecretsError && e.code === 'ST_INVALID_ARGUMENT' && e.message.includes("'nope'"));
  fs.writeFileSync(path.join(dir, 'bad.json'), '{"K": "hf_LEAK", oops}');
  const bad = new st.Manager({ file_path: path.join(dir, 'bad.json'), env_prefix: 'NODETEST_NONE' });
  assert.throws(() => bad.get('K'), (e) => e.code === 'ST_PARSE' && e.number === 201 && !e.message.includes('LEAK'));
  assert.equal(st.Manager.default(), st.Manager.default());
  m.close();
  bad.close();
});

test('manager: references resolve down the chain; one pointing nowhere throws', () => {
  const file = path.join(tmp(), 'secrets.json');
  fs.writeFileSync(file, '{"hf-token": "hf_behind_a_reference"}', { mode: 0o600 });
  const m = new st.Manager({ file_path: file, env_prefix: 'NODEREF' });
  process.env.NODEREF_HF_TOKEN = 'st://hf-token';
  process.env.NODEREF_OTHER = 'st://nowhere';
  try {
    assert.equal(m.get('HF_TOKEN'), 'hf_behind_a_reference');
    assert.throws(() => m.get('OTHER'),
      (e) => e.code === 'ST_INVALID_ARGUMENT' && e.message.includes('st://nowhere'));
    const off = new st.Manager({ file_path: file, env_prefix: 'NODEREF', references: false });
    assert.equal(off.get('HF_TOKEN'), 'st://hf-token');
    off.close();
  } finally {
    delete process.env.NODEREF_HF_TOKEN;
    delete process.env.NODEREF_OTHER;
    m.close();
  }
});

test('a NUL byte in a string argument is refused by name, sync and async', async () => {
  // "user\0admin" was cut at the NUL by C and saved as "user".
  const file = path.join(tmp(), 'secrets.json');
  const m = new st.Manager({ file_path: file, providers: ['file'] });
  const refused = (arg) => (e) => e instanceof st.StSecretsError && e.code === 'ST_INVALID_ARGUMENT'
    && e.message.includes(`'${arg}'`) && e.message.includes('NUL');
  assert.throws(() => m.set('user\0admin', 'v'), refused('key'));
  assert.throws(() => m.set('user', 'a\0b'), refused('value'));
  assert.throws(() => m.get('user\0admin'), refused('key'));
  assert.throws(() => m.delete('user\0admin'), refused('key'));
  await assert.rejects(m.getAsync('user\0admin'), refused('key'));
  assert.equal(fs.existsSync(file), false, 'nothing was saved');
  assert.throws(() => st.encrypt('a\0b'), refused('plaintext'));
  const c = new st.Cache({ defaultTtl: 60, maxSize: 10 });
  c.set('k', 'v');
  assert.throws(() => c.set('k\0x', 'v'), refused('key'));
  assert.throws(() => c.delete('k\0x'), refused('key'));
  assert.equal(c.get('k').toString(), 'v', 'the prefix key is untouched');
  c.close();
  m.close();
});

test('credential encryption', () => {
  process.env.SIMPLETUNER_CREDENTIAL_KEY = 'node-binding-test-key';
  st.resetCrypto();
  const ct = st.encrypt('r8_node');
  assert.match(ct, /^Z0FBQUFB/);
  assert.equal(st.decrypt(ct), 'r8_node');
  assert.equal(st.decryptWithSecret('node-binding-test-key', ct), 'r8_node');
  assert.throws(() => st.decryptWithSecret('wrong', ct), (e) => e.code === 'ST_INVALID_TOKEN' && !e.message.includes('r8_node'));
  assert.equal(st.reencrypt(ct), ct);
  assert.equal(st.decrypt(st.encryptWithSecret('node-binding-test-key', 'y')), 'y');
  delete process.env.SIMPLETUNER_CREDENTIAL_KEY;
  st.resetCrypto();
});

test('store and hardware pricing', () => {
  process.env.SIMPLETUNER_CREDENTIAL_KEY = 'node-binding-test-key';
  st.resetCrypto();
  const s = new st.Store(path.join(tmp(), 'jobs.db'));
  assert.deepEqual(s.getProviderConfig('replicate'), {});
  s.saveProviderConfig('replicate', { a: 1, b: 'x' });
  assert.deepEqual(s.mergeProviderConfig('replicate', { a: null, c: true }), { b: 'x', c: true });
  s.setCredential('replicate', 'api_token', 'r8_tok');
  assert.equal(s.getCredential('replicate', 'api_token'), 'r8_tok');
  assert.equal(s.getCredential('replicate', 'nope'), undefined);
  assert.equal(s.deleteCredential('replicate', 'api_token'), true);
  assert.equal(s.deleteCredential('replicate', 'api_token'), false);
  assert.equal(s.verifyAudit(), 5);
  assert.equal(s.auditEntries(1)[0].action, 'credential.delete');
  assert.deepEqual(s.rotateCredentials(), { rotated: 0, current: 0, failed: 0 });
  st.clearHardwareInfoCache();
  assert.equal(st.hardwareInfo()['gpu-l40s'].cost_per_second, 0.000975);
  assert.ok(Math.abs(st.hourlyCost() - 3.51) < 1e-9);
  st.setHardwareInfo({ 'gpu-x': { cost_per_second: 0.01 } });
  assert.ok(Math.abs(st.hourlyCost('gpu-x', s) - 36) < 1e-9);
  assert.throws(() => st.setHardwareInfo({ g: { cost_per_second: -1 } }), (e) => e.code === 'ST_INVALID_ARGUMENT');
  st.clearHardwareInfoCache();
  s.close();
  delete process.env.SIMPLETUNER_CREDENTIAL_KEY;
  st.resetCrypto();
});

test('manager: getWithSource, diagnose, resetDefault', () => {
  const dir = tmp();
  try {
    const file = path.join(dir, 'secrets.json');
    const m = new st.Manager({ file_path: file, env_prefix: 'NODETEST_SRC', providers: ['env', 'file'] });
    m.set('HF_TOKEN', 'hf_node_source');
    assert.deepEqual(m.getWithSource('hf-token'), { value: 'hf_node_source', provider: 'file' });
    assert.deepEqual(m.getWithVersion('hf-token'),
      { value: 'hf_node_source', provider: 'file', version: null, stages: [] });
    assert.equal(m.getWithVersion('MISSING_KEY'), undefined);
    assert.deepEqual(m.refresh('HF_TOKEN'), { value: 'hf_node_source', changed: false });
    fs.writeFileSync(file, '{"HF_TOKEN": "hf_node_rotated"}', { mode: 0o600 });
    assert.deepEqual(m.refresh('HF_TOKEN'), { value: 'hf_node_rotated', changed: true });
    assert.equal(m.refresh('MISSING_KEY'), undefined);
    // A failure reported: the file has no versions, so it is read again as a
    // refresh (stand-ins: the Rust suites against moto and OpenBao).
    assert.deepEqual(m.reportFailure('HF_TOKEN'),
      { value: 'hf_node_rotated', provider: 'file', version: null, stages: [], changed: false });
    assert.equal(m.reportFailure('MISSING_KEY', '3'), undefined);
    assert.throws(() => m.provenance(), /ST_INVALID_ARGUMENT|provenance/);
    const recorded = new st.Manager({ file_path: file, providers: ['file'], provenance: true });
    assert.equal(recorded.get('hf-token'), 'hf_node_rotated');
    const [used] = recorded.provenance();
    assert.deepEqual([used.key, used.provider, used.version], ['hf-token', 'file', null]);
    assert.match(used.fingerprint, /^hmac-sha256:[0-9a-f]{64}$/);
    assert.equal(typeof recorded.metrics(), 'object');
    recorded.close();
    assert.throws(() => m.reportFailure('HF_TOKEN', ''), /ST_INVALID_ARGUMENT|empty/);
    m.set('HF_TOKEN', 'hf_node_source');
    process.env.NODETEST_SRC_HF_TOKEN = 'from-env';
    try {
      assert.equal(m.getWithSource('HF_TOKEN').provider, 'env');
    } finally {
      delete process.env.NODETEST_SRC_HF_TOKEN;
    }
    assert.equal(m.getWithSource('MISSING_KEY'), undefined);
    const report = m.diagnose();
    assert.deepEqual(report.map((p) => p.name), ['env', 'file']);
    assert.ok('checks' in report[0]);
    assert.ok(!JSON.stringify(report).includes('hf_node_source'));

    process.env.SIMPLETUNER_SECRETS_FILE = file;
    try {
      st.Manager.resetDefault();
      assert.equal(st.Manager.default().get('HF_TOKEN'), 'hf_node_source');
    } finally {
      delete process.env.SIMPLETUNER_SECRETS_FILE;
      st.Manager.resetDefault();
    }
    m.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('cache: cleanup removes expired entries now', async () => {
  const c = new st.Cache({ defaultTtl: 0.03, maxSize: 10 });
  c.set('a', '1');
  c.set('b', '2');
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(c.cleanup(), 2);
  assert.equal(c.stats().size, 0);
  c.close();
});

test('manager: onChange tells saves and, from the library thread, rewrites', async () => {
  const dir = tmp();
  const file = path.join(dir, 'secrets.json');
  const m = new st.Manager({ file_path: file, providers: ['file'] });
  try {
    m.set('HF_TOKEN', 'one');
    const told = [];
    const id = m.onChange((c) => told.push(c));
    m.set('HF_TOKEN', 'two');
    assert.deepEqual(told, [{ key: 'HF_TOKEN', provider: 'file', version: null, stages: [], removed: false }]);
    // Rewritten by someone else, no get: the watch (the library's thread)
    // tells it, on this thread once the event loop runs.
    fs.writeFileSync(file, '{"HF_TOKEN": "three"}', { mode: 0o600 });
    for (let i = 0; i < 600 && told.length < 2; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(told.length, 2);
    assert.equal(told[1].key, 'HF_TOKEN');
    m.removeListener(id);
    assert.throws(() => m.removeListener(id), (e) => e.code === 'ST_NOT_FOUND');
    m.set('HF_TOKEN', 'four');
    assert.equal(told.length, 2);
    assert.throws(() => m.onChange('not a function'), TypeError);
  } finally {
    m.close();
  }
});

test('redact: served and held values, raw and encoded, in a buffer and a stream', async () => {
  const dir = tmp();
  const m = new st.Manager({ file_path: path.join(dir, 's.json'), providers: ['file'] });
  const served = 'hf_node_served_value_01';
  const held = 'r8_node_held_value_00003'; // 24 bytes: whole base64 groups
  m.set('SERVED', served);
  m.set('HELD', held);
  assert.equal(m.get('SERVED'), served);
  const input = `a ${served} b ${Buffer.from(held).toString('base64')} c ${Buffer.from(served).toString('hex')}`;
  const P = '<concealed by st-secrets>';
  assert.equal(st.redact(input), `a ${P} b ${Buffer.from(held).toString('base64')} c ${P}`);
  assert.equal(m.redact(input, st.REDACT_HELD), `a ${P} b ${P} c ${P}`);
  assert.ok(Buffer.isBuffer(m.redact(Buffer.from(input))));
  assert.throws(() => m.redact(input, 8), (e) => e.code === 'ST_INVALID_ARGUMENT');
  for (const piece of [1, 2, 5, 13, 1000]) {
    const s = m.createRedactStream(st.REDACT_HELD);
    const chunks = [];
    s.on('data', (c) => chunks.push(c));
    const done = new Promise((resolve, reject) => { s.on('end', resolve); s.on('error', reject); });
    for (let i = 0; i < input.length; i += piece) s.write(input.slice(i, i + piece));
    s.end();
    await done;
    assert.equal(Buffer.concat(chunks).toString(), `a ${P} b ${P} c ${P}`, `pieces of ${piece}`);
  }
  m.close();
});

test('a job: secrets written as files in order, a ledger revoked', () => {
  const file = path.join(tmp(), 'secrets.json');
  const m = new st.Manager({ file_path: file, providers: ['file'] });
  m.set('HF_TOKEN', 'hf_node_job');
  assert.throws(() => m.writeFiles('1BAD', tmp()),
    (e) => e.code === 'ST_INVALID_ARGUMENT' && e.message.includes('1BAD'));
  let shm = null;
  try {
    shm = fs.mkdtempSync('/dev/shm/st-node-job-');
    made.push(shm);
  } catch {
    // no /dev/shm here: the writing part is left out
  }
  if (shm) {
    const vars = (() => {
      try {
        return m.writeFiles('HF_TOKEN,DB=HF_TOKEN', shm);
      } catch (e) {
        assert.match(e.message, /memory-backed/); // /dev/shm not tmpfs here
        return null;
      }
    })();
    if (vars) {
      assert.deepEqual(Object.entries(vars),
        [['HF_TOKEN_PATH', `${shm}/hf-token`], ['DB_FILE', `${shm}/DB`]]);
      assert.equal(fs.readFileSync(`${shm}/hf-token`, 'utf8'), 'hf_node_job');
      assert.equal(fs.statSync(`${shm}/hf-token`).mode & 0o777, 0o600);
      assert.throws(() => m.writeFiles('HF_TOKEN,GONE', fs.mkdtempSync(`${shm}/x`)),
        (e) => e.code === 'ST_NOT_FOUND' && e.message.includes('GONE'));
    }
  }
  const ledger = path.join(tmp(), 'ledger');
  assert.deepEqual(m.revokeLedger(ledger), { leases: 0, tokens: 0, failed: [], entity: null });
  fs.writeFileSync(ledger, '{"login":"s.x"}\n', { mode: 0o644 });
  assert.throws(() => m.revokeLedger(ledger), (e) => e instanceof st.StSecretsError);
});
