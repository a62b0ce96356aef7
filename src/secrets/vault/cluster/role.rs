//! A node's role in its cluster, as last learnt.

/// A node's role, as last learnt.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Role {
    #[default]
    Unknown,
    Active,
    Standby,
    /// Sealed, not initialised, or otherwise not serving (503, 501).
    Unavailable,
    /// Did not answer (connection refused, timeout).
    Down,
}

impl Role {
    pub(super) fn name(self) -> &'static str {
        match self {
            Role::Unknown => "unknown",
            Role::Active => "active",
            Role::Standby => "standby",
            Role::Unavailable => "unavailable",
            Role::Down => "down",
        }
    }

    /// The role `sys/health`'s status says.
    pub(super) fn from_health(status: u16) -> Role {
        match status {
            200 => Role::Active,
            429 | 473 => Role::Standby,
            _ => Role::Unavailable,
        }
    }
}
