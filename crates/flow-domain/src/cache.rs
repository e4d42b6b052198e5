//! A read-through cache of flows for the hot paths that read one flow per message (incoming
//! webhooks, the executor), so they do not read and decode the flow from storage every time.
//!
//! One [`FlowCache`] gives two views of the same store, both [`FlowRepository`]s:
//! - [`FlowCache::reader`]: `get` and `get_shared` answer from the cache (entries live at most
//!   the configured time to live; `get_shared` without copying the flow); everything else
//!   passes through;
//! - [`FlowCache::writer`]: passes everything through and forgets a flow whenever it is
//!   inserted, saved or deleted through it.
//!
//! Every writer of the process uses the writer view, so a change made here is seen by the next
//! read here. A change made by another process (several `api` processes on one database) is
//! seen once the entry expires: the time to live bounds how stale a read can be. A read that
//! races a write never caches what it read before the write (a generation counter).

use crate::error::PortError;
use crate::event::{Consumed, Event};
use crate::expiring::ExpiringMap;
use crate::ids::FlowId;
use crate::model::Flow;
use crate::ports::FlowRepository;
use crate::query::{FlowQuery, Page};
use crate::time::Clock;
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use std::sync::Arc;
use uuid::Uuid;

/// The most flows kept; when full, the cache starts over (a bound, not an eviction policy).
pub const MAX_CACHED_FLOWS: usize = 10_000;

/// The shared state of both views.
struct Shared {
    store: Arc<dyn FlowRepository>,
    flows: ExpiringMap<FlowId, Arc<Flow>>,
}

/// A cache of flows over `store`; see the module documentation.
#[derive(Clone)]
pub struct FlowCache {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for FlowCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowCache").field("ttl", &self.shared.flows.ttl()).finish_non_exhaustive()
    }
}

impl FlowCache {
    /// A cache keeping each flow at most `ttl` (zero: nothing is cached).
    pub fn new(store: Arc<dyn FlowRepository>, clock: Arc<dyn Clock>, ttl: Duration) -> Self {
        let shared = Shared { store, flows: ExpiringMap::new(clock, ttl, MAX_CACHED_FLOWS) };
        Self { shared: Arc::new(shared) }
    }

    /// The view whose `get` is cached.
    pub fn reader(&self) -> Arc<dyn FlowRepository> {
        Arc::new(View { shared: Arc::clone(&self.shared), cached_reads: true })
    }

    /// The view every writer of the process must use.
    pub fn writer(&self) -> Arc<dyn FlowRepository> {
        Arc::new(View { shared: Arc::clone(&self.shared), cached_reads: false })
    }

