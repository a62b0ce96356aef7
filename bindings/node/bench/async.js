'use strict';
// The cost of the Promise forms: a cached secrets get (the environment
// provider) synchronously, awaited one at a time, and 64 in flight at once,
// against the event loop's other threadpool round trip, fs.promises.access
// on one file (libuv's pool, as koffi's asynchronous calls). Prints JSON
// lines: median of 15 batches, ns per get.
const fs = require('node:fs');
const { Manager } = require('..');

process.env.ST_BENCH_ASYNC_KEY = 'x'.repeat(64);
const m = new Manager({ providers: ['env'] });
const KEY = 'ST_BENCH_ASYNC_KEY';
const OPS = 20000;
const BATCHES = 15;

async function measure(name, batch) {
  const perOp = [];
  for (let b = 0; b < BATCHES; b++) {
    const t0 = process.hrtime.bigint();
    await batch();
    perOp.push(Number(process.hrtime.bigint() - t0) / OPS);
  }
  perOp.sort((a, b) => a - b);
  console.log(JSON.stringify({ workload: 'secrets_get', name, median_ns: +perOp[BATCHES >> 1].toFixed(1) }));
}

async function inFlight(call, width) {
  let next = 0;
  const lane = async () => {
    while (next < OPS) {
      next += 1;
      await call();
    }
  };
  await Promise.all(Array.from({ length: width }, lane));
}

(async () => {
  await measure('node_get_sync', async () => { for (let i = 0; i < OPS; i++) m.get(KEY); });
  await measure('node_getAsync_awaited_one_at_a_time', async () => { for (let i = 0; i < OPS; i++) await m.getAsync(KEY); });
  await measure('node_getAsync_64_in_flight', () => inFlight(() => m.getAsync(KEY), 64));
  await measure('node_fs_promises_access_awaited', async () => { for (let i = 0; i < OPS; i++) await fs.promises.access(__filename); });
  await measure('node_fs_promises_access_64_in_flight', () => inFlight(() => fs.promises.access(__filename), 64));
})();
