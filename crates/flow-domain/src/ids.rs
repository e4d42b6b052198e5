//! Typed identifiers: UUID v7 newtypes so a flow id can never be passed where a user id is meant.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// The error returned when a string is not a well-formed id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid id")]
pub struct InvalidId;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new, time-ordered (v7) id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
            /// The underlying UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_uuid(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(value: Uuid) -> Self {
                Self(value)
            }
        }
    };
}

/// Parses the canonical lowercase hyphenated form only (36 characters), as SPEC §1 requires.
pub fn parse_uuid(s: &str) -> Result<Uuid, InvalidId> {
    if s.len() != 36 || s.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(InvalidId);
    }
    Uuid::try_parse(s).map_err(|_| InvalidId)
}

typed_id!(
    /// Identifies a flow.
    FlowId
);
typed_id!(
    /// Identifies a flow template.
    TemplateId
);
typed_id!(
    /// Identifies a user account.
    UserId
);
typed_id!(
    /// Identifies a tenant.
    TenantId
);
typed_id!(
    /// Identifies an issued bearer token.
    TokenId
);
typed_id!(
    /// Identifies one execution (run) of a flow.
    ExecutionId
);
typed_id!(
    /// Identifies an event on the bus (and in the outbox).
    EventId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_canonical_lowercase_uuids() {
        let id = FlowId::new();
        assert_eq!(id.to_string().parse::<FlowId>(), Ok(id));
        assert!("not-a-uuid".parse::<FlowId>().is_err());
        assert!(id.to_string().to_uppercase().parse::<FlowId>().is_err());
        assert!(id.0.simple().to_string().parse::<FlowId>().is_err());
    }
}
