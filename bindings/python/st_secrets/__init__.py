"""st_secrets: SimpleTuner's secrets, cache, credential-encryption,
hardware-info and provider-config modules over the st-secrets library (a
native extension; no other dependency).

SimpleTuner code moves over by changing its imports:

    simpletuner...cloud.secrets                -> st_secrets.secrets
    simpletuner...cloud.cache                  -> st_secrets.cache
    simpletuner...cloud.auth.credential_encryption -> st_secrets.credential_encryption
    simpletuner...cloud.replicate_client (hardware info) -> st_secrets.replicate_client
    simpletuner...cloud.storage.provider_config_store    -> st_secrets.provider_config_store

This namespace keeps the library's own API (an independent SecretsManager per
instance, the Store, the sync hardware functions) and the exception classes.
"""

import logging

from . import _errors, _native
from ._errors import *  # noqa: F401,F403  (StSecretsError and one class per result code)
from ._errors import StSecretsError
from .cache import (
    TTLCache,
    cached,
    get_provider_config_cache,
    get_user_permission_cache,
    invalidate_provider_cache,
    invalidate_user_cache,
)
from .credential_encryption import decrypt_credential, encrypt_credential, reencrypt_credential, reset_cipher
from .manager import SecretsManager, get_secrets_manager, reset_secrets_manager
from .store import Store, clear_hardware_info_cache, get_hardware_info, get_hourly_cost, set_hardware_info

# A library never prints: without this handler, Python's last-resort
# handler would write the modules' warnings to the host's stderr when the
# host configured no logging. Hosts that configure logging get the records.
logging.getLogger(__name__).addHandler(logging.NullHandler())

VERSION = _native.VERSION
__version__ = VERSION

__all__ = [
    "VERSION",
    "StSecretsError",
    "SecretsManager",
    "get_secrets_manager",
    "reset_secrets_manager",
    "TTLCache",
    "cached",
    "get_provider_config_cache",
    "get_user_permission_cache",
    "invalidate_provider_cache",
    "invalidate_user_cache",
    "encrypt_credential",
    "decrypt_credential",
    "reencrypt_credential",
    "reset_cipher",
    "Store",
    "get_hardware_info",
    "set_hardware_info",
    "clear_hardware_info_cache",
    "get_hourly_cost",
    # One class per result code (from the library's list), but those named
    # like builtins (KeyError, PermissionError, TimeoutError): attributes,
    # not in __all__, since a star import would shadow the builtins.
    *[name for name in _errors.__all__[1:] if name not in _errors.SHADOWING],
]
