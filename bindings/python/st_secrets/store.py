"""The provider-configuration store (SQLite, read-through cached, audited,
credentials encrypted at rest) and hardware pricing."""

import ctypes
import json

from . import _ffi
from ._ffi import c_void_p, lib


class Store:
    """An open store; `db_path` None means <state dir>/cloud/jobs.db."""

    def __init__(self, db_path=None):
        out = c_void_p()
        _ffi.call("st_store_open", None if db_path is None else str(db_path).encode(), ctypes.byref(out))
        self._handle = out

    def __del__(self):
        if getattr(self, "_handle", None):
            lib.st_store_free(self._handle)
            self._handle = None

    def get_provider_config(self, provider):
        return json.loads(_ffi.call_buf("st_store_get_provider_config", self._handle, _ffi.text(provider, "provider")))

    def save_provider_config(self, provider, config):
        _ffi.call("st_store_save_provider_config", self._handle, _ffi.text(provider, "provider"),
                  json.dumps(config).encode())

    def update_provider_config(self, provider, updates):
        """Atomic JSON merge patch (None removes a key); returns the result."""
        return json.loads(_ffi.call_buf("st_store_merge_provider_config", self._handle,
                                        _ffi.text(provider, "provider"), json.dumps(updates).encode()))

    def set_credential(self, provider, name, value):
        _ffi.call("st_store_set_credential", self._handle, _ffi.text(provider, "provider"),
                  _ffi.text(name, "name"), _ffi.text(value, "value"))

    def get_credential(self, provider, name):
        out = c_void_p()
        if not _ffi.call_optional("st_store_get_credential", self._handle, _ffi.text(provider, "provider"),
                                  _ffi.text(name, "name"), ctypes.byref(out)):
            return None
        return _ffi.take_buf(out).decode("utf-8")

    def delete_credential(self, provider, name):
        return _ffi.call_optional("st_store_delete_credential", self._handle, _ffi.text(provider, "provider"),
                                  _ffi.text(name, "name"))

    def rotate_credentials(self):
        return json.loads(_ffi.call_buf("st_store_rotate_credentials", self._handle))

    def audit_entries(self, limit=100):
        return json.loads(_ffi.call_buf("st_store_audit_json", self._handle, int(limit)))

    def verify_audit(self):
        """{"entries": n}; raises StoreError naming the first broken entry."""
        return json.loads(_ffi.call_buf("st_store_audit_verify", self._handle))


def _store_handle(store):
    return None if store is None else store._handle


def get_hardware_info(store=None):
    return json.loads(_ffi.call_buf("st_hardware_info_json", _store_handle(store)))


def set_hardware_info(info):
    _ffi.call("st_hardware_info_set", json.dumps(info).encode())


def clear_hardware_info_cache():
    lib.st_hardware_info_clear_cache()


def get_hourly_cost(hardware=None, store=None):
    cost = ctypes.c_double()
    _ffi.call("st_hardware_hourly_cost", _store_handle(store),
              None if hardware is None else _ffi.text(hardware, "hardware"), ctypes.byref(cost))
    return cost.value
