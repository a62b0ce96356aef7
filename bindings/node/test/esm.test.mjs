// The ESM entry: `import { Manager } from 'st-secrets'` (the package
// referring to itself by name, through package.json's "exports"), with the
// same exports as the CommonJS entry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import st, { Manager, Cache, version } from 'st-secrets';
import * as named from 'st-secrets';

const cjs = createRequire(import.meta.url)('st-secrets');

test('the ESM entry has every export of the CommonJS entry, and the same objects', () => {
  assert.equal(st, cjs);
  const esmNames = Object.keys(named).filter((n) => n !== 'default').sort();
  assert.deepEqual(esmNames, Object.keys(cjs).sort());
  for (const n of esmNames) assert.equal(named[n], cjs[n], n);
  assert.match(version, /^st-secrets\/0\./);
});

test('imported classes work', async () => {
  process.env.ST_ESM_TEST_KEY = 'esm-value';
  const m = new Manager({ providers: ['env'] });
  assert.equal(await m.getAsync('st-esm-test-key'), 'esm-value');
  m.close();
  const c = new Cache({ maxSize: 2 });
  c.set('k', 'v');
  assert.equal(c.get('k').toString(), 'v');
  c.close();
});
