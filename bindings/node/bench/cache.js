'use strict';
// Node binding benchmark: hot-key cache get (32-byte key, 64-byte value),
// st-secrets' Cache (a copy into a Buffer per get, through koffi) against
// lru-cache with a TTL and a plain Map. Prints JSON lines: median of 31
// batches, ns/op.
const { Cache } = require('..');
const { LRUCache } = require('lru-cache');

const KEY = 'provider:replicate:conf:00000500';
const VALUE = Buffer.alloc(64, 0x5a);
const OPS = 200000;
const BATCHES = 31;

function measure(name, get) {
  let sink = 0;
  const perOp = [];
  for (let b = 0; b < BATCHES; b++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < OPS; i++) sink += get(KEY).length;
    perOp.push(Number(process.hrtime.bigint() - t0) / OPS);
  }
  perOp.sort((a, b) => a - b);
  console.log(JSON.stringify({ workload: 'hot_get', name, median_ns: +perOp[BATCHES >> 1].toFixed(1), sink: sink > 0 }));
}

const st = new Cache({ defaultTtl: 300, maxSize: 2000 });
const lru = new LRUCache({ max: 2000, ttl: 300000 });
const map = new Map();
for (let i = 0; i < 1000; i++) {
  const k = `provider:replicate:conf:${String(i).padStart(8, '0')}`;
  st.set(k, VALUE);
  lru.set(k, VALUE);
  map.set(k, VALUE);
}
measure('node_st_secrets_binding', (k) => st.get(k));
measure('node_lru_cache_ttl', (k) => lru.get(k));
measure('node_map', (k) => map.get(k));
