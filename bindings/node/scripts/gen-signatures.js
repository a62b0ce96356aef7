#!/usr/bin/env node
'use strict';
// Generates signatures.js (the koffi declarations of index.js) from the C
// header, so that the binding cannot restate a signature wrongly:
//   node scripts/gen-signatures.js          writes signatures.js
//   node scripts/gen-signatures.js --check  exits 1 when signatures.js is stale
// The header is ../../include/st_secrets.h, or the path in ST_SECRETS_HEADER.
//
// Translation rules (C as cbindgen writes it -> koffi's C-like syntax):
// - `st_result` is declared to koffi as an alias of `int` (it is an int-sized
//   enum; the Rust side asserts the size);
// - a parameter of pointer-to-pointer type (`st_buf **out`), and a pointer
//   parameter named `out` or `out_*`, is an output: `_Out_`; except those of
//   IN_PLACE, which the binding passes as memory it owns (a typed array the
//   library writes into, read without a copy-back);
// - any other non-const pointer to one of the header's structs (a struct
//   whose `struct_size` the caller sets, `st_cache_stats *stats`) is read
//   and written: `_Inout_`;
// - a callback typedef (`st_compute_fn`, `st_change_fn`, ...) is a
//   function-pointer type: koffi declares the function type and parameters
//   take `st_..._fn *`;
// - `(void)` is `()`.

const fs = require('node:fs');
const path = require('node:path');

const here = path.resolve(__dirname, '..');

/** Pointer parameters named out* that index.js passes as its own memory. */
const IN_PLACE = { st_cache_get_into: ['out_len'] };

/** The header with comments removed. */
function stripComments(text) {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/[^\n]*/g, '');
}

/** Parses the header: opaque types, structs, callback types and functions. */
function parseHeader(text) {
  const code = stripComments(text);
  const opaque = [...code.matchAll(/typedef struct (st_\w+) \1;/g)].map((m) => m[1]);
  const structs = {};
  for (const m of code.matchAll(/typedef struct \{([^}]*)\} (st_\w+);/g)) {
    const fields = {};
    for (const decl of m[1].split(';').map((s) => s.trim()).filter(Boolean)) {
      const f = /^(.*?)\s*(\w+)$/.exec(decl.replace(/\s+/g, ' '));
      fields[f[2]] = f[1];
    }
    structs[m[2]] = fields;
  }
  const callbacks = [...code.matchAll(/typedef (\w[\w\s*]*?)\s*\(\*(st_\w+)\)\(([^)]*)\);/g)].map(
    (m) => `${m[1].trim()} ${m[2]}(${m[3].replace(/\s+/g, ' ').trim()})`,
  );
  const functions = [];
  for (const m of code.matchAll(/^([A-Za-z_][\w\s*]*?)\s*\b(st_\w+)\(([^;{]*?)\);/gm)) {
    if (m[1].startsWith('typedef')) continue;
    functions.push({ ret: m[1].replace(/\s+/g, ' ').trim(), name: m[2], params: m[3].replace(/\s+/g, ' ').trim() });
  }
  return { opaque, structs, callbacks, functions };
}

/** One function as koffi reads it. */
function koffiDecl({ ret, name, params }, structs = {}) {
  const list = params === 'void' || params === '' ? [] : params.split(',').map((p) => p.trim());
  const out = list.map((p) => {
    const m = /^(.*?)\s*(\w+)$/.exec(p);
    let type = m[1].replace(/\s+\*/g, ' *').trim();
    const pname = m[2];
    if (/^st_\w+_fn$/.test(type)) type = `${type} *`;
    const inPlace = (IN_PLACE[name] || []).includes(pname);
    const isOut = !inPlace && (/\*\s*\*$/.test(type) || (/^out(_|$)/.test(pname) && type.endsWith('*')));
    const isInout = !isOut && /^st_\w+ \*$/.test(type) && type.slice(0, -2) in structs;
    const dir = isOut ? '_Out_ ' : isInout ? '_Inout_ ' : '';
    return `${dir}${type}${type.endsWith('*') ? '' : ' '}${pname}`;
  });
  const r = ret.replace(/\s+\*/g, ' *');
  return `${r}${r.endsWith('*') ? '' : ' '}${name}(${out.join(', ')})`;
}

function render(header) {
  const h = parseHeader(header);
  const lines = [
    '// Generated from include/st_secrets.h by scripts/gen-signatures.js: do not edit.',
    '// index.js declares these to koffi; test/signatures.test.js checks this file',
    '// is current.',
    "'use strict';",
    '',
    `exports.opaque = ${JSON.stringify(h.opaque)};`,
    `exports.structs = ${JSON.stringify(h.structs, null, 2)};`,
    `exports.callbacks = ${JSON.stringify(h.callbacks, null, 2)};`,
    'exports.functions = [',
    ...h.functions.map((f) => `  ${JSON.stringify(koffiDecl(f, h.structs)).replace(/^"|"$/g, "'")},`),
    '];',
    '',
  ];
  return lines.join('\n');
}

function headerPath() {
  return process.env.ST_SECRETS_HEADER || path.resolve(here, '..', '..', 'include', 'st_secrets.h');
}

module.exports = { parseHeader, koffiDecl, render };

if (require.main === module) {
  const expected = render(fs.readFileSync(headerPath(), 'utf8'));
  const target = path.join(here, 'signatures.js');
  if (process.argv.includes('--check')) {
    const current = fs.existsSync(target) ? fs.readFileSync(target, 'utf8') : '';
    if (current !== expected) {
      console.error('signatures.js is stale: run node scripts/gen-signatures.js');
      process.exit(1);
    }
  } else {
    fs.writeFileSync(target, expected);
  }
}
