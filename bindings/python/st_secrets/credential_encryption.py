"""SimpleTuner's `credential_encryption` module: Fernet with a PBKDF2 key
(100,000 rounds, SimpleTuner's salt) from SIMPLETUNER_CREDENTIAL_KEY, else
~/.simpletuner/credential.key, else a new key saved there (0600);
ciphertexts are byte-compatible with SimpleTuner's. Needs no
`cryptography` package."""

from . import _native
from ._errors import StSecretsError

__all__ = ["encrypt_credential", "decrypt_credential", "reencrypt_credential", "reset_cipher"]


def _text(what: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    return value


def _derive_key(secret: str) -> bytes:
    """The Fernet key (url-safe base64, 44 bytes) derived from `secret`."""
    return _native.derive_key(_text("secret", secret))


def encrypt_credential(plaintext: str) -> str:
    """The stored form (url-safe base64 of a Fernet token, "Z0FBQUFB...")."""
    try:
        return _native.encrypt(_text("plaintext", plaintext))
    except StSecretsError as exc:
        raise ValueError(f"Failed to encrypt credential: {exc}") from None


def decrypt_credential(ciphertext: str) -> str:
    """The plaintext; ValueError("Failed to decrypt credential: ...") when it
    cannot be decrypted (wrong key, tampered or malformed), never showing key
    material or plaintext."""
    try:
        return _native.decrypt(_text("ciphertext", ciphertext))
    except StSecretsError as exc:
        raise ValueError(f"Failed to decrypt credential: {exc}") from None


def reencrypt_credential(ciphertext: str) -> str:
    """The same credential under the current key (unchanged if it already is)."""
    try:
        return _native.reencrypt(_text("ciphertext", ciphertext))[0]
    except StSecretsError as exc:
        raise ValueError(f"Failed to re-encrypt credential: {exc}") from None


def reset_cipher() -> None:
    """Forgets the cached key: it is sourced again at next use."""
    _native.reset_cipher()
