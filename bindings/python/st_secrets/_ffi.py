"""The one place that talks to libst_secrets: loading, signatures, errors.

The library is found, in order: $ST_SECRETS_LIB; next to this package
(libst_secrets.so); the repository's build output (target/release, then
target/debug). Its major version must equal this binding's.
"""

import ctypes
import os
import pathlib

BINDING_MAJOR = 0

c_char_p = ctypes.c_char_p
c_void_p = ctypes.c_void_p
c_size_t = ctypes.c_size_t
c_double = ctypes.c_double
c_int = ctypes.c_int
P = ctypes.POINTER
OUT = P(c_void_p)  # an `st_x **` out-parameter


def _find_library():
    env = os.environ.get("ST_SECRETS_LIB")
    if env:
        return env
    here = pathlib.Path(__file__).resolve().parent
    candidates = [here / "libst_secrets.so"]
    root = here.parent.parent.parent
    candidates += [root / "target" / "release" / "libst_secrets.so", root / "target" / "debug" / "libst_secrets.so"]
    for c in candidates:
        if c.exists():
            return str(c)
    raise ImportError("libst_secrets.so not found: build it (cargo build --release) or set ST_SECRETS_LIB")


lib = ctypes.CDLL(_find_library())

# Fallible functions: (name, argument types). They all return st_result and
# take `st_error **` last (added here).
_FALLIBLE = {
    "st_cache_new": [c_double, c_size_t, c_double, OUT],
    "st_cache_set": [c_void_p, c_char_p, c_char_p, c_size_t, c_double],
    "st_cache_get": [c_void_p, c_char_p, OUT],
    "st_cache_get_into": [c_void_p, c_char_p, c_void_p, c_size_t, P(c_size_t)],
    "st_cache_get_or_set": [c_void_p, c_char_p, c_void_p, c_void_p, c_double, OUT],
    "st_cache_stats_get": [c_void_p, c_void_p],
    "st_secrets_new": [c_char_p, OUT],
    "st_secrets_get": [c_void_p, c_char_p, OUT],
    "st_secrets_get_with_source": [c_void_p, c_char_p, OUT, OUT],
    "st_secrets_set": [c_void_p, c_char_p, c_char_p],
    "st_secrets_delete": [c_void_p, c_char_p],
    "st_secrets_reset_default": [],
    "st_secrets_providers_json": [c_void_p, OUT],
    "st_encrypt": [c_char_p, OUT],
    "st_decrypt": [c_char_p, OUT],
    "st_encrypt_with_secret": [c_char_p, c_char_p, OUT],
    "st_decrypt_with_secret": [c_char_p, c_char_p, OUT],
    "st_reencrypt": [c_char_p, OUT],
    "st_store_open": [c_char_p, OUT],
    "st_store_get_provider_config": [c_void_p, c_char_p, OUT],
    "st_store_save_provider_config": [c_void_p, c_char_p, c_char_p],
    "st_store_merge_provider_config": [c_void_p, c_char_p, c_char_p, OUT],
    "st_store_set_credential": [c_void_p, c_char_p, c_char_p, c_char_p],
    "st_store_get_credential": [c_void_p, c_char_p, c_char_p, OUT],
    "st_store_delete_credential": [c_void_p, c_char_p, c_char_p],
    "st_store_rotate_credentials": [c_void_p, OUT],
    "st_store_audit_json": [c_void_p, c_size_t, OUT],
    "st_store_audit_verify": [c_void_p, OUT],
    "st_hardware_info_json": [c_void_p, OUT],
    "st_hardware_info_set": [c_char_p],
    "st_hardware_hourly_cost": [c_void_p, c_char_p, P(c_double)],
}
for _name, _args in _FALLIBLE.items():
    _fn = getattr(lib, _name)
    _fn.argtypes = _args + [OUT]
    _fn.restype = c_int

