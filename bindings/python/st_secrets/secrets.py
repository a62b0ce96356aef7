"""SimpleTuner's `secrets` module: the provider classes, the singleton
`SecretsManager` and `get_secrets_manager`, with the same names, signatures
and return values, over the library's chain (environment > secrets file >
AWS Secrets Manager > Vault).

The auto-configured chain is the library's: the environment is read live
(an empty variable counts as unset), the secrets file is re-read when it
changes and saved atomically with mode 0600, and the remote providers cache
with a TTL and serve the last good value while the service fails. Given
`providers=[...]`, the manager runs those objects as SimpleTuner does. The
docs/python.md lists every difference from SimpleTuner and why.
"""

import json
import logging
import os
import sys
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Dict, List, Optional, Type, Union, cast

from . import _native
from ._errors import ProcessSingleton, StSecretsError, attempt
from ._native import NativeProvider

__all__ = [
    "SecretProvider",
    "EnvironmentSecretProvider",
    "FileSecretProvider",
    "MountedSecretProvider",
    "AWSSecretsManagerProvider",
    "GCPSecretManagerProvider",
    "AzureKeyVaultProvider",
    "HashiCorpVaultProvider",
    "SecretsManager",
    "get_secrets_manager",
]

logger = logging.getLogger(__name__)


def _default_file() -> Path:
    return Path.home() / ".simpletuner" / "secrets.json"


class SecretProvider(ABC):
    """A source of secrets: `get_secret(key)` (None when absent) and
    `is_available()`."""

    @abstractmethod
    def get_secret(self, key: str) -> Optional[str]:
        """The value of `key`, or None."""

    @abstractmethod
    def is_available(self) -> bool:
        """Whether the provider is configured and usable."""


class _NativeBacked(SecretProvider):
    _native: NativeProvider

    @classmethod
    def _adopt(cls, native: NativeProvider) -> "_NativeBacked":
        obj = cls.__new__(cls)
        obj._native = native
        return obj

    def is_available(self) -> bool:
        return self._native.available()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._native.status()['detail']!r})"


class EnvironmentSecretProvider(_NativeBacked):
    """Environment variables: the key upper-cased, '-' and '.' as '_', read
    as `<prefix>_<KEY>` with a prefix. Read live; an empty variable is unset."""

    def __init__(self, prefix: str = ""):
        self._native = _native.env_provider(prefix or None)

    def get_secret(self, key: str) -> Optional[str]:
        return self._native.lookup(key)

    def is_available(self) -> bool:
        return True


class MountedSecretProvider(_NativeBacked):
    """Directories of one file per key (a Kubernetes Secret volume,
    /run/secrets, systemd credentials): `mounted_dirs`, else
    SIMPLETUNER_SECRETS_DIRS, then $CREDENTIALS_DIRECTORY. An st-secrets
    addition (docs/configuration.md); a chain member only, built by the
    manager from its configuration."""

    def get_secret(self, key: str) -> Optional[str]:
        try:
            return self._native.lookup(key)
        except StSecretsError as exc:
            logger.warning("Failed to read mounted secrets: %s", exc)
            return None


class FileSecretProvider(_NativeBacked):
    """The JSON/YAML secrets file: `file_path`, else the first of
    ~/.simpletuner/secrets.json, .yaml, .yml. Re-read when it changes."""

    def __init__(self, file_path: Optional[str] = None):
        self._native = _native.file_provider(None if file_path is None else os.fspath(file_path))

    def get_secret(self, key: str) -> Optional[str]:
        try:
            return self._native.lookup(key)
        except StSecretsError as exc:
            logger.warning("Failed to load secrets from %s: %s", self.get_file_path(), exc)
            return None

    def set_secret(self, key: str, value: str) -> bool:
        """Saves `key` (atomic, 0600 from the first byte). False, logged, on
        failure (a malformed file is left as it is, not overwritten)."""
        return attempt(logger, logging.ERROR, "save", key, self._native.save, key, value)

    def delete_secret(self, key: str) -> bool:
        """Removes `key`: False when there is no secrets file or the write
        fails; True otherwise (also when the key was not in it)."""
        if self.get_file_path() is None:
            return False
        return attempt(logger, logging.ERROR, "delete", key, self._native.delete, key)

    def get_file_path(self) -> Optional[Path]:
        """The secrets file when it exists, else None."""
        path = self._native.path()
        if path is None or not os.path.lexists(path):
            return None
        return Path(path)


class _RemoteProvider(_NativeBacked):
    _label = ""

    def get_secret(self, key: str) -> Optional[str]:
        try:
            return self._native.lookup(key)
        except StSecretsError as exc:
            logger.warning("Failed to load secrets from %s: %s", self._label, exc)
            return None


