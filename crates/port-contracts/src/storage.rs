//! Storage contract: every storage port (flows, templates, users, tenants, tokens, executions,
//! external components, outbox).
//!
//! Each contract is a public async function taking the port(s) it exercises as
//! `Arc<dyn Trait>`; it panics, naming the rule, when the adapter breaks it. [`contracts`]
//! lists them all by name and [`run_all`] runs each on a fresh store:
//!
//! ```text
//! port_contracts::storage::run_all(|| async { StoragePorts::from_store(open_store().await) }).await;
//! ```
//!
//! Rows are named with unique markers, so every contract but the outbox ones may share a
//! database with other runs; the outbox contracts (and the flow/template/user contracts that
//! check what was appended to the outbox) need an outbox no other test uses at the same time,
//! and the retention contracts need executions ended in 1985 to be their own.

pub mod attempts;
pub mod components;
pub mod deep_documents;
pub mod execution_reads;
pub mod executions;
pub mod fixtures;
pub mod flow_lists;
pub mod flows;
pub mod idempotency;
pub mod identity;
pub mod outbox;
pub mod retention;
pub mod templates;
pub mod unreadable;
pub mod visibility;

use flow_domain::ports::{
    ComponentRepository, ExecutionRepository, ExecutionRetention, FlowRepository, Outbox, TemplateRepository,
    TenantRepository, TokenRepository, UserRepository,
};
use futures::future::BoxFuture;
use std::any::Any;
use std::future::Future;
use std::sync::Arc;
use unreadable::RowCorrupter;

/// The storage ports of one store under test.
#[derive(Clone)]
pub struct StoragePorts {
    /// Flows.
    pub flows: Arc<dyn FlowRepository>,
    /// Templates.
    pub templates: Arc<dyn TemplateRepository>,
    /// Users.
    pub users: Arc<dyn UserRepository>,
    /// Tenants.
    pub tenants: Arc<dyn TenantRepository>,
    /// Tokens.
    pub tokens: Arc<dyn TokenRepository>,
    /// Executions.
    pub executions: Arc<dyn ExecutionRepository>,
    /// Deleting executions past their retention.
    pub retention: Arc<dyn ExecutionRetention>,
    /// External components.
    pub components: Arc<dyn ComponentRepository>,
    /// The outbox.
    pub outbox: Arc<dyn Outbox>,
    /// Plants unreadable rows in the store's database (for `unreadable_rows_fail_alone`).
    pub corrupter: Option<Arc<dyn RowCorrupter>>,
    /// Whatever must live as long as the ports (a temporary directory, a container handle).
    pub keep_alive: Option<Arc<dyn Any + Send + Sync>>,
}

impl StoragePorts {
    /// Every port served by one `store`.
    pub fn from_store<S>(store: S) -> Self
    where
        S: FlowRepository
            + TemplateRepository
            + UserRepository
            + TenantRepository
            + TokenRepository
            + ExecutionRepository
            + ExecutionRetention
            + ComponentRepository
            + Outbox
            + 'static,
    {
        let store = Arc::new(store);
        Self {
            flows: store.clone(),
            templates: store.clone(),
            users: store.clone(),
            tenants: store.clone(),
            tokens: store.clone(),
            executions: store.clone(),
            retention: store.clone(),
            components: store.clone(),
            outbox: store,
            corrupter: None,
            keep_alive: None,
        }
    }

    /// Plants unreadable rows with `corrupter` (every adapter's suite must give one).
    #[must_use]
    pub fn with_corrupter(mut self, corrupter: impl RowCorrupter + 'static) -> Self {
        self.corrupter = Some(Arc::new(corrupter));
        self
    }

    /// Keeps `guard` alive as long as these ports.
    #[must_use]
    pub fn keeping(mut self, guard: impl Any + Send + Sync) -> Self {
        self.keep_alive = Some(Arc::new(guard));
        self
    }
}

