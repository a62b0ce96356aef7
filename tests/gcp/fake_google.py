"""Google's front door, faked on 127.0.0.1 where no package serves it: the
OAuth 2.0 token endpoint (a service account's RS256 assertion checked with
its public key, a user's refresh token), Google's STS token exchange (a
JWT checked with its issuer's key; an AWS workload's signed GetCallerIdentity
request, its signature checked by botocore) and IAM's
generateAccessToken (workload identity federation), and the metadata
server (its access tokens, and its ID tokens for an audience, signed with
a key the fake publishes as Google's: discovery and JWKS); in front of drongo's Secret Manager, a gate that lets through only
requests with a token it issued and has not expired, and that answers
`latest` as Google documents it (the most recently created version, an
error when that one is disabled) where drongo skips disabled versions.

Google's own libraries are pointed at it in tests/interop/test_gcp.py
(google-auth's service account, user, identity pool, AWS and Compute Engine
credentials, the metadata server's ID tokens and their verification
against the published keys; google-cloud-secret-manager's REST client),
which is what shows it faithful.

    fake = FakeGoogle(drongo_url)      # starts it; fake.url, fake.stop()
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
STS_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
AWS_TOKEN_TYPE = "urn:ietf:params:aws:token-type:aws4_request"


class Server(ThreadingHTTPServer):
    """Many ranks connect at once: a deep listen queue."""
    daemon_threads = True
    request_queue_size = 1024


class FakeGoogle:
    def __init__(self, drongo_url: str, token_ttl: int = 3599, port: int = 0):
        self.drongo = drongo_url.rstrip("/")
        self.token_ttl = token_ttl
        self.lock = threading.Lock()
        self.tokens: dict[str, float] = {}  # token -> expiry (time.time())
        self.service_accounts: dict[str, object] = {}  # email -> public key
        self.users: dict[str, tuple[str, str]] = {}  # client_id -> (secret, refresh token)
        self.federation: dict[str, object] = {}  # audience -> the subject issuer's public key
        self.aws_audiences: set[str] = set()  # audiences of AWS workloads
        self.aws_keys: dict[str, str] = {}  # AWS access key id -> its secret (what AWS knows)
        self.counts = {"jwt": 0, "refresh": 0, "sts": 0, "sts_aws": 0, "impersonate": 0, "metadata": 0, "identity": 0,
                       "secret": 0, "expired": 0, "refused": 0}
        self.metadata_unready_until = 0.0  # 503 until then
        self.project = "metadata-project"
        from cryptography.hazmat.primitives.asymmetric import rsa
        self.signing = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # the ID tokens' key
        self.server = Server(("127.0.0.1", port), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def issue(self, ttl: int | None = None) -> tuple[str, int]:
        ttl = self.token_ttl if ttl is None else ttl
        with self.lock:
            token = f"ya29.fake-{len(self.tokens) + 1}-{int(time.time() * 1000)}"
            self.tokens[token] = time.time() + ttl
        return token, ttl

    def id_token(self, audience: str) -> str:
        """An ID token of the instance's service account for `audience`, as
        the metadata server's identity endpoint gives it (format=full)."""
        now = int(time.time())
        email = f"default@{self.project}.iam.gserviceaccount.com"
        claims = {"iss": self.url, "aud": audience, "azp": "1234567890", "sub": "1234567890", "email": email,
                  "email_verified": True, "iat": now, "exp": now + 3600,
                  "google": {"compute_engine": {"project_id": self.project, "zone": "us-east1-b",
                                                "instance_id": "1", "instance_name": "trainer-0"}}}
        return jwt.encode(claims, self.signing, algorithm="RS256", headers={"kid": "google-1"})

    def jwks(self) -> dict:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.signing.public_key()))
        public.update({"kid": "google-1", "use": "sig", "alg": "RS256"})
        return {"keys": [public]}

    def valid(self, authorization: str | None) -> bool:
        """Counts a request with an expired or unknown token. A service
        account's self-signed JWT (what Google's client libraries send for
        a key, instead of a token) is checked with its key, as Google does."""
        token = (authorization or "").removeprefix("Bearer ")
        if token.count(".") == 2:
            try:
                claims = jwt.decode(token, options={"verify_signature": False})
                jwt.decode(token, self.service_accounts[claims["iss"]], algorithms=["RS256"],
                           options={"verify_aud": False, "require": ["exp", "iat"]})
                return True
            except Exception:
                with self.lock:
                    self.counts["refused"] += 1
                return False
        with self.lock:
            expiry = self.tokens.get(token)
            if expiry is None:
                self.counts["refused"] += 1
                return False
            if expiry <= time.time():
                self.counts["expired"] += 1
                return False
        return True

    def aws_caller(self, audience: str, subject_token: str) -> bool:
        """An AWS subject token as Google's STS takes it: the serialized,
        signed GetCallerIdentity request, which Google's STS sends to AWS.
        Here AWS's check is botocore's (AWS's own SigV4 code) recomputing
        the signature with the secret of the key it names: moto checks a
        POST whose parameters are in its query string against a body it
        rebuilds, and refuses every such request, Google's library's too."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        try:
            request = json.loads(urllib.parse.unquote(subject_token))
            headers = {h["key"].lower(): h["value"] for h in request["headers"]}
            auth = headers["authorization"]
            scope = auth.split("Credential=", 1)[1].split(",", 1)[0]
            key_id, _, region, service, _ = scope.split("/")
            signed = auth.split("SignedHeaders=", 1)[1].split(",", 1)[0].split(";")
            check = AWSRequest(method="POST", url=request["url"], data=b"", headers={k: headers[k] for k in signed})
        except (ValueError, KeyError, TypeError, IndexError):
            return False
        secret = self.aws_keys.get(key_id)
        if secret is None or request.get("method") != "POST" or service != "sts" or \
                headers.get("x-goog-cloud-target-resource") != audience or \
                "Action=GetCallerIdentity" not in urllib.parse.urlsplit(request["url"]).query:
            return False
        signer = SigV4Auth(Credentials(key_id, secret, headers.get("x-amz-security-token")), service, region)
        check.context["timestamp"] = headers.get("x-amz-date", "")
        expected = signer.signature(signer.string_to_sign(check, signer.canonical_request(check)), check)
        return auth.endswith("Signature=" + expected)

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def reply(self, status, body, headers=(), ctype="application/json"):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_GET(self):
                path = urllib.parse.urlsplit(self.path).path
                if path.startswith("/computeMetadata/v1/"):
                    return self.metadata(path)
                if path == "/.well-known/openid-configuration":
                    return self.reply(200, {"issuer": fake.url, "jwks_uri": f"{fake.url}/oauth2/v3/certs",
                                            "id_token_signing_alg_values_supported": ["RS256"]})
                if path == "/oauth2/v3/certs":
                    return self.reply(200, fake.jwks())
                if path.startswith("/v1/projects/"):
                    return self.secret("GET", b"")
                self.reply(404, {"error": {"code": 404, "status": "NOT_FOUND"}})

            def do_POST(self):
                path = urllib.parse.urlsplit(self.path).path
                body = self.body()
                if path in ("/token", "/v1/token"):
                    return self.token(urllib.parse.parse_qs(body.decode()))
                if path.endswith(":generateAccessToken"):
                    return self.impersonate(path, json.loads(body or b"{}"))
                if path.startswith("/v1/projects/"):
                    return self.secret("POST", body)
                self.reply(404, {"error": {"code": 404, "status": "NOT_FOUND"}})

            def oauth_error(self, code):
                self.reply(400, {"error": code, "error_description": "refused by the fake"})

            def token(self, form):
                one = {k: v[0] for k, v in form.items()}
                grant = one.get("grant_type")
                if grant == JWT_GRANT:
                    try:
                        head = jwt.get_unverified_header(one["assertion"])
                        claims = jwt.decode(one["assertion"], options={"verify_signature": False})
                        key = fake.service_accounts[claims["iss"]]
                        # Google's token endpoint, whatever token_uri says.
                        jwt.decode(one["assertion"], key, algorithms=["RS256"],
                                   audience="https://oauth2.googleapis.com/token")
                    except Exception:
                        return self.oauth_error("invalid_grant")
                    if head.get("alg") != "RS256" or SCOPE not in claims.get("scope", "").split():
                        return self.oauth_error("invalid_scope")
                    fake.counts["jwt"] += 1
                elif grant == "refresh_token":
                    user = fake.users.get(one.get("client_id"))
                    if user != (one.get("client_secret"), one.get("refresh_token")):
                        return self.oauth_error("invalid_grant")
                    fake.counts["refresh"] += 1
                elif grant == STS_GRANT and one.get("subject_token_type") == AWS_TOKEN_TYPE:
                    if one.get("requested_token_type") != "urn:ietf:params:oauth:token-type:access_token":
                        return self.oauth_error("invalid_request")
                    audience = one.get("audience", "")
                    if audience not in fake.aws_audiences or not fake.aws_caller(audience,
                                                                                 one.get("subject_token", "")):
                        return self.oauth_error("invalid_grant")
                    fake.counts["sts_aws"] += 1
                    token, ttl = fake.issue()
                    return self.reply(200, {"access_token": token, "expires_in": ttl, "token_type": "Bearer",
                                            "issued_token_type": "urn:ietf:params:oauth:token-type:access_token"})
                elif grant == STS_GRANT:
                    key = fake.federation.get(one.get("audience"))
                    if key is None or one.get("requested_token_type") != \
                            "urn:ietf:params:oauth:token-type:access_token":
                        return self.oauth_error("invalid_request")
                    try:
                        jwt.decode(one.get("subject_token", ""), key, algorithms=["RS256"],
                                   options={"verify_aud": False})
                    except Exception:
                        return self.oauth_error("invalid_grant")
                    fake.counts["sts"] += 1
                    token, ttl = fake.issue()
                    return self.reply(200, {"access_token": token, "expires_in": ttl,
                                            "token_type": "Bearer",
                                            "issued_token_type":
                                                "urn:ietf:params:oauth:token-type:access_token"})
                else:
                    return self.oauth_error("unsupported_grant_type")
                token, ttl = fake.issue()
                self.reply(200, {"access_token": token, "expires_in": ttl, "token_type": "Bearer"})

            def impersonate(self, path, body):
                if not fake.valid(self.headers.get("Authorization")):
                    return self.reply(401, {"error": {"code": 401, "status": "UNAUTHENTICATED"}})
                if SCOPE not in body.get("scope", []):
                    return self.reply(400, {"error": {"code": 400, "status": "INVALID_ARGUMENT"}})
                lifetime = int(str(body.get("lifetime", "3600s")).rstrip("s"))
                fake.counts["impersonate"] += 1
                token, ttl = fake.issue(min(lifetime, fake.token_ttl))
                expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + ttl))
                self.reply(200, {"accessToken": token, "expireTime": expiry})

            def metadata(self, path):
                if self.headers.get("Metadata-Flavor") != "Google":
                    return self.reply(403, b"Missing Metadata-Flavor:Google header.")
                flavor = [("Metadata-Flavor", "Google")]
                if time.time() < fake.metadata_unready_until:
                    return self.reply(503, b"not ready", flavor)
                if path == "/computeMetadata/v1/instance/service-accounts/default/token":
                    fake.counts["metadata"] += 1
                    token, ttl = fake.issue()
                    return self.reply(200, {"access_token": token, "expires_in": ttl,
                                            "token_type": "Bearer"}, flavor)
                if path == "/computeMetadata/v1/instance/service-accounts/default/identity":
                    query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                    if not query.get("audience"):
                        return self.reply(400, b"non-empty audience parameter required", flavor)
                    fake.counts["identity"] += 1
                    # The bare JWT, as text (google-auth decodes an application/json answer).
                    return self.reply(200, fake.id_token(query["audience"][0]).encode(), flavor,
                                      ctype="text/html; charset=UTF-8")
                if path == "/computeMetadata/v1/instance/service-accounts/default/":
                    return self.reply(200, {"aliases": ["default"], "scopes": [SCOPE],
                                            "email": f"default@{fake.project}.iam.gserviceaccount.com"},
                                      flavor)
                if path == "/computeMetadata/v1/project/project-id":
                    return self.reply(200, fake.project.encode(), flavor)
                if path in ("/computeMetadata/v1/", "/computeMetadata/v1"):
                    return self.reply(200, b"instance/\nproject/\n", flavor)
                self.reply(404, b"not found", flavor)

            def secret(self, method, body):
                if not fake.valid(self.headers.get("Authorization")):
                    return self.reply(401, {"error": {"code": 401, "status": "UNAUTHENTICATED",
                                                      "message": "Request had invalid credentials."}})
                fake.counts["secret"] += 1
                path = urllib.parse.urlsplit(self.path).path
                if method == "GET" and path.endswith("/versions/latest:access"):
                    answer = self.google_latest(path)
                    if answer is not None:
                        return self.reply(*answer)
                status, data = forward(fake.drongo + self.path, method, body)
                self.reply(status, data)

            def google_latest(self, path):
                """Google's `latest`: the most recently created version,
                whatever its state (drongo skips disabled ones)."""
                secret = path[: -len("/versions/latest:access")]
                status, data = forward(fake.drongo + secret + "/versions", "GET", b"")
                if status != 200:
                    return None
                versions = json.loads(data).get("versions", [])
                if not versions:
                    return None
                newest = max(versions, key=lambda v: int(v["name"].rsplit("/", 1)[1]))
                if newest["state"] == "ENABLED":
                    status, data = forward(f"{fake.drongo}/v1/{newest['name']}:access", "GET", b"")
                    return status, data
                return 400, {"error": {"code": 400, "status": "FAILED_PRECONDITION",
                                       "message": f"Secret Version [{newest['name']}] is in "
                                                  f"{newest['state']} state."}}

        return Handler


def forward(url: str, method: str, body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body or None, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
