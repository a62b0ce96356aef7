"""What the test ranks share (tests/vault/pg_rank.py, tests/aws/rotation_rank.py,
tests/vault/provenance_rank.py): the library loaded through ctypes with the
signatures they call, its errors raised, its buffers read and freed, and a
manager made from a configuration JSON.
"""

import ctypes
import json

P = ctypes.c_void_p
OUT = ctypes.POINTER(P)


class Library:
    """libst_secrets.so at `path`, its functions declared."""

    def __init__(self, path):
        lib = self.lib = ctypes.CDLL(path)
        lib.st_secrets_new.argtypes = [ctypes.c_char_p, OUT, OUT]
        lib.st_secrets_get.argtypes = [P, ctypes.c_char_p, OUT, OUT]
        lib.st_secrets_get_with_version.argtypes = [P, ctypes.c_char_p, OUT, OUT, OUT]
        lib.st_secrets_refresh.argtypes = [P, ctypes.c_char_p, OUT, ctypes.POINTER(ctypes.c_bool), OUT]
        lib.st_secrets_report_failure.argtypes = [P, ctypes.c_char_p, ctypes.c_char_p, OUT, OUT, OUT]
        for name in ("st_secrets_provenance_json", "st_secrets_metrics_json"):
            getattr(lib, name).argtypes = [P, OUT, OUT]
        lib.st_secrets_free.argtypes = [P]
        lib.st_buf_data.argtypes = [P]
        lib.st_buf_data.restype = ctypes.POINTER(ctypes.c_uint8)
        lib.st_buf_len.argtypes = [P]
        lib.st_buf_len.restype = ctypes.c_size_t
        lib.st_buf_free.argtypes = [P]
        lib.st_error_message.argtypes = [P]
        lib.st_error_message.restype = ctypes.c_char_p
        lib.st_error_free.argtypes = [P]

    def check(self, rc, err):
        """Raises the library's error when `rc` is not ST_OK."""
        if rc != 0:
            message = self.lib.st_error_message(err).decode() if err.value else f"code {rc}"
            self.lib.st_error_free(err)
            raise RuntimeError(message)

    def take(self, buf):
        """A buffer's text; the buffer freed."""
        value = ctypes.string_at(self.lib.st_buf_data(buf), self.lib.st_buf_len(buf)).decode()
        self.lib.st_buf_free(buf)
        return value

    def manager(self, config):
        """A manager of the configuration JSON `config`."""
        manager, err = P(), P()
        self.check(self.lib.st_secrets_new(config.encode(), ctypes.byref(manager), ctypes.byref(err)), err)
        return manager

    def get_with_version(self, manager, key):
        """The value of `key` and its info (the JSON object as a dict)."""
        buf, info, err = P(), P(), P()
        rc = self.lib.st_secrets_get_with_version(
            manager, key.encode(), ctypes.byref(buf), ctypes.byref(info), ctypes.byref(err)
        )
        self.check(rc, err)
        if not buf.value:
            raise RuntimeError(f"{key} is absent")
        return self.take(buf), json.loads(self.take(info))

    def report_failure(self, manager, key, version):
        """st_secrets_report_failure of `key`'s `version`: the value now held
        and its info (a dict)."""
        buf, info, err = P(), P(), P()
        rc = self.lib.st_secrets_report_failure(
            manager, key.encode(), version.encode(), ctypes.byref(buf), ctypes.byref(info), ctypes.byref(err)
        )
        self.check(rc, err)
        return self.take(buf), json.loads(self.take(info))

    def json_of(self, function, manager):
        """The JSON text a `st_secrets_*_json(manager, &out, &err)` call writes."""
        out, err = P(), P()
        self.check(function(manager, ctypes.byref(out), ctypes.byref(err)), err)
        return self.take(out)
