"""The leader-failover soak: ranks (bench_failover, C API) read a secret of
a 3-node OpenBao raft cluster (tests/vault/cluster.py) while this script
writes a new KV v2 version every 5 s and SIGKILLs the leader every 30 s,
restarting it (and unsealing it) 5 s later. Prints one JSON line.

  soak.py CLUSTER_DIR BENCH LIB_DIR LABEL SECONDS PROCS THREADS ADDRESSES FAULTS OUT_DIR
  soak.py report JSONL         the table of the runs' lines, side by side

ADDRESSES: "all" (vault_urls: every node) or "one" (vault_url: node 0, all
a build without clusters can take); FAULTS: "kill" (the leader killed every
30 s) or "calm" (none: the baseline). Standard library only.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "vault"))
import cluster  # noqa: E402

WRITE_EVERY, KILL_EVERY, DOWN_FOR = 5.0, 30.0, 5.0


def writer(state, stop, log):
    version = 1
    while not stop.wait(WRITE_EVERY):
        for url in state["urls"]:
            try:
                _, doc = cluster.call(url, "POST", "secret/data/simpletuner",
                                      {"data": {"HF_TOKEN": "hf_cluster_v%d" % (version + 1)}},
                                      token=state["root_token"], timeout=3)
                version = doc["data"]["version"]
                log["writes"] += 1
                break
            except Exception:  # noqa: BLE001 - a node down: the next one
                continue
        else:
            log["failed_writes"] += 1


def killer(dir, stop, log):
    while not stop.wait(KILL_EVERY):
        state = cluster.load(dir)
        n = cluster.leader(state)
        if n is None:
            continue
        killed = time.time()
        cluster.kill(state, n)
        state = cluster.load(dir)
        # The election: until another node says it is active.
        while time.time() - killed < 60 and cluster.leader(state) is None:
            time.sleep(0.1)
        log["elections_s"].append(round(time.time() - killed, 1))
        stop.wait(max(0.0, DOWN_FOR - (time.time() - killed)))
        cluster.restart(state, n)
        log["kills"] += 1


def main():
    if sys.argv[1] == "report":
        report(sys.argv[2])
        return
    dir, bench, lib, label, seconds, procs, threads, addresses, faults, out = sys.argv[1:11]
    state = cluster.load(dir)
    os.makedirs(out, exist_ok=True)
    ranks = tempfile.mkdtemp(prefix="ranks-", dir=out)
    config = {
        "providers": ["vault"],
        "vault_path": "simpletuner",
        "vault_kv_version": 2,
        "cache_ttl": 2,
        "node_cache": True,
        "node_cache_dir": tempfile.mkdtemp(prefix="node-", dir=out),
    }
    if addresses == "all":
        config["vault_urls"] = state["urls"]
    else:
        config["vault_url"] = state["urls"][0]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env.update({
        "ST_FAILOVER_CONFIG": json.dumps(config),
        "VAULT_ROLE_ID": state["role_id"],
        "VAULT_SECRET_ID": state["secret_id"],
        "LD_LIBRARY_PATH": lib,
        "AWS_EC2_METADATA_DISABLED": "true",
    })
    log = {"writes": 0, "failed_writes": 0, "kills": 0, "elections_s": []}
    stop = threading.Event()
    threads_ = [threading.Thread(target=writer, args=(state, stop, log))]
    if faults == "kill":
        threads_.append(threading.Thread(target=killer, args=(dir, stop, log)))
    for t in threads_:
        t.start()
    rc = subprocess.call([bench, seconds, procs, threads, "20", ranks], env=env)
    stop.set()
    for t in threads_:
        t.join()
    rows = [json.load(open(os.path.join(ranks, f))) for f in sorted(os.listdir(ranks))]
    per_node = {}
    logins, failed_logins, slowest_login = 0, 0, 0.0
    for r in rows:
        detail = " ".join(p.get("detail", "") for p in (r["providers"] or []) if p.get("name") == "vault")
        for url, n in re.findall(r"(http://[0-9.:]+) \([a-z]+, (\d+) requests", detail):
            per_node[url] = per_node.get(url, 0) + int(n)
        m = re.search(r"\((\d+) logins, (\d+) failed to reach a node, the slowest ([0-9.]+) s\)", detail)
        if m:
            logins += int(m.group(1))
            failed_logins += int(m.group(2))
            slowest_login = max(slowest_login, float(m.group(3)))
    total = lambda k: sum(r[k] for r in rows)  # noqa: E731
    print(json.dumps({
        "label": label, "seconds": float(seconds), "procs": int(procs), "threads": int(threads),
        "ranks_reported": len(rows), "exit": rc,
        "gets": total("gets"), "failed_gets": total("failed_gets"),
        "refreshes": total("refreshes"), "failed_refreshes": total("failed_refreshes"),
        "stale_reads": total("stale_reads"), "slow_gets": total("slow_gets"),
        "slowest_get_us": max((r["slowest_get_us"] for r in rows), default=0),
        "slowest_first_get_ms": max((r["slowest_first_get_ms"] for r in rows), default=0),
        "slowest_refresh_ms": max((r["slowest_refresh_ms"] for r in rows), default=0),
        "errors": sorted({r["first_error"] for r in rows if r["first_error"]}),
        "logins": logins, "failed_logins": failed_logins if logins else None, "slowest_login_s": slowest_login,
        "requests_per_node": [per_node.get(u, 0) for u in state["urls"]] if per_node else None,
        **log,
    }))


def report(path):
    runs = [json.loads(line) for line in open(path) if line.startswith("{")]
    median = lambda xs: sorted(xs)[len(xs) // 2] if xs else None  # noqa: E731
    rows = [
        ("ranks; minutes; leader kills (median election, s)", lambda r: "%d processes x %d threads; %.0f; %d (%s)" % (
            r["procs"], r["threads"], r["seconds"] / 60, r["kills"], median(r["elections_s"]) or "-")),
        ("gets; failed", lambda r: "%d; **%d**" % (r["gets"], r["failed_gets"])),
        ("refreshes on change events; failed", lambda r: "%d; **%d**" % (r["refreshes"], r["failed_refreshes"])),
        ("AppRole logins; failed to reach a node; slowest (s)", lambda r: "%d; **%d**; %.1f" % (
            r["logins"], r["failed_logins"], r["slowest_login_s"]) if r["failed_logins"] is not None else "not reported"),
        ("reads older than a version announced", lambda r: "**%d**" % r["stale_reads"]),
        ("slowest cached get (us); gets over 100 us", lambda r: "%.0f; %d (%.2f%%)" % (
            r["slowest_get_us"], r["slow_gets"], 100.0 * r["slow_gets"] / max(1, r["gets"]))),
        ("slowest refresh (ms)", lambda r: "%.0f" % r["slowest_refresh_ms"]),
        ("requests per node", lambda r: " / ".join(map(str, r["requests_per_node"])) if r["requests_per_node"] else "all to node 1"),
        ("errors seen", lambda r: ", ".join(r["errors"]) or "none"),
    ]
    print("| | " + " | ".join(r["label"] for r in runs) + " |")
    print("|---|" + "---:|" * len(runs))
    for name, cell in rows:
        print("| %s | %s |" % (name, " | ".join(str(cell(r)) for r in runs)))


if __name__ == "__main__":
    main()
