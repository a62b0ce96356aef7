//! The two process-wide caches of SimpleTuner's cloud service, with the same
//! parameters and key conventions:
//!
//! - provider configuration: TTL 300 s, 100 entries, keys `provider:<name>:...`;
//! - user permissions: TTL 60 s, 500 entries, keys `user:<id>:...`.
//!
//! Values are bytes ([`SecretBytes`]) so that Rust code and C callers share the
//! very same cache objects. They are created on first use and live until the
//! process exits.

use super::{CacheConfig, TtlCache, DEFAULT_CLEANUP_INTERVAL};
use crate::secret::SecretBytes;
use crate::sys::Lazy;
use std::sync::Arc;
use std::time::Duration;

/// TTL of the provider-configuration cache.
pub const PROVIDER_CONFIG_TTL: Duration = Duration::from_secs(300);
/// Capacity of the provider-configuration cache.
pub const PROVIDER_CONFIG_MAX_SIZE: usize = 100;
/// TTL of the user-permission cache.
pub const USER_PERMISSION_TTL: Duration = Duration::from_secs(60);
/// Capacity of the user-permission cache.
pub const USER_PERMISSION_MAX_SIZE: usize = 500;

fn build(default_ttl: Duration, max_size: usize) -> Arc<TtlCache<SecretBytes>> {
    let config = CacheConfig {
        default_ttl,
        max_size,
        cleanup_interval: DEFAULT_CLEANUP_INTERVAL,
    };
    Arc::new(TtlCache::new(config).expect("the process-wide cache configurations are valid"))
}

static PROVIDER_CONFIG: Lazy<Arc<TtlCache<SecretBytes>>> =
    Lazy::new(|| build(PROVIDER_CONFIG_TTL, PROVIDER_CONFIG_MAX_SIZE));
static USER_PERMISSION: Lazy<Arc<TtlCache<SecretBytes>>> =
    Lazy::new(|| build(USER_PERMISSION_TTL, USER_PERMISSION_MAX_SIZE));

/// The process-wide provider-configuration cache (300 s, 100 entries).
pub fn provider_config_cache() -> &'static Arc<TtlCache<SecretBytes>> {
    &PROVIDER_CONFIG
}

/// The process-wide user-permission cache (60 s, 500 entries).
pub fn user_permission_cache() -> &'static Arc<TtlCache<SecretBytes>> {
    &USER_PERMISSION
}

/// Drops every cached entry of `provider` (keys starting `provider:<provider>:`);
/// returns how many live entries were dropped.
pub fn invalidate_provider_cache(provider: &str) -> usize {
    PROVIDER_CONFIG.invalidate_prefix(&format!("provider:{provider}:"))
}

/// Drops every cached entry of the user (keys starting `user:<user_id>:`);
/// returns how many live entries were dropped.
pub fn invalidate_user_cache(user_id: i64) -> usize {
    USER_PERMISSION.invalidate_prefix(&format!("user:{user_id}:"))
}
