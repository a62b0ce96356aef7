"""A rank of the rotation tests (cli/tests/rotation.rs): a process linking the
library through its C ABI (ctypes on libst_secrets.so) that reads
DB_PASSWORD from AWS Secrets Manager (moto) with its version and connects to
PostgreSQL as USER with it (psycopg) every INTERVAL seconds until UNTIL (Unix
seconds). A refused login is reported (st_secrets_report_failure with the
version that failed) and the next connection uses what the library then
holds. Prints one JSON line: connections, refusals (with the seconds since
the first refusal of each after it), other failures, and the versions used.

MODE "refresh" is the peer: a refused login makes the rank read the key again
(st_secrets_refresh: AWSCURRENT again, as the caching libraries' "refresh and
retry" advice does) instead of reporting the version that failed.

Usage: rotation_rank.py LIB CONFIG_JSON PG_PORT USER UNTIL INTERVAL [MODE]
"""

import ctypes
import json
import os
import signal
import sys
import time

import psycopg

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from ranklib import Library, P  # noqa: E402

LIB, CONFIG, PORT, USER, UNTIL, INTERVAL = sys.argv[1:7]
PORT, UNTIL, INTERVAL = int(PORT), float(UNTIL), float(INTERVAL)
MODE = sys.argv[7] if len(sys.argv) > 7 else "report"
KEY = "DB_PASSWORD"

C = Library(LIB)
lib, check, take = C.lib, C.check, C.take
manager = C.manager(CONFIG)


def get():
    """The password and the version it comes from."""
    return C.get_with_version(manager, KEY)


def report(version):
    """The library told that version failed: what it holds now."""
    if MODE == "refresh":
        buf, err = P(), P()
        changed = ctypes.c_bool()
        key = KEY.encode()
        check(lib.st_secrets_refresh(manager, key, ctypes.byref(buf), ctypes.byref(changed), ctypes.byref(err)), err)
        take(buf)
        return None, get()[1]
    return C.report_failure(manager, KEY, version)


signal.signal(signal.SIGINT, signal.SIG_DFL)
made = other_failed = 0
refused = []  # Unix seconds of each refused login
versions = []  # the versions used, in order of first use
reports = []
errors = []
while time.time() < UNTIL:
    started = time.time()
    try:
        password, info = get()
        if info["version"] not in versions:
            versions.append(info["version"])
        try:
            with psycopg.connect(
                host="127.0.0.1", port=PORT, user=USER, password=password, dbname="postgres", connect_timeout=5
            ) as conn:
                conn.execute("select 1")
            made += 1
        except psycopg.OperationalError as e:
            if "password authentication failed" not in str(e):
                raise
            refused.append(time.time())
            _, now = report(info["version"])
            reports.append({"failed": info["version"], "now": now["version"], "instead_of": now.get("instead_of")})
    except Exception as e:  # noqa: BLE001 - counted and named
        other_failed += 1
        if len(errors) < 3:
            errors.append(str(e)[:200])
    time.sleep(max(0.0, INTERVAL - (time.time() - started)))

metrics = json.loads(C.json_of(lib.st_secrets_metrics_json, manager))
lib.st_secrets_free(manager)
print(
    json.dumps(
        {
            "connections": made,
            "refused": len(refused),
            "refused_after_first": [round(t - refused[0], 3) for t in refused[1:]],
            "other_failed": other_failed,
            "errors": errors,
            "versions": versions,
            "reports": reports,
            "metrics": metrics,
        }
    )
)
