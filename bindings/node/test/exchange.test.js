'use strict';
// A token exchange through the binding: a key of the chain is the credential
// an RFC 8693 endpoint (here a loopback one in this process, so the reads
// are the async forms, off the event loop) gives for the workload's token,
// one request for many reads, replaced once when reported refused.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const st = require('..');

test('a token exchange gives a key, held for its lifetime, replaced once when refused', async () => {
  let n = 0;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      const form = new URLSearchParams(body);
      const ok = form.get('grant_type') === 'urn:ietf:params:oauth:grant-type:token-exchange' &&
        (form.get('subject_token') || '').startsWith('eyJ');
      res.writeHead(ok ? 200 : 400, { 'content-type': 'application/json' });
      res.end(ok ? JSON.stringify({ access_token: `at_node_${++n}`, token_type: 'Bearer', expires_in: 600 })
        : '{"error": "invalid_request"}');
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'st-node-exchange-'));
  try {
    const b64 = (s) => Buffer.from(s).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    const subject = path.join(dir, 'subject.jwt');
    fs.writeFileSync(subject, `${b64('{"alg":"RS256"}')}.${b64(JSON.stringify(
      { iss: 'https://issuer.test', sub: 'job', aud: 'gateway', iat: now, exp: now + 3600 }))}.c2ln`,
    { mode: 0o600 });
    const url = `http://127.0.0.1:${server.address().port}/token`;
    const config = (audience) => ({ providers: ['exchange'], retries: 0, exchanges: {
      API_KEY: { profile: 'rfc8693', url, audience, subject_token_file: subject } } });
    const m = new st.Manager(config('gateway'));
    for (let i = 0; i < 3; i++) assert.equal(await m.getAsync('API_KEY'), 'at_node_1');
    assert.equal(n, 1, 'one exchange for three reads');
    // Its file (refs, in a job's directory on tmpfs) is rewritten once the
    // credential is another, and not before.
    const shm = fs.existsSync('/dev/shm') ? fs.mkdtempSync('/dev/shm/st-node-exchange-') : null;
    try {
      if (shm) {
        m.writeFiles('API_KEY', shm, 'refs');
        const same = m.refreshFiles('API_KEY', shm, 'refs');
        assert.deepEqual(same.rewritten, []);
        assert.ok(same.next_in >= 1 && same.next_in <= 150, `${same.next_in}`);
      }
      const r = await m.reportFailureAsync('API_KEY');
      assert.equal(r.value, 'at_node_2');
      assert.equal(r.changed, true);
      if (shm) {
        assert.deepEqual(m.refreshFiles('API_KEY', shm, 'refs').rewritten, ['API_KEY']);
        assert.equal(fs.readFileSync(path.join(shm, 'API_KEY'), 'utf8'), 'at_node_2');
      }
    } finally {
      if (shm) fs.rmSync(shm, { recursive: true, force: true });
    }
    // A subject token for another audience is refused by name, never sent.
    await assert.rejects(new st.Manager(config('elsewhere')).getAsync('API_KEY'), /audience/);
    assert.equal(n, 2);
  } finally {
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
