"""Python peer of the credential-encryption benchmark: SimpleTuner's
encrypt_credential / decrypt_credential (cryptography's Fernet plus the outer
url-safe base64) on a 64-byte token, and its PBKDF2 key derivation. Prints
JSON lines like benches/c/bench_crypto.c."""

import base64
import hashlib
import json
import os
import time

from cryptography.fernet import Fernet

BATCHES = 31
OPS = 20000
SALT = b"simpletuner-credential-encryption-v1"


def derive(secret):
    return base64.urlsafe_b64encode(hashlib.pbkdf2_hmac("sha256", secret.encode(), SALT, 100_000, dklen=32))


def median(xs):
    return sorted(xs)[len(xs) // 2]


def per_op(fn, ops=OPS):
    out = []
    for _ in range(BATCHES):
        t0 = time.perf_counter_ns()
        for _ in range(ops):
            fn()
        out.append((time.perf_counter_ns() - t0) / ops)
    return median(out)


def main():
    secret = os.environ["SIMPLETUNER_CREDENTIAL_KEY"]
    fernet = Fernet(derive(secret))
    token = "k" * 64

    def encrypt_credential():
        return base64.urlsafe_b64encode(fernet.encrypt(token.encode("utf-8"))).decode("ascii")

    stored = encrypt_credential()

    def decrypt_credential():
        return fernet.decrypt(base64.urlsafe_b64decode(stored.encode("ascii"))).decode("utf-8")

    name = "python_cryptography_fernet"
    for workload, ns in (
        ("encrypt_64b", per_op(encrypt_credential)),
        ("decrypt_64b", per_op(decrypt_credential)),
        ("key_derivation", per_op(lambda: derive(secret), ops=1)),
    ):
        print(json.dumps({"workload": workload, "name": name, "median_ns": round(ns, 1)}))


if __name__ == "__main__":
    main()
