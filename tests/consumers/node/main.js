'use strict';
// Uses the installed st-secrets package: HF_TOKEN through the chain from the
// secrets file named by argv[2], and a cache. Prints the provider, never the value.
const st = require('st-secrets');

const m = new st.Manager({ file_path: process.argv[2], providers: ['env', 'file'] });
const got = m.getWithSource('HF_TOKEN');
if (!got || !got.value) throw new Error('HF_TOKEN not resolved');
if (m.get('hf-token') !== got.value) throw new Error('Manager.get disagrees');
const c = new st.Cache({ defaultTtl: 60 });
c.set('k', 'v');
if (c.get('k').toString() !== 'v') throw new Error('cache failed');
// A JavaScript function called back from the library (koffi's callback
// trampoline, on each architecture): computed once, then cached.
let computed = 0;
const first = c.getOrSet('computed', () => { computed += 1; return 'fresh'; });
const second = c.getOrSet('computed', () => { computed += 1; return 'other'; });
if (first.toString() !== 'fresh' || second.toString() !== 'fresh' || computed !== 1) {
  throw new Error('getOrSet callback failed');
}
console.log(`${st.version}: HF_TOKEN from ${got.provider}; cache and getOrSet callback ok`);
