"""Timing helpers shared by the Python benchmark programs."""

import json
import time

BATCHES = 31


def median(xs):
    return sorted(xs)[len(xs) // 2]


def per_op(fn, ops):
    """The median over BATCHES batches of the time per call of `fn`, in ns."""
    out = []
    for _ in range(BATCHES):
        t0 = time.perf_counter_ns()
        for _ in range(ops):
            fn()
        out.append((time.perf_counter_ns() - t0) / ops)
    return median(out)


def report(workload, name, ns):
    """One JSON line, the format benches/report_pairs.py reads."""
    print(json.dumps({"workload": workload, "name": name, "median_ns": round(ns, 2)}))
