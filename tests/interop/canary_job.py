"""A canary across the channels a training job leaks through.

One job, started four ways, each rank looking up the canary secret through
the library's C ABI (as a C or C++ launcher's rank does):

  reference  the documented way: the launcher exports HF_TOKEN=st://hf-token
             and every rank's get resolves it (the value stays in the
             secrets file, where a node's store would be)
  as-files   the launcher wraps the ranks in `st-secrets run --as-files`:
             the ranks get HF_TOKEN_PATH, a 0600 file
  run-env    the launcher wraps them in `st-secrets run --only hf-token`:
             HF_TOKEN holds the value in the ranks' environment
  export     the launcher script says `export HF_TOKEN=<value>`

While the ranks run, the harness reads /proc/PID/environ of every process
of the job and `ps eww`, and dumps rank 1 with gdb's gcore; the launcher
writes a job description (its environment, as Slurm's job_env or a Ray job
records it) and keeps its shell history; rank 0 starts a W&B run (offline)
with its argparse namespace as config, where `--hf_token` defaults to the
HF_TOKEN variable, as SimpleTuner's trainer does. Every channel is then
scanned with `st-secrets scan` (the leak guard's matcher: raw and encoded
forms) and the hits counted.

  canary_job.py --table BIN LIB      prints the markdown table (benchmark)
  import canary_job; canary_job.run_job(mode, workdir, bin, lib)   (tests)
"""

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

MODES = ["reference", "as-files", "run-env", "export"]
CHANNELS = [
    ("environ", "/proc/PID/environ of the launcher and every rank"),
    ("ps", "`ps eww` of the job's processes"),
    ("core", "a `gcore` dump of rank 1"),
    ("job", "the job description (JSON) the launcher wrote"),
    ("wandb", "W&B's offline run directory (config, metadata, logs)"),
    ("history", "the launching shell's history file"),
]

RANK = r'''
import argparse, ctypes, os, sys, time
rank, lib_path, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
parser = argparse.ArgumentParser()
parser.add_argument("--hf_token", default=os.environ.get("HF_TOKEN"))
args = parser.parse_args([])
lib = ctypes.CDLL(lib_path)
lib.st_secrets_new.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p]
lib.st_secrets_get.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p]
lib.st_buf_str.argtypes = [ctypes.c_void_p]
lib.st_buf_str.restype = ctypes.c_void_p
lib.st_buf_free.argtypes = [ctypes.c_void_p]
libc = ctypes.CDLL(None)
libc.strlen.argtypes = [ctypes.c_void_p]
libc.strlen.restype = ctypes.c_size_t
m = ctypes.c_void_p()
assert lib.st_secrets_new(b"{}", ctypes.byref(m), None) == 0
buf = ctypes.c_void_p()
rc = lib.st_secrets_get(m, b"HF_TOKEN", ctypes.byref(buf), None)
# The value is used where it lies (here: its length), never copied into Python.
length = libc.strlen(lib.st_buf_str(buf)) if rc == 0 else -1
lib.st_buf_free(buf)
if rank == 0:
    import wandb
    run = wandb.init(mode="offline", project="canary", dir=out, config=vars(args))
    run.log({"loss": 0.5})
    run.finish()
with open(f"{out}/rank{rank}.ready", "w") as f:
    f.write(f"{os.getpid()} {rc} {length}\n")
while not os.path.exists(f"{out}/stop"):
    time.sleep(0.05)
'''

LAUNCHER = r'''
set -o history
HISTFILE="$OUT/history"
{export_line}
python3 -c 'import json, os; json.dump({{"job": "canary", "env": dict(os.environ)}}, open(os.environ["OUT"] + "/job.json", "w"))'
echo $$ > "$OUT/launcher.pid"
{wrap} bash -c 'python3 "$OUT/rank.py" 0 "$LIB" "$OUT" & python3 "$OUT/rank.py" 1 "$LIB" "$OUT" & wait'
history -w "$HISTFILE"
'''


def scan(binary, env, paths):
    """The leak guard's hits in `paths` (each a file or directory)."""
    p = subprocess.run([binary, "--json", "scan", *map(str, paths)], env=env,
                       capture_output=True, check=False)
    assert p.returncode in (0, 1), p.stderr.decode()
    return len(json.loads(p.stdout)["found"])


