//! Bounded memory for Argon2: at most `N` hashes run at once, each on a memory block taken
//! from a small pool and given back afterwards.
//!
//! Argon2id needs its whole memory cost (19 MiB by default) per hash. Allocated afresh on
//! tokio's blocking pool (up to 512 threads, each with its own malloc arena that keeps freed
//! memory), repeated logins made the process grow by that much per thread without bound. Here
//! a semaphore admits `N` hashes (the CPU count by default: more would only queue for cores),
//! and the blocks are allocated once, at most `N` of them, and reused: memory stays at about
//! `N` x the memory cost however many logins arrive.

use anyhow::Context;
use argon2::Block;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// The pool: permits and the memory blocks not in use.
#[derive(Debug)]
pub(crate) struct HashingSlots {
    /// One per hash allowed to run at once.
    permits: Arc<Semaphore>,
    /// How many permits there are.
    concurrency: usize,
    /// Blocks of `blocks_per_slot` kept for reuse (never more than the permits).
    idle: Mutex<Vec<Vec<Block>>>,
    /// Argon2 blocks (1 KiB each) of the configured memory cost.
    blocks_per_slot: usize,
    /// Pooled blocks allocated so far (diagnostic; at most the permits).
    allocated: AtomicUsize,
}

impl HashingSlots {
    /// `concurrency` hashes at once (at least one), each with `blocks_per_slot` blocks.
    pub(crate) fn new(concurrency: usize, blocks_per_slot: usize) -> Self {
        let concurrency = concurrency.max(1);
        Self {
            permits: Arc::new(Semaphore::new(concurrency)),
            concurrency,
            idle: Mutex::new(Vec::new()),
            blocks_per_slot,
            allocated: AtomicUsize::new(0),
        }
    }

    /// How many hashes may run at once.
    pub(crate) fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// How many hashes could start right now.
    #[cfg(test)]
    pub(crate) fn idle_permits(&self) -> usize {
        self.permits.available_permits()
    }

    /// How many pooled blocks were allocated so far: a block is allocated only when every
    /// earlier one is in use, so this is also the most hashes that ran at once.
    #[cfg(test)]
    pub(crate) fn allocated(&self) -> usize {
        self.allocated.load(Ordering::Relaxed)
    }

    /// Waits for a slot, then runs `work` on tokio's blocking pool with at least `blocks`
    /// memory blocks. A hash needing more than the configured cost (one stored with other
    /// parameters) gets a block of its own, freed afterwards.
    ///
    /// # Errors
    /// When the blocking task could not run to its end (it panicked or the runtime is
    /// shutting down).
    pub(crate) async fn run<T, F>(self: &Arc<Self>, blocks: usize, work: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut [Block]) -> T + Send + 'static,
    {
        let permit = Arc::clone(&self.permits).acquire_owned().await.context("password hashing is closed")?;
        let slots = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            if blocks > slots.blocks_per_slot {
                return work(&mut vec![Block::new(); blocks]);
            }
            let mut memory = slots.take();
            let result = work(&mut memory);
            slots.give_back(memory);
            result
        })
        .await
        .context("password hashing task failed")
    }

    /// An idle block, or a new one while fewer than the permits exist.
    fn take(&self) -> Vec<Block> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        idle.unwrap_or_else(|| {
            self.allocated.fetch_add(1, Ordering::Relaxed);
            vec![Block::new(); self.blocks_per_slot]
        })
    }

    fn give_back(&self, memory: Vec<Block>) {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).push(memory);
    }
}
