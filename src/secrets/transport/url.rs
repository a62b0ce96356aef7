//! The one rule for a URL a credential is sent to (a token endpoint, a
//! service's bearer, an agent's token, a container's credentials): parsed
//! by the parser that sends the request (`http::Uri`, ureq's), never judged
//! by its text's prefix. `https` goes anywhere; plain `http` only to hosts
//! where the traffic stays on the machine. A URL with user information
//! (`http://127.0.0.1:1@evil.test/`) is refused outright: its host is what
//! follows the `@`, and credentials have settings of their own. Beside
//! it: a URL without what could hold a credential ([`redact_url`]), and
//! form encoding ([`form`]).

/// Where plain `http` may carry a credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PlainHttp {
    /// Loopback only (`127.0.0.0/8`, `::1`, `localhost`): emulators and
    /// test servers.
    Loopback,
    /// Loopback and AWS's link-local container hosts (`169.254.170.2`,
    /// `169.254.170.23`, `fd00:ec2::23`), as the AWS SDKs allow.
    LoopbackAndContainerHosts,
}

/// Whether `url` may carry a credential under `plain`; `Err` says why not
/// (without the URL: the caller names the setting and shows it redacted).
pub(crate) fn check(url: &str, plain: PlainHttp) -> Result<(), &'static str> {
    let uri: http::Uri = url.trim().parse().map_err(|_| "not a URL")?;
    let authority = uri.authority().ok_or("not a URL with a host")?;
    if authority.as_str().contains('@') {
        return Err(
            "it carries user information (user@host), whose host is not the one \
                    it starts with: refused",
        );
    }
    let host = authority.host();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Err("not a URL with a host");
    }
    match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
        Some("https") => Ok(()),
        Some("http") => {
            let loopback = host.eq_ignore_ascii_case("localhost")
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            let container = plain == PlainHttp::LoopbackAndContainerHosts
                && (host == "169.254.170.2"
                    || host == "169.254.170.23"
                    || host.eq_ignore_ascii_case("fd00:ec2::23"));
            match (loopback || container, plain) {
                (true, _) => Ok(()),
                (false, PlainHttp::Loopback) => {
                    Err("not an https:// URL (plain http only to this host)")
                }
                (false, PlainHttp::LoopbackAndContainerHosts) => Err(
                    "plain HTTP is allowed to loopback and the container hosts only (use https)",
                ),
            }
        }
        _ => Err("the scheme must be http or https"),
    }
}

/// `application/x-www-form-urlencoded` text of `pairs` (RFC 3986 escaping).
pub fn form(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        escape_into(&mut out, k);
        out.push('=');
        escape_into(&mut out, v);
    }
    out
}

pub(crate) fn escape_into(out: &mut String, s: &str) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// `url` without user information or query (which could hold credentials).
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let rest = match rest.split_once('/') {
        Some((authority, path)) => {
            let host = authority.rsplit('@').next().unwrap_or(authority);
            format!("{host}/{path}")
        }
        None => rest.rsplit('@').next().unwrap_or(rest).to_owned(),
    };
    // A server's text (a Location): through the one printable rule.
    crate::error::printable(&if scheme.is_empty() {
        rest
    } else {
        format!("{scheme}://{rest}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credentials_url_is_judged_by_its_host_never_its_prefix() {
        for ok in [
            "https://oauth2.googleapis.com/token",
            "http://127.0.0.1:8080/token",
            "http://127.1.2.3/x",
            "http://localhost/x",
            "HTTP://LOCALHOST:1/x",
            "http://[::1]:9/x",
        ] {
            assert_eq!(check(ok, PlainHttp::Loopback), Ok(()), "{ok}");
        }
        for bad in [
            "http://127.0.0.1:1@evil.test/token",
            "http://127.0.0.1@evil.test/token",
            "https://user:pass@example.com/token",
            "http://localhost.evil.test/x",
            "http://127.0.0.1.evil.test/x",
            "http://10.0.0.1/x",
            "http://169.254.170.2/v2/credentials",
            "ftp://127.0.0.1/",
            "127.0.0.1/token",
            "http:///token",
            "not a url",
        ] {
            assert!(check(bad, PlainHttp::Loopback).is_err(), "{bad}");
        }
        let e = check("http://127.0.0.1:1@evil.test/token", PlainHttp::Loopback).unwrap_err();
        assert!(e.contains("user information"), "{e}");
        for ok in [
            "http://169.254.170.2/v2/x",
            "http://[fd00:ec2::23]/v1/credentials",
        ] {
            assert_eq!(
                check(ok, PlainHttp::LoopbackAndContainerHosts),
                Ok(()),
                "{ok}"
            );
        }
        assert!(check(
            "http://u@169.254.170.2/",
            PlainHttp::LoopbackAndContainerHosts
        )
        .is_err());
    }

    #[test]
    fn form_escapes_like_rfc3986() {
        assert_eq!(
            form(&[
                ("Action", "AssumeRole"),
                ("RoleArn", "arn:aws:iam::1:role/a b+c")
            ]),
            "Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fa%20b%2Bc"
        );
    }

    #[test]
    fn urls_lose_credentials_and_queries() {
        assert_eq!(
            redact_url("https://user:pw@vault.example:8200/v1/secret?token=x"),
            "https://vault.example:8200/v1/secret"
        );
        assert_eq!(redact_url("http://127.0.0.1:5000"), "http://127.0.0.1:5000");
        assert_eq!(redact_url("a@b"), "b");
    }
}
