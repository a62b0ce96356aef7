//! The commands, one file per group; each takes the [`Globals`](crate::context::Globals)
//! and its own arguments, and returns an [`Outcome`](crate::outcome::Outcome).

mod awsserve;
pub mod crypto;
pub mod doctor;
mod exchanged;
pub mod export;
mod identity;
pub mod job_token;
pub mod leak;
mod ledger;
mod metrics;
pub mod run;
pub mod secrets;
pub mod store;
mod watch;
