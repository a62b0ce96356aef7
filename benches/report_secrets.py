"""Prints the secrets benchmark table from the JSON lines given as files."""

import json
import sys

LABELS = {
    "st_secrets_c_abi": "st-secrets C ABI (st_secrets_get + st_buf_free)",
    "python_os_environ_get": "Python os.environ.get",
    "python_dict_after_json_load": "Python dict.get after json.load (SimpleTuner)",
}


def main(paths):
    rows = {}
    for path in paths:
        for line in open(path, encoding="utf-8"):
            if line.startswith("{"):
                r = json.loads(line)
                rows.setdefault(r["name"], {})[r["workload"]] = r["median_ns"]
    print("| implementation | env key (ns/op) | cached file key (ns/op) |")
    print("|---|---:|---:|")
    for name, r in rows.items():
        cells = " | ".join("%.1f" % r[w] if w in r else "-" for w in ("env_key", "file_key"))
        print("| %s | %s |" % (LABELS.get(name, name), cells))
    c = rows["st_secrets_c_abi"]
    print()
    print("- cached file get: %.1f ns (goal <= 300 ns)" % c["file_key"])
    print("- env get / os.environ.get: %.2fx" % (c["env_key"] / rows["python_os_environ_get"]["env_key"]))
    print("- file get / dict.get after json.load: %.2fx"
          % (c["file_key"] / rows["python_dict_after_json_load"]["file_key"]))


if __name__ == "__main__":
    main(sys.argv[1:])
