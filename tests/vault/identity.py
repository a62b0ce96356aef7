"""Workload identities for the Vault login tests, made with `cryptography`
and PyJWT (test keys only, in a temporary directory the suite removes).

  identity.py keys DIR
      DIR/jwt-signing.key (RSA, PEM) and .pub: what OpenBao's jwt and
      kubernetes methods verify; DIR/ca.pem + ca.key: a CA; DIR/node.pem +
      node.key: a node certificate it signs (client auth, 1 day);
      DIR/expired.pem + expired.key: one that expired in 2020; DIR/review.pem
      + review.key: the TokenReview responder's server certificate.
  identity.py mint KEYFILE CLAIMS_JSON
      prints an RS256 JWT of the claims; "exp" and "iat" given as offsets in
      seconds from now ("exp": 30) become times.
  identity.py token-review DIR PORT_FILE
      the Kubernetes TokenReview endpoint OpenBao's kubernetes method calls:
      an HTTPS responder on 127.0.0.1 that verifies the reviewed JWT with
      DIR/jwt-signing.pub and answers as kube-apiserver does. There is no
      kube-apiserver package: this is the one fake server of the identity
      tests (docs/testing.md). Writes its port to PORT_FILE; runs until killed.
"""

import datetime
import http.server
import ipaddress
import json
import os
import ssl
import sys
import time

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def write_key(path, key):
    with open(path, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    os.chmod(path, 0o600)


def certificate(subject, key, issuer, issuer_key, days, start=None, ca=False, server=False):
    start = start or datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
    b = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        b = b.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    elif not ca:
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def write_cert(path, cert):
    with open(path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))


def keys(d):
    signing = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    write_key(f"{d}/jwt-signing.key", signing)
    with open(f"{d}/jwt-signing.pub", "wb") as f:
        f.write(
            signing.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = certificate("st-secrets test CA", ca_key, "st-secrets test CA", ca_key, 30, ca=True)
    write_key(f"{d}/ca.key", ca_key)
    write_cert(f"{d}/ca.pem", ca)
    for name, start, days, server in [
        ("node", None, 1, False),
        ("expired", datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc), 1, False),
        ("review", None, 30, True),
    ]:
        key = ec.generate_private_key(ec.SECP256R1())
        write_key(f"{d}/{name}.key", key)
        write_cert(f"{d}/{name}.pem", certificate(name, key, "st-secrets test CA", ca_key, days, start, server=server))


def mint(keyfile, claims):
    claims = json.loads(claims)
    now = int(time.time())
    for k in ("exp", "iat", "nbf"):
        if k in claims:
            claims[k] = now + int(claims[k])
    with open(keyfile, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), None)
    print(jwt.encode(claims, key, algorithm="RS256"))


def token_review(d, port_file):
    with open(f"{d}/jwt-signing.pub", "rb") as f:
        public = serialization.load_pem_public_key(f.read())

    class Review(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            spec = body.get("spec", {})
            status = {"authenticated": False}
            try:
                claims = jwt.decode(spec.get("token", ""), public, algorithms=["RS256"], options={"verify_aud": False})
                k8s = claims["kubernetes.io"]
                status = {
                    "authenticated": True,
                    "user": {
                        "username": f"system:serviceaccount:{k8s['namespace']}:{k8s['serviceaccount']['name']}",
                        "uid": k8s["serviceaccount"]["uid"],
                    },
                    "audiences": spec.get("audiences") or [],
                }
            except Exception as e:  # an invalid token: not authenticated
                status = {"authenticated": False, "error": type(e).__name__}
            out = json.dumps(
                {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "status": status}
            ).encode()
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Review)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(f"{d}/review.pem", f"{d}/review.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(port_file + ".tmp", port_file)
    server.serve_forever()


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "keys":
        keys(sys.argv[2])
    elif cmd == "mint":
        mint(sys.argv[2], sys.argv[3])
    elif cmd == "token-review":
        token_review(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit(__doc__)
