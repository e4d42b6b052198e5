//! The execution lifecycle as a pure transition function: `(status, input) -> (status, effects)`.
//!
//! Modelled on [`crate::lifecycle`]: effects are data the shell performs atomically with the
//! status change. Worker reports that arrive after the execution ended (a redelivered message,
//! a worker that lost its lease) change nothing, so they stay harmless. User commands that make
//! no sense in the current status are rejected (answered 409).
//!
//! Attempts: every run is counted (`CountAttempt`, by the claim that starts it) before it
//! begins, so a run whose process dies stays counted. A claim once [`AttemptLimit`] runs were
//! counted, and a lost run (its lease ran out, or its process restarted) at the limit, end the
//! execution `failed` with [`process_died`]'s reason instead: an execution that kills the
//! process running it is run at most that many times, never in a crash loop.

use crate::model::ExecutionStatus;
use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;

/// The most runs of one execution (`FLOWMATE_EXECUTION_MAX_ATTEMPTS`): once this many were
/// started and none ended (each time the process running it died), it is failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AttemptLimit(NonZeroU32);

impl AttemptLimit {
    /// Three runs.
    pub const DEFAULT: AttemptLimit = AttemptLimit(NonZeroU32::MIN.saturating_add(2));

    /// A limit of `runs` (at least one).
    pub const fn new(runs: NonZeroU32) -> Self {
        Self(runs)
    }

    /// The number of runs.
    pub const fn get(self) -> u32 {
        self.0.get()
    }

    /// Whether `attempts` counted runs leave room for another.
    pub const fn allows_another(self, attempts: u32) -> bool {
        attempts < self.0.get()
    }
}

impl Default for AttemptLimit {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Display for AttemptLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for AttemptLimit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        s.trim()
            .parse::<NonZeroU32>()
            .map(Self)
            .map_err(|_| format!("`{s}` is not a whole number of runs of at least 1"))
    }
}

/// Why an execution was failed after its process died `attempts` times while running it.
pub fn process_died(attempts: u32) -> String {
    let times = match attempts {
        1 => "once".to_string(),
        n => format!("{n} times"),
    };
    format!(
        "The process running this execution died {times} (attempt limit FLOWMATE_EXECUTION_MAX_ATTEMPTS reached)."
    )
}

/// What can happen to an execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutionInput {
    /// A worker is about to run the execution (queued, or running with an expired lease);
    /// `attempts` runs were counted so far.
    Claim {
        /// Runs counted so far.
        attempts: u32,
        /// The most runs allowed.
        limit: AttemptLimit,
    },
    /// The worker ran every step; `ok` is false when a step failed.
    Finish {
        /// Whether every step succeeded.
        ok: bool,
    },
    /// The execution cannot run at all (flow gone or inactive, malformed input), with why.
    Fail(String),
    /// `POST /executions/{id}/cancel`.
    Cancel,
    /// The process running the execution died (its lease ran out, or it was held by an earlier
    /// incarnation of a restarted process). `attempts` runs were counted, this one included.
    LeaseExpired {
        /// Runs counted so far.
        attempts: u32,
        /// The most runs allowed.
        limit: AttemptLimit,
    },
    /// `POST /executions/{id}/retry`: a new execution with the same input.
    Retry,
}

/// A side effect the shell must perform, atomically with the status change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutionEffect {
    /// Set `startedAt` (if unset) and take the lease for the claiming worker.
    TakeLease,
    /// Drop the lease (owner and expiry).
    ReleaseLease,
    /// Set `finishedAt`.
    RecordFinish,
    /// Record an execution-level error.
    RecordError(String),
    /// Count one more run (durably, before it begins).
    CountAttempt,
    /// Create a new queued execution with the same flow and input (and publish `flow.execute`).
    SpawnRetry,
}

/// The outcome of an accepted input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionTransition {
    /// The status after the input.
    pub status: ExecutionStatus,
    /// What to do, in order.
    pub effects: Vec<ExecutionEffect>,
}

