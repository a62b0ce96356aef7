"""Python peers of the st_cache benchmark, on the workload of benches/cache.rs:
1,000 entries, 32-byte keys, 64-byte values; hot-key get, set (overwrite,
cycling over the keys), and 2 threads doing 80 % get / 20 % set.

Peers:
- cachetools.TTLCache(maxsize, ttl), the usual Python choice (not thread-safe,
  so the 2-thread run guards it with a threading.RLock, as its docs advise);
- an RLock-guarded dict TTL cache with SimpleTuner's TTLCache design (entries
  hold value, expiry and creation time; time.time() expiry; periodic cleanup
  check on every call), written here from that design for the comparison.

Prints one JSON object per measurement: the median over 31 batches, in ns/op.
"""

import threading
import time

import cachetools
from benchutil import per_op, report

ENTRIES = 1000
BATCH_OPS = 20000
KEYS = ["provider:replicate:conf:%08d" % i for i in range(ENTRIES)]
VALUE = b"\x5a" * 64


class RLockDictTTLCache:
    """The seed's design: a dict of entries under one RLock."""

    class Entry:
        __slots__ = ("value", "expires_at", "created_at")

        def __init__(self, value, expires_at):
            self.value = value
            self.expires_at = expires_at
            self.created_at = time.time()

    def __init__(self, default_ttl=300.0, max_size=1000, cleanup_interval=60.0):
        self._ttl = default_ttl
        self._max = max_size
        self._interval = cleanup_interval
        self._data = {}
        self._lock = threading.RLock()
        self._last_cleanup = time.time()

    def _maybe_cleanup(self):
        now = time.time()
        if now - self._last_cleanup < self._interval:
            return
        self._last_cleanup = now
        for k in [k for k, e in self._data.items() if now >= e.expires_at]:
            del self._data[k]

    def get(self, key):
        with self._lock:
            self._maybe_cleanup()
            entry = self._data.get(key)
            if entry is None:
                return None
            if time.time() >= entry.expires_at:
                del self._data[key]
                return None
            return entry.value

    def set(self, key, value, ttl=None):
        with self._lock:
            self._maybe_cleanup()
            if len(self._data) >= self._max and key not in self._data:
                oldest = sorted(self._data, key=lambda k: self._data[k].created_at)
                for k in oldest[: max(1, len(oldest) // 10)]:
                    del self._data[k]
            self._data[key] = self.Entry(value, time.time() + (self._ttl if ttl is None else ttl))


def ops(seed, n):
    x = seed | 1
    mask = (1 << 64) - 1
    out = []
    for _ in range(n):
        x ^= (x << 13) & mask
        x ^= x >> 7
        x ^= (x << 17) & mask
        out.append((KEYS[x % ENTRIES], x % 5 == 0))
    return out


def bench(name, get, set_):
    for k in KEYS:
        set_(k, VALUE)
    hot = KEYS[ENTRIES // 2]

    def hot_get():
        for _ in range(BATCH_OPS):
            get(hot)

    def sets():
        for i in range(BATCH_OPS):
            set_(KEYS[i % ENTRIES], VALUE)

    seqs = [ops(0x9E3779B97F4A7C15, BATCH_OPS // 2), ops(0xD1B54A32D192ED03, BATCH_OPS // 2)]

    def worker(seq):
        for key, is_set in seq:
            if is_set:
                set_(key, VALUE)
            else:
                get(key)

    def mixed():
        threads = [threading.Thread(target=worker, args=(s,)) for s in seqs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    for workload, fn in (("hot_get", hot_get), ("set", sets), ("mixed_2t", mixed)):
        # fn runs BATCH_OPS operations; per_op(fn, 1) times one such batch.
        report(workload, name, per_op(fn, 1) / BATCH_OPS)


def main():
    tc = cachetools.TTLCache(maxsize=2 * ENTRIES, ttl=300)
    lock = threading.RLock()

    def tc_get(k):
        with lock:
            return tc.get(k)

    def tc_set(k, v):
        with lock:
            tc[k] = v

    bench("python_cachetools_ttlcache_rlock", tc_get, tc_set)
    seed = RLockDictTTLCache(default_ttl=300.0, max_size=2 * ENTRIES)
    bench("python_rlock_dict_seed_design", seed.get, seed.set)


if __name__ == "__main__":
    main()
