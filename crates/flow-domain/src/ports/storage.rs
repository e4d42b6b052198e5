//! Storage ports. Adapters: `adapters-sqlite` (embedded) and `adapters-postgres` (production).

use crate::error::PortError;
use crate::event::{Consumed, Event};
use crate::execution_lifecycle::AttemptLimit;
use crate::ids::{ExecutionId, FlowId, TemplateId, TenantId, TokenId, UserId};
use crate::model::{
    AccessToken, Execution, ExecutionStatus, ExternalComponent, Flow, NewUser, Template, Tenant,
    TokenRevocation, User,
};
use crate::query::{ExecutionQuery, FlowQuery, Page, PageRequest, TemplateQuery, UserQuery, Visibility};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Flows, with optimistic concurrency on an internal revision.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait FlowRepository: Send + Sync {
    /// Stores a new flow and appends `events` to the outbox, atomically.
    ///
    /// # Errors
    /// `Unavailable` when the store cannot be reached; `Other` otherwise.
    async fn insert(&self, flow: &Flow, events: &[Event]) -> Result<(), PortError>;

    /// The flow with `id`, whoever owns it (the caller applies the visibility policy).
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn get(&self, id: FlowId) -> Result<Option<Flow>, PortError>;

    /// [`FlowRepository::get`] behind a shared pointer, for the hot paths that only read the
    /// flow (webhook calls, runs): a cache hands out the copy it holds instead of a deep clone.
    /// The default wraps `get`. The generated mock (feature `mock`) mocks this method too, so a
    /// test whose code path calls it sets `expect_get_shared`.
    ///
    /// # Errors
    /// As `get`.
    async fn get_shared(&self, id: FlowId) -> Result<Option<Arc<Flow>>, PortError> {
        Ok(self.get(id).await?.map(Arc::new))
    }

    /// One page of the flows matching `query`, and how many match in all. Ordered by the sort
    /// field, ties broken by id. MUST apply `query.visibility` exactly as `Actor::can_see`.
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn list(&self, query: &FlowQuery) -> Result<Page<Flow>, PortError>;

    /// Replaces the stored flow with `flow` if the stored revision still equals
    /// `flow.revision`, storing `flow.revision + 1`; appends `events`; records `consumed` if
    /// given. All or nothing.
    ///
    /// # Errors
    /// MUST return `NotFound` when no flow has this id, `Conflict` when the revision differs,
    /// `AlreadyProcessed` (changing nothing) when `consumed` was already recorded.
    async fn save<'a>(
        &self,
        flow: &Flow,
        events: &[Event],
        consumed: Option<&'a Consumed>,
    ) -> Result<(), PortError>;

    /// Deletes the flow if its stored revision equals `flow.revision`; appends `events`.
    ///
    /// # Errors
    /// `NotFound`, `Conflict` as for [`FlowRepository::save`].
    async fn delete(&self, flow: &Flow, events: &[Event]) -> Result<(), PortError>;

    /// Flows in `starting` or `stopping` whose status changed before `before` (oldest first).
    /// A row that cannot be read is left out (and reported once), never failing the list.
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn list_stalled(&self, before: DateTime<Utc>, limit: u32) -> Result<Vec<Flow>, PortError>;

    /// Every `active` flow with a `cron` expression (the scheduler's work list). A row that
    /// cannot be read is left out (and reported once), never failing the list.
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn list_scheduled(&self) -> Result<Vec<Flow>, PortError>;

    /// Every flow listing `owner_id` among its owners, in any tenant.
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn list_owned_by(&self, owner_id: Uuid) -> Result<Vec<Flow>, PortError>;

    /// Whether the store answers.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn ping(&self) -> Result<(), PortError>;
}

/// Templates, with optimistic concurrency on an internal revision.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait TemplateRepository: Send + Sync {
    /// Stores a new template and its events.
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn insert(&self, template: &Template, events: &[Event]) -> Result<(), PortError>;

    /// The template with `id`.
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn get(&self, id: TemplateId) -> Result<Option<Template>, PortError>;

    /// One page of matching templates (visibility as `Actor::can_see`), ties broken by id.
    /// `tags`: templates having any of them, plus untagged templates.
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn list(&self, query: &TemplateQuery) -> Result<Page<Template>, PortError>;

    /// Replaces the template if the stored revision still equals `template.revision`,
    /// storing `template.revision + 1`; appends `events`.
    ///
    /// # Errors
    /// MUST return `NotFound` or `Conflict` as for flows.
    async fn save(&self, template: &Template, events: &[Event]) -> Result<(), PortError>;

    /// Deletes the template if the stored revision still equals `template.revision`.
    ///
    /// # Errors
    /// `NotFound`, `Conflict`.
    async fn delete(&self, template: &Template, events: &[Event]) -> Result<(), PortError>;

    /// Every template listing `owner_id` among its owners, in any tenant.
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn list_owned_by(&self, owner_id: Uuid) -> Result<Vec<Template>, PortError>;
}

