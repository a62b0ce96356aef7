"""The Python package's benchmark, run against the installed wheel (never the
source tree), side by side with what SimpleTuner users have today:

- hot_get: TTLCache.get of a hot key (32-byte key, 64-byte value, 1,000
  entries) against SimpleTuner's design (a dict of entries under an RLock,
  benches/python/bench_cache.py) and cachetools.TTLCache behind a lock;
- cached_hit: a call of a @cached function that hits, against SimpleTuner's
  decorator design (same key format, over the RLock-dict cache);
- env_key: SecretsManager.get of a key set in the environment, against
  SimpleTuner's manager design (a dict of answers in front of the providers,
  whose first provider is os.environ.get);
- file_key: SecretsManager.get of a key of the secrets file, against a bare
  dict.get of the loaded file.

Prints JSON lines (median of 31 batches, ns per call; benches/report_pairs.py
makes the table). Argument: a scratch directory for the secrets file.
"""

import functools
import json
import os
import sys
import threading

scratch = sys.argv[1]

import cachetools  # noqa: E402
from bench_cache import RLockDictTTLCache  # noqa: E402
from benchutil import per_op, report  # noqa: E402

assert "site-packages" in __import__("st_secrets").__file__, "benchmark the installed wheel"
from st_secrets.cache import TTLCache, cached  # noqa: E402
from st_secrets.secrets import SecretsManager  # noqa: E402

OPS = 100000
KEY = "provider:replicate:conf:00000500"
VALUE = b"\x5a" * 64


def seed_cached(ttl=60.0, key_prefix=""):
    """SimpleTuner's @cached design: key built the same way, a TTLCache of its own."""
    cache = RLockDictTTLCache(default_ttl=ttl, max_size=1000)

    def decorator(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            parts = [key_prefix, func.__name__] + [str(a) for a in args]
            parts += [f"{k}={v}" for k, v in sorted(kwargs.items())]
            key = ":".join(parts)
            hit = cache.get(key)
            if hit is not None:
                return hit
            result = func(*args, **kwargs)
            cache.set(key, result)
            return result

        return wrapper

    return decorator


class SeedManager:
    """SimpleTuner's SecretsManager design for a get: its dict of answers,
    then the providers (environment first)."""

    def __init__(self, providers):
        self._providers = providers
        self._cache = {}

    def get(self, key, default=None):
        if key in self._cache:
            value = self._cache[key]
            return value if value is not None else default
        for provider in self._providers:
            value = provider(key)
            if value is not None:
                self._cache[key] = value
                return value
        self._cache[key] = None
        return default


def main():
    ours = TTLCache(default_ttl=300.0, max_size=2000)
    tc = cachetools.TTLCache(maxsize=2000, ttl=300)
    tc_lock = threading.Lock()
    seed = RLockDictTTLCache(default_ttl=300.0, max_size=2000)
    for i in range(1000):
        key = "provider:replicate:conf:%08d" % i
        ours.set(key, VALUE)
        tc[key] = VALUE
        seed.set(key, VALUE)

    def tc_get():
        with tc_lock:
            return tc.get(KEY)

    report("hot_get", "st_secrets", per_op(lambda: ours.get(KEY), OPS))
    report("hot_get", "simpletuner_design", per_op(lambda: seed.get(KEY), OPS))
    report("hot_get", "cachetools_with_lock", per_op(tc_get, OPS))

    @cached(ttl=300, key_prefix="bench")
    def ours_fn(user_id):
        return {"id": user_id}

    @seed_cached(ttl=300, key_prefix="bench")
    def seed_fn(user_id):
        return {"id": user_id}

    ours_fn(42)
    seed_fn(42)
    report("cached_hit", "st_secrets", per_op(lambda: ours_fn(42), OPS))
    report("cached_hit", "simpletuner_design", per_op(lambda: seed_fn(42), OPS))

    path = os.path.join(scratch, "secrets.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"HF_TOKEN": "hf_" + "x" * 37}, f)
    os.chmod(path, 0o600)
    os.environ["ST_BENCH_ENV_TOKEN"] = "r8_" + "y" * 37
    SecretsManager.reset = classmethod(lambda cls: setattr(cls, "_instance", None))  # outside pytest
    manager = SecretsManager(config={"file_path": path})
    assert manager.get("ST_BENCH_ENV_TOKEN").startswith("r8_") and manager.get("HF_TOKEN").startswith("hf_")
    env_get = os.environ.get
    seed_manager = SeedManager([env_get])
    seed_manager.get("ST_BENCH_ENV_TOKEN")
    report("env_key", "st_secrets", per_op(lambda: manager.get("ST_BENCH_ENV_TOKEN"), OPS))
    report("env_key", "simpletuner_design", per_op(lambda: seed_manager.get("ST_BENCH_ENV_TOKEN"), OPS))
    with open(path, encoding="utf-8") as f:
        loaded = json.load(f)
    report("file_key", "st_secrets", per_op(lambda: manager.get("HF_TOKEN"), OPS))
    report("file_key", "bare_dict_get", per_op(lambda: loaded.get("HF_TOKEN"), OPS))


if __name__ == "__main__":
    main()
