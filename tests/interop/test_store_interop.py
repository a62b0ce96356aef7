"""The provider-config store shares its database with SimpleTuner: Python's
sqlite3 writes and reads the provider_config table exactly as SimpleTuner's
ProviderConfigStore does (its SQL, json.dumps, isoformat timestamps), and the
st-secrets tool reads and writes the same rows. Also: credentials are
encrypted at rest, and a hand-edited audit entry is detected.

Environment: ST_SECRETS_BIN (the tool)."""

import json
import os
import sqlite3
import subprocess
from datetime import datetime, timezone

import pytest

BIN = os.environ["ST_SECRETS_BIN"]


def tool(db, *args, stdin="", tmp_path=None):
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "SIMPLETUNER_CREDENTIAL_KEY": "store-interop-key",
    }
    return subprocess.run(
        [BIN, "--db", str(db), *args], input=stdin.encode(), env=env, capture_output=True, check=False
    )


def simpletuner_save(db, provider, config):
    """SimpleTuner's ProviderConfigStore: schema and save_sync."""
    conn = sqlite3.connect(db)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS provider_config (provider TEXT PRIMARY KEY, "
        "config TEXT NOT NULL DEFAULT '{}', updated_at TEXT NOT NULL)"
    )
    conn.execute(
        "INSERT OR REPLACE INTO provider_config (provider, config, updated_at) VALUES (?, ?, ?)",
        (provider, json.dumps(config), datetime.now(timezone.utc).isoformat()),
    )
    conn.commit()
    conn.close()


def simpletuner_get(db, provider):
    """SimpleTuner's ProviderConfigStore.get_sync."""
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    row = conn.execute("SELECT config, updated_at FROM provider_config WHERE provider = ?", (provider,)).fetchone()
    conn.close()
    return (json.loads(row["config"]), row["updated_at"]) if row else ({}, None)


@pytest.fixture
def db(tmp_path):
    return tmp_path / "cloud" / "jobs.db"


def test_a_simpletuner_database_is_read_as_is(db, tmp_path):
    db.parent.mkdir()
    config = {"webhook_url": "https://example.invalid/hook", "cost_limit_amount": 25.5, "nested": {"a": [1, 2]}}
    simpletuner_save(db, "replicate", config)
    result = tool(db, "config", "get", "replicate", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == config


def test_simpletuner_reads_what_st_secrets_writes(db, tmp_path):
    db.parent.mkdir()
    simpletuner_save(db, "replicate", {"old": True})
    new = {"hardware_info": {"gpu-l40s": {"name": "L40S (48GB)", "cost_per_second": 0.000975}}, "x": "y"}
    result = tool(db, "config", "set", "replicate", stdin=json.dumps(new), tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    config, updated_at = simpletuner_get(db, "replicate")
    assert config == new
    assert datetime.fromisoformat(updated_at).tzinfo is not None
    merged = tool(db, "config", "merge", "replicate", stdin='{"x": null, "z": 1}', tmp_path=tmp_path)
    assert merged.returncode == 0, merged.stderr
    assert simpletuner_get(db, "replicate")[0] == {"hardware_info": new["hardware_info"], "z": 1}


def test_credentials_are_encrypted_at_rest(db, tmp_path):
    result = tool(db, "credential", "set", "replicate", "api_token", stdin="r8_PLAINTEXT_VALUE", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    conn = sqlite3.connect(db)
    (column,) = conn.execute("SELECT ciphertext FROM st_credentials").fetchone()
    conn.close()
    assert "PLAINTEXT" not in column and column.startswith("Z0FBQUFB")
    got = tool(db, "credential", "get", "replicate", "api_token", tmp_path=tmp_path)
    assert got.returncode == 0 and got.stdout == b"r8_PLAINTEXT_VALUE"


def test_a_hand_edited_audit_entry_is_detected(db, tmp_path):
    for i in range(3):
        assert tool(db, "config", "merge", "p", stdin=json.dumps({f"k{i}": i}), tmp_path=tmp_path).returncode == 0
    ok = tool(db, "audit", "verify", tmp_path=tmp_path)
    assert ok.returncode == 0 and b"3 entries verified" in ok.stdout
    conn = sqlite3.connect(db)
    conn.execute("UPDATE st_audit_log SET detail = '{\"added\":[\"forged\"]}' WHERE id = 2")
    conn.commit()
    conn.close()
    broken = tool(db, "audit", "verify", tmp_path=tmp_path)
    assert broken.returncode == 1
    assert b"BROKEN at entry 2" in broken.stdout
