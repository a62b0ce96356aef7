"""Prints the cache benchmark table (docs/benchmarks.md) from three sources:
criterion's medians under target/criterion, and the JSON lines of the C and
Python benchmark programs (files given on the command line)."""

import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
WORKLOADS = ["hot_get", "set", "mixed_2t"]
RUST = [
    "floor_mutex_hashmap_copy",
    "st_secrets_c_abi",
    "st_secrets_rust_api",
    "quick_cache",
    "moka",
]
LABELS = {
    "floor_mutex_hashmap_copy": "floor: Mutex<HashMap> + copy (Rust)",
    "st_secrets_c_abi": "st-secrets C ABI, called from Rust",
    "st_secrets_c_abi_from_c": "st-secrets C ABI, called from C",
    "floor_mutex_hashmap_copy_from_c": "floor: Mutex<HashMap> + copy, behind a C ABI, called from C",
    "quick_cache_from_c": "quick_cache 0.7, behind a C ABI, called from C",
    "st_secrets_rust_api": "st-secrets Rust API",
    "quick_cache": "quick_cache 0.7 (Rust)",
    "moka": "moka 0.12 sync (Rust)",
    "python_cachetools_ttlcache_rlock": "Python cachetools.TTLCache + RLock",
    "python_rlock_dict_seed_design": "Python RLock dict (SimpleTuner design)",
}


def criterion_median(workload, name):
    path = ROOT / "target" / "criterion" / workload / name / "new" / "estimates.json"
    return json.loads(path.read_text())["median"]["point_estimate"]


def side_by_side(path):
    """The C program's own ratios (another build's run: `--side-only FILE`)."""
    table = {}
    for line in pathlib.Path(path).read_text().splitlines():
        if line.strip().startswith("{"):
            row = json.loads(line)
            table.setdefault(row["name"], {})[row["workload"]] = row["median_ns"]
    c = "st_secrets_c_abi_from_c"
    for w in WORKLOADS:
        print("- %s: st-secrets %.1f ns, floor %.1f, quick_cache %.1f: / floor %.2fx, / quick_cache %.2fx" % (
            w, table[c][w], table["floor_mutex_hashmap_copy_from_c"][w], table["quick_cache_from_c"][w],
            table[c][w] / table["floor_mutex_hashmap_copy_from_c"][w], table[c][w] / table["quick_cache_from_c"][w]))


def main(paths):
    if paths[:1] == ["--side-only"]:
        side_by_side(paths[1])
        return
    table = {}
    for name in RUST:
        table[name] = {w: criterion_median(w, name) for w in WORKLOADS}
    for path in paths:
        for line in pathlib.Path(path).read_text().splitlines():
            if line.strip().startswith("{"):
                row = json.loads(line)
                table.setdefault(row["name"], {})[row["workload"]] = row["median_ns"]

    print("| implementation | hot get (ns/op) | set (ns/op) | 2-thread mixed (ns/op) |")
    print("|---|---:|---:|---:|")
    for name, row in table.items():
        cells = " | ".join("%.1f" % row[w] if w in row else "-" for w in WORKLOADS)
        print("| %s | %s |" % (LABELS.get(name, name), cells))

    def ratio(a, b, w="hot_get"):
        return table[a][w] / table[b][w]

    c = "st_secrets_c_abi_from_c"
    print()
    print("Side by side in one C process, batches alternating (lower is better; the goals in parentheses):")
    for w, goal in (("hot_get", "goals <= 1.5x, <= 1.5x"), ("set", "no slower than before"),
                    ("mixed_2t", "goal vs quick_cache <= 1.5x")):
        print("- %s: st-secrets / floor %.2fx, st-secrets / quick_cache %.2fx (%s)" % (
            w, ratio(c, "floor_mutex_hashmap_copy_from_c", w), ratio(c, "quick_cache_from_c", w), goal))
    print()
    print("Against the Rust peers called in Rust (criterion, another moment of the run):")
    print("- hot get: C ABI from C / floor %.2fx, / quick_cache %.2fx, / moka %.2fx" % (
        ratio(c, "floor_mutex_hashmap_copy"), ratio(c, "quick_cache"), ratio(c, "moka")))
    print("- hot get, C ABI called from Rust / floor %.2fx" % ratio("st_secrets_c_abi", "floor_mutex_hashmap_copy"))
    for py in ("python_cachetools_ttlcache_rlock", "python_rlock_dict_seed_design"):
        if py in table:
            print("- the C ABI from C is %.1fx faster than %s" % (1 / ratio(c, py), LABELS[py]))

if __name__ == "__main__":
    main(sys.argv[1:])
