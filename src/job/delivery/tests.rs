use super::conventions::host_of;
use super::*;
use crate::error::Error;
use crate::secret::SecretString;
use std::path::Path;

#[test]
fn an_exchanged_wandb_credential_is_wandbs_credentials_file() {
    let d = wandb_exchanged(
        "WANDB_API_KEY",
        "https://wandb.example.org",
        Path::new("/run/job/wandb.jwt"),
    );
    assert_eq!(d.path_var, "WANDB_CREDENTIALS_FILE");
    assert_eq!(
        d.also,
        [
            (
                "WANDB_IDENTITY_TOKEN_FILE".into(),
                "/run/job/wandb.jwt".into()
            ),
            ("WANDB_BASE_URL".into(), "https://wandb.example.org".into())
        ]
    );
    // 2026-11-28 23:39:14.9 UTC, written in whole seconds (never late).
    let ends = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_795_909_154_900);
    let bytes = render_ending(&d.render, &[b"wb_at_\"x"], Some(ends));
    let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        doc,
        serde_json::json!({"credentials": {"https://wandb.example.org": {
            "access_token": "wb_at_\"x", "expires_at": "2026-11-28 23:39:14"}}})
    );
}

#[test]
fn each_tool_gets_its_file_and_path_variable() {
    let names = [
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "WANDB_API_KEY",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "DB_PASSWORD",
    ];
    let env = |n: &str| match n {
        "WANDB_BASE_URL" => Some("https://user@wandb.example.com:8443/x".into()),
        "AWS_PROFILE" => Some("training".into()),
        _ => None,
    };
    let plan = plan(&names, env);
    let vars: Vec<(&str, &str)> = plan
        .iter()
        .map(|d| (d.path_var.as_str(), d.file.as_str()))
        .collect();
    assert_eq!(
        vars,
        [
            ("HF_TOKEN_PATH", "hf-token"),
            ("HUGGING_FACE_HUB_TOKEN_FILE", "HUGGING_FACE_HUB_TOKEN"),
            ("NETRC", "netrc"),
            ("AWS_SHARED_CREDENTIALS_FILE", "aws-credentials"),
            ("DB_PASSWORD_FILE", "DB_PASSWORD"),
        ]
    );
    assert_eq!(plan[3].from, ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]);
    assert_eq!(
        &render(&plan[2].render, &[b"k123"])[..],
        b"machine wandb.example.com login user password k123\n"
    );
    assert_eq!(
        &render(&plan[3].render, &[b"AKID", b"sk/+"])[..],
        b"[training]\naws_access_key_id = AKID\naws_secret_access_key = sk/+\n"
    );
    // A lone AWS key, no base URL: plain files, the default host.
    let lone = super::plan(&["AWS_ACCESS_KEY_ID", "WANDB_API_KEY"], |_| None);
    assert_eq!(lone[0].path_var, "AWS_ACCESS_KEY_ID_FILE");
    assert_eq!(
        lone[1].render,
        Render::Netrc {
            host: "api.wandb.ai".into()
        }
    );
    assert_eq!(host_of("no host://"), None);
    assert!(refusal(&lone[1].render, b"has space").is_some());
    assert!(refusal(&Render::Plain, b"a b\n").is_none());
}

#[test]
fn a_list_of_secrets_is_names_and_keys_and_bad_items_are_named() {
    let w = parse_wanted("HF_TOKEN, DB=prod-db").unwrap();
    assert_eq!(
        w,
        [
            Wanted {
                var: "HF_TOKEN".into(),
                key: "HF_TOKEN".into()
            },
            Wanted {
                var: "DB".into(),
                key: "prod-db".into()
            }
        ]
    );
    for (list, names) in [
        ("", "empty item"),
        ("A,,B", "empty item"),
        ("1A", "'1A'"),
        ("A-B", "'A-B'"),
        ("A=", "'A='"),
        ("A=x/y", "'A=x/y'"),
        ("A=.hidden", "'A=.hidden'"),
        ("A=b c", "'A=b c'"),
        ("A,A=b", "named twice"),
    ] {
        let e = parse_wanted(list).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{list}");
        assert!(e.to_string().contains(names), "{list}: {e}");
    }
    let many: Vec<String> = (0..=MAX_WANTED).map(|i| format!("V{i}")).collect();
    assert!(parse_wanted(&many.join(",")).is_err());
}

