"""Python peer of the credential-encryption benchmark: SimpleTuner's
encrypt_credential / decrypt_credential (cryptography's Fernet plus the outer
url-safe base64) on a 64-byte token, and its PBKDF2 key derivation. Prints
JSON lines like benches/c/bench_crypto.c."""

import base64
import hashlib
import os

from benchutil import per_op, report
from cryptography.fernet import Fernet

OPS = 20000
SALT = b"simpletuner-credential-encryption-v1"


def derive(secret):
    return base64.urlsafe_b64encode(hashlib.pbkdf2_hmac("sha256", secret.encode(), SALT, 100_000, dklen=32))


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
    report("encrypt_64b", name, per_op(encrypt_credential, OPS))
    report("decrypt_64b", name, per_op(decrypt_credential, OPS))
    report("key_derivation", name, per_op(lambda: derive(secret), 1))


if __name__ == "__main__":
    main()
