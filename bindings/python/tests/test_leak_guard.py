"""The leak guard in the training process: st_secrets.redact against the real
writers (wandb offline, tensorboardX, safetensors, a checkpoint in
torch.save's zip layout), and `st-secrets scan` over what they wrote."""

import argparse
import base64
import collections
import dataclasses
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from st_secrets import _native, redact

CANARY = "hf_CanaryAbCdEfGhIjKlMnOpQrStUv01"
TRAINER = Path(__file__).parent / "leak" / "trainer.py"


@pytest.fixture(autouse=True)
def forget():
    _native.forget_served()
    yield
    redact.uninstall()
    _native.forget_served()


def run_trainer(tmp_path, name, guard):
    out = tmp_path / name
    out.mkdir()
    env = {
        "HOME": os.environ["HOME"],
        "PATH": os.environ["PATH"],
        "LANG": "C.UTF-8",
        "TMPDIR": str(tmp_path),
        "HF_TOKEN": CANARY,
        "LEAK_GUARD": "1" if guard else "0",
        "WANDB_SILENT": "true",
        "WANDB_DISABLE_GIT": "true",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    p = subprocess.run([sys.executable, str(TRAINER), str(out)], env=env, cwd=tmp_path,
                       capture_output=True, timeout=300)
    assert p.returncode == 0, p.stderr.decode(errors="replace")[-3000:]
    # Regular files (W&B links wandb/debug.log to the run's own).
    holding = sorted(str(f.relative_to(out)) for f in out.rglob("*")
                     if f.is_file() and not f.is_symlink() and CANARY.encode() in f.read_bytes())
    return out, holding, p.stdout + p.stderr


def scan(paths):
    env = dict(os.environ, HF_TOKEN=CANARY)
    p = subprocess.run(["st-secrets", "--json", "scan", *map(str, paths)], env=env,
                       capture_output=True, timeout=120)
    assert p.returncode in (0, 1), p.stderr.decode(errors="replace")
    return p.returncode, json.loads(p.stdout)


def test_a_real_run_directory_holds_no_canary_with_the_guard(tmp_path):
    bare, leaked, console = run_trainer(tmp_path, "bare", guard=False)
    # The baseline: the token in W&B's console log, debug log and run
    # record, both TensorBoard event files, the checkpoint's pickle and the
    # safetensors metadata.
    assert CANARY.encode() in console
    assert any(f.endswith(".wandb") for f in leaked), leaked
    assert any("tfevents" in f for f in leaked), leaked
    assert "checkpoint/training_args.bin" in leaked and "checkpoint/model.safetensors" in leaked
    rc, report = scan([bare])
    assert rc == 1
    found = {str(Path(h["path"]).relative_to(bare)) for h in report["found"]}
    assert found == set(leaked), "scan finds every file a search for the value finds"
    print(f"\nbaseline: {len(leaked)} files hold the canary: {leaked}")

    guarded, leaked, console = run_trainer(tmp_path, "guarded", guard=True)
    assert leaked == []
    assert CANARY.encode() not in console
    assert b"<concealed by st-secrets>" in console
    wandb_files = [f for f in guarded.rglob("*") if f.is_file() and "wandb" in f.parts]
    assert any(f.suffix == ".wandb" for f in wandb_files), "W&B wrote its run record"
    rc, report = scan([guarded])
    assert (rc, report["found"]) == (0, [])


def test_sanitize_copies_with_the_values_concealed():
    _native.remember("HF_TOKEN", CANARY)
    Point = collections.namedtuple("Point", "a b")

    @dataclasses.dataclass(frozen=True)
    class Config:
        token: str
        nested: dict

    args = argparse.Namespace(hub_token=CANARY, lr=1e-4, tags=[CANARY, "x"], pair=Point(CANARY, 1),
                              raw=CANARY.encode(), b64=base64.b64encode(CANARY.encode()).decode())
    clean = redact.sanitize(args)
    assert args.hub_token == CANARY, "the original is untouched"
    assert clean.hub_token == "<concealed by st-secrets>" and clean.lr == 1e-4
    assert clean.tags == ["<concealed by st-secrets>", "x"]
    assert clean.pair == Point("<concealed by st-secrets>", 1)
    assert clean.raw == b"<concealed by st-secrets>"
    assert clean.b64 == "<concealed by st-secrets>"
    cfg = redact.sanitize(Config(token=f"Bearer {CANARY}", nested={CANARY: {"k": CANARY}}))
    assert cfg == Config(token="Bearer <concealed by st-secrets>",
                         nested={"<concealed by st-secrets>": {"k": "<concealed by st-secrets>"}})
    assert redact.sanitize("short") == "short"


def test_a_value_served_by_the_library_is_concealed(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", CANARY)
    from st_secrets.secrets import get_secrets_manager

    assert redact.redact(f"t={CANARY}") == f"t={CANARY}", "not served yet"
    assert get_secrets_manager().get_hf_token() == CANARY
    assert redact.redact(f"t={CANARY}") == "t=<concealed by st-secrets>"
    assert redact.redact(CANARY.encode().hex().encode()) == b"<concealed by st-secrets>"


GUARDED_CHILD = r"""
import logging, sys
captured = []
def patch():
    # As W&B's console capture does: the write replaced by one that calls
    # it, then records what was written.
    orig = sys.stdout.write
    def patched(s):
        n = orig(s)
        captured.append(s)
        return n
    sys.stdout.write = patched
if sys.argv[1] == "patch-first":
    patch()
from st_secrets import redact
redact.install()
if sys.argv[1] == "patch-after":
    patch()
token = __import__("os").environ["HF_TOKEN"]
sys.stdout.write("split: " + token[:10])
sys.stdout.write(token[10:] + " done\n")
print("whole:", token)
logging.basicConfig(stream=sys.stderr, level=logging.INFO)
logging.info("logged %s", token)
try:
    raise ValueError("bad token " + token)
except ValueError:
    logging.exception("failed")
sys.stdout.flush()
sys.stderr.write("captured: " + repr("".join(captured)) + "\n")
"""


@pytest.mark.parametrize("order", ["patch-first", "patch-after"])
def test_install_conceals_the_console_and_logging_whoever_wraps_write(tmp_path, order):
    # The order W&B's console capture can take: it patches
    # sys.stdout.write when wandb is imported, before or after install().
    env = dict(os.environ, HF_TOKEN=CANARY)
    p = subprocess.run([sys.executable, "-c", GUARDED_CHILD, order], env=env, capture_output=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    out, err = p.stdout.decode(), p.stderr.decode()
    assert CANARY not in out and CANARY not in err
    assert "split: <concealed by st-secrets> done" in out
    assert "whole: <concealed by st-secrets>" in out
    assert "logged <concealed by st-secrets>" in err
    assert "ValueError: bad token <concealed by st-secrets>" in err
    assert "captured: 'split: <concealed by st-secrets> done\\nwhole: <concealed by st-secrets>\\n'" in err


def test_the_stream_form_finds_a_value_split_across_writes():
    _native.remember("K", CANARY)
    r = _native.Redactor()
    out = b"".join(r.write(CANARY.encode()[i:i + 3]) for i in range(0, len(CANARY), 3)) + r.finish()
    assert out == b"<concealed by st-secrets>"
    logging.getLogger("x")  # logging untouched without install
