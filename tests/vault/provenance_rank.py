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
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from ranklib import Library, P  # noqa: E402

LIB, CONFIG, KEY, UNTIL, INTERVAL = sys.argv[1:6]
UNTIL, INTERVAL = float(UNTIL), float(INTERVAL)
C = Library(LIB)
lib, check, take = C.lib, C.check, C.take
manager, err = C.manager(CONFIG), P()
gets = 0
while time.time() < UNTIL:
    buf = P()
    check(lib.st_secrets_get(manager, KEY.encode(), ctypes.byref(buf), ctypes.byref(err)), err)
    take(buf)
    gets += 1
    time.sleep(INTERVAL)
used = json.loads(C.json_of(lib.st_secrets_provenance_json, manager))
metrics = json.loads(C.json_of(lib.st_secrets_metrics_json, manager))
print(json.dumps({"provenance": used, "metrics": metrics}))
lib.st_secrets_free(manager)
