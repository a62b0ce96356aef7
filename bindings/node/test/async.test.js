'use strict';
// The Promise forms (`...Async`): they run off the event loop, concurrent
// gets of one key send one request, and failures arrive as rejections with
// the synchronous form's error.
//
// The slow server is a loopback HTTP server in this process answering Vault's
// KV v2 read 300 ms late (a fake: no real server is slow on demand). Being in
// this process is the point: it can answer only while the event loop runs,
// so a get that blocked the loop could never be answered (the control below).
const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const st = require('..');

// Encryption here (the store's credentials, a decrypt that fails) needs a
// key: given, so that no test writes ~/.simpletuner/credential.key into the
// real home.
process.env.SIMPLETUNER_CREDENTIAL_KEY = 'node-async-test-key';

const SECRET = 'hf_async_SECRET_value_0123';
const DELAY_MS = 300;
const requests = [];
const server = http.createServer((req, res) => {
  if (req.url === '/v1/auth/token/lookup-self') {
    // The token's TTL, asked once per token: one that never expires.
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ data: { ttl: 0, renewable: false } }));
    return;
  }
  requests.push(req.url);
  setTimeout(() => {
    if (req.headers['x-vault-token'] !== 'test-token') {
      res.writeHead(403, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: ['permission denied'] }));
      return;
    }
    if (req.url !== '/v1/secret/data/trainer') {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [] }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ data: { data: { HF_TOKEN: SECRET }, metadata: { version: 1 } } }));
  }, DELAY_MS);
});
const listening = new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
after(() => server.close());

async function vaultManager(extra = {}) {
  await listening;
  return new st.Manager({
    providers: ['vault'],
    vault_url: `http://127.0.0.1:${server.address().port}`,
    vault_token: 'test-token',
    vault_path: 'trainer',
    vault_kv_version: 2,
    request_timeout: 2,
    ...extra,
  });
}

/** Counts the ticks of a 10 ms interval while `promise` settles. */
async function ticksDuring(promise) {
  let ticks = 0;
  const timer = setInterval(() => { ticks += 1; }, 10);
  try {
    return { value: await promise, ticks };
  } finally {
    clearInterval(timer);
  }
}

test('a slow remote get leaves the event loop running; 20 concurrent gets send one request', async () => {
  const m = await vaultManager();
  requests.length = 0;
  const gets = Array.from({ length: 20 }, () => m.getAsync('HF_TOKEN'));
  const { value, ticks } = await ticksDuring(Promise.all(gets));
  assert.deepEqual(new Set(value), new Set([SECRET]));
  // 300 ms of a 10 ms timer: about 30 ticks; a blocked loop gives 0.
  assert.ok(ticks >= 10, `the timer fired ${ticks} times during the get`);
  assert.deepEqual(requests, ['/v1/secret/data/trainer'], 'one request for 20 gets');
  // Cached now: no request, and the sync form agrees.
  assert.equal(m.get('HF_TOKEN'), SECRET);
  assert.deepEqual(await m.getWithSourceAsync('hf-token'), { value: SECRET, provider: 'vault' });
  assert.deepEqual(await m.refreshAsync('hf-token'), { value: SECRET, changed: false });
  assert.equal(requests.length, 2, 'the refresh fetched once');
  requests.length = 1;
  assert.deepEqual(await m.getWithVersionAsync('hf-token'),
    { value: SECRET, provider: 'vault', version: '1', stages: [] }, 'the KV v2 version');
  assert.equal(await m.getAsync('ABSENT'), undefined);
  assert.equal(requests.length, 1);
  m.close();
});

test('the control: the synchronous get blocks the loop, so this process cannot answer it', async () => {
  const m = await vaultManager({ request_timeout: 0.5 });
  requests.length = 0;
  let ticks = 0;
  const timer = setInterval(() => { ticks += 1; }, 10);
  assert.throws(() => m.get('HF_TOKEN'), (e) => e instanceof st.StSecretsError && e.code === 'ST_TIMEOUT');
  clearInterval(timer);
  assert.equal(ticks, 0, 'no timer ran during the synchronous get');
  m.close();
});

