//! The commands, one file per group; each takes the [`Globals`](crate::context::Globals)
//! and its own arguments, and returns an [`Outcome`](crate::outcome::Outcome).

pub mod crypto;
pub mod doctor;
pub mod export;
mod identity;
pub mod leak;
pub mod run;
pub mod secrets;
pub mod store;
mod watch;