/// What the insert of a new execution must survive by the time it returns. Every other write
/// of every port survives a crash of the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertDurability {
    /// A crash of the machine or a power loss: the caller is then told that the execution is
    /// stored (an accepted webhook call, a retry, a scheduled run).
    Machine,
    /// A crash of this process, not necessarily of the machine: a store may answer before the
    /// write reaches the disk (PostgreSQL commits it with `synchronous_commit = off`). A store
    /// may always do more (SQLite commits it like any other write: switching its `synchronous`
    /// level per batch measured slower, not faster).
    Process,
}

impl InsertDurability {
    /// How durable inserting the new `execution` with `events` must be. An execution inserted
    /// `running` without events is an inline run's claim (see
    /// [`crate::ports::InlineRunner::claim_inline`]): it is written only so that a run which
    /// kills this process stays counted, and its caller is answered only after the run, once
    /// the ended execution is saved (durably). A crash of the machine before that save loses
    /// the claim together with the unanswered call, as if the call had never come. Every other
    /// new execution is [`InsertDurability::Machine`].
    #[must_use]
    pub fn of(execution: &Execution, events: &[Event]) -> Self {
        if execution.status == ExecutionStatus::Running && events.is_empty() {
            Self::Process
        } else {
            Self::Machine
        }
    }
}

/// Executions, with worker leases and optimistic concurrency on an internal revision.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait ExecutionRepository: Send + Sync {
    /// Stores a new execution (with its owners) and appends `events` to the outbox, atomically;
    /// when it returns, the write is at least as durable as [`InsertDurability::of`] says.
    ///
    /// # Errors
    /// `Duplicate("execution id")` when the id is taken; `Unavailable`, `Other`.
    async fn insert(&self, execution: &Execution, events: &[Event]) -> Result<(), PortError>;

    /// The execution with `id`, whoever may see it (the caller applies the visibility policy).
    /// When its document or owners cannot be read back, it is returned with
    /// [`Execution::unreadable`] set (see [`Execution::mark_unreadable`]).
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn get(&self, id: ExecutionId) -> Result<Option<Execution>, PortError>;

    /// One page of the executions matching `query`, newest first (`createdAt` descending, ties
    /// by id descending), and how many match in all. MUST apply `query.visibility` exactly as
    /// `Actor::can_see` on the execution's tenant and owners. Every listing of executions
    /// treats each row alone: a row whose document cannot be read is listed with
    /// [`Execution::unreadable`] set, one that cannot even be addressed is left out (and
    /// reported once).
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn list(&self, query: &ExecutionQuery) -> Result<Page<Execution>, PortError>;

    /// Atomically hands the execution to `worker` for one more run if it is `queued`, or
    /// `running` with a lease that ran out at or before `now` (or with no lease at all), and
    /// fewer than `limit` runs were counted: sets `running`, the lease (`worker`,
    /// `lease_until`), `startedAt` when unset, counts the run (`attempts` + 1) and revision + 1,
    /// and returns the execution as stored. The count is durable before the caller runs
    /// anything, so a run whose process dies stays counted. Of two concurrent claims at most
    /// one gets `Some`.
    ///
    /// # Errors
    /// `Unavailable`, `Other`. An unknown id, or one not claimable (ended, leased, or out of
    /// attempts), is `Ok(None)`.
    async fn claim(
        &self,
        id: ExecutionId,
        worker: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: AttemptLimit,
    ) -> Result<Option<Execution>, PortError>;

    /// Replaces the stored execution (status, steps, counters, error, lease, attempts, times)
    /// if the stored revision still equals `execution.revision`, storing
    /// `execution.revision + 1`; appends `events`. All or nothing. What an execution keeps from
    /// its creation on (flow, tenant, owners, trigger, creation time, idempotency key) is
    /// written by the insert only: a save leaves it as stored.
    ///
    /// # Errors
    /// MUST return `NotFound` when no execution has this id, `Conflict` when the revision
    /// differs (another worker or a cancel got there first).
    async fn save(&self, execution: &Execution, events: &[Event]) -> Result<(), PortError>;

    /// Running executions whose lease ran out at or before `now`, oldest lease first. A row
    /// whose document cannot be read is listed with [`Execution::unreadable`] set.
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn list_expired_leases(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Execution>, PortError>;

    /// Running executions leased by an owner that starts with `owner_prefix` other than
    /// `current_owner`, whatever their lease's expiry (the leases an earlier incarnation of a
    /// restarted process left, see [`crate::model::ProcessIdentity`]), oldest lease first.
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn list_orphaned_leases(
        &self,
        owner_prefix: &str,
        current_owner: &str,
        limit: u32,
    ) -> Result<Vec<Execution>, PortError>;

    /// Stores `execution` (whose `idempotency_key` is set) unless an execution of the same flow
    /// with the same key was created at or after `window_start`: then nothing is written and
    /// that execution is returned. An older execution holding the key gives it up. Atomic: of
    /// two concurrent calls with one key, exactly one inserts.
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn insert_idempotent(
        &self,
        execution: &Execution,
        events: &[Event],
        window_start: DateTime<Utc>,
    ) -> Result<Option<Execution>, PortError>;

    /// Queued executions created before `before` (their `flow.execute` may have been lost with
    /// a process), oldest first.
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn list_queued_before(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Execution>, PortError>;

    /// Step usage of the executions of `tenant` (every tenant when `None`) created in
    /// `[from, to)`: for each (flow, first user owner, component), the messages steps received.
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn usage(
        &self,
        tenant: Option<TenantId>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<StepUsage>, PortError>;
}

/// One row of [`ExecutionRepository::usage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepUsage {
    /// The flow.
    pub flow_id: FlowId,
    /// The tenant.
    pub tenant: Option<TenantId>,
    /// The first owner of type user of the execution, if any.
    pub user: Option<Uuid>,
    /// The component of the steps.
    pub component_id: String,
    /// Steps executed (messages received by the flow's steps of this component).
    pub count: u64,
}

/// External components registered with `POST /components`.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait ComponentRepository: Send + Sync {
    /// Stores a new component.
    ///
    /// # Errors
    /// MUST return `Duplicate("component name")` when the name is taken.
    async fn insert(&self, component: &ExternalComponent) -> Result<(), PortError>;

    /// The component named `name`, whoever owns it.
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn get(&self, name: &str) -> Result<Option<ExternalComponent>, PortError>;

    /// Every component `visibility` allows, by name.
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn list(&self, visibility: &Visibility) -> Result<Vec<ExternalComponent>, PortError>;
}

