"""Initialises and unseals a fresh RustyVault through its HTTP API (as the
Vault API documents: sys/init, sys/unseal), writes the test secrets, and
writes what the tests need as JSON. Standard library only.

Usage: rusty_setup.py VAULT_URL OUT_JSON
"""

import json
import sys
import urllib.error
import urllib.request

URL, OUT = sys.argv[1].rstrip("/"), sys.argv[2]
FIELDS = {"HF_TOKEN": "hf_rusty_value", "REPLICATE_API_TOKEN": "r8_rusty_value"}


def call(method, path, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(URL + "/v1/" + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("X-Vault-Token", token)
    with urllib.request.urlopen(req, timeout=10) as r:
        text = r.read()
        return json.loads(text) if text else None


init = call("PUT", "sys/init", {"secret_shares": 1, "secret_threshold": 1})
status = call("PUT", "sys/unseal", {"key": init["keys"][0]})
assert status["sealed"] is False, status
root = init["root_token"]
call("POST", "secret/simpletuner", FIELDS, root)
call("POST", "secret/team/other", {"HF_TOKEN": "hf_other_path"}, root)
assert call("GET", "secret/simpletuner", token=root)["data"] == FIELDS
try:
    call("GET", "secret/simpletuner", token="not-a-token")
except urllib.error.HTTPError as e:
    assert e.code == 403, e.code
else:
    raise SystemExit("RustyVault accepted a wrong token")
with open(OUT, "w") as f:
    json.dump({"url": URL, "root_token": root, "fields": FIELDS}, f)
print("RustyVault set up:", URL)