class AWSSecretsManagerProvider(_RemoteProvider):
    """One AWS Secrets Manager secret holding a JSON object of keys.
    `secret_name` defaults to SIMPLETUNER_AWS_SECRET_NAME, `region_name` to
    AWS_DEFAULT_REGION (then the AWS configuration). No boto3 needed."""

    _label = "AWS"

    def __init__(self, secret_name: Optional[str] = None, region_name: Optional[str] = None):
        self.secret_name = secret_name or os.environ.get("SIMPLETUNER_AWS_SECRET_NAME")
        self.region_name = region_name or os.environ.get("AWS_DEFAULT_REGION")
        config = {"aws_secret_name": secret_name or None, "aws_region": region_name or None}
        self._native = _native.remote_provider("aws", json.dumps(config))


class HashiCorpVaultProvider(_RemoteProvider):
    """One Vault secret at `mount_point`/`path` whose fields are the keys (KV
    v2, else v1). `url` defaults to BAO_ADDR, then VAULT_ADDR (OpenBao's names
    first, as its clients read them), `token` to BAO_TOKEN, then VAULT_TOKEN,
    `path` to SIMPLETUNER_VAULT_PATH, then "simpletuner". No hvac needed."""

    _label = "Vault"

    def __init__(self, url: Optional[str] = None, token: Optional[str] = None,
                 path: Optional[str] = None, mount_point: str = "secret"):
        self.url = url or os.environ.get("BAO_ADDR") or os.environ.get("VAULT_ADDR")
        self.path = path or os.environ.get("SIMPLETUNER_VAULT_PATH") or "simpletuner"
        self.mount_point = mount_point
        config = {"vault_url": url or None, "vault_token": token or None,
                  "vault_path": path or None, "vault_mount": mount_point or None}
        self._native = _native.remote_provider("vault", json.dumps(config))


class GCPSecretManagerProvider(_RemoteProvider):
    """GCP Secret Manager secrets (not in SimpleTuner): `secret` is one name
    or a list (`projects/P/secrets/S[/versions/V]`, or `S` in `project`),
    defaulting to SIMPLETUNER_GCP_SECRET; `project` to GOOGLE_CLOUD_PROJECT,
    then the credentials'. Google's credentials as its libraries find them;
    no google-cloud package needed."""

    _label = "GCP"

    def __init__(self, secret: Union[str, List[str], None] = None, project: Optional[str] = None):
        self.secret = secret or os.environ.get("SIMPLETUNER_GCP_SECRET")
        self.project = project or os.environ.get("GOOGLE_CLOUD_PROJECT")
        config = {"gcp_secret": secret or None, "gcp_project": project or None}
        self._native = _native.remote_provider("gcp", json.dumps(config))


class AzureKeyVaultProvider(_RemoteProvider):
    """Azure Key Vault secrets (not in SimpleTuner): `vault_url` is the
    vault (`https://NAME.vault.azure.net`), defaulting to
    SIMPLETUNER_AZURE_VAULT_URL; `secret` one name or a list (`NAME` or
    `NAME/VERSION`), defaulting to SIMPLETUNER_AZURE_SECRET. Azure's
    credentials as azure-identity finds them; no azure package needed."""

    _label = "Azure"

    def __init__(self, vault_url: Optional[str] = None, secret: Union[str, List[str], None] = None):
        self.vault_url = vault_url or os.environ.get("SIMPLETUNER_AZURE_VAULT_URL")
        self.secret = secret or os.environ.get("SIMPLETUNER_AZURE_SECRET")
        config = {"azure_vault": vault_url or None, "azure_secret": secret or None}
        self._native = _native.remote_provider("azure", json.dumps(config))


_WRAPPERS: Dict[str, Type[_NativeBacked]] = {
    "env": EnvironmentSecretProvider,
    "mounted": MountedSecretProvider,
    "file": FileSecretProvider,
    "aws": AWSSecretsManagerProvider,
    "gcp": GCPSecretManagerProvider,
    "azure": AzureKeyVaultProvider,
    "vault": HashiCorpVaultProvider,
}


