"""The Python peers of benches/remote.rs, on the same servers and secrets:
boto3 against moto and hvac against OpenBao (KV v2). For each: time to first value
(new client, read, parse), a read on a warm client, and the dict lookup a
Python launcher does once it holds the parsed secret (neither library caches).
Prints JSON lines.

Usage: bench_remote_peers.py MOTO_SETUP_JSON VAULT_SETUP_JSON
"""

import json
import statistics
import sys
import time


def emit(name, workload, samples):
    print(json.dumps({"name": name, "workload": workload, "median_ns": statistics.median(samples), "runs": len(samples)}))


def measure(name, label, new_client, read):
    first = []
    for _ in range(31):
        t = time.perf_counter_ns()
        read(new_client())["HF_TOKEN"]
        first.append(time.perf_counter_ns() - t)
    emit(name, f"{label}: time to first value (new client)", first)
    client = new_client()
    read(client)
    warm = []
    for _ in range(31):
        t = time.perf_counter_ns()
        read(client)["HF_TOKEN"]
        warm.append(time.perf_counter_ns() - t)
    emit(name, f"{label}: uncached read on a warm client", warm)
    cached = read(client)
    get, n, per_op = cached.get, 200_000, []
    for _ in range(21):
        t = time.perf_counter_ns()
        for _ in range(n):
            get("HF_TOKEN")
        per_op.append((time.perf_counter_ns() - t) / n)
    emit(name + " (dict.get)", f"{label}: cached get, provider alone", per_op)
    emit(name + " (dict.get)", f"{label}: cached get through the default chain", per_op)


moto = json.load(open(sys.argv[1]))
vault = json.load(open(sys.argv[2]))

import boto3  # noqa: E402
import hvac  # noqa: E402

measure(
    "boto3",
    "aws",
    lambda: boto3.client(
        "secretsmanager",
        region_name="us-east-1",
        endpoint_url=moto["url"],
        aws_access_key_id=moto["admin"]["id"],
        aws_secret_access_key=moto["admin"]["secret"],
    ),
    lambda c: json.loads(c.get_secret_value(SecretId="st-secrets/test")["SecretString"]),
)
measure(
    "hvac",
    "vault",
    lambda: hvac.Client(url=vault["url"], token=vault["root_token"]),
    lambda c: c.secrets.kv.v2.read_secret_version(
        path="simpletuner", mount_point="secret", raise_on_deleted_version=True
    )["data"]["data"],
)
