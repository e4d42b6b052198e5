//! Who holds execution leases and outbox claims: one incarnation (run) of a named process.
//!
//! The name is stable across restarts of the same process (`FLOWMATE_WORKER_ID`, by default
//! the host name and listen address); the incarnation is new at every start. A lease or claim
//! held by another incarnation of the same name was left by a run of this very process that
//! ended, so at start the process takes its own leftovers over at once instead of waiting for
//! their leases to run out. Two processes alive at the same time must not share a name.

use std::fmt;

/// A process incarnation: `name#incarnation` in lease owners and outbox claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessIdentity {
    owner: String,
    name_len: usize,
}

impl ProcessIdentity {
    /// A new incarnation (random) of the process called `name` (`#` is replaced, it separates
    /// the parts).
    pub fn new(name: &str) -> Self {
        let name = name.trim().replace('#', "-");
        let owner = format!("{name}#{}", uuid::Uuid::new_v4().simple());
        Self { name_len: name.len() + 1, owner }
    }

    /// A process with a name of its own (random), so no other process is taken for an earlier
    /// incarnation of it.
    pub fn unique() -> Self {
        Self::new(&format!("worker-{}", uuid::Uuid::new_v4().simple()))
    }

    /// This incarnation, as written in lease owners and outbox claims.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// What every incarnation of this process starts with (`name#`).
    pub fn name_prefix(&self) -> &str {
        &self.owner[..self.name_len]
    }

    /// Whether `owner` is another incarnation of this process.
    pub fn is_earlier_incarnation(&self, owner: &str) -> bool {
        owner != self.owner && owner.starts_with(self.name_prefix())
    }
}

impl Default for ProcessIdentity {
    fn default() -> Self {
        Self::unique()
    }
}

impl fmt::Display for ProcessIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.owner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incarnations_of_one_name_know_each_other_and_no_one_else() {
        let first = ProcessIdentity::new("host:3000");
        let second = ProcessIdentity::new("host:3000");
        assert_ne!(first, second);
        assert_eq!(first.name_prefix(), "host:3000#");
        assert!(second.is_earlier_incarnation(first.owner()));
        assert!(!second.is_earlier_incarnation(second.owner()));
        assert!(!second.is_earlier_incarnation(ProcessIdentity::new("host:30001").owner()));
        assert!(!second.is_earlier_incarnation(ProcessIdentity::new("host:300").owner()));
        assert_eq!(ProcessIdentity::new("a#b").name_prefix(), "a-b#");
    }
}
