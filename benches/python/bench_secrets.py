"""Python peers of the secrets benchmark: os.environ.get for an environment
key, and a dict lookup after json.load (SimpleTuner's file provider, once
loaded). Argument: the secrets file. Prints JSON lines like the C program."""

import json
import os
import sys

from benchutil import per_op, report

BATCH_OPS = 100000


def measure(workload, name, fn):
    report(workload, name, per_op(fn, BATCH_OPS))


def main(path):
    env_get = os.environ.get
    measure("env_key", "python_os_environ_get", lambda: env_get("ST_BENCH_ENV_TOKEN"))
    with open(path, encoding="utf-8") as f:
        secrets = json.load(f)
    measure("file_key", "python_dict_after_json_load", lambda: secrets.get("HF_TOKEN"))


if __name__ == "__main__":
    main(sys.argv[1])
