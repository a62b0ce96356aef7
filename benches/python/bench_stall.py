"""Stall-free refresh: 4 threads call st_secrets_get (from C) on a key whose
remote value expires every 20 ms, against a loopback Vault that answers every
read 2 s late (a fault no real server produces on demand), for 1,000 TTLs
(20 s) each way. Before: values fetched by the first get past their TTL
(refresh_ahead 0: each expiry stalls its callers for the server's 2 s);
after: refreshed ahead in the background (the default, 0.75 of the TTL),
while callers keep the value they have; and, for the floor the machine
sets (a preempted thread's call counts as slow), the same calls on a value
that never expires. Prints a markdown
table of every call's latency (p50, p99, max) for a key that had a value.
Arguments: a work directory (unused), the C program."""

import http.server
import json
import subprocess
import sys
import threading
import time

DELAY_S = 2.0
TTL_S = 0.02


class SlowVault(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the http.server interface
        if self.path.endswith("/auth/token/lookup-self"):
            body = {"data": {"ttl": 0, "renewable": False}}
        else:
            time.sleep(DELAY_S)
            body = {"data": {"HF_TOKEN": "hf_stall_bench_value"}, "lease_duration": 0}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # a client gone mid-answer (the program ended during a refresh)


def main(_work, program):
    server = Server(("127.0.0.1", 0), SlowVault)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = "http://127.0.0.1:%d" % server.server_address[1]
    rows = []
    expiries = 1000
    for label, ahead, ttl in (("fetched by the get past the TTL", 0, TTL_S),
                              ("refreshed ahead (the default)", 0.75, TTL_S),
                              ("never expiring (the machine's floor: no refresh at all)", 0.75, 3600)):
        config = json.dumps({"providers": ["vault"], "vault_url": url, "vault_token": "bench-token",
                             "vault_kv_version": 1, "cache_ttl": ttl, "refresh_ahead": ahead})
        out = subprocess.run([program, "--stall", config, str(expiries), str(TTL_S)],
                             check=True, capture_output=True, text=True).stdout
        r = json.loads(out)
        rows.append("| %s | %d (%d failed) | %.1f us | %.1f us | %.1f us |" % (
            label, r["calls"], r["failed"], r["p50_ns"] / 1e3, r["p99_ns"] / 1e3,
            r["max_ns"] / 1e3))
    server.shutdown()
    print("\n| a cached remote key, server 2 s late, 4 threads, 1,000 TTLs of 20 ms | calls "
          "| p50 | p99 | max |")
    print("|---|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main(*sys.argv[1:])