impl ExecutionTransition {
    fn to(status: ExecutionStatus, effects: Vec<ExecutionEffect>) -> Self {
        Self { status, effects }
    }
    fn stay(status: ExecutionStatus) -> Self {
        Self { status, effects: vec![] }
    }
    /// Nothing changes and nothing is done.
    pub fn is_noop(&self, from: ExecutionStatus) -> bool {
        self.status == from && self.effects.is_empty()
    }
}

/// A refused input (answered 409 for user commands).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecutionRejection {
    /// Claim or cancel of an execution that already ended.
    #[error("Execution has already finished. Current status: {0}")]
    Finished(ExecutionStatus),
    /// A finish reported for an execution no worker has claimed.
    #[error("Execution is not running. Current status: {0}")]
    NotRunning(ExecutionStatus),
    /// Retry of an execution that has not ended.
    #[error("Execution has not finished yet. Current status: {0}")]
    NotFinished(ExecutionStatus),
}

fn finish(status: ExecutionStatus) -> ExecutionTransition {
    ExecutionTransition::to(status, vec![ExecutionEffect::RecordFinish, ExecutionEffect::ReleaseLease])
}

fn fail(reason: String) -> ExecutionTransition {
    use ExecutionEffect::*;
    ExecutionTransition::to(ExecutionStatus::Failed, vec![RecordError(reason), RecordFinish, ReleaseLease])
}

