//! The core of the read-through caches ([`crate::cache::FlowCache`],
//! [`crate::token_cache::TokenCache`]): a bounded map whose entries expire after a time to
//! live, and a write generation so that a read which raced a write never caches what it read
//! before the write.

use crate::error::PortError;
use crate::time::Clock;
use chrono::{DateTime, Duration, Utc};
use std::borrow::Borrow;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

/// Entries of `V` by `K`, each trusted until its time to live is over.
pub(crate) struct ExpiringMap<K, V> {
    clock: Arc<dyn Clock>,
    ttl: Duration,
    /// The most entries kept; when full, the map starts over (a bound, not an eviction policy).
    capacity: usize,
    entries: RwLock<HashMap<K, (V, DateTime<Utc>)>>,
    /// Bumped by every forget, so a read that overlapped a write does not cache its result.
    generation: AtomicU64,
}

impl<K: Eq + Hash, V: Clone> ExpiringMap<K, V> {
    /// A map keeping each entry `ttl` (zero or less: nothing is kept), at most `capacity`.
    pub(crate) fn new(clock: Arc<dyn Clock>, ttl: Duration, capacity: usize) -> Self {
        Self { clock, ttl, capacity, entries: RwLock::new(HashMap::new()), generation: AtomicU64::new(0) }
    }

    /// The time to live.
    pub(crate) fn ttl(&self) -> Duration {
        self.ttl
    }

    /// How many entries are kept now (expired ones included until replaced).
    pub(crate) fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// The live entry for `key` if `usable` holds for it, else what `load` finds; a found value
    /// is kept unless a forget happened while it was loaded. `None` is never kept.
    ///
    /// # Errors
    /// `load`'s.
    pub(crate) async fn read_through<Q, Fut>(
        &self,
        key: &Q,
        usable: impl Fn(&V) -> bool,
        load: impl FnOnce() -> Fut,
    ) -> Result<Option<V>, PortError>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ToOwned<Owned = K> + ?Sized,
        Fut: Future<Output = Result<Option<V>, PortError>>,
    {
        if self.ttl <= Duration::zero() {
            return load().await;
        }
        let now = self.clock.now();
        {
            let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
            if let Some((value, until)) = entries.get(key)
                && *until > now
                && usable(value)
            {
                return Ok(Some(value.clone()));
            }
        }
        let generation = self.generation.load(Ordering::Acquire);
        let found = load().await?;
        if let Some(value) = &found {
            let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
            // Checked under the lock: a forget bumps the generation before taking it.
            if self.generation.load(Ordering::Acquire) == generation {
                if entries.len() >= self.capacity {
                    entries.clear();
                }
                entries.insert(key.to_owned(), (value.clone(), self.clock.now() + self.ttl));
            }
        }
        Ok(found)
    }

    /// Forgets the entry for `key`.
    pub(crate) fn forget<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.entries.write().unwrap_or_else(PoisonError::into_inner).remove(key);
    }

    /// Forgets the entries for which `stale` holds.
    pub(crate) fn forget_where(&self, stale: impl Fn(&K, &V) -> bool) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.entries
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|key, (value, _)| !stale(key, value));
    }
}
