"""The package's tests run against the installed wheel, never the source
tree (bindings/python/tests/run.sh copies them out of the repository and runs them
in a fresh venv)."""

import os

import pytest

import st_secrets

if "site-packages" not in st_secrets.__file__:
    raise RuntimeError(f"st_secrets was imported from {st_secrets.__file__}, not an installed wheel")


@pytest.fixture(autouse=True)
def private_home(tmp_path, monkeypatch):
    """Every test runs with its own HOME and state dir, so nothing reads or
    writes the real ~/.simpletuner, and with fresh singletons."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("SIMPLETUNER_STATE_DIR", str(home / ".simpletuner"))
    for name in ("SIMPLETUNER_SECRETS_FILE", "SIMPLETUNER_CREDENTIAL_KEY", "VAULT_ADDR", "VAULT_TOKEN",
                 "BAO_ADDR", "BAO_TOKEN", "SIMPLETUNER_VAULT_AGENT", "SIMPLETUNER_VAULT_TOKEN_FILE",
                 "SIMPLETUNER_AWS_SECRET_NAME", "SIMPLETUNER_AWS_AGENT_URL", "AWS_PROFILE",
                 "AWS_ACCESS_KEY_ID"):
        monkeypatch.delenv(name, raising=False)
    from st_secrets.provider_config_store import ProviderConfigStore
    from st_secrets.secrets import SecretsManager

    SecretsManager.reset()
    ProviderConfigStore.reset_instance()
    st_secrets.reset_cipher()
    st_secrets.clear_hardware_info_cache()
    yield home
    SecretsManager.reset()
    ProviderConfigStore.reset_instance()
    st_secrets.reset_cipher()
    st_secrets.clear_hardware_info_cache()
    assert os.environ.get("HOME") == str(home)
