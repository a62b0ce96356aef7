"""Credential encryption, SimpleTuner's functions over the library's Fernet
(byte-compatible with SimpleTuner's ciphertexts)."""

from . import _ffi
from ._ffi import lib


def encrypt_credential(plaintext):
    """The stored form (url-safe base64 of a Fernet token) of `plaintext`."""
    try:
        return _ffi.call_buf("st_encrypt", _ffi.text(plaintext, "plaintext")).decode("ascii")
    except _ffi.StSecretsError as exc:
        raise ValueError(f"Failed to encrypt credential: {exc}") from None


def decrypt_credential(ciphertext):
    """The plaintext; ValueError when it cannot be decrypted (wrong key,
    corrupted data), the message never containing key material."""
    try:
        return _ffi.call_buf("st_decrypt", _ffi.text(ciphertext, "ciphertext")).decode("utf-8")
    except _ffi.StSecretsError as exc:
        raise ValueError(f"Failed to decrypt credential: {exc}") from None


def reencrypt_credential(ciphertext):
    """The same credential under the current key (unchanged if it already is)."""
    try:
        return _ffi.call_buf("st_reencrypt", _ffi.text(ciphertext, "ciphertext")).decode("ascii")
    except _ffi.StSecretsError as exc:
        raise ValueError(f"Failed to re-encrypt credential: {exc}") from None


def reset_cipher():
    """Forgets the cached key: it is sourced again at next use."""
    lib.st_crypto_reset()
