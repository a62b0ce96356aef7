'use strict';
// The TypeScript declarations, checked by the TypeScript compiler (strict,
// node16 resolution, the package resolved by its own name through
// "exports"): the ESM and CommonJS entries' uses compile; misuses do not.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.join(__dirname, '..');
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const types = path.join(__dirname, 'types');

function compile(args) {
  const r = spawnSync(process.execPath, [tsc, ...args], { cwd: root, encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

test('the declarations compile for ESM and CommonJS users', () => {
  const r = compile(['-p', path.join(types, 'tsconfig.json')]);
  assert.equal(r.status, 0, r.out);
});

test('misuses are type errors', () => {
  const r = compile([
    '--strict', '--noEmit', '--module', 'node16', '--moduleResolution', 'node16', '--target', 'es2022',
    '--types', 'node', path.join(types, 'wrong.mts'),
  ]);
  assert.notEqual(r.status, 0, r.out);
  // Line 6: a Promise assigned to its value; line 7: undefined to a string.
  assert.match(r.out, /wrong\.mts\(6,\d+\): error TS2322/);
  assert.match(r.out, /wrong\.mts\(7,\d+\): error TS2322/);
  assert.equal((r.out.match(/error TS/g) || []).length, 2, r.out);
});
