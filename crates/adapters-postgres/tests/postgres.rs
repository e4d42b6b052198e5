//! What only the PostgreSQL adapter has: relays in separate processes (separate pools) sharing
//! one outbox, `LISTEN/NOTIFY` wake-ups across pools, claim expiry, migrations applied again,
//! fast `Unavailable` answers when the server cannot be reached, and the owner rows of
//! executions following their inserts and deletes.

mod common;

use adapters_postgres::{PostgresConfig, PostgresStore};
use common::TestDb;
use flow_domain::error::PortError;
use flow_domain::ids::{EventId, FlowId, TenantId};
use flow_domain::model::{ExecutionStatus, Owner};
use flow_domain::ports::{ExecutionRetention, FlowRepository, Health, Outbox, StoredEvent};
use port_contracts::storage::executions::execution;
use port_contracts::storage::fixtures::{event, flow, now};
use sqlx::Connection;
use std::collections::HashSet;
use std::time::Duration;
use tokio::time::{Instant, timeout};

/// Claims batches of `limit` until the outbox has nothing left for this relay.
async fn claim_everything(relay: PostgresStore, limit: u32) -> Vec<StoredEvent> {
    let mut claimed = Vec::new();
    loop {
        let batch = relay.claim("relay#1", limit).await.expect("claim");
        if batch.is_empty() {
            return claimed;
        }
        claimed.extend(batch);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_on_separate_pools_never_claim_the_same_event() {
    let db = TestDb::create().await;
    let (a, b) = (db.store().await, db.store().await);
    let events: Vec<_> = (0..300).map(|_| event()).collect();
    for chunk in events.chunks(10) {
        a.append(chunk, None).await.expect("append");
    }
    let (from_a, from_b) =
        tokio::join!(tokio::spawn(claim_everything(a.clone(), 7)), tokio::spawn(claim_everything(b, 7)));
    let (from_a, from_b) = (from_a.expect("relay a"), from_b.expect("relay b"));
    let ids_a: HashSet<EventId> =
        from_a.iter().map(|s| s.event.as_ref().map(|e| e.id).expect("readable")).collect();
    assert!(
        from_b.iter().all(|s| !ids_a.contains(&s.event.as_ref().map(|e| e.id).expect("readable"))),
        "an event was claimed by both relays"
    );
    assert_eq!(from_a.len() + from_b.len(), events.len(), "together they claim every event");
    let mut all: Vec<StoredEvent> = from_a.into_iter().chain(from_b).collect();
    all.sort_by_key(|s| s.seq);
    let order: Vec<EventId> = all.iter().map(|s| s.event.as_ref().map(|e| e.id).expect("readable")).collect();
    assert_eq!(order, events.iter().map(|e| e.id).collect::<Vec<_>>(), "positions follow append order");
    a.mark_published(&all.iter().map(|s| s.seq).collect::<Vec<_>>()).await.expect("publish");
    assert_eq!(a.pending_count().await.expect("pending"), 0);
}

#[tokio::test]
async fn a_notify_from_another_pool_wakes_the_waiting_relay() {
    let db = TestDb::create().await;
    let (writer, relay) = (db.store().await, db.store().await);
    assert!(relay.wait_until_listening(Duration::from_secs(10)).await, "the listener never listened");
    // Consume a wake-up left over from connecting, if any.
    relay.wait_for_new(Duration::ZERO).await;
    let waiting = {
        let relay = relay.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            relay.wait_for_new(Duration::from_secs(60)).await;
            started.elapsed()
        })
    };
    writer.append(&[event()], None).await.expect("append on the other pool");
    let waited = timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the relay was not woken by NOTIFY")
        .expect("waiter task");
    assert!(waited < Duration::from_secs(10), "woken after {waited:?}");
    assert_eq!(relay.claim("relay#1", 10).await.expect("claim").len(), 1, "the relay sees the event");
}

