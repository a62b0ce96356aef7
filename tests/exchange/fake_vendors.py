"""Four vendors' token exchanges, faked on 127.0.0.1 where no package serves
them, from their published references and their SDKs' wire: Hugging Face
(RFC 8693 as JSON to /oauth/token, `resource`), OpenAI (RFC 8693 as JSON with
`identity_provider_id` and `service_account_id`), Anthropic (RFC 7523 as JSON
to /v1/oauth/token with its beta header, each JWT once: `checkJTI`) and W&B
(RFC 7523 as a form to /oidc/token), and CoreWeave AI Object Storage (the
OIDC token as JSON to temporary-credentials/oidc, answered with an S3 key
pair); each with one API call that checks the bearer's expiry and scope
(the Hub's whoami, OpenAI's and Anthropic's model lists, W&B's GraphQL
viewer, S3's ListBuckets with its SigV4 signature checked by botocore).

The subject token is verified as the vendors do: its signature with the
issuer's keys (the JWKS its discovery document names, fetched over http from
the issuer's URL), its `iss`, its `aud` (each vendor's), its `exp` and
`nbf`, and the claims the registration matches exactly. The vendors' own
SDKs are pointed at it in tests/interop/test_exchanges.py, which is what
shows it faithful.

    fake = FakeVendors(issuer_url, claims={"user": "alice"})  # fake.url, fake.stop()
    fake.base("hf") -> the Hub's URL; "openai", "anthropic", "wandb" likewise

Run alone (for the Rust tests): `python fake_vendors.py ISSUER CLAIMS_JSON
LIFETIMES_JSON` prints its URL and serves until its standard input closes;
`GET /_counts` gives the counts by vendor.
"""

from __future__ import annotations

import json
import secrets as pysecrets
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
FEDERATION_BETA = "oidc-federation-2026-04-01"
OAUTH_BETA = "oauth-2025-04-20"
VENDORS = ("hf", "openai", "anthropic", "wandb", "coreweave")
KEYS = {"hf": "HF_TOKEN", "openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_AUTH_TOKEN", "wandb": "WANDB_API_KEY"}
ORG = "00000000-0000-4000-8000-000000000001"  # Anthropic's organization the fake registers


def flags(headers) -> list[str]:
    """The comma-separated flags of an `anthropic-beta` header."""
    return [f.strip() for f in (headers.get("anthropic-beta") or "").split(",")]


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024


class Refused(Exception):
    def __init__(self, status: int, error: str, description: str):
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


