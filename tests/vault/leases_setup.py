"""Sets up OpenBao's database and pki engines on the plain dev server of
tests/vault/openbao_setup.py, against a PostgreSQL server on 127.0.0.1, for
the leases suite (cli/tests/leases.rs), and writes what the tests need as
JSON. Standard library only.

  database/ (postgresql-database-plugin, connection "pg" as the superuser)
    role "trainer": default_ttl 4 s, max_ttl 12 s (the generations test)
    role "job":     default_ttl 30 s, max_ttl 10 min (the endings: only a
                    revocation removes these within the tests' bound)
  pki/ (root CA "st-test"), role "node" (any name, 30 s, no lease) and
    role "node-leased" (the same with generate_lease)
  policy "leaser": the creds and issue paths, sys/leases/renew and revoke
  AppRole role "leaser" (policy leaser, tokens 60 s, at most 10 min)

Usage: leases_setup.py VAULT_SETUP_JSON PG_PORT PG_SUPERPASS OUT_JSON
"""

import json
import sys
import urllib.error
import urllib.request

SETUP, PG_PORT, PG_PASS, OUT = sys.argv[1:5]
with open(SETUP) as f:
    vault = json.load(f)
URL, ROOT = vault["url"], vault["root_token"]


def call(method, path, body=None, token=ROOT, ok=(200, 204)):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(URL + "/v1/" + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    req.add_header("X-Vault-Token", token)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, text = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read()
    if status not in ok:
        raise SystemExit(f"{method} {path}: HTTP {status}: {text[:300]!r}")
    return json.loads(text) if text else None


CREATE = (
    "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; "
    'GRANT CONNECT ON DATABASE postgres TO "{{name}}";'
)
call("POST", "sys/mounts/database", {"type": "database"})
call(
    "POST",
    "database/config/pg",
    {
        "plugin_name": "postgresql-database-plugin",
        "allowed_roles": ["trainer", "job"],
        "connection_url": "postgresql://{{username}}:{{password}}@127.0.0.1:%s/postgres?sslmode=disable"
        % PG_PORT,
        "username": "postgres",
        "password": PG_PASS,
    },
)
for role, ttl, max_ttl in (("trainer", "4s", "12s"), ("job", "30s", "10m")):
    call(
        "POST",
        f"database/roles/{role}",
        {"db_name": "pg", "creation_statements": [CREATE], "default_ttl": ttl, "max_ttl": max_ttl},
    )

call("POST", "sys/mounts/pki", {"type": "pki", "config": {"max_lease_ttl": "1h"}})
call("POST", "pki/root/generate/internal", {"common_name": "st-test", "ttl": "1h"})
for role, lease in (("node", False), ("node-leased", True)):
    call(
        "POST",
        f"pki/roles/{role}",
        {"allow_any_name": True, "max_ttl": "30s", "ttl": "30s", "generate_lease": lease},
    )

leaser = """
path "database/creds/*" { capabilities = ["read"] }
path "pki/issue/*" { capabilities = ["update"] }
path "sys/leases/renew" { capabilities = ["update"] }
path "sys/leases/revoke" { capabilities = ["update"] }
"""
call("PUT", "sys/policies/acl/leaser", {"policy": leaser})
call("POST", "sys/auth/leaser", {"type": "approle"})
call(
    "POST",
    "auth/leaser/role/leaser",
    {"token_policies": ["leaser"], "token_ttl": "60s", "token_max_ttl": "10m"},
)
role_id = call("GET", "auth/leaser/role/leaser/role-id")["data"]["role_id"]
secret_id = call("POST", "auth/leaser/role/leaser/secret-id", {})["data"]["secret_id"]

# Checked once here so a changed server fails early.
creds = call("GET", "database/creds/trainer")
assert creds["renewable"] and creds["lease_duration"] == 4, creds
call("PUT", "sys/leases/revoke", {"lease_id": creds["lease_id"]})

with open(OUT, "w") as f:
    json.dump(
        {
            "url": URL,
            "root_token": ROOT,
            "audit_log": vault["audit_log"],
            "pg_port": int(PG_PORT),
            "pg_superpass": PG_PASS,
            "role_id": role_id,
            "secret_id": secret_id,
            "approle_mount": "leaser",
            "python": vault["python"],
        },
        f,
    )
print("OpenBao leases set up:", URL)
