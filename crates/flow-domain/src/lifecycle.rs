//! The flow lifecycle as a pure transition function: `(status, input) -> (status, effects)`.
//!
//! Effects are data; [`crate::services::flows`] performs them (publishing through the outbox in
//! the same transaction as the status change). Engine events that do not apply to the current
//! status are ignored (no change, no effect), which keeps redelivered events harmless.

use crate::model::FlowStatus;

/// What can happen to a flow's lifecycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LifecycleInput {
    /// `POST /flows/{id}/start`.
    Start,
    /// `POST /flows/{id}/stop`, or the system stopping a flow left without owners.
    Stop,
    /// A change of the definition (update or delete).
    Edit,
    /// Engine: `flow.started`.
    Started,
    /// Engine: `flow.stopped`.
    Stopped,
    /// Engine: `flow.failed` with its reason.
    Failed(String),
    /// Watchdog: the flow has waited past its deadline. `attempts` counts the re-publications
    /// already made; `max_attempts` is when to give up.
    DeadlinePassed {
        /// Re-publications made so far.
        attempts: u32,
        /// Give up once this many were made.
        max_attempts: u32,
        /// Why the event bus delivers nothing, when it knows (named in the reason on giving up).
        bus_stall: Option<String>,
    },
}

/// A side effect the shell must perform, atomically with the status change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Publish `flow.starting` with the whole flow.
    PublishStarting,
    /// Publish `flow.stopping` with the whole flow.
    PublishStopping,
    /// Record why the flow is (going) down.
    RecordReason(String),
    /// Forget the previous reason (a new start).
    ClearReason,
    /// Count one more watchdog re-publication.
    CountAttempt,
}

/// The outcome of an accepted input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The status after the input.
    pub status: FlowStatus,
    /// What to do, in order.
    pub effects: Vec<Effect>,
}

impl Transition {
    fn to(status: FlowStatus, effects: Vec<Effect>) -> Self {
        Self { status, effects }
    }
    fn stay(status: FlowStatus) -> Self {
        Self { status, effects: vec![] }
    }
    /// Nothing changes and nothing is published.
    pub fn is_noop(&self, from: FlowStatus) -> bool {
        self.status == from && self.effects.is_empty()
    }
}

/// A refused command (answered 409).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Start, update or delete of a flow that is not inactive.
    #[error("Flow is not inactive. Current status: {0}")]
    NotInactive(FlowStatus),
    /// Stop of a flow that is neither active nor starting.
    #[error("Flow is not active or starting. Current status: {0}")]
    NotRunning(FlowStatus),
}

/// The whole lifecycle. See the table test below for every (status, input) pair.
pub fn transition(from: FlowStatus, input: &LifecycleInput) -> Result<Transition, Rejection> {
    use Effect::*;
    use FlowStatus::*;
    use LifecycleInput as I;
    Ok(match (from, input) {
        (Inactive, I::Start) => Transition::to(Starting, vec![ClearReason, PublishStarting]),
        (_, I::Start) => return Err(Rejection::NotInactive(from)),

        (Starting | Active, I::Stop) => Transition::to(Stopping, vec![PublishStopping]),
        (Inactive | Stopping, I::Stop) => return Err(Rejection::NotRunning(from)),

        (Inactive, I::Edit) => Transition::stay(Inactive),
        (_, I::Edit) => return Err(Rejection::NotInactive(from)),

        (Starting, I::Started) => Transition::to(Active, vec![]),
        (_, I::Started) => Transition::stay(from),

        (Stopping, I::Stopped) => Transition::to(Inactive, vec![]),
        (_, I::Stopped) => Transition::stay(from),

        (Starting | Active, I::Failed(reason)) => {
            Transition::to(Stopping, vec![RecordReason(reason.clone()), PublishStopping])
        }
        (_, I::Failed(_)) => Transition::stay(from),

        (Starting, I::DeadlinePassed { attempts, max_attempts, .. }) if attempts < max_attempts => {
            Transition::to(Starting, vec![CountAttempt, PublishStarting])
        }
        (Stopping, I::DeadlinePassed { attempts, max_attempts, .. }) if attempts < max_attempts => {
            Transition::to(Stopping, vec![CountAttempt, PublishStopping])
        }
        (Starting, I::DeadlinePassed { attempts, bus_stall, .. }) => Transition::to(
            Inactive,
            vec![RecordReason(unconfirmed("start", *attempts, bus_stall.as_deref(), ""))],
        ),
        (Stopping, I::DeadlinePassed { attempts, bus_stall, .. }) => Transition::to(
            Inactive,
            vec![RecordReason(unconfirmed("stop", *attempts, bus_stall.as_deref(), "; marked inactive"))],
        ),
        (Inactive | Active, I::DeadlinePassed { .. }) => Transition::stay(from),
    })
}

