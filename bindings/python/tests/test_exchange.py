"""A token exchange through the native module: a key of the chain is the
credential an RFC 8693 endpoint (a loopback one here) gives for the
workload's token, one request for many reads, replaced once when reported
refused; a subject token for another audience is never sent."""

import base64
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import st_secrets
from st_secrets import SecretsManager


@pytest.fixture()
def endpoint():
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            form = dict(urllib.parse.parse_qsl(self.rfile.read(int(self.headers["content-length"])).decode()))
            ok = form.get("grant_type") == "urn:ietf:params:oauth:grant-type:token-exchange"
            seen.append(form)
            body = json.dumps({"access_token": f"at_py_{len(seen)}", "token_type": "Bearer", "expires_in": 600}
                              if ok else {"error": "invalid_request"}).encode()
            self.send_response(200 if ok else 400)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/token", seen
    server.shutdown()
    server.server_close()


def test_a_token_exchange_gives_a_key(endpoint, tmp_path):
    url, seen = endpoint
    b64 = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()  # noqa: E731
    now = int(time.time())
    subject = tmp_path / "subject.jwt"
    claims = {"iss": "https://issuer.test", "sub": "job", "aud": "gateway", "iat": now, "exp": now + 3600}
    subject.write_text(f"{b64({'alg': 'RS256'})}.{b64(claims)}.c2ln")
    subject.chmod(0o600)

    def manager(audience):
        return SecretsManager(config={"providers": ["exchange"], "retries": 0, "exchanges": {"API_KEY": {
            "profile": "rfc8693", "url": url, "audience": audience, "subject_token_file": str(subject)}}})

    m = manager("gateway")
    assert [m.get("API_KEY") for _ in range(3)] == ["at_py_1"] * 3
    assert len(seen) == 1 and seen[0]["subject_token"] == subject.read_text()
    assert m.report_failure("API_KEY")["value"] == "at_py_2"
    with pytest.raises(st_secrets.StSecretsError, match="audience"):
        manager("elsewhere").get("API_KEY")
    assert len(seen) == 2
