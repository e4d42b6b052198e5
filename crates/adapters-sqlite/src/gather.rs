//! Rows gathered per group-commit batch. The hottest writes (a plain execution insert, an
//! execution save without events) are queued for the writer as rows, not closures; the writer
//! runs all rows of one kind in a batch as one job of multi-row statements (see
//! `insert_batch` and `save_batch`), so N such writes cost a few round trips to the
//! connection's thread instead of N or more. Each row still gets its own result.

use crate::insert_batch::NewRow;
use crate::save_batch::SaveRow;
use crate::write::{Pending, Tx};
use flow_domain::error::PortError;
use futures::future::BoxFuture;
use tokio::sync::oneshot;

/// Rows per multi-row statement, largest first: rows are cut greedily into these sizes, so each
/// connection prepares at most this many statement texts per kind.
pub(crate) const CHUNK_SIZES: [usize; 4] = [64, 16, 4, 1];

/// The index in [`CHUNK_SIZES`] of a one-row statement.
pub(crate) const ONE_ROW: usize = CHUNK_SIZES.len() - 1;

/// Cuts `items` into consecutive chunks of the sizes of [`CHUNK_SIZES`] (largest that fits
/// first), each with its index into [`CHUNK_SIZES`].
pub(crate) fn chunks<T>(mut items: &[T]) -> impl Iterator<Item = (usize, &[T])> {
    std::iter::from_fn(move || {
        let size = CHUNK_SIZES.iter().position(|&size| size <= items.len())?;
        let (chunk, rest) = items.split_at(CHUNK_SIZES[size]);
        items = rest;
        Some((size, chunk))
    })
}

/// Where the caller of a gathered row waits.
pub(crate) type Reply = oneshot::Sender<Result<(), PortError>>;

/// A row queued for the writer, with its caller's reply channel.
pub(crate) enum QueuedRow {
    Insert(NewRow, Reply),
    Save(SaveRow, Reply),
}

/// A kind of gathered row: how the writer runs all rows of a batch.
pub(crate) trait GatheredRow: Send + Sized + 'static {
    /// Runs every row of `gathered`, recording each one's result. `false` only when the
    /// transaction may be unusable; rows changed nothing unless their result is `Ok`.
    fn run_all<'c>(gathered: &'c mut Gathered<Self>, tx: &'c mut Tx) -> BoxFuture<'c, bool>;

    /// Whether the row appends outbox events.
    fn has_events(&self) -> bool {
        false
    }
}

/// The rows of one kind of one batch, run as one job of the writer (without a savepoint of
/// the writer's: the kind keeps its own where it needs one).
pub(crate) struct Gathered<R> {
    pub(crate) rows: Vec<R>,
    replies: Vec<Reply>,
    /// Each row's result, once run.
    pub(crate) results: Vec<Option<Result<(), PortError>>>,
}

impl<R: GatheredRow> Gathered<R> {
    /// The job of `rows` (with their replies).
    pub(crate) fn new(rows: Vec<(R, Reply)>) -> Self {
        let (rows, replies): (Vec<R>, Vec<Reply>) = rows.into_iter().unzip();
        let results = rows.iter().map(|_| None).collect();
        Self { rows, replies, results }
    }

    /// Whether any row appends outbox events.
    pub(crate) fn appends_events(&self) -> bool {
        self.rows.iter().any(GatheredRow::has_events)
    }

    /// Records `error` for every row without a result yet.
    pub(crate) fn fail_rest(&mut self, error: &PortError) {
        for result in self.results.iter_mut().filter(|r| r.is_none()) {
            *result = Some(Err(error.copied()));
        }
    }
}

impl<R: GatheredRow> Pending for Gathered<R> {
    fn run<'c>(&'c mut self, tx: &'c mut Tx) -> BoxFuture<'c, bool> {
        R::run_all(self, tx)
    }

    fn answer(self: Box<Self>, failure: Option<PortError>) {
        for (reply, result) in self.replies.into_iter().zip(self.results) {
            let result = match (&failure, result) {
                (Some(failure), _) => Err(failure.copied()),
                (None, Some(result)) => result,
                (None, None) => Err(PortError::Other(anyhow::anyhow!("the write job panicked"))),
            };
            // The caller may have stopped waiting; its row is committed (or not) all the same.
            let _ = reply.send(result);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_take_the_largest_size_that_fits_first() {
        let items: Vec<usize> = (0..90).collect();
        let sizes: Vec<usize> = chunks(&items).map(|(_, chunk)| chunk.len()).collect();
        assert_eq!(sizes, vec![64, 16, 4, 4, 1, 1]);
        let all: Vec<usize> = chunks(&items).flat_map(|(_, chunk)| chunk.iter().copied()).collect();
        assert_eq!(all, items, "every item once, in order");
        assert_eq!(chunks::<usize>(&[]).count(), 0);
    }
}