    /// How many flows are cached now (expired ones included until replaced).
    pub fn len(&self) -> usize {
        self.shared.flows.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Shared {
    async fn get_shared(&self, id: FlowId) -> Result<Option<Arc<Flow>>, PortError> {
        self.flows.read_through(&id, |_| true, || self.store.get_shared(id)).await
    }

    fn forget(&self, id: FlowId) {
        self.flows.forget(&id);
    }
}

/// One view of the cache: with cached reads (the reader) or without (the writer).
struct View {
    shared: Arc<Shared>,
    cached_reads: bool,
}

#[async_trait]
impl FlowRepository for View {
    async fn insert(&self, flow: &Flow, events: &[Event]) -> Result<(), PortError> {
        self.shared.store.insert(flow, events).await?;
        self.shared.forget(flow.id);
        Ok(())
    }

    async fn get(&self, id: FlowId) -> Result<Option<Flow>, PortError> {
        if self.cached_reads {
            Ok(self.shared.get_shared(id).await?.map(|flow| Flow::clone(&flow)))
        } else {
            self.shared.store.get(id).await
        }
    }

    async fn get_shared(&self, id: FlowId) -> Result<Option<Arc<Flow>>, PortError> {
        if self.cached_reads {
            self.shared.get_shared(id).await
        } else {
            self.shared.store.get_shared(id).await
        }
    }

    async fn list(&self, query: &FlowQuery) -> Result<Page<Flow>, PortError> {
        self.shared.store.list(query).await
    }

    async fn save<'a>(
        &self,
        flow: &Flow,
        events: &[Event],
        consumed: Option<&'a Consumed>,
    ) -> Result<(), PortError> {
        // Forgotten whatever the outcome: a failed save may still have been applied.
        let saved = self.shared.store.save(flow, events, consumed).await;
        self.shared.forget(flow.id);
        saved
    }

    async fn delete(&self, flow: &Flow, events: &[Event]) -> Result<(), PortError> {
        let deleted = self.shared.store.delete(flow, events).await;
        self.shared.forget(flow.id);
        deleted
    }

    async fn list_stalled(&self, before: DateTime<Utc>, limit: u32) -> Result<Vec<Flow>, PortError> {
        self.shared.store.list_stalled(before, limit).await
    }

    async fn list_scheduled(&self) -> Result<Vec<Flow>, PortError> {
        self.shared.store.list_scheduled().await
    }

    async fn list_owned_by(&self, owner_id: Uuid) -> Result<Vec<Flow>, PortError> {
        self.shared.store.list_owned_by(owner_id).await
    }

    async fn ping(&self) -> Result<(), PortError> {
        self.shared.store.ping().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TenantId;
    use crate::limits::Limits;
    use crate::model::{FlowStatus, Owner};
    use crate::ports::MockFlowRepository;
    use crate::time::ManualClock;
    use crate::validate::flow::parse_flow_document;
    use futures::executor::block_on;
    use serde_json::json;

    fn flow(status: FlowStatus) -> Flow {
        let doc = json!({"name": "f", "graph": {"nodes": [{"id": "a", "componentId": "webhook", "function": "receive"}]}});
        let spec =
            parse_flow_document(&doc, &Limits::default()).map(|d| d.spec).unwrap_or_else(|e| panic!("{e:?}"));
        Flow {
            status,
            ..Flow::new(spec, Some(TenantId::new()), vec![Owner::user(Uuid::now_v7())], Utc::now())
        }
    }

    fn clock() -> Arc<ManualClock> {
        Arc::new(ManualClock::new(Utc::now()))
    }

    /// A store holding `stored`, expecting exactly `reads` reads of it.
    fn store_read(stored: Flow, reads: usize) -> MockFlowRepository {
        let mut store = MockFlowRepository::new();
        store.expect_get_shared().times(reads).returning(move |_| Ok(Some(Arc::new(stored.clone()))));
        store
    }

    #[test]
    fn reads_once_within_the_time_to_live_then_again() {
        let stored = flow(FlowStatus::Active);
        let id = stored.id;
        let store = store_read(stored, 2);
        let clock = clock();
        let cache = FlowCache::new(Arc::new(store), clock.clone(), Duration::seconds(1));
        let reader = cache.reader();
        for _ in 0..3 {
            assert_eq!(block_on(reader.get(id)).unwrap().map(|f| f.id), Some(id));
        }
        clock.advance(Duration::milliseconds(1_001));
        assert_eq!(block_on(reader.get(id)).unwrap().map(|f| f.id), Some(id));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn a_write_through_the_writer_is_seen_by_the_next_read() {
        let stored = flow(FlowStatus::Active);
        let id = stored.id;
        let mut changed = stored.clone();
        changed.status = FlowStatus::Inactive;
        let mut store = MockFlowRepository::new();
        let mut reads = 0;
        store.expect_get_shared().times(2).returning(move |_| {
            reads += 1;
            Ok(Some(Arc::new(if reads == 1 { stored.clone() } else { changed.clone() })))
        });
        store.expect_save().times(1).returning(|_, _, _| Ok(()));
        let cache = FlowCache::new(Arc::new(store), clock(), Duration::seconds(60));
        let (reader, writer) = (cache.reader(), cache.writer());
        let first = block_on(reader.get(id)).unwrap().unwrap();
        assert_eq!(first.status, FlowStatus::Active);
        block_on(writer.save(&first, &[], None)).unwrap();
        assert_eq!(block_on(reader.get(id)).unwrap().map(|f| f.status), Some(FlowStatus::Inactive));
    }

    #[test]
    fn unknown_flows_are_not_cached() {
        let mut store = MockFlowRepository::new();
        store.expect_get_shared().times(2).returning(|_| Ok(None));
        let cache = FlowCache::new(Arc::new(store), clock(), Duration::seconds(60));
        let reader = cache.reader();
        let id = FlowId::new();
        assert!(block_on(reader.get(id)).unwrap().is_none());
        assert!(block_on(reader.get(id)).unwrap().is_none());
        assert!(cache.is_empty());
    }

    #[test]
    fn a_zero_time_to_live_caches_nothing() {
        let stored = flow(FlowStatus::Active);
        let id = stored.id;
        let cache = FlowCache::new(Arc::new(store_read(stored, 2)), clock(), Duration::zero());
        let reader = cache.reader();
        block_on(reader.get(id)).unwrap();
        block_on(reader.get(id)).unwrap();
        assert!(cache.is_empty());
    }

    #[test]
    fn get_shared_hands_out_the_cached_flow_itself_and_the_writer_reads_through() {
        let stored = flow(FlowStatus::Active);
        let id = stored.id;
        // One read for the reader's two calls, one for the writer's.
        let cache = FlowCache::new(Arc::new(store_read(stored, 2)), clock(), Duration::seconds(60));
        let (reader, writer) = (cache.reader(), cache.writer());
        let first = block_on(reader.get_shared(id)).unwrap().unwrap();
        let second = block_on(reader.get_shared(id)).unwrap().unwrap();
        assert!(Arc::ptr_eq(&first, &second), "the cached flow, not a copy");
        let through = block_on(writer.get_shared(id)).unwrap().unwrap();
        assert!(!Arc::ptr_eq(&first, &through), "the writer reads the store");
        assert_eq!(*through, *first);
    }
}
