//! What only the SQLite adapter has: the database file, migrations, the single writer
//! connection and its group commit, claim expiry and closing.

use adapters_sqlite::{SqliteConfig, SqliteStore};
use flow_domain::error::PortError;
use flow_domain::ids::{FlowId, TenantId};
use flow_domain::model::Execution;
use flow_domain::ports::{ExecutionRepository, FlowRepository, Health, Outbox, TenantRepository};
use port_contracts::storage::executions::execution;
use port_contracts::storage::fixtures::{event, flow, now, tenant};
use sqlx::{Connection, SqliteConnection};
use std::time::Duration;
use tokio::time::{Instant, timeout};

fn config(dir: &tempfile::TempDir) -> SqliteConfig {
    SqliteConfig::new(dir.path().join("flowmate.db"))
}

#[tokio::test]
async fn data_survives_reopening_and_migrations_are_applied_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = SqliteStore::connect(config(&dir)).await.expect("create");
    let stored = flow("kept", Some(TenantId::new()), vec![]);
    FlowRepository::insert(&first, &stored, &[event()]).await.expect("insert");
    first.close().await;

    let reopened = SqliteStore::connect(config(&dir)).await.expect("reopen (migrations again)");
    assert_eq!(FlowRepository::get(&reopened, stored.id).await.expect("get"), Some(stored));
    assert_eq!(reopened.pending_count().await.expect("pending"), 1, "outbox survives too");
    reopened.check().await.expect("healthy");
}

#[tokio::test]
async fn a_claim_expires_after_the_claim_ttl() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::connect(SqliteConfig { claim_ttl: Duration::from_millis(200), ..config(&dir) })
        .await
        .expect("connect");
    let appended = event();
    store.append(std::slice::from_ref(&appended), None).await.expect("append");
    let claimed = Outbox::claim(&store, "relay#1", 10).await.expect("claim");
    assert_eq!(claimed.len(), 1);
    assert!(Outbox::claim(&store, "relay#1", 10).await.expect("claim").is_empty(), "withheld while claimed");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let again = Outbox::claim(&store, "relay#1", 10).await.expect("claim");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_and_readers_never_see_busy_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::connect(config(&dir)).await.expect("connect");
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let f = flow(&format!("f{i}"), None, vec![]);
            FlowRepository::insert(&store, &f, &[event()]).await?;
            let mut saved = FlowRepository::get(&store, f.id).await?.ok_or(PortError::NotFound)?;
            saved.spec.name = format!("g{i}");
            FlowRepository::save(&store, &saved, &[event()], None).await?;
            TenantRepository::insert(&store, &tenant(&format!("tenant {i} {}", FlowId::new()))).await?;
            Outbox::claim(&store, "relay#1", 3).await.map(|_| ())
        }));
    }
    for task in tasks {
        timeout(Duration::from_secs(60), task)
            .await
            .expect("in time")
            .expect("task")
            .expect("no storage error");
    }
    assert_eq!(store.pending_count().await.expect("pending"), 80);
}

#[tokio::test]
async fn a_closed_store_is_unavailable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::connect(config(&dir)).await.expect("connect");
    store.close().await;
    let result = FlowRepository::get(&store, FlowId::new()).await;
    assert!(matches!(result, Err(PortError::Unavailable(_))), "got {result:?}");
    assert!(store.check().await.is_err(), "health reports it");
}

#[tokio::test]
async fn connect_fails_cleanly_on_an_unusable_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let result =
        SqliteStore::connect(SqliteConfig::new(dir.path().join("missing-dir").join("db.sqlite"))).await;
    assert!(result.is_err(), "a file in a missing directory cannot be created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_writes_share_commits() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::connect(config(&dir)).await.expect("connect");
    let before = store.commits();
    let flow_id = FlowId::new();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(200));
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let (store, barrier) = (store.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let e = execution(flow_id, None, vec![], now());
            barrier.wait().await;
            ExecutionRepository::insert(&store, &e, &[event()]).await.map(|()| e.id)
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(
            timeout(Duration::from_secs(60), task).await.expect("in time").expect("task").expect("insert"),
        );
    }
    let commits = store.commits() - before;
    assert!(commits < 200, "200 concurrent writes took {commits} commits: no grouping");
    for id in ids {
        assert!(ExecutionRepository::get(&store, id).await.expect("get").is_some(), "answered, so committed");
    }
    assert_eq!(store.pending_count().await.expect("pending"), 200, "every event appended");
}

/// Spawns `n` good execution inserts interleaved with `n` inserts of an id already stored and
/// `n` saves with a stale revision, while another connection holds SQLite's write lock, so all of
/// them queue up behind the writer task and are committed in at most two batches.
#[tokio::test(flavor = "current_thread")]
async fn a_failing_write_fails_alone_in_its_batch() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::connect(config(&dir)).await.expect("connect");
    let flow_id = FlowId::new();
    let taken = execution(flow_id, None, vec![], now());
    ExecutionRepository::insert(&store, &taken, &[]).await.expect("insert");
    let stale = taken.clone();
    ExecutionRepository::save(&store, &taken, &[]).await.expect("save moves the revision on");

    let mut lock =
        SqliteConnection::connect(&format!("sqlite://{}", dir.path().join("flowmate.db").display()))
            .await
            .expect("second connection");
    sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut lock).await.expect("take the write lock");
    let before = store.commits();

    let n: u64 = 20;
    let mut good = Vec::new();
    let mut duplicates = Vec::new();
    let mut conflicts = Vec::new();
    for _ in 0..n {
        let e = execution(flow_id, None, vec![], now());
        let s = store.clone();
        good.push((e.id, tokio::spawn(async move { ExecutionRepository::insert(&s, &e, &[event()]).await })));
        let (s, again) = (store.clone(), taken.clone());
        duplicates
            .push(tokio::spawn(async move { ExecutionRepository::insert(&s, &again, &[event()]).await }));
        let (s, stale) = (store.clone(), stale.clone());
        conflicts.push(tokio::spawn(async move { ExecutionRepository::save(&s, &stale, &[event()]).await }));
    }
    // On this single-threaded runtime, yielding lets every spawned write reach the queue (the
    // writer task meanwhile waits for the lock in its first batch).
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    sqlx::raw_sql("COMMIT").execute(&mut lock).await.expect("release the write lock");

    for (id, task) in good {
        timeout(Duration::from_secs(60), task).await.expect("in time").expect("task").expect("good insert");
        assert!(ExecutionRepository::get(&store, id).await.expect("get").is_some(), "committed");
    }
    for task in duplicates {
        let result = task.await.expect("task");
        assert!(matches!(result, Err(PortError::Duplicate("execution id"))), "got {result:?}");
    }
    for task in conflicts {
        let result = task.await.expect("task");
        assert!(matches!(result, Err(PortError::Conflict)), "got {result:?}");
    }
    let commits = store.commits() - before;
    assert!(commits <= 2, "{} queued writes took {commits} commits", 3 * n);
    let stored: Execution = ExecutionRepository::get(&store, taken.id).await.expect("get").expect("kept");
    assert_eq!(stored.revision, taken.revision + 1, "no failing save changed it");
    assert_eq!(store.pending_count().await.expect("pending"), n, "only the good writes' events");
}

#[tokio::test]
async fn writes_after_close_are_unavailable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::connect(config(&dir)).await.expect("connect");
    store.close().await;
    let result =
        ExecutionRepository::insert(&store, &execution(FlowId::new(), None, vec![], now()), &[]).await;
    assert!(matches!(result, Err(PortError::Unavailable(_))), "got {result:?}");
}
