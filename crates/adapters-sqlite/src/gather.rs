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

/// Rows per multi-row statement, smallest first. Rows are cut into chunks of the largest size;
/// the rest goes into the smallest statement that holds it, its unused rows left unbound: an
/// unbound parameter is NULL, and a row whose first value is NULL is skipped (see
/// [`padded_values`]). So each connection prepares only these few statement texts per kind,
/// and up to the largest size any number of rows is one statement (one round trip to the
/// connection's thread).
pub(crate) const STATEMENT_ROWS: [usize; 3] = [1, 16, 64];

/// The index in [`STATEMENT_ROWS`] of a one-row statement.
pub(crate) const ONE_ROW: usize = 0;

/// Cuts `items` into consecutive chunks of at most the largest of [`STATEMENT_ROWS`], each with
/// the index into [`STATEMENT_ROWS`] of the smallest statement that holds it.
pub(crate) fn chunks<T>(items: &[T]) -> impl Iterator<Item = (usize, &[T])> {
    let largest = STATEMENT_ROWS[STATEMENT_ROWS.len() - 1];
    items.chunks(largest).map(|chunk| {
        let size =
            STATEMENT_ROWS.iter().position(|&rows| rows >= chunk.len()).unwrap_or(STATEMENT_ROWS.len() - 1);
        (size, chunk)
    })
}

/// `SELECT * FROM (VALUES ...)` of `rows` rows of `row` (a parenthesised list of placeholders)
/// that yields only the rows whose first value is not NULL: the rows a statement was given
/// values for (see [`STATEMENT_ROWS`]).
pub(crate) fn padded_values(row: &str, rows: usize) -> String {
    format!("SELECT * FROM (VALUES {}) WHERE column1 IS NOT NULL", vec![row; rows].join(", "))
}

/// `INSERT INTO {into}` of up to `rows` rows of `row` placeholders: a plain `VALUES` row for
/// one, else the padded `SELECT` of [`padded_values`] (unused rows left unbound).
pub(crate) fn insert_sql(into: &str, row: &str, rows: usize) -> String {
    if rows == 1 {
        format!("INSERT INTO {into} VALUES {row}")
    } else {
        format!("INSERT INTO {into} {}", padded_values(row, rows))
    }
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
    fn chunks_are_full_then_the_smallest_statement_that_holds_the_rest() {
        let sizes = |n: usize| -> Vec<(usize, usize)> {
            let items: Vec<usize> = (0..n).collect();
            chunks(&items).map(|(size, chunk)| (STATEMENT_ROWS[size], chunk.len())).collect()
        };
        assert_eq!(sizes(0), vec![]);
        assert_eq!(sizes(1), vec![(1, 1)]);
        assert_eq!(sizes(2), vec![(16, 2)]);
        assert_eq!(sizes(16), vec![(16, 16)]);
        assert_eq!(sizes(17), vec![(64, 17)]);
        assert_eq!(sizes(130), vec![(64, 64), (64, 64), (16, 2)]);
        let items: Vec<usize> = (0..130).collect();
        let all: Vec<usize> = chunks(&items).flat_map(|(_, chunk)| chunk.iter().copied()).collect();
        assert_eq!(all, items, "every item once, in order");
    }
}
