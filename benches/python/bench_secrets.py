"""Python peers of the secrets benchmark: os.environ.get for an environment
key, and a dict lookup after json.load (SimpleTuner's file provider, once
loaded). Argument: the secrets file. Prints JSON lines like the C program."""

import json
import os
import sys
import time

BATCHES = 31
BATCH_OPS = 100000


def measure(workload, name, fn):
    per_op = []
    for _ in range(BATCHES):
        t0 = time.perf_counter_ns()
        for _ in range(BATCH_OPS):
            fn()
        per_op.append((time.perf_counter_ns() - t0) / BATCH_OPS)
    median = sorted(per_op)[BATCHES // 2]
    print(json.dumps({"workload": workload, "name": name, "median_ns": round(median, 2)}))


def main(path):
    env_get = os.environ.get
    measure("env_key", "python_os_environ_get", lambda: env_get("ST_BENCH_ENV_TOKEN"))
    with open(path, encoding="utf-8") as f:
        secrets = json.load(f)
    measure("file_key", "python_dict_after_json_load", lambda: secrets.get("HF_TOKEN"))


if __name__ == "__main__":
    main(sys.argv[1])
