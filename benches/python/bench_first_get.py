"""The first get from a secrets file at the size limit: 465,000 keys of JSON
and 500,000 of YAML (4 MB each, under the default max_file_size of 4 MiB),
each a 4-character lowercase key (the worst case: every key also needs its
normalized name) with a 1-character value. Runs the C program's --first-get
in a fresh process 5 times per file, and SimpleTuner's way of reading the
file (json.load, yaml.safe_load) likewise, and prints a markdown table of the
medians: time from the manager's creation to the first answer, and the
process's peak resident memory. Arguments: a work directory, the C program."""

import json
import statistics
import subprocess
import sys

RUNS = 5
PEER = """
import json, resource, sys, time, yaml
t0 = time.perf_counter_ns()
with open(sys.argv[1], encoding="utf-8") as f:
    data = json.load(f) if sys.argv[1].endswith(".json") else yaml.safe_load(f)
assert data[sys.argv[2]] is not None
ns = time.perf_counter_ns() - t0
print(json.dumps({"ns": ns, "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def key(i):
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    return "".join(digits[(i // 36**p) % 36] for p in (3, 2, 1, 0))


def median_of(cmd):
    runs = [json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
            for _ in range(RUNS)]
    return statistics.median(r["ns"] for r in runs), statistics.median(r["rss_kb"] for r in runs)


def main(work, program):
    files = {
        "json": (465_000, lambda n: "{" + ",".join('"%s":1' % key(i) for i in range(n)) + "}"),
        "yaml": (500_000, lambda n: "".join("%s: 1\n" % key(i) for i in range(n))),
    }
    print("\n| first get, 4 MB file | st_secrets_c_abi | SimpleTuner's read (Python) | st_secrets_c_abi vs Python |")
    print("|---|---:|---:|---:|")
    for fmt, (n, text) in files.items():
        path = "%s/large.%s" % (work, fmt)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text(n))
        last = key(n - 1)
        ours = median_of([program, "--first-get", path, last])
        peer = median_of([sys.executable, "-c", PEER, path, last])
        reader = "json.load" if fmt == "json" else "yaml.safe_load"
        print("| %s, %d keys | %.2f s, %.0f MB | %.2f s, %.0f MB (%s) | %.2fx the time, %.2fx the memory |" % (
            fmt.upper(), n, ours[0] / 1e9, ours[1] / 1024, peer[0] / 1e9, peer[1] / 1024, reader,
            ours[0] / peer[0], ours[1] / peer[1]))


if __name__ == "__main__":
    main(*sys.argv[1:])
