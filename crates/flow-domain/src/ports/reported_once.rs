//! Problems background passes meet again and again, reported once. Rows a storage adapter
//! cannot read back (a stored document nested too deep, or corrupt) must not fail a whole pass
//! (recovery, the scheduler, the watchdog, the outbox relay): adapters turn an execution they
//! cannot fully read into its readable remains ([`crate::model::Execution::mark_unreadable`]);
//! a row they cannot even address is left out of lists and logged once per process through
//! [`ReportedOnce`], not at every pass.

use std::collections::HashSet;
use std::sync::Mutex;

/// How many distinct rows are remembered as reported; past that, reports start over (a log
/// line again per row, never unbounded memory).
const REMEMBERED: usize = 10_000;

/// The problems (unreadable rows, flows a pass cannot handle) already reported by this process.
#[derive(Debug, Default)]
pub struct ReportedOnce {
    reported: Mutex<HashSet<String>>,
}

impl ReportedOnce {
    /// Whether the problem `key` (e.g. an unreadable row's table and key) is met for the first
    /// time: the caller logs it then, and stays quiet about it afterwards.
    pub fn first_report(&self, key: &str) -> bool {
        let mut reported = self.reported.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if reported.contains(key) {
            return false;
        }
        if reported.len() >= REMEMBERED {
            reported.clear();
        }
        reported.insert(key.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_row_is_reported_once() {
        let rows = ReportedOnce::default();
        assert!(rows.first_report("flows:1"));
        assert!(!rows.first_report("flows:1"));
        assert!(rows.first_report("flows:2"));
    }
}
