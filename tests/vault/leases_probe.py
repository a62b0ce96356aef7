"""What the leases tests look at on the servers (cli/tests/leases.rs): prints
one JSON object with the live leases under PREFIX (OpenBao's
sys/leases/lookup, listed recursively), the `v-*` roles in PostgreSQL, and
the accessors of the tokens OpenBao holds from the leaser AppRole login.

Usage: leases_probe.py LEASES_SETUP_JSON PREFIX
"""

import json
import sys
import urllib.error
import urllib.request

import psycopg

with open(sys.argv[1]) as f:
    s = json.load(f)
PREFIX = sys.argv[2].strip("/")


def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(s["url"] + "/v1/" + path, data=data, method=method)
    req.add_header("X-Vault-Token", s["root_token"])
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, None


def leases(prefix):
    status, doc = call("LIST", f"sys/leases/lookup/{prefix}")
    if status != 200:
        return 0
    n = 0
    for key in doc["data"]["keys"]:
        n += leases(f"{prefix}/{key.rstrip('/')}") if key.endswith("/") else 1
    return n


tokens = []
status, doc = call("LIST", "auth/token/accessors")
for accessor in (doc or {}).get("data", {}).get("keys", []):
    st, info = call("POST", "auth/token/lookup-accessor", {"accessor": accessor})
    if st == 200 and info["data"].get("path", "").startswith(f"auth/{s['approle_mount']}/"):
        tokens.append(accessor)

with psycopg.connect(
    host="127.0.0.1", port=s["pg_port"], user="postgres", password=s["pg_superpass"], dbname="postgres"
) as conn:
    roles = conn.execute("select count(*) from pg_roles where rolname like 'v-%'").fetchone()[0]

print(json.dumps({"leases": leases(PREFIX), "roles": roles, "login_tokens": tokens}))
