//! What only the SQLite adapter has: the database file, migrations, the single writer
//! connection, claim expiry and closing.

use adapters_sqlite::{SqliteConfig, SqliteStore};
use flow_domain::error::PortError;
use flow_domain::ids::{FlowId, TenantId};
use flow_domain::ports::{FlowRepository, Health, Outbox, TenantRepository};
use port_contracts::storage::fixtures::{event, flow, tenant};
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
    let claimed = store.claim(10).await.expect("claim");
    assert_eq!(claimed.len(), 1);
    assert!(store.claim(10).await.expect("claim").is_empty(), "withheld while claimed");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let again = store.claim(10).await.expect("claim");
        if let Some(first) = again.first() {
            assert_eq!((first.seq, &first.event), (claimed[0].seq, &appended), "the same event, reclaimed");
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
            store.claim(3).await.map(|_| ())
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