fn shm_dir() -> Option<tempfile::TempDir> {
    let d = tempfile::tempdir_in("/dev/shm").ok()?;
    (crate::sys::memory_backed(d.path()) == Some(true)).then_some(d)
}

/// The values of the tests: fixed ones, and `short` as a short-lived
/// credential (given as `ANTHROPIC_API_KEY`'s exchange), its reads counted.
struct Held {
    short: std::cell::RefCell<(&'static str, usize)>,
    fail: bool,
}

fn held() -> Held {
    Held {
        short: std::cell::RefCell::new(("sk-ant-oat-1", 0)),
        fail: false,
    }
}

const ENDS_IN: std::time::Duration = std::time::Duration::from_secs(600);

impl JobValues for Held {
    fn value(
        &self,
        key: &str,
    ) -> Result<Option<(SecretString, Option<std::time::SystemTime>)>, Error> {
        if self.fail {
            return Err(Error::Permission("Vault read: permission denied".into()));
        }
        let fixed = |v: &str| Some((SecretString::from(v), None));
        Ok(match key {
            "HF_TOKEN" => fixed("hf_abc"),
            "WANDB_API_KEY" => fixed("w k"),
            "db-pass" => fixed("p4ss"),
            "ANTHROPIC_API_KEY" => {
                let mut short = self.short.borrow_mut();
                short.1 += 1;
                Some((
                    SecretString::from(short.0),
                    Some(std::time::SystemTime::now() + ENDS_IN),
                ))
            }
            _ => None,
        })
    }

    fn var(&self, _: &str) -> Option<String> {
        None
    }

    fn exchanged(&self, w: &Wanted) -> Result<Option<Delivery>, Error> {
        Ok((w.key == "ANTHROPIC_API_KEY")
            .then(|| anthropic_exchanged(&w.var, "https://api.anthropic.com", "org-1")))
    }

    fn short_lived(&self, key: &str) -> bool {
        key == "ANTHROPIC_API_KEY"
    }
}

#[test]
fn files_are_new_private_and_named_by_the_variables_each_layout_sets() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Some(dir) = shm_dir() else {
        eprintln!("skipped: no memory-backed /dev/shm here");
        return;
    };
    let d = dir.path();
    let wanted = parse_wanted("HF_TOKEN,DB_PASSWORD=db-pass").unwrap();
    let vars = write_files(&wanted, d, Layout::Conventions, None, &held()).unwrap();
    let hf = d.join("hf-token");
    assert_eq!(
        vars,
        [
            ("HF_TOKEN_PATH".to_owned(), hf.display().to_string()),
            (
                "DB_PASSWORD_FILE".to_owned(),
                d.join("DB_PASSWORD").display().to_string()
            ),
        ]
    );
    assert_eq!(std::fs::read(&hf).unwrap(), b"hf_abc");
    let meta = std::fs::metadata(&hf).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.uid(), crate::sys::effective_uid());
    // Never through an existing name: a second write fails, and removes
    // only what it wrote itself.
    let again = write_files(&wanted, d, Layout::Conventions, None, &held());
    assert!(matches!(again, Err(Error::Io(_))), "{again:?}");
    assert!(hf.exists());

    let refs = dir.path().join("refs");
    std::fs::create_dir(&refs).unwrap();
    let vars = write_files(&wanted, &refs, Layout::Keys, None, &held()).unwrap();
    assert_eq!(vars[0], ("HF_TOKEN".to_owned(), "st://HF_TOKEN".to_owned()));
    assert_eq!(
        vars[1],
        ("DB_PASSWORD".to_owned(), "st://db-pass".to_owned())
    );
    assert_eq!(vars[2].0, "SIMPLETUNER_SECRETS_DIRS");
    assert_eq!(std::fs::read(refs.join("db-pass")).unwrap(), b"p4ss");
}

