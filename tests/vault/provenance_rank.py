"""A rank of the provenance test (cli/tests/provenance.rs): a process linking
the library through its C ABI (ctypes on libst_secrets.so) that gets KEY every
INTERVAL seconds until UNTIL (Unix seconds). What it used is recorded by the
library itself (SIMPLETUNER_PROVENANCE_FILE, SIMPLETUNER_PROVENANCE_SALT_FILE
in its environment); at the end it prints one JSON object: "provenance",
st_secrets_provenance_json's answer, and "metrics", st_secrets_metrics_json's.

Usage: provenance_rank.py LIB CONFIG_JSON KEY UNTIL INTERVAL
"""

import ctypes
import json
import sys
import time

LIB, CONFIG, KEY, UNTIL, INTERVAL = sys.argv[1:6]
UNTIL, INTERVAL = float(UNTIL), float(INTERVAL)
lib = ctypes.CDLL(LIB)
P = ctypes.c_void_p
lib.st_secrets_new.argtypes = [ctypes.c_char_p, ctypes.POINTER(P), ctypes.POINTER(P)]
lib.st_secrets_get.argtypes = [P, ctypes.c_char_p, ctypes.POINTER(P), ctypes.POINTER(P)]
lib.st_secrets_provenance_json.argtypes = [P, ctypes.POINTER(P), ctypes.POINTER(P)]
lib.st_secrets_metrics_json.argtypes = [P, ctypes.POINTER(P), ctypes.POINTER(P)]
lib.st_secrets_free.argtypes = [P]
lib.st_buf_data.argtypes = [P]
lib.st_buf_data.restype = ctypes.POINTER(ctypes.c_uint8)
lib.st_buf_len.argtypes = [P]
lib.st_buf_len.restype = ctypes.c_size_t
lib.st_buf_free.argtypes = [P]
lib.st_error_message.argtypes = [P]
lib.st_error_message.restype = ctypes.c_char_p


def check(rc, err):
    if rc != 0:
        raise RuntimeError(lib.st_error_message(err).decode() if err.value else f"code {rc}")


def take(buf):
    value = ctypes.string_at(lib.st_buf_data(buf), lib.st_buf_len(buf)).decode()
    lib.st_buf_free(buf)
    return value


manager, err = P(), P()
check(lib.st_secrets_new(CONFIG.encode(), ctypes.byref(manager), ctypes.byref(err)), err)
gets = 0
while time.time() < UNTIL:
    buf = P()
    check(lib.st_secrets_get(manager, KEY.encode(), ctypes.byref(buf), ctypes.byref(err)), err)
    take(buf)
    gets += 1
    time.sleep(INTERVAL)
out, counted = P(), P()
check(lib.st_secrets_provenance_json(manager, ctypes.byref(out), ctypes.byref(err)), err)
check(lib.st_secrets_metrics_json(manager, ctypes.byref(counted), ctypes.byref(err)), err)
print(json.dumps({"provenance": json.loads(take(out)), "metrics": json.loads(take(counted))}))
lib.st_secrets_free(manager)
