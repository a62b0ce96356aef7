"""Python binding benchmark: hot-key get (32-byte key, 64-byte bytes value,
1,000 entries) through st_secrets.TTLCache, against cachetools.TTLCache and
SimpleTuner's RLock-dict design (benches/python/bench_cache.py). Prints JSON
lines: median of 31 batches, ns/op."""

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benches" / "python"))
sys.path.insert(0, str(ROOT / "bindings" / "python"))

import cachetools  # noqa: E402
from bench_cache import RLockDictTTLCache  # noqa: E402
from benchutil import per_op, report  # noqa: E402

import st_secrets  # noqa: E402

KEY = "provider:replicate:conf:00000500"
VALUE = b"\x5a" * 64


def main():
    ours = st_secrets.TTLCache(default_ttl=300.0, max_size=2000)
    tc = cachetools.TTLCache(maxsize=2000, ttl=300)
    seed = RLockDictTTLCache(default_ttl=300.0, max_size=2000)
    for i in range(1000):
        key = "provider:replicate:conf:%08d" % i
        ours.set(key, VALUE)
        tc[key] = VALUE
        seed.set(key, VALUE)
    report("hot_get", "python_st_secrets_binding", per_op(lambda: ours.get(KEY), 100000))
    report("hot_get", "python_cachetools_ttlcache", per_op(lambda: tc.get(KEY), 100000))
    report("hot_get", "python_rlock_dict_seed_design", per_op(lambda: seed.get(KEY), 100000))


if __name__ == "__main__":
    main()
