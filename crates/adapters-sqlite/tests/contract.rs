//! Runs every storage contract of `port-contracts` against a fresh SQLite store each.

use adapters_sqlite::{SqliteConfig, SqliteStore};
use async_trait::async_trait;
use flow_domain::ids::{EventId, ExecutionId, FlowId};
use port_contracts::storage::unreadable::{RowCorrupter, deep_json};
use port_contracts::storage::{self, StoragePorts};
use std::path::PathBuf;

async fn fresh() -> StoragePorts {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("flowmate.db");
    let store = SqliteStore::connect(SqliteConfig::new(&path)).await.expect("connect");
    StoragePorts::from_store(store).with_corrupter(Corrupter(path)).keeping(dir)
}

/// Plants unreadable rows with plain SQL on a connection of its own.
struct Corrupter(PathBuf);

impl Corrupter {
    async fn set(&self, sql: &'static str, key: String) {
        let url = format!("sqlite://{}", self.0.display());
        let pool = sqlx::SqlitePool::connect(&url).await.expect("open the database");
        let done = sqlx::query(sql).bind(deep_json()).bind(key).execute(&pool).await.expect("corrupt a row");
        assert_eq!(done.rows_affected(), 1, "one row corrupted");
        pool.close().await;
    }
}

#[async_trait]
impl RowCorrupter for Corrupter {
    async fn execution_document(&self, id: ExecutionId) {
        self.set("UPDATE executions SET doc = ? WHERE id = ?", id.to_string()).await;
    }
    async fn flow_document(&self, id: FlowId) {
        self.set("UPDATE flows SET doc = ? WHERE id = ?", id.to_string()).await;
    }
    async fn event_payload(&self, id: EventId) {
        self.set("UPDATE outbox SET payload = ? WHERE event_id = ?", id.to_string()).await;
    }
}

macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                storage::run_named(stringify!($name), fresh().await).await;
            }
        )*
        const TESTED: &[&str] = &[$(stringify!($name)),*];
    };
}

contract_tests!(
    flows_round_trip,
    flows_list_visibility,
    flows_list_filters,
    flows_search_is_literal,
    flows_sort_and_paging,
    flows_save_compare_and_set,
    flows_save_consumed_once,
    flows_delete_compare_and_set,
    flows_list_stalled,
    flows_list_owned_by,
    flows_list_scheduled,
    templates_round_trip,
    templates_list_visibility,
    templates_list_filters_and_tags,
    templates_search_sort_and_paging,
    templates_save_delete_compare_and_set,
    users_round_trip,
    users_duplicate_usernames,
    users_list,
    users_save,
    users_save_revokes_tokens,
    users_delete_removes_tokens,
    tenants,
    tokens_lifecycle,
    executions_round_trip,
    executions_concurrent_inserts_fail_alone,
    executions_concurrent_saves_fail_alone,
    executions_list_visibility,
    executions_list_filters_and_paging,
    executions_claim_is_exclusive,
    executions_lease_expiry_reclaim,
    executions_save_compare_and_set,
    executions_claim_counts_attempts,
    executions_list_orphaned_leases,
    unreadable_rows_fail_alone,
    executions_error_and_key_round_trip,
    executions_list_queued_before,
    executions_list_step_filter_and_paging,
    executions_usage,
    executions_deep_documents_read_back,
    executions_insert_idempotent_repeat_within_window,
    executions_insert_idempotent_takes_over_an_old_key,
    executions_insert_idempotent_keys_are_per_flow,
    executions_insert_idempotent_concurrent_calls,
    executions_purge_ended_before,
    executions_purge_with_an_early_cutoff_deletes_nothing,
    components_round_trip_and_duplicates,
    components_list_visibility,
    outbox_append_claim_publish,
    outbox_concurrent_claims_are_disjoint,
    outbox_mark_published_then_claim,
    outbox_append_consumed_once,
    outbox_wait_for_new,
    outbox_release_claims,
);

#[test]
fn every_contract_is_run() {
    let names: Vec<&str> = storage::contracts().iter().map(|c| c.name).collect();
    assert_eq!(names, TESTED, "tests/contract.rs must list every storage contract");
}

#[tokio::test]
async fn run_all_passes_on_one_shared_file() {
    // The suite also passes when every contract shares one database (as a PostgreSQL run would).
    let shared = fresh().await;
    storage::run_all(|| {
        let ports = shared.clone();
        async move { ports }
    })
    .await;
}
