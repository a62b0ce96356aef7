'use strict';
// The koffi declarations are generated from the C header: they must be
// current, and the generator's rules must hold on the cases they exist for.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const gen = require('../scripts/gen-signatures');

const header = process.env.ST_SECRETS_HEADER || path.resolve(__dirname, '..', '..', '..', 'include', 'st_secrets.h');

test('signatures.js is generated from the current header', () => {
  const expected = gen.render(fs.readFileSync(header, 'utf8'));
  const current = fs.readFileSync(path.join(__dirname, '..', 'signatures.js'), 'utf8');
  assert.equal(current, expected, 'stale: run node scripts/gen-signatures.js');
});

test('the generator reads every function of the header', () => {
  const text = fs.readFileSync(header, 'utf8');
  const names = gen.parseHeader(text).functions.map((f) => f.name);
  const declared = [...text.matchAll(/\b(st_\w+)\(/g)].map((m) => m[1]);
  // Every st_*( in the header that is followed by a declaration is parsed.
  for (const n of new Set(declared)) {
    if (new RegExp(`^[A-Za-z_][\\w\\s*]*\\b${n}\\(`, 'm').test(text.replace(/\/\*[\s\S]*?\*\//g, ''))) {
      assert.ok(names.includes(n), `${n} is in the header but not parsed`);
    }
  }
  assert.ok(names.length >= 59, `${names.length} functions`);
});

test('outputs, callbacks and void parameter lists are translated', () => {
  const d = (ret, name, params) => gen.koffiDecl({ ret, name, params }, { st_stats: {} });
  assert.equal(d('st_result', 'st_x', 'const char *key, st_buf **out_value, st_error **err'),
    'st_result st_x(const char *key, _Out_ st_buf **out_value, _Out_ st_error **err)');
  assert.equal(d('st_result', 'st_y', 'st_store *s, double *out_cost'), 'st_result st_y(st_store *s, _Out_ double *out_cost)');
  assert.equal(d('st_result', 'st_cache_get_into', 'uint8_t *dst, size_t *out_len'),
    'st_result st_cache_get_into(uint8_t *dst, size_t *out_len)');
  assert.equal(d('st_result', 'st_z', 'st_compute_fn compute'), 'st_result st_z(st_compute_fn *compute)');
  assert.equal(d('void', 'st_w', 'void'), 'void st_w()');
  // A struct the caller sizes is read and written; a const one only read.
  assert.equal(d('st_result', 'st_v', 'st_stats *stats'), 'st_result st_v(_Inout_ st_stats *stats)');
  assert.equal(d('st_result', 'st_u', 'const st_stats *stats'), 'st_result st_u(const st_stats *stats)');
});
