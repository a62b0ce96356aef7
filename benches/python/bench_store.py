"""Python peer of the store benchmark: SimpleTuner's uncached provider-config
read (ProviderConfigStore.get_sync: a new sqlite3 connection, SELECT,
json.loads, per call), and the same read on a warm connection. Argument: the
database written by benches/c/bench_store.c. Prints JSON lines."""

import json
import sqlite3
import sys

from benchutil import per_op, report


def main(db):
    def get_sync():
        conn = sqlite3.connect(db)
        conn.row_factory = sqlite3.Row
        try:
            row = conn.execute("SELECT config FROM provider_config WHERE provider = ?", ("replicate",)).fetchone()
            return json.loads(row["config"]) if row else {}
        finally:
            conn.close()

    warm = sqlite3.connect(db)

    def get_warm():
        row = warm.execute("SELECT config FROM provider_config WHERE provider = ?", ("replicate",)).fetchone()
        return json.loads(row[0]) if row else {}

    report("uncached_get", "python_sqlite3_simpletuner_get_sync", per_op(get_sync, 500))
    report("uncached_get", "python_sqlite3_warm_connection", per_op(get_warm, 5000))


if __name__ == "__main__":
    main(sys.argv[1])