def run_job(mode, work, binary, lib):
    """Runs the job `mode` in `work`; returns {channel: hits}, and the
    ranks' answers (pid, result code, value length)."""
    work = Path(work)
    home, out = work / "home", work / "out"
    (home / ".simpletuner").mkdir(parents=True)
    out.mkdir()
    canary = "hf_" + secrets.token_hex(20)
    secrets_file = home / ".simpletuner" / "secrets.json"
    secrets_file.write_text(json.dumps({"hf-token": canary}))
    secrets_file.chmod(0o600)
    (out / "rank.py").write_text(RANK)
    export_line, wrap = {
        "reference": ("export HF_TOKEN=st://hf-token", ""),
        "as-files": ("", f"{binary} run --as-files --only hf-token --"),
        "run-env": ("", f"{binary} run --only hf-token --"),
        "export": (f"export HF_TOKEN={canary}", ""),
    }[mode]
    (out / "launch.sh").write_text(LAUNCHER.format(export_line=export_line, wrap=wrap))
    # The ranks' python3 is this interpreter's (its venv has wandb).
    path = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]
    env = {"HOME": str(home), "PATH": path, "OUT": str(out), "LIB": str(lib),
           "WANDB_SILENT": "true", "WANDB_DISABLE_GIT": "true", "LANG": "C.UTF-8",
           "AWS_EC2_METADATA_DISABLED": "true", "TMPDIR": os.environ.get("TMPDIR", "/tmp")}
    launcher = subprocess.Popen(["bash", str(out / "launch.sh")], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not all((out / f"rank{r}.ready").exists() for r in (0, 1)):
            assert launcher.poll() is None, launcher.stdout.read().decode(errors="replace")
            assert time.monotonic() < deadline, "the ranks did not start"
            time.sleep(0.05)
        ranks = [(out / f"rank{r}.ready").read_text().split() for r in (0, 1)]
        pids = [int((out / "launcher.pid").read_text())] + [int(r[0]) for r in ranks]
        # Every process of the job: the launcher's descendants.
        tree = subprocess.run(["ps", "-o", "pid=", "--ppid", ",".join(map(str, pids))],
                              capture_output=True, text=True).stdout.split()
        pids = sorted(set(pids) | {int(p) for p in tree})
        channels = work / "channels"
        channels.mkdir()
        environ = b""
        for pid in pids:
            try:
                environ += Path(f"/proc/{pid}/environ").read_bytes() + b"\n"
            except OSError:
                pass
        (channels / "environ").write_bytes(environ)
        ps = subprocess.run(["ps", "eww", "-p", ",".join(map(str, pids))], capture_output=True)
        (channels / "ps").write_bytes(ps.stdout)
        subprocess.run(["gcore", "-o", str(channels / "core"), str(ranks[1][0])],
                       capture_output=True, check=True)
    finally:
        (out / "stop").write_text("")
        launcher.wait(timeout=60)
    core = next(channels.glob("core.*"))
    hits = {
        "environ": scan(binary, env, [channels / "environ"]),
        "ps": scan(binary, env, [channels / "ps"]),
        "core": scan(binary, env, [core]),
        "job": scan(binary, env, [out / "job.json"]),
        "wandb": scan(binary, env, [out / "wandb"]),
        "history": scan(binary, env, [out / "history"]),
    }
    core.unlink()
    return hits, [(int(p), int(rc), int(n)) for p, rc, n in ranks], len(canary)


def table(binary, lib, base):
    rows = {}
    for mode in MODES:
        work = Path(base) / mode
        work.mkdir(parents=True)
        rows[mode], _, _ = run_job(mode, work, binary, lib)
    head = "| channel (hits of the canary, raw or encoded) | " + " | ".join(
        ["reference (documented)", "`run --as-files`", "`run` (environment)", "plain `export`"]) + " |"
    lines = [head, "|---|" + "---:|" * len(MODES)]
    for name, what in CHANNELS:
        lines.append(f"| {what} | " + " | ".join(str(rows[m][name]) for m in MODES) + " |")
    lines.append("| total | " + " | ".join(str(sum(rows[m].values())) for m in MODES) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] != "--table":
        sys.exit("usage: canary_job.py --table BIN LIB WORKDIR")
    print(table(sys.argv[2], sys.argv[3], sys.argv[4]))
