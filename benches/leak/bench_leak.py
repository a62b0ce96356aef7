"""The leak guard, measured (scripts/bench.sh leak): prints the markdown
tables of docs/benchmarks.md's "leak" block.

1. A real run directory: benches' copy of the Python tests' trainer (wandb
   offline, tensorboardX, safetensors, a checkpoint in torch.save's zip
   layout) run without and with st_secrets.redact, from the wheel installed
   in a fresh venv; files holding the canary, by a byte search and by
   `st-secrets scan`.
2. The planted corpus of cli/tests/scan.rs (4 shapes x 6 encodings x 9
   containers): what `st-secrets scan`, detect-secrets (PyPI) and secretlint
   (npm, recommended preset) find, per file.
3. 1 GiB of clean data (random bytes, log text, a safetensors file made
   here): finds (false positives) and throughput from the page cache, median
   of 5, beside `cat` and GNU grep searching the four raw values; the peers'
   throughput and finds on a 16 MiB sample of the text.
4. The canary job (tests/interop/canary_job.py): a canary's hits in each
   channel of a job started by references, `run --as-files`, `run`'s
   environment and a plain `export`.

Usage: bench_leak.py ROOT OUT (ROOT: the checkout, with target/release/st-secrets and
libst_secrets.so built). Last: the canary job (tests/interop/canary_job.py)."""

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

ROOT, OUT = Path(sys.argv[1]), Path(sys.argv[2])
TOOL = ROOT / "target/release/st-secrets"
CANARY = "hf_CanaryAbCdEfGhIjKlMnOpQrStUv01"
BIN = Path(sys.executable).parent
GiB = 1 << 30


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, timeout=3600, **kw)


def home_with(secrets_json: Path) -> Path:
    home = OUT / "home"
    (home / ".simpletuner").mkdir(parents=True, exist_ok=True)
    target = home / ".simpletuner/secrets.json"
    shutil.copy(secrets_json, target)
    target.chmod(0o600)
    return home


def scan(home, *paths, env=None):
    e = {"HOME": str(home), "PATH": "/usr/bin:/bin", "AWS_EC2_METADATA_DISABLED": "true", **(env or {})}
    p = run([str(TOOL), "--json", "scan", *map(str, paths)], env=e)
    assert p.returncode in (0, 1), p.stderr.decode()
    return json.loads(p.stdout)


def files_holding(d: Path, value: bytes):
    return sorted(str(f.relative_to(d)) for f in d.rglob("*")
                  if f.is_file() and not f.is_symlink() and value in f.read_bytes())


def run_directory():
    work = OUT / "rundir"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    wheel = run(["bash", str(ROOT / "scripts/package.sh"), "wheel", str(work / "wheels")], cwd=ROOT)
    assert wheel.returncode == 0, wheel.stderr.decode()[-2000:]
    wheel_path = wheel.stdout.decode().strip().splitlines()[-1]
    venv = work / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    pins = [l for l in (ROOT / "tools/requirements-test.txt").read_text().split()
            if l.split("==")[0] in ("wandb", "tensorboardX", "safetensors", "numpy")]
    p = run([str(venv / "bin/pip"), "install", "-q", "--disable-pip-version-check", wheel_path, *pins])
    assert p.returncode == 0, p.stderr.decode()[-2000:]
    rows = []
    for guard in (False, True):
        d = work / ("guarded" if guard else "bare")
        d.mkdir()
        env = {"HOME": str(OUT / "home"), "PATH": f"{venv}/bin:/usr/bin:/bin", "HF_TOKEN": CANARY,
               "LEAK_GUARD": "1" if guard else "0", "WANDB_SILENT": "true", "LANG": "C.UTF-8",
               "AWS_EC2_METADATA_DISABLED": "true"}
        p = run([str(venv / "bin/python"), str(ROOT / "bindings/python/tests/leak/trainer.py"), str(d)],
                env=env, cwd=work)
        assert p.returncode == 0, p.stderr.decode()[-2000:]
        held = files_holding(d, CANARY.encode())
        report = scan(OUT / "home", d, env={"HF_TOKEN": CANARY})
        found = {h["path"] for h in report["found"]}
        console = (p.stdout + p.stderr).count(CANARY.encode())
        rows.append((guard, len(list(f for f in d.rglob("*") if f.is_file())), held, len(found), console))
    shutil.rmtree(work)
    print("| the trainer's run directory | files written | files holding the token (byte search) "
          "| files `st-secrets scan` flags | token on the console |")
    print("|---|---:|---:|---:|---:|")
    for guard, total, held, flagged, console in rows:
        what = "with `redact.install()` + `sanitize()`" if guard else "as written (no guard)"
        print(f"| {what} | {total} | {len(held)} | {flagged} | {console} |")
    print()
    def kind(f):
        name = Path(f).name
        if "tfevents" in name:
            return "TensorBoard event files"
        return "W&B's run record (`.wandb`)" if name.endswith(".wandb") else f"`{name}`"
    print("Files holding it without the guard: " + ", ".join(sorted({kind(f) for f in rows[0][2]})) + ".")
    print()


