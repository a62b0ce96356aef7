"""Fills two fresh OpenBao dev servers for the Vault tests through the HTTP
API (as Vault's API documents it) and writes what the tests need as JSON.
Standard library only.

The plain server (http) gets:
  secret/ (KV v2, the dev default)
    simpletuner        HF_TOKEN, REPLICATE_API_TOKEN (written twice: version 2)
    team/other         HF_TOKEN
    deleted            version 1, soft-deleted
    destroyed          versions 1 and 2, version 2 destroyed
    counted            HF_TOKEN (only the request-counting test reads it)
    limited            HF_TOKEN, behind a rate-limit quota (1 per 2 s, blocked 2 s)
    blocked            HF_TOKEN, behind a rate-limit quota blocking for 60 s
  kv1/ (KV v1)         simpletuner: HF_TOKEN
  team-kv/ (KV v2)     ml/launcher: HF_TOKEN
  namespace ml/, with its own secret/ (KV v2): simpletuner: HF_TOKEN
  policy "reader": read on secret/data/simpletuner only; a token with it alone
  AppRole role "launcher" (policy reader, token TTL 3 s) and a secret ID
  AppRole role "agent" (policy reader, token TTL 2 s, at most 4 s) and a secret ID
  rate-limit response headers on (Retry-After)
  jwt/ (JWT auth): keys from IDENTITY_DIR/jwt-signing.pub (tests/vault/identity.py),
    role "trainer" (audience st-secrets, user claim sub, policy reader, tokens 30 s)
  slurm-jobs/ (JWT auth for job tokens, issuer https://slurm.test/st-secrets): role
    "job" (audience openbao, one entity per job, policy slurm-job: secret/users/USER/*
    and secret/accounts/ACCOUNT/* by the token's claims); users/{alice,bob}/train and
    accounts/{vision,nlp}/shared each hold an HF_TOKEN
  kubernetes/ (Kubernetes auth): its TokenReview at REVIEW_URL (the test responder),
    role "trainer" (service account ml/trainer, policy reader, tokens 30 s)
The TLS server (-dev-tls) gets secret/simpletuner, the policy reader, and cert/ (TLS
certificate auth) trusting IDENTITY_DIR/ca.pem, certificate role "node" (policy reader).

Usage: openbao_setup.py PLAIN_URL TLS_URL TLS_CA ROOT_TOKEN UNSEAL_KEY AUDIT_LOG OUT_JSON
                        IDENTITY_DIR REVIEW_URL
"""

import json
import ssl
import sys
import urllib.error
import urllib.request

PLAIN, TLS, CA, ROOT, UNSEAL, AUDIT, OUT, IDENTITY, REVIEW = sys.argv[1:10]
FIELDS = {"HF_TOKEN": "hf_bao_value", "REPLICATE_API_TOKEN": "r8_bao_value"}
TLS_CONTEXT = ssl.create_default_context(cafile=CA)


def call(method, path, body=None, token=ROOT, url=PLAIN, namespace=None, ok=(200, 204)):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + "/v1/" + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("X-Vault-Token", token)
    if namespace:
        req.add_header("X-Vault-Namespace", namespace)
    context = TLS_CONTEXT if url.startswith("https:") else None
    try:
        with urllib.request.urlopen(req, timeout=10, context=context) as r:
            status, text = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read()
    if status not in ok:
        raise SystemExit(f"{method} {path}: HTTP {status}: {text[:300]!r}")
    return json.loads(text) if text else None


def kv2_write(path, data, mount="secret", **kw):
    call("POST", f"{mount}/data/{path}", {"data": data}, **kw)


kv2_write("simpletuner", {"HF_TOKEN": "hf_first_version"})
kv2_write("simpletuner", FIELDS)
kv2_write("team/other", {"HF_TOKEN": "hf_other_path"})
kv2_write("deleted", {"HF_TOKEN": "hf_deleted"})
call("DELETE", "secret/data/deleted")
kv2_write("destroyed", {"HF_TOKEN": "hf_destroyed_1"})
kv2_write("destroyed", {"HF_TOKEN": "hf_destroyed_2"})
call("PUT", "secret/destroy/destroyed", {"versions": [2]})
kv2_write("counted", {"HF_TOKEN": "hf_counted"})
kv2_write("limited", {"HF_TOKEN": "hf_limited"})
kv2_write("blocked", {"HF_TOKEN": "hf_blocked"})