class FakeVendors:
    def __init__(self, issuer: str, claims: dict | None = None, lifetimes: dict | None = None,
                 keys: dict | None = None):
        self.issuer = issuer.rstrip("/")
        self.claims = claims or {}  # matched exactly, as a vendor's registration does
        self.lifetimes = {"hf": 3600, "openai": 3600, "anthropic": 600, "wandb": 3600, "coreweave": 3600,
                          **(lifetimes or {})}
        self.lock = threading.Lock()
        self.tokens: dict[str, tuple[str, float, str]] = {}  # token -> (vendor, expiry, scope)
        self.jtis: set[str] = set()
        self.granted: list[tuple[str, float, object]] = []  # (vendor, when, the subject's `node` claim)
        self.keys: dict | None = keys  # a JWKS registered inline (OpenAI's and Anthropic's option)
        self.counts = {v: {"exchange": 0, "refused": 0, "api": 0, "expired": 0, "jti_reused": 0}
                       for v in VENDORS}
        self.server = Server(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def base(self, vendor: str) -> str:
        return f"{self.url}/{vendor}"

    def audience(self, vendor: str) -> str:
        """The `aud` each registration expects: the Hub's own URL for Hugging
        Face (its SDK asks for the endpoint), a name for the others."""
        return self.base("hf") if vendor == "hf" else f"{vendor}-audience"

    def issuer_keys(self) -> dict:
        """The issuer's JWKS, through its discovery document (fetched once)."""
        if self.keys is None:
            with urllib.request.urlopen(f"{self.issuer}/.well-known/openid-configuration", timeout=5) as r:
                jwks_uri = json.load(r)["jwks_uri"]
            with urllib.request.urlopen(jwks_uri, timeout=5) as r:
                self.keys = json.load(r)
        return self.keys

    def verify(self, vendor: str, token: str) -> dict:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            jwk = next(k for k in self.issuer_keys()["keys"] if kid is None or k.get("kid") == kid)
            key = jwt.PyJWK(jwk).key
            claims = jwt.decode(token, key, algorithms=["RS256", "ES256"], audience=self.audience(vendor),
                                issuer=self.issuer, options={"require": ["exp", "iat"]}, leeway=5)
        except (jwt.PyJWTError, StopIteration, ValueError, KeyError) as e:
            raise Refused(401, "invalid_grant", f"subject token refused: {type(e).__name__}") from None
        for name, want in self.claims.items():
            if claims.get(name) != want:
                raise Refused(401, "invalid_grant", f"claim {name} does not match the registration")
        if vendor == "anthropic":  # checkJTI
            jti = claims.get("jti")
            with self.lock:
                if not jti or jti in self.jtis:
                    self.counts[vendor]["jti_reused"] += 1
                    raise Refused(401, "invalid_grant", "jti missing or already used")
                self.jtis.add(jti)
        return claims

    def grant(self, vendor: str, scope: str, claims: dict | None = None) -> dict:
        prefix = {"hf": "hf_jwt_", "openai": "oai_wif_", "anthropic": "sk-ant-oat01-", "wandb": "wb_at_"}[vendor]
        token = prefix + pysecrets.token_urlsafe(24)
        life = self.lifetimes[vendor]
        with self.lock:
            self.tokens[token] = (vendor, time.time() + life, scope)
            self.counts[vendor]["exchange"] += 1
            self.granted.append((vendor, time.time(), (claims or {}).get("node")))
        return {"access_token": token, "token_type": "bearer", "expires_in": life,
                "issued_token_type": "urn:ietf:params:oauth:token-type:access_token"}

    def exchanges(self, subject_files: dict) -> dict:
        """The `exchanges` configuration of the four token vendors at this
        fake (by their keys, KEYS), each reading its subject token from
        `subject_files[vendor]`."""
        exchanges = {
            "HF_TOKEN": {"profile": "huggingface", "url": self.base("hf") + "/oauth/token", "resource": "org/model"},
            "OPENAI_API_KEY": {"profile": "openai", "url": self.base("openai") + "/oauth/token",
                               "audience": self.audience("openai"), "identity_provider_id": "idp_test",
                               "service_account_id": "sa_test"},
            "ANTHROPIC_AUTH_TOKEN": {"profile": "anthropic", "url": self.base("anthropic") + "/v1/oauth/token",
                                     "audience": self.audience("anthropic"), "federation_rule_id": "fdrl_test",
                                     "organization_id": ORG, "service_account_id": "svac_test"},
            "WANDB_API_KEY": {"profile": "wandb", "url": self.base("wandb") + "/oidc/token",
                              "audience": self.audience("wandb")},
        }
        for vendor, key in KEYS.items():
            exchanges[key]["subject_token_file"] = str(subject_files[vendor])
        return exchanges

    def key_pair(self, claims: dict, seconds) -> dict:
        """CoreWeave's answer: an S3 key pair living `durationSeconds` (at
        most the fake's lifetime), its expiry in RFC 3339."""
        if not isinstance(seconds, int) or not 0 < seconds <= 43200:
            raise Refused(400, "invalid_request", "durationSeconds must be 1 to 43200")
        life = min(seconds, self.lifetimes["coreweave"])
        key_id = "CW" + pysecrets.token_hex(8).upper()
        secret = "cwo" + pysecrets.token_urlsafe(30)
        with self.lock:
            self.tokens[key_id] = ("coreweave", time.time() + life, secret)
            self.counts["coreweave"]["exchange"] += 1
            self.granted.append(("coreweave", time.time(), claims.get("node")))
        expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + life))
        return {"accessKeyId": key_id, "secretKey": secret, "expiry": expiry, "attributes": {},
                "principalName": f"role/{claims['iss']}:{claims['sub']}"}

    def s3_caller(self, method: str, path: str, headers) -> bool:
        """Whether an S3 request is signed (SigV4, botocore's own code
        recomputing the signature) with a key pair the fake issued and that
        has not expired (counted)."""
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        try:
            auth = headers["authorization"]
            scope = auth.split("Credential=", 1)[1].split(",", 1)[0]
            key_id, _, region, service, _ = scope.split("/")
            signed = auth.split("SignedHeaders=", 1)[1].split(",", 1)[0].split(";")
            check = AWSRequest(method=method, url=f"{self.url}{path}", data=b"",
                               headers={k: headers[k] for k in signed})
        except (ValueError, KeyError, TypeError, IndexError, AttributeError):
            return False
        with self.lock:
            self.counts["coreweave"]["api"] += 1
            held = self.tokens.get(key_id)
            if held is None or held[0] != "coreweave":
                return False
            if held[1] <= time.time():
                self.counts["coreweave"]["expired"] += 1
                return False
        signer = S3SigV4Auth(Credentials(key_id, held[2]), service, region)
        check.context["timestamp"] = headers.get("x-amz-date", "")
        expected = signer.signature(signer.string_to_sign(check, signer.canonical_request(check)), check)
        return auth.endswith("Signature=" + expected)

    def exchange(self, vendor: str, headers, body: dict) -> dict:
        def need(name, want=None):
            got = body.get(name)
            if not got or (want is not None and got != want):
                raise Refused(400, "invalid_request", f"{name} missing or wrong")
            return got
        if vendor == "hf":
            need("grant_type", TOKEN_EXCHANGE), need("subject_token_type", ID_TOKEN)
            return self.grant(vendor, need("resource"), self.verify(vendor, need("subject_token")))
        if vendor == "openai":
            need("grant_type", TOKEN_EXCHANGE)
            if body.get("subject_token_type") not in (JWT_TYPE, ID_TOKEN):
                raise Refused(400, "invalid_request", "subject_token_type")
            need("identity_provider_id", "idp_test"), need("service_account_id", "sa_test")
            return self.grant(vendor, "project:proj_test", self.verify(vendor, need("subject_token")))
        if vendor == "anthropic":
            if FEDERATION_BETA not in flags(headers):
                raise Refused(400, "invalid_request", "the federation beta flag is missing")
            need("grant_type", JWT_BEARER), need("federation_rule_id", "fdrl_test")
            need("organization_id", ORG)
            need("service_account_id", "svac_test")
            claims = self.verify(vendor, need("assertion"))
            return self.grant(vendor, body.get("workspace_id") or "wrkspc_default", claims)
        if vendor == "coreweave":
            need("orgId", "org_test")
            return self.key_pair(self.verify(vendor, need("oidcToken")), body.get("durationSeconds"))
        need("grant_type", JWT_BEARER)
        return self.grant(vendor, "entity:trainers", self.verify(vendor, need("assertion")))

    def bearer(self, vendor: str, authorization: str | None) -> str | None:
        """The scope of a valid bearer of `vendor`, else None (counted)."""
        token = (authorization or "").removeprefix("Bearer ").strip()
        with self.lock:
            self.counts[vendor]["api"] += 1
            held = self.tokens.get(token)
            if held is None or held[0] != vendor:
                return None
            if held[1] <= time.time():
                self.counts[vendor]["expired"] += 1
                return None
            return held[2]

    def api(self, vendor: str, method: str, path: str, headers) -> tuple[int, dict]:
        auth = headers.get("authorization")
        if vendor == "anthropic" and OAUTH_BETA not in flags(headers):
            auth = None  # an OAuth access token is taken with the OAuth API's beta flag only
        scope = self.bearer(vendor, auth)
        if scope is None:
            return 401, {"error": {"type": "authentication_error", "message": "invalid or expired token"}}
        if vendor == "hf" and path == "/api/whoami-v2":
            return 200, {"type": "user", "name": "alice", "fullname": "Alice", "orgs": [],
                         "auth": {"type": "access_token",
                                  "accessToken": {"displayName": "exchanged", "role": "fineGrained",
                                                  "fineGrained": {"scoped": [{"entity": {"name": scope},
                                                                              "permissions": ["repo.content.read"]}]}}}}
        if vendor == "openai" and path == "/v1/models":
            return 200, {"object": "list", "data": [{"id": "gpt-test", "object": "model", "created": 0,
                                                      "owned_by": scope}]}
        if vendor == "anthropic" and path == "/v1/models":
            return 200, {"data": [{"id": "claude-test", "type": "model", "display_name": scope,
                                   "created_at": "2026-01-01T00:00:00Z"}],
                         "has_more": False, "first_id": "claude-test", "last_id": "claude-test"}
        if vendor == "wandb" and path == "/graphql":
            return 200, {"data": {"viewer": {"id": "VXNlcjox", "entity": "trainers", "username": "alice",
                                             "name": "Alice", "admin": False, "deletedAt": None, "apiKeys": {"edges": []},
                                             "email": "alice@example.org", "teams": {"edges": []},
                                             "flags": "{}"}}}
        return 404, {"error": {"message": f"no {method} {path}"}}

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def reply(self, status, doc):
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def route(self, method):
                vendor, _, rest = self.path.lstrip("/").partition("/")
                path = "/" + rest.split("?")[0]
                n = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(n).decode() if n else ""
                if method == "GET" and self.path == "/_counts":  # the tests' view, not a vendor's
                    with fake.lock:
                        return self.reply(200, fake.counts)
                if vendor not in VENDORS:
                    return self.reply(404, {"error": "no such vendor"})
                token_path = {"hf": "/oauth/token", "openai": "/oauth/token", "anthropic": "/v1/oauth/token",
                              "wandb": "/oidc/token",
                              "coreweave": "/v1/cwobject/temporary-credentials/oidc"}[vendor]
                if method == "POST" and path == token_path:
                    ctype = self.headers.get("content-type", "")
                    try:
                        if vendor == "wandb":
                            if "x-www-form-urlencoded" not in ctype:
                                raise Refused(400, "invalid_request", "a form is expected")
                            body = dict(urllib.parse.parse_qsl(raw))
                        else:
                            if "json" not in ctype:
                                raise Refused(400, "invalid_request", "JSON is expected")
                            body = json.loads(raw or "{}")
                        return self.reply(200, fake.exchange(vendor, self.headers, body))
                    except Refused as e:
                        with fake.lock:
                            fake.counts[vendor]["refused"] += 1
                        return self.reply(e.status, {"error": e.error, "error_description": e.description})
                if vendor == "coreweave":  # S3's ListBuckets, path-style at the vendor's base
                    if not fake.s3_caller(method, self.path.split("?")[0], self.headers):
                        return self.xml(403, b"<Error><Code>InvalidAccessKeyId</Code></Error>")
                    return self.xml(200, b'<?xml version="1.0" encoding="UTF-8"?><ListAllMyBucketsResult>'
                                         b'<Owner><ID>o</ID></Owner><Buckets><Bucket><Name>checkpoints</Name>'
                                         b'<CreationDate>2026-01-01T00:00:00.000Z</CreationDate></Bucket>'
                                         b'</Buckets></ListAllMyBucketsResult>')
                status, doc = fake.api(vendor, method, path, self.headers)
                self.reply(status, doc)

            def xml(self, status, data):
                self.send_response(status)
                self.send_header("content-type", "application/xml")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                self.route("POST")

            def do_GET(self):
                self.route("GET")

        return Handler