def secretlint_dir():
    d = OUT / "secretlint"
    if not (d / "node_modules/.bin/secretlint").exists():
        d.mkdir(exist_ok=True)
        (d / "package.json").write_text('{"private": true}')
        p = run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error",
                 "secretlint@12.0.0", "@secretlint/secretlint-rule-preset-recommend@12.0.0"], cwd=d)
        assert p.returncode == 0, p.stderr.decode()
    (d / ".secretlintrc.json").write_text('{"rules":[{"id":"@secretlint/secretlint-rule-preset-recommend"}]}')
    return d


def detect_secrets_files(target: Path):
    """Files (relative) detect-secrets reports, and the seconds it took."""
    t = time.perf_counter()
    p = run([str(BIN / "detect-secrets"), "scan", "--all-files", str(target)], cwd=target)
    seconds = time.perf_counter() - t
    assert p.returncode == 0, p.stderr.decode()
    results = json.loads(p.stdout)["results"]
    return {str(Path(f)) for f, hits in results.items() if hits}, seconds


def secretlint_files(target: Path, sl: Path):
    t = time.perf_counter()
    # The unix format: one "path:line:column: message" line per find (its
    # JSON format embeds each file's content, which breaks on binary files).
    p = run([str(sl / "node_modules/.bin/secretlint"), "--format", "unix", "--secretlintrc",
             str(sl / ".secretlintrc.json"), f"{target}/**/*"], cwd=target)
    seconds = time.perf_counter() - t
    assert p.returncode in (0, 1), p.stderr.decode()[-2000:]
    found = set()
    for line in p.stdout.decode(errors="replace").splitlines():
        m = re.match(r"^(/.+?):\d+:\d+: ", line)
        if m:
            found.add(str(Path(m.group(1)).relative_to(target)))
    return found, seconds


def corpus():
    keep = OUT / "planted"
    p = run(["cargo", "test", "--release", "-q", "-p", "st-secrets-cli", "--test", "scan", "--",
             "every_shape_in_every_encoding_is_found_inside_every_container", "--exact"], cwd=ROOT,
            env=dict(os.environ, ST_LEAK_CORPUS=str(keep)))
    assert p.returncode == 0, p.stderr.decode()[-3000:]
    manifest = json.loads((keep / "manifest.json").read_text())
    home = home_with(keep / "secrets.json")
    report = scan(home, keep / "corpus")
    ours = {(str(Path(h["path"]).relative_to(keep / "corpus")), h["key"]) for h in report["found"]}
    ds, _ = detect_secrets_files(keep / "corpus")
    sl, _ = secretlint_files(keep / "corpus", secretlint_dir())
    total = len(manifest)
    found = {"st-secrets scan": 0, "detect-secrets 1.5.0": 0, "secretlint 12.0.0": 0}
    by_kind = {}
    for m in manifest:
        f = m["file"]
        kind = container_of(f)
        hit = {"st-secrets scan": (f, m["key"]) in ours, "detect-secrets 1.5.0": f in ds, "secretlint 12.0.0": f in sl}
        for tool, h in hit.items():
            found[tool] += h
            by_kind.setdefault(kind, {}).setdefault(tool, 0)
            by_kind[kind][tool] += h
        by_kind[kind].setdefault("n", 0)
        by_kind[kind]["n"] += 1
    tools = list(found)
    print("| planted corpus: 4 shapes x 6 encodings, found per container | " + " | ".join(tools) + " |")
    print("|---|" + "---:|" * len(tools))
    for kind, counts in sorted(by_kind.items()):
        print(f"| {kind} | " + " | ".join(f"{counts.get(t, 0)}/{counts['n']}" for t in tools) + " |")
    print("| **all** | " + " | ".join(f"**{found[t]}/{total}** ({100 * found[t] / total:.0f}%)" for t in tools) + " |")
    print()
    return home


