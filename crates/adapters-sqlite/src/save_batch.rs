//! Execution saves without events gathered per group-commit batch (see `gather`): the rows of
//! a batch are written by multi-row compare-and-set statements,
//! `UPDATE executions SET ... FROM (VALUES (...), (...)) AS v WHERE id = v.id AND revision =
//! v.revision RETURNING id`. A row the statement did not return matched no row: it gets
//! `NotFound` or `Conflict` as a save of its own would. A statement's unused rows (see
//! `gather::STATEMENT_ROWS`) have a NULL id and match nothing. Each statement is atomic and
//! rows are independent, so no savepoint is needed. Two saves of one execution in one batch are never in
//! the same statement: the later ones run alone, after it, and see its revision.

use crate::error::port_error;
use crate::executions::EXECUTIONS;
use crate::gather::{Gathered, GatheredRow, ONE_ROW, STATEMENT_ROWS, chunks};
use crate::rows::{EXECUTION_WRITE_COLUMNS, execution_values};
use crate::sql::{Arg, bind_args, placeholders};
use crate::write::Tx;
use flow_domain::error::PortError;
use flow_domain::model::Execution;
use futures::future::BoxFuture;
use sqlx::AssertSqlSafe;
use std::collections::HashSet;
use std::sync::LazyLock;

/// The compare-and-set update of as many rows as each size of [`STATEMENT_ROWS`]. The values of
/// a row are `id`, [`EXECUTION_WRITE_COLUMNS`], then the revision read (`columnN` of `v`).
static UPDATES: LazyLock<Vec<String>> = LazyLock::new(|| {
    let sets: Vec<String> =
        EXECUTION_WRITE_COLUMNS.iter().enumerate().map(|(i, c)| format!("{c} = v.column{}", i + 2)).collect();
    let row = format!("({})", placeholders(EXECUTION_WRITE_COLUMNS.len() + 2));
    let revision = EXECUTION_WRITE_COLUMNS.len() + 2;
    STATEMENT_ROWS
        .iter()
        .map(|&rows| {
            format!(
                "UPDATE executions SET {}, revision = executions.revision + 1 \
                 FROM (VALUES {}) AS v \
                 WHERE executions.id = v.column1 AND executions.revision = v.column{revision} \
                 RETURNING executions.id",
                sets.join(", "),
                vec![row.as_str(); rows].join(", ")
            )
        })
        .collect()
});

/// An execution to save, its values serialized by the caller.
pub(crate) struct SaveRow {
    id: String,
    values: Vec<Arg>,
    /// The revision the caller read: the save applies only while it is still stored.
    revision: i64,
}

impl SaveRow {
    /// The save of `execution`.
    pub(crate) fn of(execution: &Execution) -> Result<Self, PortError> {
        Ok(Self {
            id: execution.id.to_string(),
            values: execution_values(execution)?,
            revision: execution.revision,
        })
    }
}

impl GatheredRow for SaveRow {
    fn run_all<'c>(gathered: &'c mut Gathered<Self>, tx: &'c mut Tx) -> BoxFuture<'c, bool> {
        Box::pin(save_rows(gathered, tx))
    }
}

/// Updates the rows `chunk` (distinct ids) by one statement; the ids it updated.
async fn update(tx: &mut Tx, size: usize, chunk: &[&SaveRow]) -> Result<HashSet<String>, PortError> {
    let mut query = sqlx::query_scalar::<_, String>(AssertSqlSafe(UPDATES[size].as_str()));
    for row in chunk {
        query = bind_args!(query.bind(row.id.clone()), &row.values).bind(row.revision);
    }
    Ok(query.fetch_all(&mut *tx).await.map_err(port_error)?.into_iter().collect())
}

/// Saves the rows of `gathered` (see the module documentation). `false` when a statement
/// failed: the writer then checks that the transaction survived.
async fn save_rows(gathered: &mut Gathered<SaveRow>, tx: &mut Tx) -> bool {
    // The first save of each execution goes into the multi-row statements; later ones alone.
    let mut seen = HashSet::new();
    let (first, later): (Vec<usize>, Vec<usize>) =
        (0..gathered.rows.len()).partition(|&i| seen.insert(gathered.rows[i].id.as_str()));
    let mut all_ran = true;
    let mut runs: Vec<(usize, Vec<usize>)> =
        chunks(&first).map(|(size, chunk)| (size, chunk.to_vec())).collect();
    runs.extend(later.into_iter().map(|i| (ONE_ROW, vec![i])));
    for (size, indexes) in runs {
        let rows: Vec<&SaveRow> = indexes.iter().map(|&i| &gathered.rows[i]).collect();
        match update(tx, size, &rows).await {
            Ok(updated) => {
                for &i in &indexes {
                    let id = &gathered.rows[i].id;
                    gathered.results[i] = Some(if updated.contains(id) {
                        Ok(())
                    } else {
                        Err(EXECUTIONS.missing_or_conflict(tx, id).await)
                    });
                }
            }
            Err(e) => {
                // The statement changed nothing.
                all_ran = false;
                for &i in &indexes {
                    gathered.results[i] = Some(Err(e.copied()));
                }
            }
        }
    }
    all_ran
}