/// Why the watchdog gave up on a `what` ("start", "stop") after `attempts + 1` tries, naming
/// the bus when it reported a stall.
fn unconfirmed(what: &str, attempts: u32, bus_stall: Option<&str>, tail: &str) -> String {
    let tries = attempts + 1;
    match bus_stall {
        Some(stall) => format!("No engine confirmed the {what} after {tries} attempts: {stall}{tail}."),
        None => format!("The engine did not confirm the {what} after {tries} attempts{tail}."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Effect::*;
    use FlowStatus::*;
    use LifecycleInput as I;

    fn deadline(attempts: u32) -> I {
        I::DeadlinePassed { attempts, max_attempts: 3, bus_stall: None }
    }

    fn deadline_with_stall(attempts: u32) -> I {
        I::DeadlinePassed {
            attempts,
            max_attempts: 3,
            bus_stall: Some(
                "consumer group flowmate.flow-engine has no assignment since 12:00:03 UTC".into(),
            ),
        }
    }

    /// Every (status, input) pair, accepted or rejected.
    #[test]
    fn transition_table() {
        let failed = || I::Failed("unknown component".into());
        let reason = || RecordReason("unknown component".into());
        type Row = (FlowStatus, I, Result<(FlowStatus, Vec<Effect>), Rejection>);
        let table: Vec<Row> = vec![
            (Inactive, I::Start, Ok((Starting, vec![ClearReason, PublishStarting]))),
            (Starting, I::Start, Err(Rejection::NotInactive(Starting))),
            (Active, I::Start, Err(Rejection::NotInactive(Active))),
            (Stopping, I::Start, Err(Rejection::NotInactive(Stopping))),
            (Inactive, I::Stop, Err(Rejection::NotRunning(Inactive))),
            (Starting, I::Stop, Ok((Stopping, vec![PublishStopping]))),
            (Active, I::Stop, Ok((Stopping, vec![PublishStopping]))),
            (Stopping, I::Stop, Err(Rejection::NotRunning(Stopping))),
            (Inactive, I::Edit, Ok((Inactive, vec![]))),
            (Starting, I::Edit, Err(Rejection::NotInactive(Starting))),
            (Active, I::Edit, Err(Rejection::NotInactive(Active))),
            (Stopping, I::Edit, Err(Rejection::NotInactive(Stopping))),
            (Inactive, I::Started, Ok((Inactive, vec![]))),
            (Starting, I::Started, Ok((Active, vec![]))),
            (Active, I::Started, Ok((Active, vec![]))),
            (Stopping, I::Started, Ok((Stopping, vec![]))),
            (Inactive, I::Stopped, Ok((Inactive, vec![]))),
            (Starting, I::Stopped, Ok((Starting, vec![]))),
            (Active, I::Stopped, Ok((Active, vec![]))),
            (Stopping, I::Stopped, Ok((Inactive, vec![]))),
            (Inactive, failed(), Ok((Inactive, vec![]))),
            (Starting, failed(), Ok((Stopping, vec![reason(), PublishStopping]))),
            (Active, failed(), Ok((Stopping, vec![reason(), PublishStopping]))),
            (Stopping, failed(), Ok((Stopping, vec![]))),
            (Inactive, deadline(0), Ok((Inactive, vec![]))),
            (Starting, deadline(0), Ok((Starting, vec![CountAttempt, PublishStarting]))),
            (Active, deadline(0), Ok((Active, vec![]))),
            (Stopping, deadline(2), Ok((Stopping, vec![CountAttempt, PublishStopping]))),
            (
                Starting,
                deadline(3),
                Ok((
                    Inactive,
                    vec![RecordReason("The engine did not confirm the start after 4 attempts.".into())],
                )),
            ),
            (
                Stopping,
                deadline(3),
                Ok((
                    Inactive,
                    vec![RecordReason(
                        "The engine did not confirm the stop after 4 attempts; marked inactive.".into(),
                    )],
                )),
            ),
            (Starting, deadline_with_stall(0), Ok((Starting, vec![CountAttempt, PublishStarting]))),
            (
                Starting,
                deadline_with_stall(3),
                Ok((
                    Inactive,
                    vec![RecordReason(
                        "No engine confirmed the start after 4 attempts: consumer group \
                         flowmate.flow-engine has no assignment since 12:00:03 UTC."
                            .into(),
                    )],
                )),
            ),
            (
                Stopping,
                deadline_with_stall(3),
                Ok((
                    Inactive,
                    vec![RecordReason(
                        "No engine confirmed the stop after 4 attempts: consumer group \
                         flowmate.flow-engine has no assignment since 12:00:03 UTC; marked inactive."
                            .into(),
                    )],
                )),
            ),
        ];
        // Every status meets every kind of input at least once.
        for status in FlowStatus::ALL {
            let kinds: Vec<_> = table
                .iter()
                .filter(|(s, _, _)| *s == status)
                .map(|(_, i, _)| std::mem::discriminant(i))
                .collect();
            assert!(kinds.len() >= 7, "{status} is missing inputs in the table");
        }
        for (from, input, expected) in table {
            let got = transition(from, &input).map(|t| (t.status, t.effects));
            assert_eq!(got, expected, "({from}, {input:?})");
        }
    }

    #[test]
    fn rejections_render_the_spec_message() {
        assert_eq!(
            Rejection::NotInactive(Active).to_string(),
            "Flow is not inactive. Current status: active"
        );
    }
}