def container_of(f):
    name = Path(f).name
    for suffix, kind in ((".tar.gz", "tar.gz"), (".gz", "gzip"), (".tar", "tar"), (".safetensors", "safetensors"),
                         (".wandb", "W&B run record"), ("training_args.bin", "zip, stored (torch.save)"),
                         (".zip", "zip, deflated"), (".log", "plain text")):
        if name.endswith(suffix):
            return kind
    return "TensorBoard event file" if "tfevents" in name else name


def clean(home):
    d = OUT / "clean"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir()
    rng = np.random.default_rng(7)
    (d / "random.bin").write_bytes(rng.bytes(GiB // 2))
    words = np.array("step loss lr grad norm epoch batch token sample eval accuracy warmup"
                     " checkpoint saved model to /data/run/output learning rate".split())
    with open(d / "train.log", "w") as f:
        written, i = 0, 0
        while written < GiB // 4:
            line = " ".join(rng.choice(words, 8)) + f" {i} {rng.random():.6f} {rng.bytes(8).hex()}\n"
            written += f.write(line)
            i += 1
    save_file({f"layer{i}": rng.standard_normal((2048, 2048)).astype(np.float32) for i in range(16)},
              str(d / "model.safetensors"), metadata={"epoch": "3", "lr": "1e-4"})
    size = sum(f.stat().st_size for f in d.iterdir())
    run(["cat", *map(str, d.iterdir())])  # into the page cache

    def timed(cmd, **kw):
        times = []
        for _ in range(5):
            t = time.perf_counter()
            p = run(cmd, **kw)
            times.append(time.perf_counter() - t)
        return statistics.median(times), p

    scan_s, p = timed([str(TOOL), "--json", "scan", str(d)],
                      env={"HOME": str(home), "PATH": "/usr/bin:/bin", "AWS_EC2_METADATA_DISABLED": "true"})
    report = json.loads(p.stdout)
    cat_s, _ = timed(["sh", "-c", f"cat {d}/* > /dev/null"])
    values = "\n".join(json.loads((OUT / "home/.simpletuner/secrets.json").read_text()).values())
    (OUT / "values.txt").write_text(values + "\n")
    grep_s, _ = timed(["grep", "-a", "-c", "-F", "-f", str(OUT / "values.txt"), "-r", str(d)])
    (OUT / "values.txt").unlink()
    sample = OUT / "sample"
    shutil.rmtree(sample, ignore_errors=True)
    sample.mkdir()
    with open(d / "train.log", "rb") as f:
        (sample / "train.log").write_bytes(f.read(16 << 20))
    ds, ds_s = detect_secrets_files(sample)
    ds_report = json.loads(run([str(BIN / "detect-secrets"), "scan", "--all-files", str(sample)], cwd=sample).stdout)
    ds_hits = sum(len(v) for v in ds_report["results"].values())
    sl, sl_s = secretlint_files(sample, secretlint_dir())
    mb = 16 << 20
    print(f"| clean data | bytes | finds (false positives) | throughput |")
    print("|---|---:|---:|---:|")
    print(f"| `st-secrets scan`: random bytes, log text, a safetensors file | {size:,} | "
          f"{len(report['found'])} | {size / scan_s / 1e9:.2f} GB/s |")
    print(f"| `cat > /dev/null` (reading them) | {size:,} | - | {size / cat_s / 1e9:.2f} GB/s |")
    print(f"| `grep -F -f` the four raw values (no encoded forms) | {size:,} | - | {size / grep_s / 1e9:.2f} GB/s |")
    print(f"| detect-secrets 1.5.0 on 16 MiB of the log text | {mb:,} | {ds_hits} | {mb / ds_s / 1e6:.1f} MB/s |")
    print(f"| secretlint 12.0.0 on 16 MiB of the log text | {mb:,} | {len(sl)} files | {mb / sl_s / 1e6:.1f} MB/s |")
    print()
    print(f"`st-secrets scan` looked for {report['values']} byte strings (4 values and their encoded forms).")
    print()
    shutil.rmtree(d)
    shutil.rmtree(sample)


def canary_job():
    """The canary job of tests/interop/canary_job.py, four ways, against the
    release build."""
    sys.path.insert(0, str(ROOT / "tests/interop"))
    import canary_job

    work = OUT / "canary"
    shutil.rmtree(work, ignore_errors=True)
    print(canary_job.table(TOOL, ROOT / "target/release/libst_secrets.so", work))
    print()
    print("One launcher script and two ranks using the C ABI; the hits are `st-secrets scan`'s "
          "(raw and encoded forms) in each channel, taken while the ranks run.")
    print()
    shutil.rmtree(work, ignore_errors=True)


home = corpus()
clean(home)
run_directory()
canary_job()
