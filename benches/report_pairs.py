"""Prints a table of JSON-line measurements: one row per workload, one column
per implementation, and the ratio of the first implementation to each other.
Used by the secrets and crypto benchmarks."""

import json
import sys


def fmt(ns):
    return "%.1f ns" % ns if ns < 10_000 else "%.2f ms" % (ns / 1e6) if ns >= 1e6 else "%.2f us" % (ns / 1e3)


def ratio(ours, theirs, name):
    if ours <= theirs:
        return "%.2fx faster than %s" % (theirs / ours, name)
    return "%.2fx slower than %s" % (ours / theirs, name)


def main(paths):
    rows, names = {}, []
    for path in paths:
        for line in open(path, encoding="utf-8"):
            if line.startswith("{") and "median_ns" in line:
                r = json.loads(line)
                if r["name"] not in names:
                    names.append(r["name"])
                rows.setdefault(r["workload"], {})[r["name"]] = r["median_ns"]
    first = names[0]
    print("| workload | " + " | ".join(names) + " | %s vs others |" % first)
    print("|---|" + "---:|" * (len(names) + 1))
    for workload, r in rows.items():
        cells = [fmt(r[n]) if n in r else "-" for n in names]
        ratios = [ratio(r[first], r[n], n) for n in names[1:] if n in r and first in r]
        print("| %s | %s | %s |" % (workload, " | ".join(cells), "; ".join(ratios)))


if __name__ == "__main__":
    main(sys.argv[1:])