class Issuer:
    """A test OIDC issuer on 127.0.0.1 (a Kubernetes cluster's or a Slurm
    site's role): discovery and JWKS served, tokens signed with its RSA key."""

    def __init__(self):
        from cryptography.hazmat.primitives.asymmetric import rsa
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        public.update({"kid": "test-1", "use": "sig", "alg": "RS256"})
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                docs = {"/.well-known/openid-configuration": {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/jwks",
                                                              "id_token_signing_alg_values_supported": ["RS256"]},
                        "/jwks": {"keys": [public]}}
                doc = docs.get(self.path)
                data = json.dumps(doc or {}).encode()
                self.send_response(200 if doc else 404)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def mint(self, aud: str, life: int = 900, **claims) -> str:
        now = int(time.time())
        body = {"iss": self.url, "sub": "job/test/1/0", "aud": aud, "iat": now, "nbf": now, "exp": now + life,
                "jti": pysecrets.token_hex(12), **claims}
        return jwt.encode(body, self.key, algorithm="RS256", headers={"kid": "test-1"})

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


if __name__ == "__main__":
    import sys
    served = FakeVendors(sys.argv[1], claims=json.loads(sys.argv[2]), lifetimes=json.loads(sys.argv[3]))
    print(served.url, flush=True)
    sys.stdin.read()
    served.stop()
