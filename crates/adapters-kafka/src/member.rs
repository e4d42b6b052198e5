//! One consumer group member as seen from this process: whether it has settled in its group,
//! what it is assigned, its lag, when it last made progress, and whether it stalls.
//!
//! librdkafka reports the group state every `statistics.interval.ms` ([`Member::observe`]); the
//! stream marks progress as it receives events or reaches the end of its partitions. A member
//! stalls when it has not settled (no assignment) or when events wait on its partitions while
//! it asks for them and none arrives; past [`KafkaConfig::stall_after`] it is reported, logged
//! once at WARN, counted in the metrics, and replaced by the stream (see `subscriber.rs`).
//!
//! [`KafkaConfig::stall_after`]: crate::KafkaConfig::stall_after

use chrono::{DateTime, Utc};
use flow_domain::ports::{MemberStatus, Stall};
use rdkafka::statistics::Statistics;
use std::sync::Mutex;
use std::time::Duration;

/// A group member's shared state: written by its consumer's context and its stream, read by
/// the bus monitor. Outlives the consumers that replace each other in the stream.
pub struct Member {
    /// The group's name on the broker in generation 0 (`<prefix>.<group>`); metrics use it.
    pub(crate) group: String,
    stall_after: Duration,
    state: Mutex<State>,
    /// `flowmate_bus_events_consumed_total` of the group, registered once (counted per event).
    consumed: metrics::Counter,
}

#[derive(Debug)]
struct State {
    /// The group generation the member is in (see `generations.rs`).
    generation: u32,
    settled: bool,
    /// When the member last stopped being settled (or was created).
    unsettled_since: DateTime<Utc>,
    assigned: u32,
    lag: Option<u64>,
    last_progress: Option<DateTime<Utc>>,
    /// Since when the stream has been waiting for an event without receiving one.
    waiting_since: Option<DateTime<Utc>>,
    /// librdkafka's rebalance count of the current consumer (it restarts with a new one).
    rebalance_count: i64,
    rebalances: u64,
    received: u64,
    replaced: u64,
    /// Whether the current stall was reported (logged at WARN).
    reported: Option<DateTime<Utc>>,
}

/// What [`Member::check`] found worth acting on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Progressing, or stalled for less than the limit.
    Fine,
    /// Stalled past the limit: the stream should replace the member (it may already have).
    Stalled(MemberStatus),
}