/// One named contract, runnable on any store.
#[derive(Clone, Copy)]
pub struct Contract {
    /// Its name (the name of the function it runs).
    pub name: &'static str,
    /// Runs it; panics when the contract is broken.
    pub run: fn(StoragePorts) -> BoxFuture<'static, ()>,
}

macro_rules! contract {
    ($name:literal, |$p:ident| $body:expr) => {
        Contract { name: $name, run: |$p: StoragePorts| Box::pin(async move { $body.await }) }
    };
}

/// Every storage contract.
pub fn contracts() -> Vec<Contract> {
    vec![
        contract!("flows_round_trip", |p| flows::round_trip(p.flows, p.outbox)),
        contract!("flows_list_visibility", |p| flow_lists::list_visibility(p.flows)),
        contract!("flows_list_filters", |p| flow_lists::list_filters(p.flows)),
        contract!("flows_search_is_literal", |p| flow_lists::search_is_literal(p.flows)),
        contract!("flows_sort_and_paging", |p| flow_lists::sort_and_paging(p.flows)),
        contract!("flows_save_compare_and_set", |p| flows::save_compare_and_set(p.flows, p.outbox)),
        contract!("flows_save_consumed_once", |p| flows::save_consumed_once(p.flows, p.outbox)),
        contract!("flows_delete_compare_and_set", |p| flows::delete_compare_and_set(p.flows, p.outbox)),
        contract!("flows_list_stalled", |p| flows::list_stalled(p.flows)),
        contract!("flows_list_owned_by", |p| flows::list_owned_by(p.flows)),
        contract!("flows_list_scheduled", |p| flows::list_scheduled(p.flows)),
        contract!("templates_round_trip", |p| templates::round_trip(p.templates, p.outbox)),
        contract!("templates_list_visibility", |p| templates::list_visibility(p.templates)),
        contract!("templates_list_filters_and_tags", |p| templates::list_filters_and_tags(p.templates)),
        contract!("templates_search_sort_and_paging", |p| templates::search_sort_and_paging(p.templates)),
        contract!("templates_save_delete_compare_and_set", |p| {
            templates::save_delete_compare_and_set(p.templates, p.outbox)
        }),
        contract!("users_round_trip", |p| identity::users_round_trip(p.users, p.outbox)),
        contract!("users_duplicate_usernames", |p| identity::users_duplicate_usernames(p.users, p.outbox)),
        contract!("users_list", |p| identity::users_list(p.users)),
        contract!("users_save", |p| identity::users_save(p.users)),
        contract!("users_save_revokes_tokens", |p| identity::users_save_revokes_tokens(p.users, p.tokens)),
        contract!("users_delete_removes_tokens", |p| {
            identity::users_delete_removes_tokens(p.users, p.tokens, p.outbox)
        }),
        contract!("tenants", |p| identity::tenants(p.tenants)),
        contract!("tokens_lifecycle", |p| identity::tokens_lifecycle(p.users, p.tokens)),
        contract!("executions_round_trip", |p| executions::round_trip(p.executions, p.outbox)),
        contract!("executions_concurrent_inserts_fail_alone", |p| {
            executions::concurrent_inserts_fail_alone(p.executions, p.outbox)
        }),
        contract!("executions_concurrent_saves_fail_alone", |p| {
            executions::concurrent_saves_fail_alone(p.executions)
        }),
        contract!("executions_list_visibility", |p| executions::list_visibility(p.executions)),
        contract!("executions_list_filters_and_paging", |p| executions::list_filters_and_paging(
            p.executions
        )),
        contract!("executions_claim_is_exclusive", |p| executions::claim_is_exclusive(p.executions)),
        contract!("executions_lease_expiry_reclaim", |p| executions::lease_expiry_reclaim(p.executions)),
        contract!("executions_save_compare_and_set", |p| {
            executions::save_compare_and_set(p.executions, p.outbox)
        }),
        contract!("executions_claim_counts_attempts", |p| attempts::claim_counts_attempts(p.executions)),
        contract!("executions_list_orphaned_leases", |p| attempts::list_orphaned_leases(p.executions)),
        contract!("unreadable_rows_fail_alone", |p| {
            let corrupter = p.corrupter.clone().expect("the adapter's suite gives a RowCorrupter");
            unreadable::unreadable_rows_fail_alone(p.executions, p.flows, p.outbox, corrupter)
        }),
        contract!("executions_error_and_key_round_trip", |p| execution_reads::error_and_key_round_trip(
            p.executions
        )),
        contract!("executions_list_queued_before", |p| execution_reads::list_queued_before(p.executions)),
        contract!("executions_list_step_filter_and_paging", |p| {
            execution_reads::list_step_filter_and_paging(p.executions)
        }),
        contract!("executions_usage", |p| execution_reads::usage(p.executions)),
        contract!("executions_deep_documents_read_back", |p| {
            deep_documents::deep_documents_read_back(p.executions)
        }),
        contract!("executions_insert_idempotent_repeat_within_window", |p| {
            idempotency::insert_idempotent_repeat_within_window(p.executions, p.outbox)
        }),
        contract!("executions_insert_idempotent_takes_over_an_old_key", |p| {
            idempotency::insert_idempotent_takes_over_an_old_key(p.executions)
        }),
        contract!("executions_insert_idempotent_keys_are_per_flow", |p| {
            idempotency::insert_idempotent_keys_are_per_flow(p.executions)
        }),
        contract!("executions_insert_idempotent_concurrent_calls", |p| {
            idempotency::insert_idempotent_concurrent_calls(p.executions, p.outbox)
        }),
        contract!("executions_purge_ended_before", |p| {
            retention::purge_ended_before(p.executions, p.retention)
        }),
        contract!("executions_purge_with_an_early_cutoff_deletes_nothing", |p| {
            retention::purge_with_an_early_cutoff_deletes_nothing(p.executions, p.retention)
        }),
        contract!("components_round_trip_and_duplicates", |p| components::round_trip_and_duplicates(
            p.components
        )),
        contract!("components_list_visibility", |p| components::list_visibility(p.components)),
        contract!("outbox_append_claim_publish", |p| outbox::append_claim_publish(p.outbox)),
        contract!("outbox_concurrent_claims_are_disjoint", |p| outbox::concurrent_claims_are_disjoint(
            p.outbox
        )),
        contract!("outbox_mark_published_then_claim", |p| outbox::mark_published_then_claim(p.outbox)),
        contract!("outbox_append_consumed_once", |p| outbox::append_consumed_once(p.outbox)),
        contract!("outbox_wait_for_new", |p| outbox::wait_for_new(p.outbox)),
        contract!("outbox_release_claims", |p| attempts::outbox_release_claims(p.outbox)),
    ]
}

/// Runs the contract called `name` on `ports`.
///
/// # Panics
/// When no contract has this name, or the contract is broken.
pub async fn run_named(name: &str, ports: StoragePorts) {
    let Some(contract) = contracts().into_iter().find(|c| c.name == name) else {
        panic!("no storage contract named {name}");
    };
    run(contract, ports).await;
}

/// Runs every contract, each on a store from `fresh`.
///
/// # Panics
/// When a contract is broken (the contract's name is printed before it runs).
pub async fn run_all<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = StoragePorts>,
{
    for contract in contracts() {
        eprintln!("storage contract: {}", contract.name);
        run(contract, fresh().await).await;
    }
}

/// Runs `contract`, keeping `ports.keep_alive` alive until it ends (a contract may use only
/// some of the ports).
async fn run(contract: Contract, ports: StoragePorts) {
    let keep_alive = ports.keep_alive.clone();
    (contract.run)(ports).await;
    drop(keep_alive);
}
