"""Azure's side, faked on 127.0.0.1 where no package serves it, from the
published REST references: Key Vault's secrets API (the 401 challenge,
versions, attributes, disabled secrets, PUT and PATCH as the SDK sends
them, a throttle of N GETs per 10 s as the service's limit), Microsoft
Entra's token endpoint with its OpenID configuration (client secrets,
PS256 certificate assertions checked with the certificate's key and
SHA-256 thumbprint, federated tokens checked with their issuer's key), the
instance metadata service's identity endpoint and App Service's.

Microsoft's own libraries (azure-identity's ClientSecretCredential,
CertificateCredential, WorkloadIdentityCredential, ManagedIdentityCredential;
azure-keyvault-secrets' SecretClient) are pointed at it in
tests/interop/test_azure.py, which is what shows it faithful. Microsoft's
libraries speak only https to Entra and a vault: the fake answers on an
https port (a certificate for 127.0.0.1) and on an http one (the tool,
which allows http to loopback).

    fake = FakeAzure(cert, key)   # starts it; fake.url, fake.https_url, fake.stop()
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets as pysecrets
import ssl
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class Server(ThreadingHTTPServer):
    """A fleet's start connects thousands at once: a deep listen queue."""
    daemon_threads = True
    request_queue_size = 4096


class FakeAzure:
    def __init__(self, cert: str | None = None, key: str | None = None, token_ttl: int = 3599,
                 resource: str = "https://127.0.0.1"):
        self.token_ttl = token_ttl
        self.resource = resource  # the challenge's resource (the vault's host, on loopback)
        self.challenge_resource = resource  # what the challenge names (tests change it)
        self.lock = threading.Lock()
        self.tokens: dict[str, float] = {}  # token -> expiry
        self.apps: dict[str, dict] = {}  # client_id -> {"secret"| "thumbprint","public_key" | "issuer_key"}
        self.identity_header = "app-service-header"
        self.vault: dict[str, list[dict]] = {}  # name -> versions, oldest first
        self.limit: int | None = None  # GETs per 10 s
        self.window: list[float] = []
        self.counts = {"token": 0, "imds": 0, "app_service": 0, "get": 0, "challenge": 0, "expired": 0,
                       "throttled": 0, "refused": 0, "exchange_refused": 0}
        handler = self._handler()
        self.server = Server(("127.0.0.1", 0), handler)
        self.servers = [self.server]
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.https_url = None
        if cert:
            tls = Server(("127.0.0.1", 0), handler)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
            tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
            self.servers.append(tls)
            self.https_url = f"https://127.0.0.1:{tls.server_address[1]}"
        for s in self.servers:
            threading.Thread(target=s.serve_forever, daemon=True).start()

    def stop(self):
        for s in self.servers:
            s.shutdown()
            s.server_close()

    # ---------------------------------------------------------------- state

    def set_secret(self, name: str, value: str, **attributes) -> str:
        version = pysecrets.token_hex(16)
        now = int(time.time())
        with self.lock:
            self.vault.setdefault(name, []).append({
                "version": version, "value": value,
                "attributes": {"enabled": True, "created": now, "updated": now,
                               "recoveryLevel": "Recoverable+Purgeable", **attributes}})
        return version

    def set_enabled(self, name: str, version: str, enabled: bool):
        with self.lock:
            for v in self.vault[name]:
                if v["version"] == version:
                    v["attributes"]["enabled"] = enabled

    def issue(self) -> str:
        with self.lock:
            token = f"eyJ0eXAi.fake-{len(self.tokens) + 1}.{pysecrets.token_urlsafe(8)}"
            self.tokens[token] = time.time() + self.token_ttl
        return token

    def token_answer(self, **extra) -> dict:
        return {"token_type": "Bearer", "access_token": self.issue(), **extra}

    def valid(self, authorization: str | None) -> bool:
        token = (authorization or "").removeprefix("Bearer ")
        with self.lock:
            expiry = self.tokens.get(token)
            if expiry is None:
                self.counts["refused"] += 1
                return False
            if expiry < time.time():
                self.counts["expired"] += 1
                return False
            return True

    def throttled(self) -> bool:
        if self.limit is None:
            return False
        now = time.time()
        with self.lock:
            self.window = [t for t in self.window if t > now - 10]
            if len(self.window) >= self.limit:
                self.counts["throttled"] += 1
                return True
            self.window.append(now)
            return False

    # ---------------------------------------------------------------- entra

    def client_credentials(self, base: str, tenant: str, form: dict) -> tuple[int, dict]:
        def refuse(code, description):
            with self.lock:
                self.counts["exchange_refused"] += 1
            return 401, {"error": code, "error_description": description}

        if tenant != TENANT:
            return 400, {"error": "invalid_request", "error_description": f"AADSTS90002: Tenant '{tenant}' not found."}
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type", "error_description": "AADSTS70003"}
        scope = form.get("scope", "")
        if f"{self.resource}/.default" not in scope.split():
            return 400, {"error": "invalid_scope", "error_description": f"AADSTS70011: scope {scope!r}"}
        app = self.apps.get(form.get("client_id", ""))
        if app is None:
            return refuse("unauthorized_client", "AADSTS700016: Application not found in the directory.")
        if "secret" in app:
            if form.get("client_secret") != app["secret"]:
                return refuse("invalid_client", "AADSTS7000215: Invalid client secret provided.")
        elif form.get("client_assertion_type") != JWT_BEARER or not form.get("client_assertion"):
            return refuse("invalid_client", "AADSTS7000216: client_assertion is required.")
        elif "thumbprint" in app:
            assertion = form["client_assertion"]
            header = jwt.get_unverified_header(assertion)
            # x5t#S256 with PS256 (MSAL's default), or x5t (SHA-1) with RS256
            # (what azure-identity asks MSAL for): Entra takes both.
            sha256, sha1 = app["thumbprint"]
            sent = {k: str(header.get(k, "")).rstrip("=") for k in ("x5t#S256", "x5t")}  # MSAL pads x5t
            if (sent["x5t#S256"], header.get("alg")) != (sha256, "PS256") and \
                    (sent["x5t"], header.get("alg")) != (sha1, "RS256"):
                return refuse("invalid_client", "AADSTS700027: the certificate's thumbprint is not registered.")
            try:
                jwt.decode(assertion, app["public_key"], algorithms=[header["alg"]],
                           audience=f"{base}/{tenant}/oauth2/v2.0/token",
                           options={"require": ["exp", "aud", "iss", "sub", "jti"]})
            except jwt.InvalidTokenError as e:
                return refuse("invalid_client", f"AADSTS700027: client assertion failed signature validation: {e}")
        else:
            try:
                jwt.decode(form["client_assertion"], app["issuer_key"], algorithms=["RS256"],
                           audience="api://AzureADTokenExchange", options={"require": ["exp", "sub"]})
            except jwt.InvalidTokenError as e:
                return refuse("invalid_client", f"AADSTS700024: the federated token is not valid: {e}")
        with self.lock:
            self.counts["token"] += 1
        return 200, self.token_answer(expires_in=self.token_ttl, ext_expires_in=self.token_ttl)

    # ---------------------------------------------------------------- vault

    def challenge(self) -> str:
        return (f'Bearer authorization="https://login.microsoftonline.com/{TENANT}", '
                f'resource="{self.challenge_resource}"')

    def bundle(self, base: str, name: str, v: dict) -> dict:
        return {"value": v["value"], "id": f"{base}/secrets/{name}/{v['version']}",
                "attributes": dict(v["attributes"]), "tags": {}}

    def get_secret(self, base: str, name: str, version: str) -> tuple[int, dict]:
        with self.lock:
            self.counts["get"] += 1
            versions = self.vault.get(name, [])
            found = [v for v in versions if v["version"] == version] if version else versions[-1:]
        if not found:
            return 404, {"error": {"code": "SecretNotFound", "message": (
                f"A secret with (name/id) {name}{'/' + version if version else ''} was not found in this key vault. "
                "If you recently deleted this secret you may be able to recover it using the correct recovery "
                "command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182")}}
        v = found[0]
        if not v["attributes"]["enabled"]:
            return 403, {"error": {"code": "Forbidden", "message": "Operation get is not allowed on a disabled secret.",
                                   "innererror": {"code": "SecretDisabled"}}}
        return 200, self.bundle(base, name, v)

    # ---------------------------------------------------------------- http

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def reply(self, status, doc, headers=()):
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def base(self):
                tls = isinstance(self.connection, ssl.SSLSocket)
                return f"{'https' if tls else 'http'}://127.0.0.1:{self.server.server_address[1]}"

            def body(self):
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def do_POST(self):
                path = urllib.parse.urlsplit(self.path).path
                parts = path.strip("/").split("/")
                if len(parts) == 4 and parts[1:] == ["oauth2", "v2.0", "token"]:
                    form = dict(urllib.parse.parse_qsl(self.body().decode()))
                    status, doc = fake.client_credentials(self.base(), parts[0], form)
                    return self.reply(status, doc)
                self.reply(404, {"error": "not_found"})

            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                parts = url.path.strip("/").split("/")
                if url.path.endswith("/v2.0/.well-known/openid-configuration"):
                    base = f"{self.base()}/{parts[0]}"
                    return self.reply(200, {"token_endpoint": f"{base}/oauth2/v2.0/token",
                                            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                                            "issuer": f"{base}/v2.0"})
                if url.path == "/metadata/identity/oauth2/token":
                    if self.headers.get("Metadata") != "true":
                        return self.reply(400, {"error": "invalid_request",
                                                "error_description": "Required metadata header not specified"})
                    if query.get("resource", "").rstrip("/") != fake.resource:
                        return self.reply(400, {"error": "invalid_resource", "error_description": "resource"})
                    with fake.lock:
                        fake.counts["imds"] += 1
                    expires_on = str(int(time.time()) + fake.token_ttl)
                    return self.reply(200, fake.token_answer(expires_in=str(fake.token_ttl), expires_on=expires_on,
                                                             resource=fake.resource))
                if url.path == "/msi/token":
                    if self.headers.get("X-IDENTITY-HEADER") != fake.identity_header:
                        return self.reply(401, {"statusCode": 401, "message": "Unauthorized"})
                    with fake.lock:
                        fake.counts["app_service"] += 1
                    expires_on = str(int(time.time()) + fake.token_ttl)
                    return self.reply(200, fake.token_answer(expires_on=expires_on, resource=fake.resource,
                                                             client_id="app-service-identity"))
                if parts[0] == "secrets":
                    return self.vault_request("GET", parts, b"")
                self.reply(404, {"error": {"code": "NotFound", "message": url.path}})

            def do_PUT(self):
                self.vault_request("PUT", urllib.parse.urlsplit(self.path).path.strip("/").split("/"), self.body())

            def do_PATCH(self):
                self.vault_request("PATCH", urllib.parse.urlsplit(self.path).path.strip("/").split("/"), self.body())

            def vault_request(self, method, parts, body):
                if not self.headers.get("Authorization"):
                    with fake.lock:
                        fake.counts["challenge"] += 1
                    return self.reply(401, {"error": {"code": "Unauthorized",
                                                      "message": "AKV10000: Request is missing a Bearer or PoP token."}},
                                      [("WWW-Authenticate", fake.challenge())])
                if not fake.valid(self.headers.get("Authorization")):
                    return self.reply(401, {"error": {"code": "Unauthorized", "message": "AKV10022: Invalid token."}},
                                      [("WWW-Authenticate", fake.challenge() + ', error="invalid_token"')])
                if method == "GET" and fake.throttled():
                    return self.reply(429, {"error": {"code": "Throttled", "message": (
                        "Request was not processed because too many requests were received. "
                        "Reason: VaultRequestTypeLimitReached")}}, [("Retry-After", "1")])
                name = parts[1] if len(parts) > 1 else ""
                version = parts[2] if len(parts) > 2 else ""
                if method == "GET":
                    status, doc = fake.get_secret(self.base(), name, version)
                    return self.reply(status, doc)
                doc = json.loads(body or b"{}")
                if method == "PUT":
                    fake.set_secret(name, doc["value"], **{k: v for k, v in doc.get("attributes", {}).items()})
                    _, out = fake.get_secret(self.base(), name, "")
                    return self.reply(200, out)
                if "enabled" in doc.get("attributes", {}):
                    fake.set_enabled(name, version, doc["attributes"]["enabled"])
                with fake.lock:
                    v = next(v for v in fake.vault[name] if v["version"] == version)
                    out = fake.bundle(self.base(), name, v)
                out.pop("value")
                self.reply(200, out)

        return Handler


def thumbprints(cert_pem: str) -> tuple[str, str]:
    """A certificate's SHA-256 and SHA-1 thumbprints, base64url, as `x5t#S256`
    and `x5t` carry them."""
    der = ssl.PEM_cert_to_DER_cert(cert_pem)
    b64 = lambda d: base64.urlsafe_b64encode(d).rstrip(b"=").decode()  # noqa: E731
    return b64(hashlib.sha256(der).digest()), b64(hashlib.sha1(der).digest())