call("POST", "sys/mounts/kv1", {"type": "kv", "options": {"version": "1"}})
call("POST", "kv1/simpletuner", {"HF_TOKEN": "hf_kv1_value"})
call("POST", "sys/mounts/team-kv", {"type": "kv", "options": {"version": "2"}})
kv2_write("ml/launcher", {"HF_TOKEN": "hf_custom_mount"}, mount="team-kv")

call("POST", "sys/namespaces/ml", {})
call("POST", "sys/mounts/secret", {"type": "kv", "options": {"version": "2"}}, namespace="ml")
kv2_write("simpletuner", {"HF_TOKEN": "hf_namespace_value"}, namespace="ml")

reader = 'path "secret/data/simpletuner" { capabilities = ["read"] }'
call("PUT", "sys/policies/acl/reader", {"policy": reader})
least = call(
    "POST",
    "auth/token/create",
    {"policies": ["reader"], "no_default_policy": True, "ttl": "2h"},
)["auth"]["client_token"]

call("POST", "sys/auth/approle", {"type": "approle"})
call(
    "POST",
    "auth/approle/role/launcher",
    {"token_policies": ["reader"], "token_ttl": "3s", "token_max_ttl": "1h"},
)
role_id = call("GET", "auth/approle/role/launcher/role-id")["data"]["role_id"]
secret_id = call("POST", "auth/approle/role/launcher/secret-id", {})["data"]["secret_id"]
# For `bao agent`: tokens that cannot be renewed past 4 s, so the agent logs
# in again every few seconds and rewrites its token sink.
call(
    "POST",
    "auth/approle/role/agent",
    {"token_policies": ["reader"], "token_ttl": "2s", "token_max_ttl": "4s"},
)
agent_role_id = call("GET", "auth/approle/role/agent/role-id")["data"]["role_id"]
agent_secret_id = call("POST", "auth/approle/role/agent/secret-id", {})["data"]["secret_id"]

call("POST", "sys/quotas/config", {"enable_rate_limit_response_headers": True})
call(
    "POST",
    "sys/quotas/rate-limit/limited",
    {"path": "secret/data/limited", "rate": 1, "interval": "2s", "block_interval": "2s"},
)
call(
    "POST",
    "sys/quotas/rate-limit/blocked",
    {"path": "secret/data/blocked", "rate": 1, "interval": "60s", "block_interval": "60s"},
)

kv2_write("simpletuner", FIELDS, url=TLS)


def read(name):
    with open(f"{IDENTITY}/{name}") as f:
        return f.read()


# Logins from the workload's identity.
call("POST", "sys/auth/jwt", {"type": "jwt"})
call("POST", "auth/jwt/config", {"jwt_validation_pubkeys": [read("jwt-signing.pub")]})
call(
    "POST",
    "auth/jwt/role/trainer",
    {
        "role_type": "jwt",
        "bound_audiences": ["st-secrets"],
        "user_claim": "sub",
        "token_policies": ["reader"],
        "token_ttl": "30s",
        "token_max_ttl": "30s",
    },
)
# Identity tokens (`run --identity-token`): a key, a role whose tokens are for
# the audience sts.amazonaws.com and live 4 s, and the policy to ask for them,
# given to the jwt role's logins (root has no entity to sign for).
call("POST", "identity/oidc/key/st-test", {"allowed_client_ids": ["*"], "rotation_period": "24h"})
call(
    "POST",
    "identity/oidc/role/aws",
    {"key": "st-test", "client_id": "sts.amazonaws.com", "ttl": "4s"},
)
call(
    "PUT",
    "sys/policies/acl/identity",
    {"policy": 'path "identity/oidc/token/*" { capabilities = ["read"] }'},
)
call("POST", "auth/jwt/role/trainer", {
    "role_type": "jwt",
    "bound_audiences": ["st-secrets"],
    "user_claim": "sub",
    "token_policies": ["reader", "identity"],
    "token_ttl": "30s",
    "token_max_ttl": "30s",
})
# Jobs' own tokens (the job token st-secrets mints for a Slurm job, signed
# with IDENTITY_DIR/jwt-signing.key): one entity per job (user claim sub),
# the job's user and account as the alias's metadata, which the templated
# policy "slurm-job" reads: users/USER/* and accounts/ACCOUNT/* only.
call("POST", "sys/auth/slurm-jobs", {"type": "jwt"})
call("POST", "auth/slurm-jobs/config", {"jwt_validation_pubkeys": [read("jwt-signing.pub")],
                                        "bound_issuer": "https://slurm.test/st-secrets"})
