"""The leak guard's matcher at scale (scripts/bench.sh matcher): prints the
markdown table of docs/benchmarks.md's "matcher" block.

`st-secrets scan` of a 64 MiB log (from the page cache) and `st-secrets run
-- true` (which builds the masking matcher for every value and exits), with
a secrets file of 512, 4,096 and 40,000 random tokens: the wall time and
the largest resident set of the tool's process (wait4's ru_maxrss), median
of 3 runs, for this build and, when given, another build's tool beside it.
Each token brings its encoded forms (base64 at three alignments, URL-safe
base64, percent, JSON, hex), so 4,096 tokens are about 24,600 byte strings.

Usage: bench_matcher.py TOOL WORK [OTHER_TOOL]"""

import json
import os
import random
import statistics
import string
import subprocess
import sys
import time
from pathlib import Path

TOOL, WORK = Path(sys.argv[1]), Path(sys.argv[2])
OTHER = Path(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3] else None
SIZES = (512, 4096, 40_000)
RUNS = 3
LIMIT = 4 << 30  # the address-space limit round 4 ran under


def home_with(n: int) -> Path:
    home = WORK / f"home-{n}"
    (home / ".simpletuner").mkdir(parents=True, exist_ok=True)
    rng = random.Random(n)
    alphabet = string.ascii_letters + string.digits
    doc = {f"TOKEN_{i:05d}": "tok_" + "".join(rng.choice(alphabet) for _ in range(36)) for i in range(n)}
    path = home / ".simpletuner/secrets.json"
    path.write_text(json.dumps(doc))
    path.chmod(0o600)
    return home


def measure(tool: Path, home: Path, args: list[str]) -> tuple[float, int, int]:
    """Seconds, peak RSS in KiB and the exit status of one run."""
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "AWS_EC2_METADATA_DISABLED": "true"}

    def limit() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))

    start = time.perf_counter()
    p = subprocess.Popen([str(tool), *args], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, preexec_fn=limit)
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - start, usage.ru_maxrss, p.returncode


def row(tool: Path, home: Path, args: list[str], ok: tuple[int, ...]) -> str:
    runs = [measure(tool, home, args) for _ in range(RUNS)]
    codes = {r[2] for r in runs}
    if not codes <= set(ok):
        return f"failed (exit {sorted(codes)})"
    seconds = statistics.median(r[0] for r in runs)
    rss = statistics.median(r[1] for r in runs)
    return f"{seconds:.2f} s, {rss / 1024:.0f} MB"


def main() -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    log = WORK / "train.log"
    with log.open("w") as f:
        line = "step 000000 loss 0.123456 lr 0.000100 grad_norm 1.000\n"
        f.write(line * ((64 << 20) // len(line)))
    log.read_bytes()  # into the page cache
    tools = [("this build", TOOL)] + ([("the build before", OTHER)] if OTHER else [])
    head = " | ".join(f"{name}: time, peak RSS" for name, _ in tools)
    print(f"| tokens in the secrets file | command | {head} |")
    print("|---:|---|" + "---:|" * len(tools))
    for n in SIZES:
        home = home_with(n)
        for label, args, ok in (
            ("scan of a 64 MiB log", ["scan", str(log)], (0,)),
            ("run -- true", ["run", "--", "true"], (0,)),
        ):
            cells = " | ".join(row(tool, home, args, ok) for _, tool in tools)
            print(f"| {n:,} | {label} | {cells} |")
    print()
    print(f"Each run under a {LIMIT >> 30} GiB address-space limit (RLIMIT_AS); 'failed' is a "
          "run that could not finish (exit -6: aborted out of memory; exit 126: the command "
          "could not start, its environment of that many variables being past the kernel's "
          "limit for execve, whatever the matcher).")


main()
