//! A Slurm job's end, when it read with its own token: the OpenBao entity
//! the job's token maps to is disabled, so that a copy of the token taken
//! out of the job is refused at once (a login of a disabled entity is
//! refused with 403, and so is every token it holds) rather than only once
//! its `exp` has passed.
//!
//! The entity is the job's run's alone: the role's `user_claim` is `sub`,
//! which the job token makes `job/CLUSTER/JOBID/RUN` (a requeued run is a
//! new entity). The end checks that before disabling anything: an entity
//! whose aliases do not include the token's `sub` (a role mapping logins to
//! the user, say) is left alone and the failure says why. The job's own
//! policy lets its token disable its own entity, nothing else:
//! `path "identity/entity/id/{{identity.entity.id}}" { capabilities =
//! ["read", "update"], allowed_parameters = { "disabled" = [true] } }`.
//!
//! One login with the job's token (the file the login reads), its token's
//! `lookup-self`, a read of the entity and the update: on each node of the
//! job, the first to end disables it, the others' logins are refused with
//! 403 and find it disabled already. The end's login token cannot be
//! revoked once its entity is disabled (every use is refused): it is of no
//! use to anyone and lapses at its TTL.

use super::auth::Auth;
use super::session::Session;
use super::wire::{errors_summary, expect, take_string};
use crate::error::Error;
use crate::secret::SecretString;
use crate::secrets::provider::zeroize_json;
use serde_json::Value;

/// What the end did to the job's entity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntityEnd {
    /// Disabled now.
    Disabled,
    /// The login was refused with 403: disabled already (another node of
    /// the job ended first).
    DisabledAlready,
}

impl EntityEnd {
    /// As the revocation's report says it.
    pub fn name(self) -> &'static str {
        match self {
            EntityEnd::Disabled => "disabled",
            EntityEnd::DisabledAlready => "disabled already",
        }
    }
}

/// [`Vault::disable_job_entity`](super::Vault::disable_job_entity), with
/// the Vault's `session` (its login and client).
pub(super) fn disable(session: &Session) -> Result<EntityEnd, Error> {
    let Auth::Login(login) = &session.auth else {
        return Err(not_jwt());
    };
    if !login.is_jwt() {
        return Err(not_jwt());
    }
    let request = login.request().map_err(|f| f.error)?;
    let sub = subject(&request.body)?;
    let client = session.client();
    let r = client
        .send(
            "POST",
            &request.path,
            None,
            request.body.expose().as_bytes(),
        )
        .map_err(|f| f.error)?;
    if r.status == 403 {
        return Ok(EntityEnd::DisabledAlready);
    }
    if r.status == 400 {
        return Err(Error::Auth(format!(
            "the job's token was refused (HTTP 400){}: its entity is left as it is",
            errors_summary(&r)
        )));
    }
    let r = expect(r, "the job's end login").map_err(|f| f.error)?;
    let token = take_string(r.json(), &["auth", "client_token"])
        .map(SecretString::from)
        .ok_or_else(|| Error::Remote("the job's end login: no client_token".into()))?;
    let r = client
        .send("GET", "auth/token/lookup-self", Some(&token), b"")
        .and_then(|r| expect(r, "the end login's lookup-self"))
        .map_err(|f| f.error)?;
    let id = take_string(r.json(), &["data", "entity_id"])
        .filter(|id| !id.is_empty() && id.len() <= 64 && !id.contains('/'))
        .ok_or_else(|| {
            Error::Remote("the end login's token has no entity: nothing to disable".into())
        })?;
    let path = format!("identity/entity/id/{id}");
    let r = client
        .send("GET", &path, Some(&token), b"")
        .and_then(|r| expect(r, "the job's entity"))
        .map_err(|f| f.error)?;
    let doc = r.json().unwrap_or(Value::Null);
    let aliases: Vec<&str> = doc["data"]["aliases"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["name"].as_str()).collect())
        .unwrap_or_default();
    if !aliases.contains(&sub.as_str()) {
        return Err(Error::Remote(format!(
            "the login's entity is not the job's own (none of its {} aliases is the token's \
             sub '{}'): left enabled; set the role's user_claim to sub",
            aliases.len(),
            crate::error::shorten(&sub)
        )));
    }
    let r = client
        .send("POST", &path, Some(&token), br#"{"disabled":true}"#)
        .map_err(|f| f.error)?;
    if r.status == 403 {
        return Err(Error::Auth(format!(
            "the job's entity: its update refused (HTTP 403){}: the job's policy must let it \
             update identity/entity/id/{{{{identity.entity.id}}}} with disabled=true",
            errors_summary(&r)
        )));
    }
    expect(r, "the job's entity's update").map_err(|f| f.error)?;
    Ok(EntityEnd::Disabled)
}

fn not_jwt() -> Error {
    Error::InvalidArgument(
        "the job's entity is disabled at its end only when the Vault login is `jwt` (the job's \
         own token)"
            .into(),
    )
}

/// The `sub` of the JWT in a `jwt` login's body.
fn subject(body: &SecretString) -> Result<String, Error> {
    let mut doc: Value = serde_json::from_str(body.expose()).unwrap_or(Value::Null);
    let sub = doc["jwt"]
        .as_str()
        .and_then(crate::secrets::credential::identity_file::jwt_claims)
        .and_then(|c| c["sub"].as_str().map(str::to_owned));
    zeroize_json(&mut doc);
    sub.filter(|s| !s.is_empty())
        .ok_or_else(|| Error::InvalidArgument("the job's token has no sub claim".into()))
}