jobs = call("GET", "sys/auth")["data"]["slurm-jobs/"]["accessor"]
meta = "identity.entity.aliases." + jobs + ".metadata"
job_policy = "".join(
    f'path "secret/{kind}/{scope}/{{{{{meta}.{claim}}}}}/*" {{ capabilities = ["read"] }}\n'
    for kind in ("data", "metadata") for scope, claim in (("users", "user"), ("accounts", "account"))
) + ('path "identity/entity/id/{{identity.entity.id}}" '  # the job's end disables its own entity
     '{ capabilities = ["read", "update"] allowed_parameters = { "disabled" = [true] } }\n')
call("PUT", "sys/policies/acl/slurm-job", {"policy": job_policy})
call("POST", "auth/slurm-jobs/role/job", {
    "role_type": "jwt",
    "bound_audiences": ["openbao"],
    "user_claim": "sub",
    "claim_mappings": {"user": "user", "account": "account", "partition": "partition", "cluster": "cluster"},
    "token_policies": ["slurm-job", "job-identity"],
    "token_ttl": "60s",
    "token_max_ttl": "60s",
})
# The same with logins mapped to the job's user (user_claim user): an entity
# the job's end must leave alone.
call("POST", "auth/slurm-jobs/role/by-user", {
    "role_type": "jwt",
    "bound_audiences": ["openbao"],
    "user_claim": "user",
    "claim_mappings": {"user": "user", "account": "account"},
    "token_policies": ["slurm-job"],
    "token_ttl": "60s",
    "token_max_ttl": "60s",
})
# A job's subject tokens for token exchanges: identity tokens of role
# "wandb" for the audience the W&B fake expects, with the job's user and
# account (its login's alias metadata) as claims a vendor matches exactly.
call("POST", "identity/oidc/role/wandb", {
    "key": "st-test", "client_id": "wandb-audience", "ttl": "120s",
    "template": '{"user": {{%s.user}}, "account": {{%s.account}}}' % (meta, meta),
})
call("PUT", "sys/policies/acl/job-identity",
     {"policy": 'path "identity/oidc/token/wandb" { capabilities = ["read"] }\n'
                'path "identity/oidc/token/aws" { capabilities = ["read"] }'})
for path, value in (("users/alice/train", "hf_alice"), ("users/bob/train", "hf_bob"),
                    ("accounts/vision/shared", "hf_vision"), ("accounts/nlp/shared", "hf_nlp")):
    kv2_write(path, {"HF_TOKEN": value})
call("POST", "sys/auth/kubernetes", {"type": "kubernetes"})
call(
    "POST",
    "auth/kubernetes/config",
    {
        "kubernetes_host": REVIEW,
        "kubernetes_ca_cert": read("ca.pem"),
        "disable_local_ca_jwt": True,
    },
)
call(
    "POST",
    "auth/kubernetes/role/trainer",
    {
        "bound_service_account_names": ["trainer"],
        "bound_service_account_namespaces": ["ml"],
        "token_policies": ["reader"],
        "token_ttl": "30s",
        "token_max_ttl": "30s",
    },
)
call("PUT", "sys/policies/acl/reader", {"policy": reader}, url=TLS)
call("POST", "sys/auth/cert", {"type": "cert"}, url=TLS)
call(
    "POST",
    "auth/cert/certs/node",
    {"certificate": read("ca.pem"), "token_policies": ["reader"], "token_ttl": "30s", "token_max_ttl": "30s"},
    url=TLS,
)

# What the tests rely on, checked once here so a changed server fails early.
assert call("GET", "secret/data/simpletuner")["data"]["data"] == FIELDS
assert call("GET", "secret/data/simpletuner", token=least)["data"]["data"] == FIELDS
call("GET", "auth/token/lookup-self", token=least, ok=(403,))
call("GET", "secret/data/deleted", ok=(404,))
call("GET", "nomount/data/simpletuner", ok=(404,))

with open(OUT, "w") as f:
    json.dump(
        {
            "url": PLAIN,
            "tls_url": TLS,
            "tls_ca": CA,
            "root_token": ROOT,
            "unseal_key": UNSEAL,
            "audit_log": AUDIT,
            "least_privilege_token": least,
            "role_id": role_id,
            "secret_id": secret_id,
            "agent_role_id": agent_role_id,
            "agent_secret_id": agent_secret_id,
            "fields": FIELDS,
            "identity_dir": IDENTITY,
            "review_url": REVIEW,
            # The TLS server's audit log, beside the plain one's.
            "tls_audit_log": AUDIT.replace("audit.log", "audit-tls.log"),
            "python": sys.executable,
        },
        f,
    )
print("OpenBao set up:", PLAIN, TLS)