impl Member {
    /// A member of generation `generation` of `group` that has not joined yet.
    pub(crate) fn new(group: String, generation: u32, stall_after: Duration, now: DateTime<Utc>) -> Self {
        let state = State {
            generation,
            settled: false,
            unsettled_since: now,
            assigned: 0,
            lag: None,
            last_progress: None,
            waiting_since: None,
            rebalance_count: 0,
            rebalances: 0,
            received: 0,
            replaced: 0,
            reported: None,
        };
        let consumed = metrics::counter!("flowmate_bus_events_consumed_total", "group" => group.clone());
        Self { group, stall_after, state: Mutex::new(state), consumed }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes in one statistics report of the member's consumer.
    pub(crate) fn observe(&self, statistics: &Statistics) {
        self.observe_at(statistics, Utc::now());
    }

    fn observe_at(&self, statistics: &Statistics, now: DateTime<Utc>) {
        let Some(cgrp) = &statistics.cgrp else { return };
        let settled = cgrp.state == "up" && cgrp.join_state == "steady";
        let assigned = u32::try_from(cgrp.assignment_size.max(0)).unwrap_or(0);
        let positions = statistics.topics.values().flat_map(|t| t.partitions.values());
        let known: Vec<u64> = positions
            .filter(|p| p.partition >= 0 && p.fetch_state == "active")
            .filter_map(partition_lag)
            .collect();
        let lag = (settled && assigned > 0 && !known.is_empty()).then(|| known.iter().sum());
        let mut state = self.state();
        if state.settled && !settled {
            state.unsettled_since = now;
        }
        state.settled = settled;
        state.assigned = if settled { assigned } else { 0 };
        state.lag = lag;
        let new_rebalances = u64::try_from((cgrp.rebalance_cnt - state.rebalance_count).max(0)).unwrap_or(0);
        state.rebalance_count = cgrp.rebalance_cnt;
        state.rebalances += new_rebalances;
        let labels = [("group", self.group.clone())];
        metrics::gauge!("flowmate_bus_assigned_partitions", &labels).set(f64::from(state.assigned));
        metrics::gauge!("flowmate_bus_consumer_lag", &labels).set(state.lag.unwrap_or(0) as f64);
        metrics::counter!("flowmate_bus_rebalances_total", &labels).increment(new_rebalances);
    }

    /// The stream received an event.
    pub(crate) fn received(&self, now: DateTime<Utc>) {
        let mut state = self.state();
        state.received += 1;
        state.last_progress = Some(now);
        state.waiting_since = None;
        self.consumed.increment(1);
    }

    /// The stream reached the end of one of its partitions: nothing is waiting there.
    pub(crate) fn idle_at_end(&self, now: DateTime<Utc>) {
        let mut state = self.state();
        state.last_progress = Some(now);
        state.waiting_since = Some(now);
    }

    /// The stream asks for the next event (from now on, waiting counts toward a lag stall).
    pub(crate) fn waiting(&self, now: DateTime<Utc>) {
        let mut state = self.state();
        if state.waiting_since.is_none() {
            state.waiting_since = Some(now);
        }
    }

    /// The Kafka group the member is in now.
    pub(crate) fn group_id(&self) -> String {
        crate::generations::group_id(&self.group, self.state().generation)
    }

    /// The group generation the member is in now.
    pub(crate) fn generation(&self) -> u32 {
        self.state().generation
    }

    /// The stream closed its consumer and joins generation `generation` of the group as a new
    /// member. The stall goes on (and keeps its start) until the new member settles and
    /// progresses.
    pub(crate) fn replaced(&self, generation: u32, now: DateTime<Utc>) {
        let mut state = self.state();
        state.generation = generation;
        let stalled_since = self.status_of(&state, now).stall.map_or(now, |(_, since)| since);
        state.replaced += 1;
        state.settled = false;
        state.unsettled_since = stalled_since;
        state.assigned = 0;
        state.lag = None;
        state.rebalance_count = 0;
        metrics::counter!("flowmate_bus_members_replaced_total", "group" => self.group.clone()).increment(1);
    }

    /// The member's status at `now`.
    pub(crate) fn status(&self, now: DateTime<Utc>) -> MemberStatus {
        let state = self.state();
        self.status_of(&state, now)
    }

    fn status_of(&self, state: &State, now: DateTime<Utc>) -> MemberStatus {
        let stall = if !state.settled {
            Some((Stall::NoAssignment, state.unsettled_since))
        } else {
            match (state.lag, state.waiting_since) {
                (Some(lag), Some(waiting)) if lag > 0 => Some((
                    Stall::LagWithoutProgress,
                    state.last_progress.map_or(waiting, |progress| progress.max(waiting)),
                )),
                _ => None,
            }
        };
        let limit = chrono::Duration::from_std(self.stall_after).unwrap_or(chrono::Duration::MAX);
        MemberStatus {
            group: crate::generations::group_id(&self.group, state.generation),
            assigned_partitions: state.assigned,
            settled: state.settled,
            last_progress: state.last_progress,
            lag: state.lag,
            rebalances: state.rebalances,
            received: state.received,
            replaced: state.replaced,
            stall,
            stalled_too_long: stall.is_some_and(|(_, since)| now - since > limit),
        }
    }

    /// Judges the member at `now`, logging at WARN once when a stall passes the limit and once
    /// when it ends.
    pub(crate) fn check(&self, now: DateTime<Utc>) -> Verdict {
        let mut state = self.state();
        let status = self.status_of(&state, now);
        let stalled = i32::from(status.stalled_too_long);
        metrics::gauge!("flowmate_bus_consumer_stalled", "group" => self.group.clone()).set(stalled);
        if status.stalled_too_long {
            if state.reported.is_none() {
                state.reported = status.stall.map(|(_, since)| since);
                let reason = status.stall_reason().unwrap_or_default();
                tracing::warn!(group = %self.group, %reason, "event bus: consumer group stalled");
            }
            return Verdict::Stalled(status);
        }
        if let Some(since) = state.reported.take() {
            let stalled_for_secs = (now - since).num_seconds();
            tracing::warn!(group = %self.group, stalled_for_secs, "event bus: consumer group progresses again");
        }
        Verdict::Fine
    }
}

/// Events after the member's position in one partition, when the broker's end is known. The
/// position is the next offset the application receives, else the committed one, else the
/// partition's start (a new group reads from the earliest event). librdkafka's own
/// `consumer_lag` needs a committed offset, which a member that only received has not.
fn partition_lag(partition: &rdkafka::statistics::Partition) -> Option<u64> {
    if partition.hi_offset < 0 {
        return None;
    }
    let position = [partition.app_offset, partition.committed_offset, partition.lo_offset.max(0)]
        .into_iter()
        .find(|offset| *offset >= 0)
        .unwrap_or(0);
    u64::try_from(partition.hi_offset - position).ok().or(Some(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::statistics::{ConsumerGroup, Partition, Topic};

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).expect("time")
    }

    fn report(join_state: &str, assigned: i32, rebalances: i64, lag: i64) -> Statistics {
        let partition = Partition {
            partition: 0,
            fetch_state: "active".into(),
            hi_offset: if lag < 0 { -1001 } else { 100 },
            app_offset: 100 - lag,
            committed_offset: -1001,
            ..Partition::default()
        };
        let topic = Topic { topic: "t".into(), partitions: [(0, partition)].into(), ..Topic::default() };
        Statistics {
            cgrp: Some(ConsumerGroup {
                state: "up".into(),
                join_state: join_state.into(),
                assignment_size: assigned,
                rebalance_cnt: rebalances,
                ..ConsumerGroup::default()
            }),
            topics: [("t".to_string(), topic)].into(),
            ..Statistics::default()
        }
    }

    fn member() -> Member {
        Member::new("flowmate.flow-engine".into(), 0, Duration::from_secs(30), at(0))
    }

    #[test]
    fn a_member_that_never_settles_stalls_past_the_limit() {
        let member = member();
        member.observe_at(&report("wait-join", 0, 0, -1), at(5));
        assert_eq!(member.status(at(20)).stall, Some((Stall::NoAssignment, at(0))));
        assert!(!member.status(at(30)).stalled_too_long);
        assert_eq!(member.check(at(30)), Verdict::Fine);
        let status = member.status(at(31));
        assert!(status.stalled_too_long);
        assert_eq!(
            status.stall_reason().as_deref(),
            Some("consumer group flowmate.flow-engine has no assignment since 08:00:00 UTC")
        );
        assert!(matches!(member.check(at(31)), Verdict::Stalled(_)));
    }

    #[test]
    fn a_settled_member_without_partitions_is_fine() {
        let member = member();
        member.observe_at(&report("steady", 0, 1, -1), at(1));
        let status = member.status(at(100));
        assert!(status.settled && status.stall.is_none() && !status.stalled_too_long);
        assert_eq!((status.assigned_partitions, status.rebalances, status.lag), (0, 1, None));
    }

    #[test]
    fn lag_counts_as_a_stall_only_while_the_stream_waits_without_receiving() {
        let member = member();
        member.observe_at(&report("steady", 2, 1, 5), at(1));
        // Busy with an event (not asking): lag alone is no stall.
        assert_eq!(member.status(at(100)).stall, None);
        member.waiting(at(100));
        assert_eq!(member.status(at(131)).stall, Some((Stall::LagWithoutProgress, at(100))));
        assert!(member.status(at(131)).stalled_too_long);
        member.received(at(132));
        assert_eq!(member.status(at(200)).stall, None);
        // At the end of its partitions with nothing left: fine.
        member.observe_at(&report("steady", 2, 1, 0), at(201));
        member.idle_at_end(at(201));
        assert_eq!(member.status(at(400)).stall, None);
    }

    #[test]
    fn a_rebalance_restarts_the_clock_and_a_replacement_keeps_it() {
        let member = member();
        member.observe_at(&report("steady", 2, 1, 0), at(1));
        member.observe_at(&report("wait-sync", 0, 2, -1), at(50));
        assert_eq!(member.status(at(60)).stall, Some((Stall::NoAssignment, at(50))));
        member.replaced(1, at(90));
        let status = member.status(at(91));
        assert_eq!(
            (status.replaced, status.rebalances, status.stall),
            (1, 2, Some((Stall::NoAssignment, at(50))))
        );
        assert_eq!(status.group, "flowmate.flow-engine.g1");
        // The new consumer counts its rebalances from zero again.
        member.observe_at(&report("steady", 2, 1, 0), at(92));
        assert_eq!(member.status(at(92)).rebalances, 3);
    }
}
