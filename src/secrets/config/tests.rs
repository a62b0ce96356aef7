use super::*;
use crate::secrets::transport::DEFAULT_CACHE_TTL;
use std::time::Duration;

fn err(text: &str) -> String {
    ManagerConfig::from_json(text).unwrap_err().to_string()
}

#[test]
fn empty_and_defaults() {
    let c = ManagerConfig::from_json("{}").unwrap();
    assert_eq!(c.remote.cache_ttl, Duration::from_secs(300));
    assert_eq!(c.remote.negative_ttl, Duration::from_secs(30));
    assert_eq!(
        c.providers,
        vec![
            ProviderKind::Env,
            ProviderKind::Mounted,
            ProviderKind::File,
            ProviderKind::Aws,
            ProviderKind::Gcp,
            ProviderKind::Azure,
            ProviderKind::Vault
        ]
    );
    // An empty text is not a configuration (NULL or "{}" are).
    assert!(matches!(
        ManagerConfig::from_json("  "),
        Err(Error::InvalidArgument(m)) if m.contains("empty")
    ));
    assert!(ManagerConfig::from_json("").is_err());
    let c = ManagerConfig::from_json(r#"{"vault_token": "s.SuperSecretToken"}"#).unwrap();
    assert!(!format!("{c:?}").contains("SuperSecret"));
    let c = ManagerConfig::from_json(r#"{"cache_ttl": null}"#).unwrap();
    assert_eq!(c.remote.cache_ttl, DEFAULT_CACHE_TTL);
}

#[test]
fn keys_are_applied() {
    let c = ManagerConfig::from_json(
        r#"{"file_path": "/tmp/s.yaml", "env_prefix": "SIMPLETUNER",
            "cache_ttl": 1.5, "negative_ttl": 0, "providers": ["file", "env"]}"#,
    )
    .unwrap();
    assert_eq!(c.file.path, Some(PathBuf::from("/tmp/s.yaml")));
    assert_eq!(c.env_prefix.as_deref(), Some("SIMPLETUNER"));
    assert_eq!(c.remote.cache_ttl, Duration::from_millis(1500));
    assert_eq!(c.remote.negative_ttl, Duration::ZERO);
    assert_eq!(c.providers, vec![ProviderKind::File, ProviderKind::Env]);
}

#[test]
fn lists_agents_token_files_and_unix_sockets() {
    let c = ManagerConfig::from_json(
        r#"{"aws_secret_name": [" team/shared ", "projects/sdxl"],
            "aws_agent_url": "http://127.0.0.1:2773/",
            "vault_url": "unix:///run/bao/proxy.sock", "vault_agent": true,
            "vault_token_file": "/run/bao/token", "vault_path": ["/team/", "sdxl"]}"#,
    )
    .unwrap();
    assert_eq!(
        c.aws.secret_names,
        Some(vec!["team/shared".to_owned(), "projects/sdxl".to_owned()])
    );
    assert_eq!(c.aws.agent_url.as_deref(), Some("http://127.0.0.1:2773"));
    assert_eq!(c.vault.url.as_deref(), Some("unix:///run/bao/proxy.sock"));
    assert_eq!(c.vault.agent, Some(true));
    assert_eq!(c.vault.token_file, Some(PathBuf::from("/run/bao/token")));
    assert_eq!(
        c.vault.paths,
        Some(vec!["team".to_owned(), "sdxl".to_owned()])
    );
    // A single name is a list of one, as before.
    let c = ManagerConfig::from_json(r#"{"aws_secret_name": "a", "vault_path": "b"}"#).unwrap();
    assert_eq!(c.aws.secret_names, Some(vec!["a".to_owned()]));
    assert_eq!(c.vault.paths, Some(vec!["b".to_owned()]));
    for (bad, says) in [
        (r#"{"aws_secret_name": []}"#, "empty list"),
        (
            r#"{"aws_secret_name": ["a", 5]}"#,
            "item 1 must be a string",
        ),
        (r#"{"vault_path": ["a", " / "]}"#, "empty name"),
        (
            r#"{"vault_path": {"a": 1}}"#,
            "a string or a list of strings",
        ),
        (r#"{"vault_url": "unix://"}"#, "names no socket"),
        (r#"{"vault_url": "ftp://x"}"#, "http:// or https://"),
        (r#"{"vault_agent": "yes"}"#, "true or false"),
        (r#"{"aws_agent_url": "unix:///x"}"#, "http:// or https://"),
        (r#"{"vault_token_file": ""}"#, "must not be empty"),
    ] {
        let e = err(bad);
        assert!(e.contains(says), "{bad}: {e}");
    }
    let c = ManagerConfig::from_json(
        r#"{"vault_leases": {"pg": "/database/creds/trainer/", "tls": {"path": "pki/issue/node", "data": {"common_name": "n1"}}}}"#,
    )
    .unwrap();
    let leases = c.vault.leases.unwrap();
    assert_eq!(leases["pg"].path, "database/creds/trainer");
    assert_eq!(leases["pg"].data, None);
    assert_eq!(
        leases["tls"].data.as_deref(),
        Some(r#"{"common_name":"n1"}"#)
    );
    for (bad, says) in [
        (
            r#"{"vault_leases": ["database/creds/x"]}"#,
            "must be an object",
        ),
        (
            r#"{"vault_leases": {"a b": "database/creds/x"}}"#,
            "is not a name",
        ),
        (
            r#"{"vault_leases": {"pg": "database//x"}}"#,
            "is not a path",
        ),
        (r#"{"vault_leases": {"pg": "../sys/x"}}"#, "is not a path"),
        (r#"{"vault_leases": {"pg": 5}}"#, "must be a path"),
        (
            r#"{"vault_leases": {"pg": {"path": "p", "ttl": 1}}}"#,
            "unknown field 'ttl'",
        ),
        (
            r#"{"vault_leases": {"pg": {"path": "p", "data": "x"}}}"#,
            "'data' must be an object",
        ),
        (r#"{"vault_leases": {"pg": {"data": {}}}}"#, "field 'path'"),
    ] {
        let e = err(bad);
        assert!(e.contains(says), "{bad}: {e}");
    }
    let many: Vec<String> = (0..65).map(|i| format!("\"s{i}\"")).collect();
    let e = err(&format!(r#"{{"aws_secret_name": [{}]}}"#, many.join(",")));
    assert!(e.contains("at most 64"), "{e}");
}

#[test]
fn errors_name_the_key_and_never_the_value() {
    assert!(err("{").contains("not valid JSON"));
    assert!(err("[1]").contains("JSON object"));
    assert!(err(r#"{"fille_path": "x"}"#).contains("'fille_path'"));
    assert!(err(r#"{"cache_ttl": -1}"#).contains("'cache_ttl'"));
    assert!(err(r#"{"cache_ttl": "5"}"#).contains("'cache_ttl'"));
    assert!(err(r#"{"providers": ["env", "env"]}"#).contains("twice"));
    assert!(err(r#"{"providers": ["ldap"]}"#).contains("'ldap'"));
    let e = err(r#"{"vault_token": 5}"#);
    assert!(
        e.contains("'vault_token'") && !e.contains("SuperSecret"),
        "{e}"
    );
    let e = err(r#"{"env_prefix": {"nested": "s.SuperSecretToken"}}"#);
    assert!(
        e.contains("'env_prefix'") && !e.contains("SuperSecret"),
        "{e}"
    );
}

#[test]
fn duplicate_keys_and_out_of_range_numbers_are_errors_not_panics() {
    let e = err(r#"{"cache_ttl": 5, "cache_ttl": 6}"#);
    assert!(e.contains("'cache_ttl' is given twice"), "{e}");
    let e = err(r#"{"vault_token": "s.SuperSecretA", "vault_token": "s.SuperSecretB"}"#);
    assert!(
        e.contains("'vault_token'") && !e.contains("SuperSecret"),
        "{e}"
    );
    for (key, value) in [
        ("cache_ttl", "1e308"),
        ("negative_ttl", "1e20"),
        ("max_stale", "1e300"),
        ("failure_ttl", "1.8e19"),
        ("request_timeout", "1e308"),
        ("connect_timeout", "-0.5"),
        ("cache_ttl", "315360001"),
        ("max_file_size", "0"),
        ("max_file_size", "1073741825"),
        ("max_file_size", "1.5"),
        ("retries", "1e30"),
        ("vault_kv_version", "3"),
    ] {
        let text = format!("{{\"{key}\": {value}}}");
        let e = ManagerConfig::from_json(&text).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidArgument(m) if m.contains(&format!("'{key}'"))),
            "{text}: {e:?}"
        );
    }
    let c = ManagerConfig::from_json(r#"{"cache_ttl": 315360000, "max_file_size": 16}"#).unwrap();
    assert_eq!(c.remote.cache_ttl, Duration::from_secs(315_360_000));
    assert_eq!(c.file.max_size, 16);
}

/// The docs' table of keys, as [`config_keys`] gives it.
fn readme_table() -> String {
    let mut t = String::from("| key | value | meaning and default |\n|---|---|---|\n");
    for k in config_keys() {
        t.push_str(&format!("| `{}` | {} | {} |\n", k.name, k.value, k.doc));
    }
    t
}

#[test]
fn every_key_is_in_the_docs_table_and_the_header_points_to_it() {
    const MARK: &str = "<!-- config keys: from config_keys() in src/secrets/config/ -->\n";
    let readme = include_str!("../../../docs/configuration.md");
    let at = readme
        .find(MARK)
        .expect("docs/configuration.md marks its table of config keys")
        + MARK.len();
    let end = readme[at..]
        .find("\n\n")
        .map_or(readme.len(), |e| at + e + 1);
    assert!(
        readme[at..end] == readme_table(),
        "docs/configuration.md's table of config keys differs from config_keys(); it should read:\n{}",
        readme_table()
    );

    // The header's st_secrets_new documentation points to that table
    // and restates none of it (a copy there would drift).
    let header = include_str!("../../../include/st_secrets.h");
    let end = header
        .find("st_result st_secrets_new(")
        .expect("st_secrets_new");
    let start = header[..end].rfind("/**").expect("its documentation");
    let doc = &header[start..end];
    assert!(
        doc.contains("docs/configuration.md") && doc.contains("\"Configuration keys\""),
        "st_secrets_new's documentation must point to docs/configuration.md's table: {doc}"
    );
    for k in config_keys() {
        assert!(
            !doc.contains(&format!("`{}`", k.name)),
            "st_secrets_new's documentation restates `{}`: point to docs/configuration.md instead",
            k.name
        );
    }
    let mut names: Vec<_> = config_keys().map(|k| k.name).collect();
    let all = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), all, "a key is listed twice");
}

#[test]
fn a_fleets_keys_are_checked_naming_the_key() {
    let c = ManagerConfig::from_json(r#"{"fleet_capacity": 250, "fleet_deadline": 90}"#).unwrap();
    assert_eq!(c.remote.fleet.capacity, 250);
    assert_eq!(c.remote.fleet.deadline, Duration::from_secs(90));
    let d = ManagerConfig::from_json("{}").unwrap();
    assert_eq!(d.remote.fleet.capacity, 100);
    assert_eq!(d.remote.fleet.deadline, Duration::from_secs(600));
    for bad in [
        r#"{"fleet_capacity": 0}"#,
        r#"{"fleet_capacity": -5}"#,
        r#"{"fleet_capacity": 2.5}"#,
        r#"{"fleet_capacity": 1e12}"#,
        r#"{"fleet_capacity": "100"}"#,
        r#"{"fleet_deadline": 0}"#,
        r#"{"fleet_deadline": -1}"#,
        r#"{"fleet_deadline": 0.5}"#,
        r#"{"fleet_deadline": 1e9}"#,
    ] {
        let e = ManagerConfig::from_json(bad).unwrap_err();
        let key = if bad.contains("capacity") {
            "fleet_capacity"
        } else {
            "fleet_deadline"
        };
        assert_eq!(e.code_name(), "ST_INVALID_ARGUMENT", "{bad}");
        assert!(e.to_string().contains(&format!("'{key}'")), "{bad}: {e}");
    }
}
