//! Attempt counting and takeover contracts: a claim counts the run it hands out (durably,
//! before anything runs) and refuses once the limit is reached; the leases of an earlier
//! incarnation of a process are listed for takeover whatever their expiry; the outbox claims
//! of an earlier incarnation are released.
//!
//! Every row belongs to a fresh flow id or a fresh process name, so the execution contracts may
//! share a database; the outbox one needs an outbox of its own.

use super::executions::execution;
use super::fixtures::{drain, event, events_of, marker, now};
use flow_domain::execution_lifecycle::AttemptLimit;
use flow_domain::ids::FlowId;
use flow_domain::model::{ExecutionStatus, ProcessIdentity};
use flow_domain::ports::{ExecutionRepository, Outbox};
use std::num::NonZeroU32;
use std::sync::Arc;

fn limit(runs: u32) -> AttemptLimit {
    AttemptLimit::new(NonZeroU32::new(runs).expect("a positive limit"))
}

/// Each claim counts one more run (`attempts` + 1, stored before the caller runs anything),
/// also when it takes over an expired lease; a claim once the limit's runs were counted gets
/// nothing and changes nothing, neither for a queued execution nor for an expired lease.
pub async fn claim_counts_attempts(executions: Arc<dyn ExecutionRepository>) {
    let e = execution(FlowId::new(), None, vec![], now());
    executions.insert(&e, &[]).await.expect("insert");
    let t0 = now();
    let short = |at: chrono::DateTime<chrono::Utc>| at + chrono::Duration::milliseconds(1);
    let first = executions.claim(e.id, "w#1", t0, short(t0), limit(2)).await.expect("claim");
    let first = first.expect("the first run is claimable");
    assert_eq!(first.attempts, 1, "the claim counts the run");
    assert_eq!(executions.get(e.id).await.expect("get").map(|x| x.attempts), Some(1), "stored counted");
    let t1 = short(t0) + chrono::Duration::milliseconds(1);
    let second = executions.claim(e.id, "w#2", t1, short(t1), limit(2)).await.expect("claim");
    let second = second.expect("an expired lease with a run left is claimable");
    assert_eq!((second.attempts, second.lease_owner.as_deref()), (2, Some("w#2")), "counted again");
    let t2 = short(t1) + chrono::Duration::milliseconds(1);
    let third = executions.claim(e.id, "w#3", t2, t2 + chrono::Duration::seconds(60), limit(2));
    assert_eq!(third.await.expect("claim"), None, "no run left: not claimable");
    assert_eq!(
        executions.get(e.id).await.expect("get"),
        Some(second.clone()),
        "a refused claim changes nothing"
    );
    let more = executions.claim(e.id, "w#3", t2, t2 + chrono::Duration::seconds(60), limit(3)).await;
    assert_eq!(more.expect("claim").map(|x| x.attempts), Some(3), "a higher limit leaves a run");

    let mut queued = execution(FlowId::new(), None, vec![], now());
    queued.attempts = 2;
    executions.insert(&queued, &[]).await.expect("insert");
    let at = now();
    let refused = executions.claim(queued.id, "w#1", at, at + chrono::Duration::seconds(60), limit(2)).await;
    assert_eq!(refused.expect("claim"), None, "a queued execution out of runs is not claimable");
    let stored = executions.get(queued.id).await.expect("get").expect("stored");
    assert_eq!(
        (stored.status, stored.attempts, stored.revision),
        (ExecutionStatus::Queued, 2, queued.revision)
    );
}

/// `list_orphaned_leases` lists the running executions leased by other incarnations of a
/// process (same name, another incarnation), whatever their lease's expiry; not those of the
/// current incarnation, of other processes (even one whose name extends this one's), nor
/// queued or ended ones.
pub async fn list_orphaned_leases(executions: Arc<dyn ExecutionRepository>) {
    let name = marker();
    let (earlier, current) = (ProcessIdentity::new(&name), ProcessIdentity::new(&name));
    let other = ProcessIdentity::new(&format!("{name}x"));
    let far = now() + chrono::Duration::hours(1);
    let mut claimed = Vec::new();
    for owner in [earlier.owner(), current.owner(), other.owner(), earlier.owner()] {
        let e = execution(FlowId::new(), None, vec![], now());
        executions.insert(&e, &[]).await.expect("insert");
        let c = executions.claim(e.id, owner, now(), far, AttemptLimit::DEFAULT).await.expect("claim");
        claimed.push(c.expect("claimed"));
    }
    let mut ended = claimed[3].clone();
    ended.status = ExecutionStatus::Succeeded;
    ended.lease_owner = Some(earlier.owner().to_owned());
    executions.save(&ended, &[]).await.expect("end one of the earlier incarnation's");

    let listed = executions
        .list_orphaned_leases(current.name_prefix(), current.owner(), 100)
        .await
        .expect("list orphaned leases");
    assert_eq!(
        listed,
        vec![claimed[0].clone()],
        "only the earlier incarnation's running execution, as stored"
    );
    let none = executions.list_orphaned_leases(current.name_prefix(), current.owner(), 0).await;
    assert!(none.expect("list").is_empty(), "limit 0");
    let of_other = executions.list_orphaned_leases(other.name_prefix(), other.owner(), 100).await;
    assert!(of_other.expect("list").is_empty(), "a process alone has no orphans");
}

/// `release_claims` makes the events claimed by other incarnations of a relay's process
/// claimable at once (whatever their claim's expiry), and returns how many; the claims of the
/// current incarnation and of other processes are kept.
pub async fn outbox_release_claims(outbox: Arc<dyn Outbox>) {
    drain(outbox.as_ref()).await;
    let name = marker();
    let (earlier, current) = (ProcessIdentity::new(&name), ProcessIdentity::new(&name));
    let other = ProcessIdentity::new(&format!("{name}x"));
    let events: Vec<_> = (0..3).map(|_| event()).collect();
    outbox.append(&events, None).await.expect("append");
    let by_earlier = outbox.claim(earlier.owner(), 1).await.expect("claim");
    let by_other = outbox.claim(other.owner(), 1).await.expect("claim");
    let by_current = outbox.claim(current.owner(), 1).await.expect("claim");
    assert_eq!(events_of(&by_earlier), events[..1].to_vec());
    assert_eq!(events_of(&by_other), events[1..2].to_vec());
    assert_eq!(events_of(&by_current), events[2..].to_vec());
    assert!(outbox.claim(current.owner(), 10).await.expect("claim").is_empty(), "all claimed");

    let released = outbox.release_claims(current.name_prefix(), current.owner()).await.expect("release");
    assert_eq!(released, 1, "one claim of the earlier incarnation released");
    let again = outbox.claim(current.owner(), 10).await.expect("claim");
    assert_eq!(events_of(&again), events[..1].to_vec(), "only the earlier incarnation's event is claimable");
    let none = outbox.release_claims(current.name_prefix(), current.owner()).await.expect("release");
    assert_eq!(none, 0, "the current incarnation's claims are kept");
    let all: Vec<i64> = [by_other, by_current, again].iter().flatten().map(|s| s.seq).collect();
    outbox.mark_published(&all).await.expect("mark published");
    assert_eq!(outbox.pending_count().await.expect("pending"), 0, "nothing left");
}
