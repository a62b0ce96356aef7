"""The "rotation window" table of docs/long-runs.md, from the BENCH lines
cli/tests/rotation.rs, tests/aws_moto.rs and cli/tests/provenance.rs print
(scripts/bench.sh rotation).

Usage: rotation_report.py ROTATION_TXT
"""

import json
import statistics
import sys

rows = []
for line in open(sys.argv[1]):
    at = line.find("BENCH {")
    if at >= 0:
        rows.append(json.loads(line[at + 6:]))


def ranks_cell(r):
    refused = [o["refused"] for o in r["outcomes"]]
    made = sum(o["connections"] for o in r["outcomes"])
    per_node = r["get_secret_value"] / r["nodes"]
    return (f"refused logins: **{sum(refused)}** (at most {max(refused)} a rank, "
            f"{sum(1 for n in refused if n)} of {len(refused)} ranks), {made} connections; "
            f"`GetSecretValue` **{per_node:g} per node**, `DescribeSecret` {r['describe_secret']}")


rotations = [r for r in rows if r["kind"] == "rotation"]
print("| PostgreSQL password rotated through moto's stages (`AWSCURRENT` moved after the window); "
      "ranks connect every 50 ms | this build: a refusal reported (`st_secrets_report_failure`) | "
      "peer: refresh and retry (`st_secrets_refresh`, as the caching libraries advise) |")
print("|---|---|---|")
for r in rotations:
    if r["mode"] != "report":
        continue
    peer = next((p for p in rotations if p["mode"] == "refresh" and p["nodes"] == r["nodes"]
                 and p["ranks"] == r["ranks"] and p["window"] == r["window"]), None)
    print(f"| {r['nodes']} node{'s' if r['nodes'] > 1 else ''} x {r['ranks']} ranks, window {r['window']:g} s | {ranks_cell(r)} | "
          f"{ranks_cell(peer) if peer else '-'} |")
unchanged = {r["rights"]: r for r in rows if r["kind"] == "unchanged"}
if unchanged:
    ours = unchanged.get("DescribeSecret")
    old = unchanged.get("GetSecretValue only")
    cell = (f"{ours['ttls']} TTLs: `GetSecretValue` **{ours['get_secret_value']}**, "
            f"`DescribeSecret` {ours['describe_secret']}") if ours else "-"
    peer = (f"{old['ttls']} TTLs: `GetSecretValue` **{old['get_secret_value']}** "
            f"(`DescribeSecret` refused once)") if old else "-"
    print(f"| an unchanged secret, `cache_ttl` 0.1 s, a get every 5 ms | {cell} | the same build with "
          f"credentials that may not call `DescribeSecret` (every refresh fetches, as before): {peer} |")
for r in rows:
    if r["kind"] == "provenance":
        print(f"| provenance: a KV v2 write on OpenBao while {r['nodes']} nodes x {r['ranks']} ranks get every "
              f"50 ms (`cache_ttl` {r['ttl']:g} s, the node cache) | every rank's record on the new version "
              f"{r['median_lag']:.2f} s after the write (median), the slowest {r['slowest_lag']:.2f} s; one "
              f"fingerprint per version across the ranks | - |")
