"""A rank of the leases tests (cli/tests/leases.rs): a process linking the
library through its C ABI (ctypes on libst_secrets.so), which reads the
leased `pg_username` and `pg_password` and connects to PostgreSQL with them
(psycopg) every INTERVAL seconds until UNTIL (Unix seconds), then prints one
JSON line: connections made, authentication failures, other failures, and
the number of distinct usernames seen (the credential's generations).

With READY (a path), it writes its pid there after its first connection and
then waits for the test's ending (MODE): "run" (until UNTIL), "exit0",
"exit1", "segv" (it kills itself with SIGSEGV), "ignore-term" (SIGTERM
ignored; it runs until UNTIL or is killed). MODE "report" (no READY): a
refused login is reported (st_secrets_report_failure with the version that
failed) before the next connection.

With LIB "file:PATH" the rank reads the credential from the JSON file a
peer renders there instead (`bao agent`'s template: {"username", "password"}),
again before each connection, and links nothing.

Usage: pg_rank.py LIB CONFIG_JSON PG_PORT UNTIL INTERVAL [MODE READY]
"""

import json
import os
import signal
import sys
import time

import psycopg

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from ranklib import Library, P  # noqa: E402

LIB, CONFIG, PORT, UNTIL, INTERVAL = sys.argv[1:6]
MODE = sys.argv[6] if len(sys.argv) > 6 else "run"
READY = sys.argv[7] if len(sys.argv) > 7 else None
PORT, UNTIL, INTERVAL = int(PORT), float(UNTIL), float(INTERVAL)

RENDERED = LIB[5:] if LIB.startswith("file:") else None
C = None if RENDERED else Library(LIB)
lib = C.lib if C else None
manager = C.manager(CONFIG) if C else P()


def get(key):
    """The value of key and the version it comes from."""
    value, info = C.get_with_version(manager, key)
    return value, info["version"]


def credentials():
    """The username and password of one lease: the fields of a leased secret
    belong together, so both are read again when a new one was issued
    between the two reads (their versions differ)."""
    if RENDERED:
        with open(RENDERED) as f:
            doc = json.load(f)
        return doc["username"], doc["password"], None
    for _ in range(5):
        (user, v1), (password, v2) = get("pg_username"), get("pg_password")
        if v1 == v2:
            return user, password, v2
    raise RuntimeError("the credential changed under every read")


# The endings test sends signals: each ends the rank as its default action
# does (Python's own SIGINT handler raises KeyboardInterrupt, which a
# library call in progress may swallow).
signal.signal(signal.SIGINT, signal.SIG_DFL)
if MODE == "ignore-term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

made = auth_failed = other_failed = 0
users = set()
errors = []
while time.time() < UNTIL:
    try:
        user, password, version = credentials()
        users.add(user)
        with psycopg.connect(
            host="127.0.0.1", port=PORT, user=user, password=password, dbname="postgres", connect_timeout=5
        ) as conn:
            conn.execute("select 1")
        made += 1
    except psycopg.OperationalError as e:
        text = str(e)
        if "authentication failed" in text or "does not exist" in text or "expired" in text:
            auth_failed += 1
            if MODE == "report":
                C.report_failure(manager, "pg_password", version)
        else:
            other_failed += 1
        errors.append(text.replace(user, "<user>")[:200])
    except (RuntimeError, OSError, ValueError, KeyError) as e:
        other_failed += 1
        errors.append(str(e)[:200])
    if READY and made == 1:
        with open(READY + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.rename(READY + ".tmp", READY)
        if MODE == "exit0":
            sys.exit(0)
        if MODE == "exit1":
            sys.exit(1)
        if MODE == "segv":
            os.kill(os.getpid(), signal.SIGSEGV)
    time.sleep(INTERVAL)

if lib:
    lib.st_secrets_free(manager)
print(json.dumps({"made": made, "auth_failed": auth_failed, "other_failed": other_failed,
                  "generations": len(users), "errors": errors[:5]}), flush=True)
