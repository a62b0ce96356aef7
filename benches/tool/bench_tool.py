"""The `st-secrets` tool's benchmark for shell launchers (scripts/bench.sh tool).

1. Start-up: `st-secrets run -- true` (masked and --no-mask) against running
   `true` directly; the commands are started with posix_spawn and waited for,
   alternating, and the medians of each are printed.
2. Throughput of a 1 GiB stream of text (base64 lines, a secret value every
   MiB): `st-secrets run -- cat FILE` (masked) against `cat FILE` alone, into
   /dev/null and into a consumer reading a pipe (`wc -l`), with one plain pipe
   hop (`cat FILE | cat`) beside it: a masking filter is such a hop plus the
   search. Medians of 9 runs, the file in the page cache.

Usage: bench_tool.py TOOL WORKDIR; prints JSON lines and a table.
"""

import base64
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

SECRET = "hf_bench_SECRET_value_0123456789abcdef"
GIB = 1 << 30


def spawn_wait_ns(argv, env):
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        start = time.perf_counter_ns()
        pid = os.posix_spawn(argv[0], argv, env, file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1)])
        _, status = os.waitpid(pid, 0)
        elapsed = time.perf_counter_ns() - start
    finally:
        os.close(devnull)
    assert os.waitstatus_to_exitcode(status) == 0, argv
    return elapsed


def startup(tool, env, runs=200):
    true = shutil.which("true")
    cases = {
        "true": [true],
        "st-secrets run -- true": [tool, "run", "--", true],
        "st-secrets run --no-mask -- true": [tool, "run", "--no-mask", "--", true],
    }
    times = {name: [] for name in cases}
    for _ in range(runs):
        for name, argv in cases.items():
            times[name].append(spawn_wait_ns(argv, env))
    return {name: statistics.median(t) for name, t in times.items()}


def make_stream(path):
    line_block = base64.b64encode(os.urandom(3 * 1024 * 768)).decode()
    lines = [line_block[i : i + 100] for i in range(0, len(line_block), 100)]
    mib = ("\n".join(lines) + "\n").encode()[: (1 << 20) - len(SECRET) - 1]
    chunk = mib + SECRET.encode() + b"\n"
    with open(path, "wb") as f:
        for _ in range(GIB // len(chunk)):
            f.write(chunk)
        f.write(b"x" * (GIB - f.tell()))


def throughput(tool, env, path, runs=9):
    q = lambda s: "'" + s + "'"
    cases = {
        "cat > /dev/null": f"cat {q(path)} > /dev/null",
        "cat | cat > /dev/null (one pipe hop)": f"cat {q(path)} | cat > /dev/null",
        "st-secrets run --no-mask -- cat > /dev/null": f"{q(tool)} run --no-mask -- cat {q(path)} > /dev/null",
        "st-secrets run -- cat > /dev/null (masked)": f"{q(tool)} run -- cat {q(path)} > /dev/null",
        "cat | wc -l": f"cat {q(path)} | wc -l > /dev/null",
        "st-secrets run -- cat | wc -l (masked)": f"{q(tool)} run -- cat {q(path)} | wc -l > /dev/null",
    }
    subprocess.run(["cat", path], stdout=subprocess.DEVNULL, check=True)  # into the page cache
    times = {name: [] for name in cases}
    for _ in range(runs):
        for name, script in cases.items():
            start = time.perf_counter_ns()
            subprocess.run(["sh", "-c", script], env=env, check=True)
            times[name].append(time.perf_counter_ns() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def main(tool, work):
    home = os.path.join(work, "home")
    os.makedirs(os.path.join(home, ".simpletuner"), exist_ok=True)
    secrets = os.path.join(home, ".simpletuner", "secrets.json")
    with open(secrets, "w") as f:
        json.dump({"HF_TOKEN": SECRET, "WANDB_API_KEY": "wandb_bench_value_42", "REPLICATE_API_TOKEN": "r8_bench"}, f)
    os.chmod(secrets, 0o600)
    env = {"HOME": home, "PATH": os.environ["PATH"]}

    up = startup(tool, env)
    for name, ns in up.items():
        print(json.dumps({"bench": "startup", "name": name, "median_ns": ns}))
    path = os.path.join(work, "stream.txt")
    make_stream(path)
    tp = throughput(tool, env, path)
    os.remove(path)
    for name, ns in tp.items():
        print(json.dumps({"bench": "throughput", "name": name, "median_ns": ns, "mb_per_s": GIB / 1e6 / (ns / 1e9)}))

    base = up["true"]
    print("\n| start-up (median of 200) | time | over `true` |")
    print("|---|---:|---:|")
    for name, ns in up.items():
        print("| `%s` | %.2f ms | %s |" % (name, ns / 1e6, "-" if name == "true" else "+%.2f ms (%.1fx)" % ((ns - base) / 1e6, ns / base)))
    print("\n| 1 GiB stream (median of 9) | MB/s | vs `cat > /dev/null` | vs one pipe hop |")
    print("|---|---:|---:|---:|")
    plain, hop = tp["cat > /dev/null"], tp["cat | cat > /dev/null (one pipe hop)"]
    for name, ns in tp.items():
        mbs = GIB / 1e6 / (ns / 1e9)
        cell = name.replace("|", "\\|")  # a pipe inside a table cell
        print("| `%s` | %.0f | %.0f%% | %.0f%% |" % (cell, mbs, 100 * plain / ns, 100 * hop / ns))
    into_wc = tp["cat | wc -l"] / tp["st-secrets run -- cat | wc -l (masked)"]
    print("\nMasked throughput into a consumer (`| wc -l`): %.0f%% of plain `cat | wc -l`." % (100 * into_wc))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
