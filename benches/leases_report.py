"""The "Credentials that die with the job" table of docs/benchmarks.md, from
the BENCH lines cli/tests/leases.rs prints (scripts/bench.sh leases).

Usage: leases_report.py LEASES_TXT
"""

import json
import sys

rows = []
for line in open(sys.argv[1]):
    if line.startswith("BENCH "):
        rows.append(json.loads(line[6:]))
    elif "SIGKILL of run: no lease and no role " in line and not any(r["kind"] == "killed" for r in rows):
        # The test's own line (before it printed a BENCH line for it).
        after = line.split("no lease and no role ")[1].split("s after")[0]
        rows.append({"kind": "killed", "gone_after": float(after)})
ranks = [r for r in rows if r["kind"] == "ranks"]
peer = next((r for r in rows if r["kind"] == "peer"), None)
print("| credentials that die with the job | this build: `st-secrets run` per node, the library in each rank | peer: `bao agent` template, 8 ranks reading its file |")
print("|---|---|---|")
for r in ranks:
    ours = (f"connections {r['connections']}, refused **{r['refused']}**, generations {r['generations']}, "
            f"{r['issued']} leases; then no lease, no role, {r['tokens_left']} login tokens, "
            f"{r['gone_after']:.2f} s after")
    theirs = "-"
    if peer and r["nodes"] == 1 and r["seconds"] == peer["seconds"]:
        theirs = (f"connections {peer['connections']}, refused **{peer['refused']}**, generations "
                  f"{peer['generations']}, {peer['issued']} leases; 2 s after its exit: "
                  f"**{peer['leases_left']} lease, {peer['roles_left']} role left**")
    nodes = f"{r['nodes']} node{'s' if r['nodes'] > 1 else ''}"
    print(f"| {nodes} x {r['ranks']} ranks, a connection every 100 ms, "
          f"{r['seconds']} s (TTL 4 s, max 12 s) | {ours} | {theirs} |")
endings = [r for r in rows if r["kind"] == "ending"]
if endings:
    cells = "; ".join(f"{e['label']} {e['gone_after']:.2f} s" for e in endings)
    print(f"| no lease and no `v-*` role left after the command's ending | {cells} | - |")
for r in rows:
    if r["kind"] == "killed":
        print(f"| SIGKILL of `run` and its command (the one exception) | gone {r['gone_after']:.2f} s later: "
              "the lease's TTL | - |")
    if r["kind"] == "served":
        x = r["result"]
        print(f"| `run --aws-credentials`: boto3 every 0.2 s and the AWS CLI every 2 s read S3 on moto while "
              f"the key is replaced {r['rotations']} times, each old key deleted | boto3 {x['calls']} reads, "
              f"**{x['errors']}** failed; AWS CLI {x['cli_calls']} reads, **{x['cli_errors']}** failed; "
              f"{x['keys_seen']} keys seen; without the token HTTP {x['no_token']}, another token "
              f"HTTP {x['other_token']} | - |")