class SecretsManager(ProcessSingleton, _native.ManagerBase):
    """The chain of providers, checked in priority order. A process-wide
    singleton, as SimpleTuner's: later constructions return the same object
    and ignore their arguments (use `SecretsManager.reset()` in tests).

    `config` takes SimpleTuner's keys (file_path, aws_secret_name,
    aws_region, vault_url, vault_token, vault_path) and the library's (see
    docs/python.md). `get` never raises for a failing provider: it logs a
    warning (never the value) and goes on, as SimpleTuner."""

    REPLICATE_API_TOKEN = "REPLICATE_API_TOKEN"
    HF_TOKEN = "HF_TOKEN"
    WEBHOOK_SECRET = "CLOUD_WEBHOOK_SECRET"

    def __init__(self, providers: Optional[List[SecretProvider]] = None, config: Optional[Dict[str, Any]] = None):
        with self._lock:
            if self._initialized:
                return
            self._config = dict(config or {})
            self._cache: Dict[str, Any] = {}
            if providers:
                self._use_python()
                self._providers = list(providers)
            else:
                self._use_native(json.dumps(self._config), False)
                self._providers = [_WRAPPERS[p.name]._adopt(p) for p in self._chain()]
            self._initialized = True
        logger.info("SecretsManager initialized with providers: %s",
                    [type(p).__name__ for p in self._providers if p.is_available()])

    # get(key, default=None) is the native base class's: one call when the
    # answer is known. With providers of the caller's own, it calls:
    def _python_get(self, key: str, default: Any = None) -> Any:
        if key in self._cache:
            value = self._cache[key]
            return value if value is not None else default
        for provider in self._providers:
            if not provider.is_available():
                continue
            try:
                value = provider.get_secret(key)
            except Exception as exc:
                logger.warning("Error retrieving secret '%s' from %s: %s", key, type(provider).__name__, exc)
                continue
            if value is not None:
                self._cache[key] = value
                return value
        self._cache[key] = None
        return default

    def _on_error(self, key: str, exc: BaseException, default: Any) -> Any:
        logger.warning("Error retrieving secret '%s': %s", key, exc)
        return default

    def get_replicate_token(self) -> Optional[str]:
        return self.get(self.REPLICATE_API_TOKEN)

    def get_hf_token(self) -> Optional[str]:
        return self.get(self.HF_TOKEN)

    def get_webhook_secret(self) -> Optional[str]:
        return self.get(self.WEBHOOK_SECRET)

    def clear_cache(self) -> None:
        """Forgets every cached answer: the next gets read the sources again."""
        self._cache.clear()
        self._clear()

    def _file_provider(self) -> Optional[FileSecretProvider]:
        return next((p for p in self._providers if isinstance(p, FileSecretProvider)), None)

    def set_secret(self, key: str, value: str) -> bool:
        """Saves to the secrets file (atomic, 0600). False, logged (never the
        value), on failure. The environment still wins for `get`."""
        if not isinstance(value, str):
            raise TypeError(f"value must be a str, not {type(value).__name__}")
        if self._is_native():
            return attempt(logger, logging.ERROR, "save", key, self._set, key, value)
        provider = self._file_provider()
        if provider is None:
            provider = FileSecretProvider()
            self._providers.insert(1, provider)
        if provider.set_secret(key, value):
            self._cache[key] = value
            return True
        return False

    def set(self, key: str, value: str) -> bool:
        """`set_secret` under the name SimpleTuner's notification routes call
        (`secrets.set(key, value)`), which SimpleTuner's own manager lacks."""
        return self.set_secret(key, value)

    def set_replicate_token(self, token: str) -> bool:
        return self.set_secret(self.REPLICATE_API_TOKEN, token)

    def delete_secret(self, key: str) -> bool:
        """Removes `key` from the secrets file: False when there is no
        secrets file or the write fails, True otherwise."""
        if self._is_native():
            path = self._file_path()
            if path is None or not os.path.lexists(path):
                return False
            return attempt(logger, logging.ERROR, "delete", key, self._delete, key)
        provider = self._file_provider()
        if provider is None:
            return False
        removed = provider.delete_secret(key)
        if removed:
            self._cache.pop(key, None)
        return removed

    def get_secrets_file_path(self) -> Path:
        """The secrets file saves go to (~/.simpletuner/secrets.json when no
        other is configured or found)."""
        if self._is_native():
            path = self._file_path()
            return Path(path) if path is not None else _default_file()
        provider = self._file_provider()
        path = provider.get_file_path() if provider else None
        return path if path is not None else _default_file()

    def providers(self) -> List[Dict[str, Any]]:
        """The library's chain: [{"name", "available", "detail", "warnings",
        "last_error"}] (never a value)."""
        return cast(List[Dict[str, Any]], json.loads(self._providers_json()))

    @classmethod
    def reset(cls) -> None:
        """Drops the singleton (tests only, as SimpleTuner)."""
        if "pytest" not in sys.modules and "unittest" not in sys.modules:
            raise RuntimeError("SecretsManager.reset() is only allowed in test environments")
        with cls._lock:
            cls._instance = None

    def __repr__(self) -> str:
        return f"SecretsManager(providers={[type(p).__name__ for p in self._providers]})"


def get_secrets_manager() -> SecretsManager:
    """The process-wide SecretsManager."""
    return SecretsManager()
