//! `FLOWMATE_EXECUTION_RETENTION`: how long ended executions are kept, and the periodic purge
//! the engine roles run to enforce it.

use flow_domain::ports::ExecutionRetention;
use flow_domain::services::{ExecutionPurge, RetentionConfig};
use flow_domain::time::Clock;
use flow_engine::runtime::spawn_retention;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long an ended execution is kept after it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// Never deleted.
    Forever,
    /// Deleted once it finished longer ago than this.
    Keep(Duration),
}

impl Retention {
    /// The default: 30 days.
    pub const DEFAULT: &'static str = "30d";

    /// The period, unless kept forever.
    pub fn keep(self) -> Option<Duration> {
        match self {
            Retention::Forever => None,
            Retention::Keep(keep) => Some(keep),
        }
    }
}

impl FromStr for Retention {
    type Err = String;

    /// `0`, `off` or `forever`: keep forever; else a whole number with a unit: `s`, `m`, `h`,
    /// `d` (e.g. `7d`, `12h`, `30m`).
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if matches!(s.to_ascii_lowercase().as_str(), "0" | "off" | "forever") {
            return Ok(Retention::Forever);
        }
        let invalid =
            || format!("{s:?} is not a retention: use e.g. 7d, 12h, 30m, 90s, or 0/off to keep forever");
        let unit_at = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(invalid)?;
        let (number, unit) = s.split_at(unit_at);
        let number: u64 = number.parse().map_err(|_| invalid())?;
        let unit_secs = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3_600,
            "d" => 86_400,
            _ => return Err(invalid()),
        };
        // Beyond a century is forever for any store; refusing it keeps the cutoff computable.
        match number.checked_mul(unit_secs) {
            Some(0) => Ok(Retention::Forever),
            Some(secs) if secs <= 36_500 * 86_400 => Ok(Retention::Keep(Duration::from_secs(secs))),
            _ => Err(format!("{s:?} is too long a retention (at most 36500d; 0/off keeps forever)")),
        }
    }
}

impl fmt::Display for Retention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Retention::Forever => f.write_str("off"),
            Retention::Keep(keep) => write!(f, "{}s", keep.as_secs()),
        }
    }
}

/// How often the purge runs for `keep`: a tenth of it, between one second and one minute.
pub fn purge_interval(keep: Duration) -> Duration {
    (keep / 10).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

/// Starts the periodic purge for `retention` (nothing when executions are kept forever).
pub fn spawn_purge(
    retention: Retention,
    store: Arc<dyn ExecutionRetention>,
    clock: Arc<dyn Clock>,
    cancel: CancellationToken,
) -> Option<JoinHandle<()>> {
    let keep = retention.keep()?;
    // `keep` is at most a century (see `from_str`), well inside chrono's range.
    let config = RetentionConfig::keeping(chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX));
    let purge = Arc::new(ExecutionPurge::new(store, clock, config));
    tracing::info!(retention = %humanize(keep), "ended executions are deleted after the retention period");
    Some(spawn_retention(purge, purge_interval(keep), cancel))
}

fn humanize(keep: Duration) -> String {
    let secs = keep.as_secs();
    match secs {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Retention, String> {
        s.parse()
    }

    #[test]
    fn durations_with_units() {
        assert_eq!(parse("7d"), Ok(Retention::Keep(Duration::from_secs(7 * 86_400))));
        assert_eq!(parse("12h"), Ok(Retention::Keep(Duration::from_secs(12 * 3_600))));
        assert_eq!(parse(" 30m "), Ok(Retention::Keep(Duration::from_secs(1_800))));
        assert_eq!(parse("90s"), Ok(Retention::Keep(Duration::from_secs(90))));
        assert_eq!(parse(Retention::DEFAULT), Ok(Retention::Keep(Duration::from_secs(30 * 86_400))));
    }

    #[test]
    fn zero_and_off_keep_forever() {
        for forever in ["0", "off", "OFF", "forever", "0d", "0s"] {
            assert_eq!(parse(forever), Ok(Retention::Forever), "{forever}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_retention() {
        for bad in ["", "7", "d", "7w", "-1d", "1.5d", "7 d", "36501d", "99999999999999999999d"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn purges_a_tenth_of_the_retention_apart_within_a_second_and_a_minute() {
        assert_eq!(purge_interval(Duration::from_secs(5)), Duration::from_secs(1));
        assert_eq!(purge_interval(Duration::from_secs(300)), Duration::from_secs(30));
        assert_eq!(purge_interval(Duration::from_secs(30 * 86_400)), Duration::from_secs(60));
    }

    #[test]
    fn displayed_as_parsed_back() {
        for r in [Retention::Forever, Retention::Keep(Duration::from_secs(3_600))] {
            assert_eq!(parse(&r.to_string()), Ok(r));
        }
        assert_eq!(humanize(Duration::from_secs(2 * 86_400)), "2d");
        assert_eq!(humanize(Duration::from_secs(90)), "90s");
    }
}