#[tokio::test]
async fn a_claim_expires_after_the_claim_ttl() {
    let db = TestDb::create().await;
    let store =
        PostgresStore::connect(PostgresConfig { claim_ttl: Duration::from_millis(200), ..db.config() })
            .await
            .expect("connect");
    let appended = event();
    store.append(std::slice::from_ref(&appended), None).await.expect("append");
    let claimed = store.claim("relay#1", 10).await.expect("claim");
    assert_eq!(claimed.len(), 1);
    assert!(store.claim("relay#1", 10).await.expect("claim").is_empty(), "withheld while claimed");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let again = store.claim("relay#1", 10).await.expect("claim");
        if let Some(first) = again.first() {
            assert_eq!(
                (first.seq, &first.event),
                (claimed[0].seq, &Ok(appended.clone())),
                "the same event, reclaimed"
            );
            break;
        }
        assert!(Instant::now() < deadline, "the claim never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn data_survives_reconnecting_and_migrations_are_applied_once() {
    let db = TestDb::create().await;
    let first = db.store().await;
    let stored = flow("kept", Some(TenantId::new()), vec![]);
    FlowRepository::insert(&first, &stored, &[event()]).await.expect("insert");
    first.close().await;

    let again = db.store().await;
    again.migrate().await.expect("migrating again is a no-op");
    assert_eq!(FlowRepository::get(&again, stored.id).await.expect("get"), Some(stored));
    assert_eq!(again.pending_count().await.expect("pending"), 1, "the outbox survives too");
    again.check().await.expect("healthy");
}

#[tokio::test]
async fn an_unreachable_server_answers_unavailable_within_the_acquire_timeout() {
    let config = PostgresConfig {
        acquire_timeout: Duration::from_millis(500),
        run_migrations: false,
        ..PostgresConfig::new("postgres://postgres@127.0.0.1:1/postgres")
    };
    let store = PostgresStore::connect(config.clone()).await.expect("connecting is lazy");
    let started = Instant::now();
    let result = FlowRepository::get(&store, FlowId::new()).await;
    assert!(matches!(result, Err(PortError::Unavailable(_))), "got {result:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "answered after {:?}", started.elapsed());
    let health = store.check().await;
    assert!(health.is_err(), "health check passes on a closed port");
    assert!(!health.unwrap_err().to_lowercase().contains("select"), "no SQL in the reason");

    let started = Instant::now();
    let migrating = PostgresStore::connect(PostgresConfig { run_migrations: true, ..config }).await;
    assert!(migrating.is_err(), "migrations on a closed port succeeded");
    assert!(started.elapsed() < Duration::from_secs(5), "failed after {:?}", started.elapsed());
}

#[tokio::test]
async fn timestamps_round_trip_at_millisecond_precision() {
    let db = TestDb::create().await;
    let store = db.store().await;
    let mut stored = flow("precise", None, vec![]);
    stored.created_at = chrono::DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap_or_default();
    FlowRepository::insert(&store, &stored, &[]).await.expect("insert");
    let read = FlowRepository::get(&store, stored.id).await.expect("get").expect("stored");
    assert_eq!(read.created_at.timestamp_subsec_nanos(), 123_000_000, "truncated to milliseconds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_starting_together_migrate_once() {
    let db = TestDb::create().await;
    let (a, b) = tokio::join!(PostgresStore::connect(db.config()), PostgresStore::connect(db.config()));
    let (a, b) = (a.expect("first process"), b.expect("second process"));
    let stored = flow("shared", None, vec![]);
    FlowRepository::insert(&a, &stored, &[]).await.expect("insert");
    assert_eq!(FlowRepository::get(&b, stored.id).await.expect("get"), Some(stored));
}

/// Owner rows of executions, counted in the database itself.
async fn owner_rows(db: &TestDb) -> i64 {
    let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("connect");
    sqlx::query_scalar("SELECT count(*) FROM execution_owners").fetch_one(&mut conn).await.expect("count")
}

#[tokio::test]
async fn owner_rows_come_with_inserted_executions_and_go_with_purged_ones() {
    let db = TestDb::create().await;
    let store = db.store().await;
    let flow_id = FlowId::new();
    let tenant = TenantId::new();
    let owners = vec![Owner::user(uuid::Uuid::now_v7()), Owner::tenant(tenant.0)];
    for _ in 0..3 {
        let mut e = execution(flow_id, Some(tenant), owners.clone(), now() - chrono::Duration::hours(2));
        e.status = ExecutionStatus::Succeeded;
        e.finished_at = Some(e.created_at);
        flow_domain::ports::ExecutionRepository::insert(&store, &e, &[]).await.expect("insert");
    }
    let kept = execution(flow_id, Some(tenant), owners.clone(), now());
    flow_domain::ports::ExecutionRepository::insert(&store, &kept, &[]).await.expect("insert");
    assert_eq!(owner_rows(&db).await, 8, "two owner rows per execution");

    let purged = store.purge_ended_before(now() - chrono::Duration::hours(1), 10).await.expect("purge");
    assert_eq!(purged, 3);
    assert_eq!(owner_rows(&db).await, 2, "only the kept execution's owner rows remain");
}
