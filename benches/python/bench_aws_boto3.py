"""boto3's side of the AWS benchmark, on the same moto server and secret as
benches/aws.rs: time to first value (new client + get_secret_value +
json.loads), get_secret_value on a warm client, and the dict lookup a Python
launcher does once it holds the parsed secret. Prints JSON lines.

Usage: bench_aws_boto3.py SETUP_JSON
"""

import json
import statistics
import sys
import time

import boto3

s = json.load(open(sys.argv[1]))
kw = dict(
    region_name="us-east-1",
    endpoint_url=s["url"],
    aws_access_key_id=s["admin"]["id"],
    aws_secret_access_key=s["admin"]["secret"],
)


def emit(workload, samples, name="boto3"):
    print(json.dumps({"name": name, "workload": workload, "median_ns": statistics.median(samples), "runs": len(samples)}))


first = []
for _ in range(31):
    t = time.perf_counter_ns()
    client = boto3.client("secretsmanager", **kw)
    value = json.loads(client.get_secret_value(SecretId="st-secrets/test")["SecretString"])["HF_TOKEN"]
    first.append(time.perf_counter_ns() - t)
emit("time to first value (new client, signed GetSecretValue)", first)

client = boto3.client("secretsmanager", **kw)
client.get_secret_value(SecretId="st-secrets/test")
warm = []
for _ in range(31):
    t = time.perf_counter_ns()
    json.loads(client.get_secret_value(SecretId="st-secrets/test")["SecretString"])["HF_TOKEN"]
    warm.append(time.perf_counter_ns() - t)
emit("GetSecretValue on a warm client", warm)

cached = json.loads(client.get_secret_value(SecretId="st-secrets/test")["SecretString"])
per_op = []
n = 200_000
for _ in range(21):
    get = cached.get
    t = time.perf_counter_ns()
    for _ in range(n):
        get("HF_TOKEN")
    per_op.append((time.perf_counter_ns() - t) / n)
emit("cached get, provider alone", per_op, name="boto3")
emit("cached get through the chain (env > file > aws)", per_op, name="boto3")
