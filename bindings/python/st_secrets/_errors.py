"""The package's exceptions: StSecretsError and one subclass per library
result code (NotFoundError, ParseError, AuthError, ...). Messages never
contain a secret."""

import logging
import threading

__all__ = [
    "StSecretsError",
    "NotFoundError",
    "NullArgumentError",
    "InvalidUtf8Error",
    "InvalidArgumentError",
    "IoError",
    "ParseError",
    "PermissionError",
    "ProviderUnavailableError",
    "NetworkError",
    "TimeoutError",
    "AuthError",
    "RemoteError",
    "InvalidTokenError",
    "KeyError",
    "StoreError",
    "CallbackError",
    "PanicError",
    "InternalError",
]


class StSecretsError(Exception):
    """An st-secrets failure: `code` (the C API's st_result number),
    `code_name` (e.g. "ST_AUTH") and a message that never contains a secret."""

    code = -1
    code_name = "ST_UNKNOWN"

    def __init__(self, message: str, code: "int | None" = None) -> None:
        super().__init__(message)
        if code is not None and code != self.code:
            self.code = code
            self.code_name = _NAMES.get(code, "ST_UNKNOWN")

    def __repr__(self):
        return f"{type(self).__name__}({self.code_name}: {self.args[0]!r})"


# One class per result code, as the library lists them; a test checks this
# list against the library's own (st_secrets._native.result_codes()).

class NotFoundError(StSecretsError):
    """ST_NOT_FOUND: a key is absent."""

    code = 1
    code_name = "ST_NOT_FOUND"


class NullArgumentError(StSecretsError):
    """ST_NULL_ARGUMENT: a required argument was NULL (C callers)."""

    code = 100
    code_name = "ST_NULL_ARGUMENT"


class InvalidUtf8Error(StSecretsError):
    """ST_INVALID_UTF8: a text argument was not UTF-8."""

    code = 101
    code_name = "ST_INVALID_UTF8"


class InvalidArgumentError(StSecretsError):
    """ST_INVALID_ARGUMENT: an argument or configuration value is out of range or malformed."""

    code = 102
    code_name = "ST_INVALID_ARGUMENT"


class IoError(StSecretsError):
    """ST_IO: reading or writing a file failed."""

    code = 200
    code_name = "ST_IO"


class ParseError(StSecretsError):
    """ST_PARSE: a file or document could not be parsed."""

    code = 201
    code_name = "ST_PARSE"


class PermissionError(StSecretsError):
    """ST_PERMISSION: the operating system refused access."""

    code = 202
    code_name = "ST_PERMISSION"


class ProviderUnavailableError(StSecretsError):
    """ST_PROVIDER_UNAVAILABLE: a provider is not configured or cannot be used."""

    code = 300
    code_name = "ST_PROVIDER_UNAVAILABLE"


class NetworkError(StSecretsError):
    """ST_NETWORK: a remote service could not be reached."""

    code = 301
    code_name = "ST_NETWORK"


class TimeoutError(StSecretsError):
    """ST_TIMEOUT: a remote service did not answer in time."""

    code = 302
    code_name = "ST_TIMEOUT"


class AuthError(StSecretsError):
    """ST_AUTH: credentials were rejected or access was denied."""

    code = 303
    code_name = "ST_AUTH"


class RemoteError(StSecretsError):
    """ST_REMOTE: a remote service answered with an error."""

    code = 304
    code_name = "ST_REMOTE"


class InvalidTokenError(StSecretsError):
    """ST_INVALID_TOKEN: a ciphertext is tampered with, made under another key, or malformed."""

    code = 400
    code_name = "ST_INVALID_TOKEN"


class KeyError(StSecretsError):
    """ST_KEY: the encryption key could not be sourced."""

    code = 401
    code_name = "ST_KEY"


class StoreError(StSecretsError):
    """ST_STORE: the provider-configuration database failed."""

    code = 500
    code_name = "ST_STORE"


class CallbackError(StSecretsError):
    """ST_CALLBACK: a callback failed."""

    code = 600
    code_name = "ST_CALLBACK"


class PanicError(StSecretsError):
    """ST_PANIC: a bug inside st-secrets was caught at the boundary."""

    code = 900
    code_name = "ST_PANIC"


class InternalError(StSecretsError):
    """ST_INTERNAL: a bug or an unexpected state inside st-secrets."""

    code = 901
    code_name = "ST_INTERNAL"


ERRORS = {cls.code: cls for cls in StSecretsError.__subclasses__()}
_NAMES = {code: cls.code_name for code, cls in ERRORS.items()}
NOT_FOUND = 1


def error_for(code, message):
    """The exception of the class for `code`, carrying `message`."""
    return ERRORS.get(code, StSecretsError)(message, code)


def attempt(logger, level, what, key, fn, *args):
    """Runs fn(*args) for SimpleTuner's True/False methods: True when it
    succeeds; False, logged at `level` naming `what` and `key` (never a
    value), when the library refuses."""
    try:
        fn(*args)
        return True
    except StSecretsError as exc:
        logger.log(level, "Failed to %s secret %r: %s", what, key, exc)
        return False


class ProcessSingleton:
    """SimpleTuner's singleton classes: the first construction makes the
    instance, later ones return it (their arguments ignored), `_instance =
    None` drops it. Each subclass has its own instance and lock."""

    _instance = None
    _lock = threading.RLock()
    _initialized = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._instance = None
        cls._lock = threading.RLock()

    def __new__(cls, *args, **kwargs):
        with cls._lock:
            if cls._instance is None:
                instance = super().__new__(cls)
                instance._initialized = False
                cls._instance = instance
            return cls._instance
