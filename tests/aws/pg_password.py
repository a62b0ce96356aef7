"""Sets a PostgreSQL role's password, creating the role (LOGIN) when it does
not exist: the rotation function's `setSecret` step in the rotation tests
(cli/tests/rotation.rs). The new password is read from standard input, never
from the command line.

Usage: pg_password.py LEASES_SETUP_JSON USER < PASSWORD
(the leases suite's set-up JSON: PostgreSQL's port and superuser password)
"""

import json
import sys

import psycopg
from psycopg import sql

SETUP, USER = sys.argv[1:3]
with open(SETUP) as f:
    setup = json.load(f)
PORT, superpass = setup["pg_port"], setup["pg_superpass"]
password = sys.stdin.read().strip()
with psycopg.connect(
    host="127.0.0.1", port=int(PORT), user="postgres", password=superpass, dbname="postgres", autocommit=True
) as conn:
    exists = conn.execute("select 1 from pg_roles where rolname = %s", (USER,)).fetchone()
    verb = "ALTER" if exists else "CREATE"
    conn.execute(sql.SQL(verb + " ROLE {} WITH LOGIN PASSWORD {}").format(sql.Identifier(USER), sql.Literal(password)))
