"""Credential encryption interoperates with Python's `cryptography`, using
SimpleTuner's scheme (PBKDF2-HMAC-SHA256, salt
"simpletuner-credential-encryption-v1", 100,000 iterations, url-safe base64
of the Fernet token), in both directions, through the st-secrets tool (Rust
API) and through the C ABI (ctypes on libst_secrets.so).

Environment: ST_SECRETS_BIN (the tool), ST_SECRETS_LIB (the shared library).
"""

import base64
import ctypes
import hashlib
import os
import subprocess
import time

import pytest
from cryptography.fernet import Fernet, InvalidToken

BIN = os.environ["ST_SECRETS_BIN"]
LIB = os.environ["ST_SECRETS_LIB"]
SECRET = "interop-master-secret"
PLAINTEXTS = ["r8_0123456789abcdef", "", "ünïcødé ✓ 🚀", "x" * 4096, "line1\nline2"]


def simpletuner_key(secret):
    """The Fernet key SimpleTuner derives from a master secret."""
    raw = hashlib.pbkdf2_hmac(
        "sha256", secret.encode("utf-8"), b"simpletuner-credential-encryption-v1", 100_000, dklen=32
    )
    return base64.urlsafe_b64encode(raw)


def python_encrypt(plaintext, secret=SECRET):
    token = Fernet(simpletuner_key(secret)).encrypt(plaintext.encode("utf-8"))
    return base64.urlsafe_b64encode(token).decode("ascii")


def python_decrypt(ciphertext, secret=SECRET):
    token = base64.urlsafe_b64decode(ciphertext.encode("ascii"))
    return Fernet(simpletuner_key(secret)).decrypt(token).decode("utf-8")


def tool(command, data, tmp_path, secret=SECRET):
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "SIMPLETUNER_CREDENTIAL_KEY": secret}
    args = [BIN, command] + (["--value", data] if data == "" else [])
    return subprocess.run(args, input=data.encode("utf-8"), env=env, capture_output=True, check=False)


class Lib:
    def __init__(self):
        self.lib = ctypes.CDLL(LIB)
        for name in ("st_encrypt_with_secret", "st_decrypt_with_secret"):
            fn = getattr(self.lib, name)
            fn.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p]
            fn.restype = ctypes.c_int
        self.lib.st_buf_data.argtypes = [ctypes.c_void_p]
        self.lib.st_buf_data.restype = ctypes.POINTER(ctypes.c_uint8)
        self.lib.st_buf_len.argtypes = [ctypes.c_void_p]
        self.lib.st_buf_len.restype = ctypes.c_size_t
        self.lib.st_buf_free.argtypes = [ctypes.c_void_p]

    def call(self, name, secret, text):
        out = ctypes.c_void_p()
        rc = getattr(self.lib, name)(secret.encode(), text.encode("utf-8"), ctypes.byref(out), None)
        if rc != 0:
            return rc, None
        data = ctypes.string_at(self.lib.st_buf_data(out), self.lib.st_buf_len(out)).decode("utf-8")
        self.lib.st_buf_free(out)
        return rc, data


@pytest.fixture(scope="module")
def lib():
    return Lib()


def test_derived_key_matches_the_documented_check():
    assert simpletuner_key("testsecret") == b"DWixgjuI6Tq7JrIaCIyEqlobd9hmG-tRBSGtMtvXsuk="


@pytest.mark.parametrize("plaintext", PLAINTEXTS)
def test_python_ciphertext_decrypts_in_the_tool(plaintext, tmp_path):
    result = tool("decrypt", python_encrypt(plaintext), tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode("utf-8") == plaintext


@pytest.mark.parametrize("plaintext", PLAINTEXTS)
def test_tool_ciphertext_decrypts_in_python(plaintext, tmp_path):
    result = tool("encrypt", plaintext, tmp_path)
    assert result.returncode == 0, result.stderr
    ciphertext = result.stdout.decode("ascii").strip()
    assert ciphertext.startswith("Z0FBQUFB")
    assert python_decrypt(ciphertext) == plaintext


@pytest.mark.parametrize("plaintext", PLAINTEXTS)
def test_c_abi_both_ways(lib, plaintext):
    rc, ciphertext = lib.call("st_encrypt_with_secret", SECRET, plaintext)
    assert rc == 0
    assert python_decrypt(ciphertext) == plaintext
    rc, back = lib.call("st_decrypt_with_secret", SECRET, python_encrypt(plaintext))
    assert rc == 0 and back == plaintext


def test_bare_python_tokens_and_future_timestamps_open(lib):
    f = Fernet(simpletuner_key(SECRET))
    bare = f.encrypt(b"bare-token").decode("ascii")
    assert lib.call("st_decrypt_with_secret", SECRET, bare) == (0, "bare-token")
    future = f.encrypt_at_time(b"from-the-future", int(time.time()) + 10 * 86400).decode("ascii")
    assert lib.call("st_decrypt_with_secret", SECRET, future) == (0, "from-the-future")


def test_wrong_key_fails_on_both_sides(lib, tmp_path):
    rc, _ = lib.call("st_decrypt_with_secret", "wrong-secret", python_encrypt("v"))
    assert rc == 400  # ST_INVALID_TOKEN
    result = tool("decrypt", python_encrypt("v"), tmp_path, secret="wrong-secret")
    assert result.returncode == 3 and b"ST_INVALID_TOKEN" in result.stderr
    _, ours = lib.call("st_encrypt_with_secret", SECRET, "v")
    with pytest.raises(InvalidToken):
        python_decrypt(ours, secret="wrong-secret")
