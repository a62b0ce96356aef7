"""SecretsManager: SimpleTuner's API over the library's provider chain
(environment > secrets file; remote providers as the library gains them)."""

import ctypes
import json
import logging

from . import _ffi
from ._ffi import c_void_p, lib

logger = logging.getLogger(__name__)


class SecretsManager:
    """A chain of providers checked in priority order. `config` takes the
    library's keys (file_path, env_prefix, cache_ttl, negative_ttl, providers);
    None configures from the environment.

    Differences from SimpleTuner, on purpose: `get` raises the provider's
    error (e.g. ParseError for a malformed secrets file) when no provider has
    the key and one of them failed, instead of hiding it behind the default;
    every instance is its own manager (use get_secrets_manager() for the shared
    one)."""

    REPLICATE_API_TOKEN = "REPLICATE_API_TOKEN"
    HF_TOKEN = "HF_TOKEN"
    WEBHOOK_SECRET = "CLOUD_WEBHOOK_SECRET"

    def __init__(self, config=None, _default=False):
        self._handle = None
        if _default:
            return  # NULL: the library's process-wide default manager
        out = c_void_p()
        text = None if config is None else json.dumps(config).encode("utf-8")
        _ffi.call("st_secrets_new", text, ctypes.byref(out))
        self._handle = out

    def __del__(self):
        if getattr(self, "_handle", None):
            lib.st_secrets_free(self._handle)
            self._handle = None

    def __repr__(self):
        names = [p["name"] for p in self.providers()]
        return f"SecretsManager(chain={names})"

    def get(self, key, default=None):
        """The value from the first provider that has it, else `default`."""
        out = c_void_p()
        if not _ffi.call_optional("st_secrets_get", self._handle, _ffi.text(key, "key"), ctypes.byref(out)):
            return default
        return _ffi.take_buf(out).decode("utf-8")

    def get_with_source(self, key):
        """(value, provider name), or None when no provider has it."""
        value, source = c_void_p(), c_void_p()
        if not _ffi.call_optional(
            "st_secrets_get_with_source", self._handle, _ffi.text(key, "key"), ctypes.byref(value), ctypes.byref(source)
        ):
            return None
        return _ffi.take_buf(value).decode("utf-8"), _ffi.take_buf(source).decode("utf-8")

    def get_replicate_token(self):
        return self.get(self.REPLICATE_API_TOKEN)

    def get_hf_token(self):
        return self.get(self.HF_TOKEN)

    def get_webhook_secret(self):
        return self.get(self.WEBHOOK_SECRET)

    def set_secret(self, key, value):
        """Saves to the secrets file (0600, atomic). True on success; False,
        with a logged warning (never the value), on failure."""
        try:
            _ffi.call("st_secrets_set", self._handle, _ffi.text(key, "key"), _ffi.text(value, "value"))
            return True
        except _ffi.StSecretsError as exc:
            logger.warning("could not save secret %r: %s", key, exc)
            return False

    def set_replicate_token(self, token):
        return self.set_secret(self.REPLICATE_API_TOKEN, token)

    def delete_secret(self, key):
        """Removes the key from the secrets file. True when it is gone (also
        when it was not there, as SimpleTuner); False on failure."""
        try:
            _ffi.call_optional("st_secrets_delete", self._handle, _ffi.text(key, "key"))
            return True
        except _ffi.StSecretsError as exc:
            logger.warning("could not delete secret %r: %s", key, exc)
            return False

    def clear_cache(self):
        lib.st_secrets_clear_cache(self._handle)

    def providers(self):
        """The chain: [{"name", "available", "detail", "warnings", "last_error"}]."""
        return json.loads(_ffi.call_buf("st_secrets_providers_json", self._handle))


_DEFAULT = SecretsManager(_default=True)


def get_secrets_manager():
    """The process-wide manager (configured from the environment)."""
    return _DEFAULT


def reset_secrets_manager():
    """Drops the process-wide manager; the next use rebuilds it."""
    _ffi.call("st_secrets_reset_default")