/// User accounts and their password hashes.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait UserRepository: Send + Sync {
    /// Stores a new user and its events.
    ///
    /// # Errors
    /// MUST return `Duplicate("username")` when a user who can log in already has this
    /// username (or, for end users, the same tenant has one).
    async fn insert(&self, user: &NewUser, events: &[Event]) -> Result<(), PortError>;

    /// The user with `id`.
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn get(&self, id: UserId) -> Result<Option<User>, PortError>;

    /// The user who can log in with `username`, with its password hash.
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn find_login(&self, username: &str) -> Result<Option<(User, Option<String>)>, PortError>;

    /// The end user (`canLogin: false`) of `tenant` named `username`.
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn find_end_user(&self, tenant: TenantId, username: &str) -> Result<Option<User>, PortError>;

    /// One page of users (ordered by creation, ties by id).
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn list(&self, query: &UserQuery) -> Result<Page<User>, PortError>;

    /// Replaces the user; sets the password hash when given; revokes the user's tokens as
    /// `revocation` says; appends events. All or nothing.
    ///
    /// # Errors
    /// `NotFound`.
    async fn save(
        &self,
        user: &User,
        password_hash: Option<String>,
        revocation: TokenRevocation,
        events: &[Event],
    ) -> Result<(), PortError>;

    /// Deletes the user and every token issued for it; appends events.
    ///
    /// # Errors
    /// `NotFound`.
    async fn delete(&self, id: UserId, events: &[Event]) -> Result<(), PortError>;

    /// How many users exist.
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn count(&self) -> Result<u64, PortError>;
}

/// Tenants.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait TenantRepository: Send + Sync {
    /// Stores a new tenant.
    ///
    /// # Errors
    /// MUST return `Duplicate("tenant name")` when the name is taken.
    async fn insert(&self, tenant: &Tenant) -> Result<(), PortError>;

    /// The tenant with `id`.
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn get(&self, id: TenantId) -> Result<Option<Tenant>, PortError>;

    /// One page of tenants (by creation, ties by id).
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn list(&self, page: PageRequest) -> Result<Page<Tenant>, PortError>;
}