#[test]
fn nothing_is_written_unless_every_value_is_found_and_fits() {
    let Some(dir) = shm_dir() else {
        return;
    };
    let d = dir.path();
    let absent = parse_wanted("HF_TOKEN,MISSING=nowhere").unwrap();
    let e = write_files(&absent, d, Layout::Conventions, None, &held()).unwrap_err();
    assert!(matches!(e, Error::NotFound(_)));
    assert!(
        e.to_string().contains("MISSING") && e.to_string().contains("nowhere"),
        "{e}"
    );
    // A provider's failure names the variable and the key, its kind kept.
    let refused = Held {
        fail: true,
        ..held()
    };
    let e = write_files(&absent, d, Layout::Conventions, None, &refused).unwrap_err();
    assert!(matches!(e, Error::Permission(_)), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("HF_TOKEN (key 'HF_TOKEN'): Vault read"),
        "{e}"
    );
    // A netrc cannot hold a space: refused naming the variable, and the
    // token file written before it is removed.
    let spaced = parse_wanted("HF_TOKEN,WANDB_API_KEY").unwrap();
    let e = write_files(&spaced, d, Layout::Conventions, None, &held()).unwrap_err();
    assert!(
        e.to_string().contains("WANDB_API_KEY") && !e.to_string().contains("w k"),
        "{e}"
    );
    assert_eq!(std::fs::read_dir(d).unwrap().count(), 0);
    // Not a directory, or on a disk.
    let e = write_files(&absent, &d.join("none"), Layout::Keys, None, &held());
    assert!(e.is_err());
    let disk = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
    if crate::sys::memory_backed(disk.path()) == Some(false) {
        let e = write_files(&absent, disk.path(), Layout::Keys, None, &held()).unwrap_err();
        assert!(e.to_string().contains("memory-backed"), "{e}");
    }
    assert!(Layout::from_name("env").is_err());
}

