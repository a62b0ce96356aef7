//! Which version of a remote secret to hold: the version in force, unless
//! the caller reported it failed (a rotation's window: AWS changes the
//! credential at `setSecret` but moves `AWSCURRENT` only at
//! `finishSecret`), and whether the version held already is it, so that a
//! refresh of an unchanged secret sends no value (AWS `DescribeSecret`, KV
//! v2 `metadata/`: what the service says of its versions, without one).

use crate::secrets::provider::Version;

/// What a service says of a secret's versions, without sending a value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Versions {
    /// The version in force (AWS `AWSCURRENT`, the KV v2 current version);
    /// `None` when it cannot be read (deleted, destroyed, or the secret is
    /// scheduled for deletion): the value is then read as without a check,
    /// which says what the service says of it.
    pub current: Option<String>,
    /// The versions to turn to when the one in force failed a caller, in
    /// order (AWS `AWSPENDING`, then `AWSPREVIOUS`; the latest KV v2
    /// version before the current one that is neither deleted nor
    /// destroyed).
    pub beside: Vec<String>,
    /// Each version's stages (AWS; empty for Vault).
    pub stages: Vec<(String, Vec<String>)>,
}

impl Versions {
    fn stages_of(&self, id: &str) -> Vec<String> {
        self.stages
            .iter()
            .find(|(v, _)| v == id)
            .map(|(_, s)| s.clone())
            .unwrap_or_default()
    }
}

/// What to do, given what the service says.
#[derive(Debug, PartialEq, Eq)]
pub enum Choice {
    /// The value held is the one to hold: kept, with this version (its
    /// stages as the service says them now).
    Keep(Version),
    /// This version is to be fetched (and held with these stages and
    /// `instead_of`).
    Fetch(Version),
    /// Read the value as without a check.
    Plain,
}

/// The version to hold, given the service's `versions`, the version
/// `held` (if any) and the version reported `failed` (by the caller now,
/// or the one the value held stands in for): the current version, unless
/// it is the one that failed, then the first version beside it that is
/// not; the current one again when there is none.
pub fn choose(versions: &Versions, held: Option<&Version>, failed: Option<&str>) -> Choice {
    let Some(current) = versions.current.as_deref() else {
        return Choice::Plain;
    };
    let (id, instead_of) = match failed {
        Some(f) if f == current => match versions.beside.iter().find(|b| b.as_str() != f) {
            Some(other) => (other.as_str(), Some(f.to_owned())),
            None => (current, None),
        },
        _ => (current, None),
    };
    let want = Version {
        id: id.to_owned(),
        stages: versions.stages_of(id),
        instead_of,
        leased: false,
        ends: None,
    };
    if held.is_some_and(|h| h.id == want.id) {
        Choice::Keep(want)
    } else {
        Choice::Fetch(want)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws(current: &str, pending: Option<&str>, previous: Option<&str>) -> Versions {
        let mut stages = vec![(current.to_owned(), vec!["AWSCURRENT".to_owned()])];
        let mut beside = Vec::new();
        for (id, stage) in [(pending, "AWSPENDING"), (previous, "AWSPREVIOUS")] {
            if let Some(id) = id {
                stages.push((id.to_owned(), vec![stage.to_owned()]));
                beside.push(id.to_owned());
            }
        }
        Versions {
            current: Some(current.to_owned()),
            beside,
            stages,
        }
    }

    fn v(id: &str) -> Version {
        Version {
            id: id.into(),
            ..Version::default()
        }
    }

    #[test]
    fn an_unchanged_secret_is_kept_with_its_stages_as_they_are_now() {
        let now = aws("v1", Some("v2"), None);
        let Choice::Keep(kept) = choose(&now, Some(&v("v1")), None) else {
            panic!("not kept");
        };
        assert_eq!(
            (kept.stages, kept.instead_of),
            (vec!["AWSCURRENT".into()], None)
        );
        assert_eq!(
            choose(&now, Some(&v("v0")), None),
            Choice::Fetch(Version {
                id: "v1".into(),
                stages: vec!["AWSCURRENT".into()],
                instead_of: None,
                leased: false,
                ends: None,
            })
        );
        assert!(matches!(choose(&now, None, None), Choice::Fetch(w) if w.id == "v1"));
    }

    #[test]
    fn the_current_version_failed_pending_then_previous_stand_in() {
        let pending = choose(
            &aws("v1", Some("v2"), Some("v0")),
            Some(&v("v1")),
            Some("v1"),
        );
        assert_eq!(
            pending,
            Choice::Fetch(Version {
                id: "v2".into(),
                stages: vec!["AWSPENDING".into()],
                instead_of: Some("v1".into()),
                leased: false,
                ends: None,
            })
        );
        let previous = choose(&aws("v1", None, Some("v0")), Some(&v("v1")), Some("v1"));
        assert!(matches!(previous, Choice::Fetch(w) if w.id == "v0"));
        // The stand-in held while the failed version is still current: kept.
        let held = Version {
            instead_of: Some("v1".into()),
            ..v("v2")
        };
        let again = choose(&aws("v1", Some("v2"), None), Some(&held), Some("v1"));
        assert!(matches!(again, Choice::Keep(w) if w.instead_of.as_deref() == Some("v1")));
        // The rotation finished: the stand-in is current, held as such.
        let done = choose(&aws("v2", None, Some("v1")), Some(&held), Some("v1"));
        assert_eq!(
            done,
            Choice::Keep(Version {
                id: "v2".into(),
                stages: vec!["AWSCURRENT".into()],
                instead_of: None,
                leased: false,
                ends: None,
            })
        );
    }

    #[test]
    fn a_failed_version_that_is_not_current_gives_the_current_one() {
        let now = aws("v1", Some("v2"), None);
        assert!(
            matches!(choose(&now, Some(&v("v2")), Some("v2")), Choice::Fetch(w) if w.id == "v1" && w.instead_of.is_none())
        );
        // Nothing beside the failed current version: the current one again.
        assert!(
            matches!(choose(&aws("v1", None, None), Some(&v("v1")), Some("v1")), Choice::Keep(w) if w.id == "v1")
        );
        // No readable current version: read as without a check.
        assert_eq!(
            choose(&Versions::default(), Some(&v("v1")), None),
            Choice::Plain
        );
    }
}
