//! Small helpers for dynamic SQL: bind values, WHERE clauses, LIKE patterns, timestamps.
//!
//! Only fixed SQL fragments are ever concatenated; every user-supplied value is bound.

use crate::error::corrupt;
use chrono::{DateTime, Utc};
use flow_domain::error::PortError;

/// A value bound to a `?` placeholder.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Text(String),
    OptText(Option<String>),
    Int(i64),
}

/// Binds every `Arg` of `$args` to the query `$query`, in order.
macro_rules! bind_args {
    ($query:expr, $args:expr) => {{
        let mut query = $query;
        for arg in $args {
            query = match arg {
                $crate::sql::Arg::Text(v) => query.bind(v.clone()),
                $crate::sql::Arg::OptText(v) => query.bind(v.clone()),
                $crate::sql::Arg::Int(v) => query.bind(*v),
            };
        }
        query
    }};
}
pub(crate) use bind_args;

/// A conjunction of WHERE conditions with their bind values.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filter {
    clauses: Vec<String>,
    pub(crate) args: Vec<Arg>,
}

impl Filter {
    /// Adds `clause` (with `args.len()` placeholders) to the conjunction.
    pub(crate) fn and(&mut self, clause: impl Into<String>, args: impl IntoIterator<Item = Arg>) {
        self.clauses.push(clause.into());
        self.args.extend(args);
    }

    /// ` WHERE a AND b`, or nothing when there is no condition.
    pub(crate) fn where_sql(&self) -> String {
        if self.clauses.is_empty() { String::new() } else { format!(" WHERE {}", self.clauses.join(" AND ")) }
    }
}

/// `?, ?, ?` for `n` values.
pub(crate) fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// The case-folded form used for case-insensitive names and search (`*_key` columns).
pub(crate) fn fold(text: &str) -> String {
    text.to_lowercase()
}

/// A LIKE pattern (with `ESCAPE '\'`) matching any text containing `needle`, case-folded, with
/// `%`, `_` and `\` taken literally.
pub(crate) fn contains_pattern(needle: &str) -> String {
    let mut pattern = String::with_capacity(needle.len() + 2);
    pattern.push('%');
    for c in fold(needle).chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Milliseconds since the epoch, as stored.
pub(crate) fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// The instant stored as `ms` milliseconds since the epoch.
pub(crate) fn from_millis(ms: i64) -> Result<DateTime<Utc>, PortError> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| corrupt("timestamp"))
}

/// Converts a page size or offset to SQLite's integer type, saturating.
pub(crate) fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_pattern_escapes_wildcards() {
        assert_eq!(contains_pattern("50%_A\\b"), "%50\\%\\_a\\\\b%");
    }
}
