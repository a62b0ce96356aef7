//! The configuration keys of the remote providers' caching, timeouts,
//! retries, node cache and fleet start
//! ([`RemoteSettings`](crate::secrets::transport::RemoteSettings)).

use super::shape::ConfigKey;
use super::values::{count, nonempty, positive_seconds, seconds};
use crate::error::Error;
use crate::paths::expand_home;
use std::path::PathBuf;
use std::time::Duration;

/// The largest `fleet_capacity`: a million node starts per second.
const MAX_CAPACITY: u64 = 1_000_000;

/// The remote providers' keys, in the docs' order.
pub(super) const REMOTE_KEYS: &[ConfigKey] = &[
    ConfigKey {
        name: "connect_timeout",
        value: "seconds, 0.001 to 3600",
        doc: "bound on a connection of the remote providers (TCP + TLS, or a Unix socket); default 2",
        apply: |c, k, v| {
            c.remote.connect_timeout = positive_seconds(k, v)?;
            Ok(())
        },
    },
    ConfigKey {
        name: "request_timeout",
        value: "seconds, 0.001 to 3600",
        doc: "bound on one whole request, connection included; default 5",
        apply: |c, k, v| {
            c.remote.request_timeout = positive_seconds(k, v)?;
            Ok(())
        },
    },
    ConfigKey {
        name: "retries",
        value: "whole number, 0 to 10",
        doc: "further attempts after a transient failure; default 2",
        apply: |c, k, v| {
            c.remote.retries = count(k, v, 10)?;
            Ok(())
        },
    },
    ConfigKey {
        name: "max_stale",
        value: "seconds, 0 to 315360000",
        doc: "how long past its TTL a value may be served while the service fails transiently (0: never); default 3600",
        apply: |c, k, v| {
            c.remote.max_stale = seconds(k, v)?;
            Ok(())
        },
    },
    ConfigKey {
        name: "failure_ttl",
        value: "seconds, 0 to 315360000",
        doc: "how long a failure answers before the service is asked again; default 5",
        apply: |c, k, v| {
            c.remote.failure_ttl = seconds(k, v)?;
            Ok(())
        },
    },
    ConfigKey {
        name: "refresh_min_interval",
        value: "seconds, 0 to 315360000",
        doc: "a refresh asked by a caller (st_secrets_refresh) sends at most one request per secret per this interval; default 10",
        apply: |c, k, v| {
            c.remote.refresh_min_interval = seconds(k, v)?;
            Ok(())
        },
    },
    ConfigKey {
        name: "refresh_ahead",
        value: "fraction of the TTL, 0 to 1",
        doc: "from this part of its TTL a remote value is refreshed in the background while callers keep getting it (0: fetched by the first get past the TTL); default 0.75",
        apply: |c, k, v| {
            c.remote.refresh_ahead_permille = v
                .as_f64()
                .filter(|f| (0.0..=1.0).contains(f))
                .map(|f| (f * 1000.0).round() as u32)
                .ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "config key '{k}' must be a fraction of the TTL from 0 to 1"
                    ))
                })?;
            Ok(())
        },
    },
    ConfigKey {
        name: "node_cache",
        value: "true or false",
        doc: "share remote values with this user's other processes on the node through a memory-backed directory (one request per node per TTL); default `SIMPLETUNER_NODE_CACHE` (`1` turns it on), else off",
        apply: |c, k, v| {
            c.remote.node_cache = Some(v.as_bool().ok_or_else(|| {
                Error::InvalidArgument(format!("config key '{k}' must be true or false"))
            })?);
            Ok(())
        },
    },
    ConfigKey {
        name: "node_cache_dir",
        value: "string",
        doc: "the node cache's directory (an absolute path on tmpfs or ramfs, 0700, this user's); default `SIMPLETUNER_NODE_CACHE_DIR`, else `$XDG_RUNTIME_DIR/st-secrets-node`, else `/dev/shm/st-secrets-node-<uid>`",
        apply: |c, k, v| {
            c.remote.node_cache_dir = Some(expand_home(PathBuf::from(nonempty(k, v)?)));
            Ok(())
        },
    },
    ConfigKey {
        name: "fleet_capacity",
        value: "node starts per second, 1 to 1000000",
        doc: "how many nodes of a job the secret store takes per second: a node the scheduler gives a rank sends its first request in its slot, rank / capacity seconds into each period of (node count) / capacity seconds of the wall clock; default 100",
        apply: |c, k, v| {
            c.remote.fleet.capacity = v
                .as_u64()
                .filter(|n| (1..=MAX_CAPACITY).contains(n))
                .map(|n| n as u32)
                .ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "config key '{k}' must be a whole number of node starts per second \
                         from 1 to {MAX_CAPACITY}"
                    ))
                })?;
            Ok(())
        },
    },
    ConfigKey {
        name: "fleet_deadline",
        value: "seconds, 1 to 86400",
        doc: "in a job, how long a node tries for its first secret before it fails; default 600",
        apply: |c, k, v| {
            c.remote.fleet.deadline = positive_seconds(k, v)
                .ok()
                .filter(|d| (Duration::from_secs(1)..=Duration::from_secs(86_400)).contains(d))
                .ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "config key '{k}' must be a number of seconds from 1 to 86400"
                    ))
                })?;
            Ok(())
        },
    },
];
