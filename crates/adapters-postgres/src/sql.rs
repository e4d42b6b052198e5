//! Small helpers for dynamic SQL: bind values, WHERE clauses, LIKE patterns, timestamps, and
//! the translation of `?` placeholders into PostgreSQL's numbered `$n`.
//!
//! Only fixed SQL fragments are ever concatenated; every user-supplied value is bound. No
//! statement of this crate uses a `?` for anything but a placeholder (jsonb tests are written
//! with `jsonb_exists*` functions, not the `?` operators).

use chrono::{DateTime, Utc};
use flow_domain::error::PortError;
use serde_json::value::RawValue;
use sqlx::AssertSqlSafe;

/// A value bound to a `?` placeholder.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    Time(DateTime<Utc>),
    OptTime(Option<DateTime<Utc>>),
    /// JSON text, serialized once straight from the typed value (no `Value` tree on the way).
    Json(Box<RawValue>),
    TextArray(Vec<String>),
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
                $crate::sql::Arg::Time(v) => query.bind(*v),
                $crate::sql::Arg::OptTime(v) => query.bind(*v),
                $crate::sql::Arg::Json(v) => query.bind(sqlx::types::Json(v.clone())),
                $crate::sql::Arg::TextArray(v) => query.bind(v.clone()),
            };
        }
        query
    }};
}
pub(crate) use bind_args;

/// `sql` with its `?` placeholders numbered `$1`, `$2`, ... (outside quoted literals).
/// Runs on every statement sent, so it copies the text between placeholders in whole slices
/// and writes the numbers without allocating.
pub(crate) fn numbered(sql: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(sql.len() + sql.len() / 8);
    let mut n = 0;
    let mut in_literal = false;
    let mut copied = 0;
    for (at, byte) in sql.bytes().enumerate() {
        match byte {
            b'\'' => in_literal = !in_literal,
            b'?' if !in_literal => {
                n += 1;
                out.push_str(&sql[copied..at]);
                let _ = write!(out, "${n}");
                copied = at + 1;
            }
            _ => {}
        }
    }
    out.push_str(&sql[copied..]);
    out
}

/// A statement for sqlx: `sql` with numbered placeholders.
pub(crate) fn q(sql: &str) -> AssertSqlSafe<String> {
    AssertSqlSafe(numbered(sql))
}

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

/// The instant as stored: truncated to whole milliseconds, so it reads back exactly.
pub(crate) fn millis(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at)
}

/// The instant read back (stored values are already whole milliseconds).
#[allow(clippy::unnecessary_wraps)]
pub(crate) fn from_millis(at: DateTime<Utc>) -> Result<DateTime<Utc>, PortError> {
    Ok(at)
}

/// Converts a page size or offset to PostgreSQL's `bigint`, saturating.
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

    #[test]
    fn placeholders_are_numbered_outside_literals() {
        assert_eq!(
            numbered("a = ? AND b LIKE ? ESCAPE '\\' AND c = '?' AND d = ?"),
            "a = $1 AND b LIKE $2 ESCAPE '\\' AND c = '?' AND d = $3"
        );
    }

    #[test]
    fn timestamps_are_truncated_to_milliseconds() {
        let at = DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap_or_default();
        assert_eq!(millis(at).timestamp_subsec_nanos(), 123_000_000);
    }
}