/// Issued bearer tokens (hashes only).
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait TokenRepository: Send + Sync {
    /// Stores a token.
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn insert(&self, token: &AccessToken) -> Result<(), PortError>;

    /// The token whose hash is `hash` and its user, if the token expires after `now`.
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn find_valid(
        &self,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(AccessToken, User)>, PortError>;

    /// Pushes the token's expiry to `expires_at` (sliding expiry).
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn extend(&self, id: TokenId, expires_at: DateTime<Utc>) -> Result<(), PortError>;

    /// Revokes the token (it is found no more).
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn revoke(&self, id: TokenId) -> Result<(), PortError>;
}

/// One outbox row: an event and its position in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Monotonic position; the relay publishes in this order.
    pub seq: i64,
    /// The event, or why the stored row cannot be read back as one (the relay then drops it
    /// with one log line instead of failing every batch it is claimed in).
    pub event: Result<Event, String>,
}

/// The transactional outbox, read by the relay, and written directly by consumers whose only
/// effect is to publish (the engine's confirmations).
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Appends `events` and records `consumed` (if given) in one transaction.
    ///
    /// # Errors
    /// MUST return `AlreadyProcessed`, appending nothing, when `consumed` was already recorded.
    async fn append<'a>(&self, events: &[Event], consumed: Option<&'a Consumed>) -> Result<(), PortError>;

    /// Claims up to `limit` unpublished events for `claimer` (the relay's process incarnation),
    /// in order. A claim by one relay MUST NOT be handed to another relay until released or
    /// expired. Each row is read alone: one that cannot be read is returned with its error.
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn claim(&self, claimer: &str, limit: u32) -> Result<Vec<StoredEvent>, PortError>;

    /// Releases the claims of every claimer starting with `claimer_prefix` other than
    /// `current_claimer` (those an earlier incarnation of a restarted process left), so their
    /// events are published now rather than once the claims expire. Returns how many.
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn release_claims(&self, claimer_prefix: &str, current_claimer: &str) -> Result<u64, PortError>;

    /// Marks events published (they are never claimed again).
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn mark_published(&self, seqs: &[i64]) -> Result<(), PortError>;

    /// Marks the events `published` published, then claims up to `limit` more, as
    /// [`Outbox::mark_published`] then [`Outbox::claim`] do: a relay's step from one batch to
    /// the next. An adapter may do both in one write; on `Err`, `published` may or may not be
    /// marked (marking again is harmless) and nothing is claimed.
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn mark_published_then_claim(
        &self,
        published: &[i64],
        claimer: &str,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, PortError> {
        if !published.is_empty() {
            self.mark_published(published).await?;
        }
        self.claim(claimer, limit).await
    }

    /// Returns once new events may be pending, or after `max_wait`.
    async fn wait_for_new(&self, max_wait: Duration);

    /// How many events wait to be published.
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn pending_count(&self) -> Result<u64, PortError>;
}

/// Readiness of a backing service, for `/healthcheck`.
#[async_trait]
pub trait Health: Send + Sync {
    /// Ok when the backend answers.
    ///
    /// # Errors
    /// A short reason.
    async fn check(&self) -> Result<(), String>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{TriggerInfo, TriggerType};

    /// Only an inline claim (inserted `running`, without events) may skip the disk.
    #[test]
    fn only_an_inline_claim_needs_no_more_than_to_outlive_the_process() {
        let trigger = TriggerInfo { trigger_type: TriggerType::Webhook, request_id: None };
        let queued = Execution::queued(
            FlowId::new(),
            None,
            vec![],
            trigger,
            serde_json::json!({"data": 1}),
            Utc::now(),
        );
        let mut claimed = queued.clone();
        claimed.status = ExecutionStatus::Running;
        let events = [Event::flow_execute(queued.flow_id, queued.id, Utc::now())];
        for (execution, events, durability) in [
            (&claimed, &[][..], InsertDurability::Process),
            (&claimed, &events[..], InsertDurability::Machine),
            (&queued, &[][..], InsertDurability::Machine),
            (&queued, &events[..], InsertDurability::Machine),
        ] {
            assert_eq!(
                InsertDurability::of(execution, events),
                durability,
                "{} with {}",
                execution.status,
                events.len()
            );
        }
    }
}
