"""st_secrets: SimpleTuner's secrets, cache and credential-encryption module
API over libst_secrets. Existing code moves over by changing the import."""

from ._ffi import ERRORS, VERSION, StSecretsError
from .cache import (
    TTLCache,
    cached,
    get_provider_config_cache,
    get_user_permission_cache,
    invalidate_provider_cache,
    invalidate_user_cache,
)
from .crypto import decrypt_credential, encrypt_credential, reencrypt_credential, reset_cipher
from .manager import SecretsManager, get_secrets_manager, reset_secrets_manager
from .store import Store, clear_hardware_info_cache, get_hardware_info, get_hourly_cost, set_hardware_info

# The exception classes, one per result code (NotFoundError, AuthError, ...).
globals().update({cls.__name__: cls for cls in ERRORS.values()})

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
] + [cls.__name__ for cls in ERRORS.values()]