test('failures are rejections with the synchronous form\'s error', async () => {
  const m = await vaultManager({ vault_token: 'wrong-token' });
  await assert.rejects(m.getAsync('HF_TOKEN'), (e) => {
    assert.ok(e instanceof st.StSecretsError);
    assert.equal(e.code, 'ST_AUTH');
    assert.ok(!e.message.includes('wrong-token'), e.message);
    return true;
  });
  // Arguments the C function refuses, and a closed handle, reject too.
  await assert.rejects(m.getAsync(''), (e) => e.code === 'ST_INVALID_ARGUMENT');
  await assert.rejects(m.getAsync(42), TypeError);
  m.close();
  await assert.rejects(m.getAsync('HF_TOKEN'), (e) => e.code === 'ST_INVALID_ARGUMENT' && /closed/.test(e.message));
  await assert.rejects(st.decryptAsync('not a ciphertext'), (e) => e instanceof st.StSecretsError);
});

test('close() during a call frees the handle after the call has returned', async () => {
  const m = await vaultManager({ cache_ttl: 0 });
  const pending = m.getAsync('HF_TOKEN');
  m.close(); // the call holds the handle: freed when it returns
  assert.equal(await pending, SECRET);
  assert.throws(() => m.get('HF_TOKEN'), /closed/);
  m.close();
});

test('the Promise forms of sets, listing, the store and encryption', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'st-node-async-'));
  try {
    const m = new st.Manager({ providers: ['file'], file_path: path.join(dir, 'secrets.json') });
    await m.setAsync('wandb-prod', 'w-value');
    assert.equal(await m.getAsync('wandb-prod'), 'w-value');
    assert.equal(fs.statSync(path.join(dir, 'secrets.json')).mode & 0o777, 0o600);
    assert.equal(await m.deleteAsync('wandb-prod'), true);
    assert.equal(await m.deleteAsync('wandb-prod'), false);
    const providers = await m.providersAsync();
    assert.deepEqual(providers.map((p) => p.name), ['file']);
    assert.deepEqual((await m.diagnoseAsync()).map((p) => p.name), ['file']);
    m.close();

    const s = await st.Store.open(path.join(dir, 'jobs.db'));
    await s.saveProviderConfigAsync('replicate', { region: 'us' });
    assert.deepEqual(await s.mergeProviderConfigAsync('replicate', { gpu: 'a100' }), { region: 'us', gpu: 'a100' });
    assert.deepEqual(await s.getProviderConfigAsync('replicate'), s.getProviderConfig('replicate'));
    await s.setCredentialAsync('replicate', 'token', 'r8_value');
    assert.equal(await s.getCredentialAsync('replicate', 'token'), 'r8_value');
    assert.equal(await s.deleteCredentialAsync('replicate', 'token'), true);
    assert.equal(await s.getCredentialAsync('replicate', 'token'), undefined);
    assert.equal((await s.rotateCredentialsAsync()).failed, 0);
    assert.ok((await s.auditEntriesAsync(10)).length >= 3);
    assert.equal(await s.verifyAuditAsync(), s.verifyAudit());
    assert.equal(await st.hourlyCostAsync('gpu-l40s', s), st.hourlyCost('gpu-l40s', s));
    assert.deepEqual(await st.hardwareInfoAsync(s), st.hardwareInfo(s));
    s.close();
    await assert.rejects(st.Store.open(dir), (e) => e instanceof st.StSecretsError); // a directory

    const token = await st.encryptWithSecretAsync('a-secret', 'plain');
    assert.equal(await st.decryptWithSecretAsync('a-secret', token), 'plain');
    assert.equal(st.decryptWithSecret('a-secret', token), 'plain');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
