use super::retry::*;
use super::*;
use crate::error::Error;

fn settings() -> RemoteSettings {
    RemoteSettings {
        backoff_base: Duration::from_millis(1),
        backoff_cap: Duration::from_millis(4),
        ..RemoteSettings::default()
    }
}

#[test]
fn retries_stop_at_the_limit_and_on_permanent_failures() {
    let s = settings();
    let mut n = 0;
    let r: Result<(), _> = with_retries(&s, || {
        n += 1;
        Err(FetchError::transient(Error::Network("x".into())))
    });
    assert!(r.is_err());
    assert_eq!(n, 3);
    let mut n = 0;
    let r: Result<(), _> = with_retries(&s, || {
        n += 1;
        Err(FetchError::permanent(Error::Auth("x".into())))
    });
    assert!(r.is_err());
    assert_eq!(n, 1);
    let mut n = 0;
    let r = with_retries(&s, || {
        n += 1;
        if n < 2 {
            Err(FetchError::transient(Error::Timeout("x".into())))
        } else {
            Ok(n)
        }
    });
    assert_eq!(r.unwrap(), 2);
}

#[test]
fn a_retry_after_past_the_request_timeout_ends_the_retries_and_says_so() {
    let s = RemoteSettings {
        request_timeout: Duration::from_secs(5),
        ..settings()
    };
    let mut n = 0;
    let r: Result<(), _> = with_retries(&s, || {
        n += 1;
        Err(FetchError::transient(Error::Remote("HTTP 429".into()))
            .retry_after(Some(Duration::from_secs(30))))
    });
    let f = r.unwrap_err();
    assert_eq!(n, 1);
    assert!(f.transient);
    assert_eq!(
        f.error.message(),
        "HTTP 429; the server asked to retry after 30 s, past the request timeout of 5s; \
         not retried"
    );
}

#[test]
fn backoff_doubles_is_capped_and_jittered() {
    let s = RemoteSettings::default();
    for retry in 0..40 {
        let full = (s.backoff_base * 2u32.saturating_pow(retry.min(20))).min(s.backoff_cap);
        let b = backoff(&s, retry);
        assert!(
            b >= full / 2 && b <= full,
            "retry {retry}: {b:?} vs {full:?}"
        );
    }
    let samples: std::collections::HashSet<_> = (0..50).map(|_| backoff(&s, 3)).collect();
    assert!(samples.len() > 10, "backoff is not jittered");
    let ttl = Duration::from_secs(300);
    for _ in 0..100 {
        let j = jittered(ttl);
        assert!(j > Duration::from_secs(269) && j <= ttl);
    }
}