#[test]
fn an_exchanged_credential_is_its_vendors_file_and_alone_refreshed_keeping_its_access() {
    use std::os::unix::fs::MetadataExt;
    let Some(dir) = shm_dir() else {
        return;
    };
    let d = dir.path();
    let wanted = parse_wanted("HF_TOKEN,ANTHROPIC_API_KEY").unwrap();
    let values = held();
    let vars = write_files(&wanted, d, Layout::Conventions, None, &values).unwrap();
    let profile = d.join("anthropic");
    assert_eq!(
        vars,
        [
            (
                "ANTHROPIC_CONFIG_DIR".to_owned(),
                profile.display().to_string()
            ),
            ("ANTHROPIC_PROFILE".to_owned(), ANTHROPIC_PROFILE.to_owned()),
            (
                "HF_TOKEN_PATH".to_owned(),
                d.join("hf-token").display().to_string()
            ),
        ]
    );
    let credentials = profile.join("credentials/st-secrets.json");
    let read =
        |p: &Path| serde_json::from_slice::<serde_json::Value>(&std::fs::read(p).unwrap()).unwrap();
    assert_eq!(read(&credentials)["access_token"], "sk-ant-oat-1");
    assert_eq!(
        read(&profile.join("configs/st-secrets.json"))["authentication"]["type"],
        "user_oauth"
    );
    for p in [&profile, &profile.join("credentials")] {
        assert_eq!(std::fs::metadata(p).unwrap().mode() & 0o7777, 0o700);
    }

    // Unchanged: nothing rewritten; the next look a quarter of the time left.
    let before = values.short.borrow().1;
    let done = refresh_files(&wanted, d, Layout::Conventions, &values).unwrap();
    assert!(done.rewritten.is_empty(), "{done:?}");
    let next = done
        .next
        .unwrap()
        .duration_since(std::time::SystemTime::now())
        .unwrap();
    assert!(
        next <= ENDS_IN / 4 && next > ENDS_IN / 4 - std::time::Duration::from_secs(30),
        "{next:?}"
    );
    assert_eq!(
        values.short.borrow().1,
        before + 1,
        "one read of the credential"
    );

    // Renewed: its file alone is replaced (the configuration and the token
    // file stay), a new file with the old one's ACL; the reader of the old
    // inode still has the old credential whole.
    let acl = acl_for(4242);
    let acl_set = crate::sys::set_xattr(&credentials, c"system.posix_acl_access", &acl);
    let old_inode = std::fs::metadata(&credentials).unwrap().ino();
    let hf_inode = std::fs::metadata(d.join("hf-token")).unwrap().ino();
    values.short.borrow_mut().0 = "sk-ant-oat-2";
    let done = refresh_files(&wanted, d, Layout::Conventions, &values).unwrap();
    assert_eq!(done.rewritten, ["anthropic/credentials/st-secrets.json"]);
    assert_eq!(read(&credentials)["access_token"], "sk-ant-oat-2");
    let meta = std::fs::metadata(&credentials).unwrap();
    assert_ne!(meta.ino(), old_inode);
    assert_eq!(meta.uid(), crate::sys::effective_uid());
    if acl_set {
        let copied = crate::sys::xattr(&credentials, c"system.posix_acl_access", 256);
        assert_eq!(
            copied.as_deref(),
            Some(acl.as_slice()),
            "the ACL goes with the file"
        );
    }
    assert_eq!(
        std::fs::metadata(d.join("hf-token")).unwrap().ino(),
        hf_inode
    );
    let left: Vec<_> = std::fs::read_dir(profile.join("credentials"))
        .unwrap()
        .collect();
    assert_eq!(left.len(), 1, "no temporary file left");

    // A layout of references: the key's own file, rewritten the same way.
    let refs = d.join("refs");
    std::fs::create_dir(&refs).unwrap();
    write_files(&wanted, &refs, Layout::Keys, None, &values).unwrap();
    values.short.borrow_mut().0 = "sk-ant-oat-3";
    let done = refresh_files(&wanted, &refs, Layout::Keys, &values).unwrap();
    assert_eq!(done.rewritten, ["ANTHROPIC_API_KEY"]);
    assert_eq!(
        std::fs::read(refs.join("ANTHROPIC_API_KEY")).unwrap(),
        b"sk-ant-oat-3"
    );

    // No short-lived value among them: nothing to look at again.
    let plain = parse_wanted("HF_TOKEN").unwrap();
    let done = refresh_files(&plain, d, Layout::Conventions, &values).unwrap();
    assert_eq!(done, Refreshed::default());
    // A link planted at a file's name is refused, never written through.
    std::fs::remove_file(&credentials).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", &credentials).unwrap();
    values.short.borrow_mut().0 = "sk-ant-oat-4";
    let e = refresh_files(&wanted, d, Layout::Conventions, &values).unwrap_err();
    assert!(matches!(e, Error::Io(_)), "{e:?}");
    assert!(std::fs::symlink_metadata(&credentials)
        .unwrap()
        .is_symlink());
}

/// A POSIX access ACL (the xattr's layout) letting `uid` read.
fn acl_for(uid: u32) -> Vec<u8> {
    let mut acl = 2u32.to_le_bytes().to_vec();
    for (tag, perm, id) in [
        (1u16, 6u16, u32::MAX),
        (2, 4, uid),
        (4, 0, u32::MAX),
        (0x10, 4, u32::MAX),
        (0x20, 0, u32::MAX),
    ] {
        acl.extend_from_slice(&tag.to_le_bytes());
        acl.extend_from_slice(&perm.to_le_bytes());
        acl.extend_from_slice(&id.to_le_bytes());
    }
    acl
}