/// The whole execution lifecycle. See the table test below for every (status, input) pair.
pub fn transition(
    from: ExecutionStatus,
    input: &ExecutionInput,
) -> Result<ExecutionTransition, ExecutionRejection> {
    use ExecutionEffect::*;
    use ExecutionInput as I;
    use ExecutionStatus::*;
    use ExecutionTransition as T;
    Ok(match (from, input) {
        (Queued | Running, I::Claim { attempts, limit }) if limit.allows_another(*attempts) => {
            T::to(Running, vec![TakeLease, CountAttempt])
        }
        (Queued | Running, I::Claim { attempts, .. }) => fail(process_died(*attempts)),
        (_, I::Claim { .. }) => return Err(ExecutionRejection::Finished(from)),

        (Running, I::Finish { ok: true }) => finish(Succeeded),
        (Running, I::Finish { ok: false }) => finish(Failed),
        (Queued, I::Finish { .. }) => return Err(ExecutionRejection::NotRunning(from)),
        (_, I::Finish { .. }) => T::stay(from),

        (Queued | Running, I::Fail(reason)) => fail(reason.clone()),
        (_, I::Fail(_)) => T::stay(from),

        (Queued | Running, I::Cancel) => finish(Cancelled),
        (_, I::Cancel) => return Err(ExecutionRejection::Finished(from)),

        (Running, I::LeaseExpired { attempts, limit }) if limit.allows_another(*attempts) => {
            T::to(Queued, vec![ReleaseLease])
        }
        (Running, I::LeaseExpired { attempts, .. }) => fail(process_died(*attempts)),
        (_, I::LeaseExpired { .. }) => T::stay(from),

        (Queued | Running, I::Retry) => return Err(ExecutionRejection::NotFinished(from)),
        (_, I::Retry) => T::to(from, vec![SpawnRetry]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ExecutionEffect::*;
    use ExecutionInput as I;
    use ExecutionRejection as R;
    use ExecutionStatus::*;

    type Row = (ExecutionStatus, I, Result<(ExecutionStatus, Vec<ExecutionEffect>), R>);

    fn expired(attempts: u32) -> I {
        I::LeaseExpired { attempts, limit: AttemptLimit::DEFAULT }
    }

    fn claim(attempts: u32) -> I {
        I::Claim { attempts, limit: AttemptLimit::DEFAULT }
    }

    fn done() -> Vec<ExecutionEffect> {
        vec![RecordFinish, ReleaseLease]
    }

    fn failed(reason: &str) -> Vec<ExecutionEffect> {
        vec![RecordError(reason.into()), RecordFinish, ReleaseLease]
    }

    /// Every (status, input) pair, accepted or rejected.
    #[test]
    fn transition_table() {
        let why = || I::Fail("flow is inactive".into());
        let gave_up = "The process running this execution died 3 times (attempt limit FLOWMATE_EXECUTION_MAX_ATTEMPTS reached).";
        let mut table: Vec<Row> = vec![
            (Queued, claim(0), Ok((Running, vec![TakeLease, CountAttempt]))),
            (Queued, claim(2), Ok((Running, vec![TakeLease, CountAttempt]))),
            (Queued, claim(3), Ok((Failed, failed(gave_up)))),
            (Running, claim(1), Ok((Running, vec![TakeLease, CountAttempt]))),
            (Running, claim(3), Ok((Failed, failed(gave_up)))),
            (Queued, I::Finish { ok: true }, Err(R::NotRunning(Queued))),
            (Queued, I::Finish { ok: false }, Err(R::NotRunning(Queued))),
            (Running, I::Finish { ok: true }, Ok((Succeeded, done()))),
            (Running, I::Finish { ok: false }, Ok((Failed, done()))),
            (Queued, why(), Ok((Failed, failed("flow is inactive")))),
            (Running, why(), Ok((Failed, failed("flow is inactive")))),
            (Queued, I::Cancel, Ok((Cancelled, done()))),
            (Running, I::Cancel, Ok((Cancelled, done()))),
            (Queued, expired(0), Ok((Queued, vec![]))),
            (Running, expired(1), Ok((Queued, vec![ReleaseLease]))),
            (Running, expired(2), Ok((Queued, vec![ReleaseLease]))),
            (Running, expired(3), Ok((Failed, failed(gave_up)))),
            (Queued, I::Retry, Err(R::NotFinished(Queued))),
            (Running, I::Retry, Err(R::NotFinished(Running))),
        ];
        for end in [Succeeded, Failed, Cancelled] {
            table.extend([
                (end, claim(0), Err(R::Finished(end))),
                (end, I::Finish { ok: true }, Ok((end, vec![]))),
                (end, I::Finish { ok: false }, Ok((end, vec![]))),
                (end, why(), Ok((end, vec![]))),
                (end, I::Cancel, Err(R::Finished(end))),
                (end, expired(0), Ok((end, vec![]))),
                (end, expired(3), Ok((end, vec![]))),
                (end, I::Retry, Ok((end, vec![SpawnRetry]))),
            ]);
        }
        // Every status meets every kind of input at least once.
        for status in ExecutionStatus::ALL {
            let mut kinds: Vec<_> = table
                .iter()
                .filter(|(s, _, _)| *s == status)
                .map(|(_, i, _)| std::mem::discriminant(i))
                .collect();
            kinds.sort_by_key(|k| format!("{k:?}"));
            kinds.dedup();
            assert_eq!(kinds.len(), 6, "{status} is missing inputs in the table");
        }
        for (from, input, expected) in table {
            let got = transition(from, &input).map(|t| (t.status, t.effects));
            assert_eq!(got, expected, "({from}, {input:?})");
        }
    }

    #[test]
    fn late_worker_reports_are_noops() {
        for end in [Succeeded, Failed, Cancelled] {
            let t = transition(end, &I::Finish { ok: true }).unwrap_or_else(|e| panic!("{e}"));
            assert!(t.is_noop(end));
        }
    }

    #[test]
    fn the_reason_counts_the_deaths_and_names_the_setting() {
        assert_eq!(
            process_died(1),
            "The process running this execution died once (attempt limit FLOWMATE_EXECUTION_MAX_ATTEMPTS reached)."
        );
        assert!(process_died(5).contains("died 5 times"));
    }

    #[test]
    fn an_attempt_limit_is_a_positive_whole_number() {
        assert_eq!("3".parse::<AttemptLimit>().map(AttemptLimit::get), Ok(3));
        assert_eq!(AttemptLimit::DEFAULT.get(), 3);
        assert!("0".parse::<AttemptLimit>().is_err());
        assert!("-1".parse::<AttemptLimit>().is_err());
        assert!(AttemptLimit::DEFAULT.allows_another(2) && !AttemptLimit::DEFAULT.allows_another(3));
    }

    #[test]
    fn rejections_render_a_message() {
        assert_eq!(
            R::Finished(Cancelled).to_string(),
            "Execution has already finished. Current status: cancelled"
        );
    }
}