_PLAIN = {
    "st_result_name": ([c_int], c_char_p),
    "st_error_code": ([c_void_p], c_int),
    "st_error_message": ([c_void_p], c_char_p),
    "st_error_free": ([c_void_p], None),
    "st_version": ([], c_char_p),
    "st_version_major": ([], ctypes.c_uint32),
    "st_buf_data": ([c_void_p], c_void_p),
    "st_buf_len": ([c_void_p], c_size_t),
    "st_buf_free": ([c_void_p], None),
    "st_sink_write": ([c_void_p, c_char_p, c_size_t], c_int),
    "st_cache_free": ([c_void_p], None),
    "st_cache_delete": ([c_void_p, c_char_p], ctypes.c_bool),
    "st_cache_clear": ([c_void_p], c_size_t),
    "st_cache_invalidate_prefix": ([c_void_p, c_char_p], c_size_t),
    "st_cache_cleanup": ([c_void_p], c_size_t),
    "st_provider_config_cache": ([], c_void_p),
    "st_user_permission_cache": ([], c_void_p),
    "st_invalidate_provider_cache": ([c_char_p], c_size_t),
    "st_invalidate_user_cache": ([ctypes.c_int64], c_size_t),
    "st_secrets_free": ([c_void_p], None),
    "st_secrets_clear_cache": ([c_void_p], None),
    "st_crypto_reset": ([], None),
    "st_store_free": ([c_void_p], None),
    "st_hardware_info_clear_cache": ([], None),
}
for _name, (_args, _ret) in _PLAIN.items():
    _fn = getattr(lib, _name)
    _fn.argtypes = _args
    _fn.restype = _ret

VERSION = lib.st_version().decode()
if lib.st_version_major() != BINDING_MAJOR:
    raise ImportError(f"st_secrets binding for major version {BINDING_MAJOR} cannot use {VERSION}")

COMPUTE_FN = ctypes.CFUNCTYPE(c_int, c_void_p, c_char_p, c_void_p)


class CacheStats(ctypes.Structure):
    _fields_ = [
        ("size", c_size_t),
        ("max_size", c_size_t),
        ("expired_count", c_size_t),
        ("default_ttl", c_double),
        ("hits", ctypes.c_uint64),
        ("misses", ctypes.c_uint64),
        ("evictions", ctypes.c_uint64),
        ("expirations", ctypes.c_uint64),
    ]


class StSecretsError(Exception):
    """An st-secrets failure: `code` (the st_result number), `code_name`
    (e.g. "ST_AUTH") and a message that never contains a secret."""

    code = -1
    code_name = "ST_UNKNOWN"

    def __init__(self, message, code=None):
        super().__init__(message)
        if code is not None:
            self.code = code
            self.code_name = lib.st_result_name(code).decode()

    def __repr__(self):
        return f"{type(self).__name__}({self.code_name}: {self.args[0]!r})"


def _class_name(code_name):
    return "".join(part.capitalize() for part in code_name[3:].split("_")) + "Error"


# One exception class per result code, generated from the library's own list.
ERRORS = {}
for _code in range(1, 1000):
    _code_name = lib.st_result_name(_code).decode()
    if _code_name != "ST_UNKNOWN":
        _cls = type(_class_name(_code_name), (StSecretsError,), {"code": _code, "code_name": _code_name})
        ERRORS[_code] = _cls
        globals()[_cls.__name__] = _cls
NOT_FOUND = 1
CALLBACK = 600


def error_for(code, message):
    return ERRORS.get(code, StSecretsError)(message, code)


def call(name, *args):
    """Calls a fallible function; raises the error's class on failure."""
    err = c_void_p()
    rc = getattr(lib, name)(*args, ctypes.byref(err))
    if rc != 0:
        message = lib.st_error_message(err).decode("utf-8", "replace") if err else lib.st_result_name(rc).decode()
        lib.st_error_free(err)
        raise error_for(rc, message)


def call_optional(name, *args):
    """Like call, but returns False on ST_NOT_FOUND (True on success)."""
    try:
        call(name, *args)
    except ERRORS[NOT_FOUND]:
        return False
    return True


def take_buf(buf):
    """The bytes of an st_buf, which is then zeroed and freed."""
    try:
        return ctypes.string_at(lib.st_buf_data(buf), lib.st_buf_len(buf))
    finally:
        lib.st_buf_free(buf)


def call_buf(name, *args):
    """Calls a fallible function whose last out-parameter is an st_buf."""
    out = c_void_p()
    call(name, *args, ctypes.byref(out))
    return take_buf(out)


def text(value, what):
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str")
    return value.encode("utf-8")
