"""Prints the cache benchmark table (README "Benchmarks") from three sources:
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
    "st_secrets_rust_api": "st-secrets Rust API",
    "quick_cache": "quick_cache 0.7 (Rust)",
    "moka": "moka 0.12 sync (Rust)",
    "python_cachetools_ttlcache_rlock": "Python cachetools.TTLCache + RLock",
    "python_rlock_dict_seed_design": "Python RLock dict (SimpleTuner design)",
}


def criterion_median(workload, name):
    path = ROOT / "target" / "criterion" / workload / name / "new" / "estimates.json"
    return json.loads(path.read_text())["median"]["point_estimate"]


def main(paths):
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

    c = "st_secrets_c_abi_from_c" if "st_secrets_c_abi_from_c" in table else "st_secrets_c_abi"
    print()
    print("Ratios (hot get, medians; lower is better for st-secrets):")
    print("- C ABI / mutex-plus-copy floor: %.2fx (goal <= 2.5x)" % ratio(c, "floor_mutex_hashmap_copy"))
    print("- C ABI hot get: %.1f ns (goal <= 100 ns)" % table[c]["hot_get"])
    print("- C ABI / quick_cache: %.2fx (goal <= 3x)" % ratio(c, "quick_cache"))
    print("- C ABI / moka: %.2fx" % ratio(c, "moka"))
    for py in ("python_cachetools_ttlcache_rlock", "python_rlock_dict_seed_design"):
        if py in table:
            print("- %s / C ABI: %.1fx faster (goal >= 10x)" % (LABELS[py], 1 / ratio(c, py)))
    for w in ("set", "mixed_2t"):
        print("- %s: C ABI / floor %.2fx, C ABI / quick_cache %.2fx" % (
            w, ratio(c, "floor_mutex_hashmap_copy", w), ratio(c, "quick_cache", w)))


if __name__ == "__main__":
    main(sys.argv[1:])
