//! What flows, templates, executions and components share: conditional-write outcomes, the owners side table, the visibility, owner and search
//! filters (the SQL form of `Actor::can_see`), sorting, and paged reads with a total.

use crate::error::port_error;
use crate::rows::owner_type_name;
use crate::sql::{Arg, Filter, bind_args, contains_pattern, int, placeholders, q};
use crate::write::Tx;
use flow_domain::error::PortError;
use flow_domain::model::Owner;
use flow_domain::query::{Page, PageRequest, Sort, SortField, Visibility};
use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

/// Starts a read-only transaction whose statements share one snapshot (a page and its total).
pub(crate) const READ_SNAPSHOT: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

/// A resource table with owners: `flows`, `templates`, `executions` or `components`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Resource {
    /// The main table.
    pub(crate) table: &'static str,
    /// Its primary key column (`id`, or `name` for components).
    pub(crate) key: &'static str,
    /// Its owners side table.
    pub(crate) owners_table: &'static str,
    /// The side table's column referencing the main table's `key`.
    pub(crate) owner_fk: &'static str,
    /// The columns selected for a row.
    pub(crate) columns: &'static str,
}

impl Resource {
    /// The current resource row has an owner row whose owner id is one of `n` values.
    ///
    /// Written as `id IN (subquery)`, so a resource matching two owner ids (a user and their
    /// tenant) is counted once.
    fn owned_by_any(&self, n: usize) -> String {
        format!(
            "{table}.{key} IN (SELECT o.{fk} FROM {owners} o WHERE o.owner_id IN ({ids}))",
            owners = self.owners_table,
            fk = self.owner_fk,
            table = self.table,
            key = self.key,
            ids = placeholders(n),
        )
    }

    /// Restricts `filter` to what a caller with `visibility` may see (as `Actor::can_see`).
    pub(crate) fn visible(&self, filter: &mut Filter, visibility: &Visibility) {
        match visibility {
            Visibility::All => {}
            Visibility::Tenant(tenant) => filter.and("tenant = ?", [Arg::Text(tenant.to_string())]),
            Visibility::Owners { tenant, owner_ids } => {
                filter.and("tenant IS NOT DISTINCT FROM ?", [Arg::OptText(tenant.map(|t| t.to_string()))]);
                if owner_ids.is_empty() {
                    filter.and("FALSE", []);
                } else {
                    filter.and(
                        self.owned_by_any(owner_ids.len()),
                        owner_ids.iter().map(|id| Arg::Text(id.to_string())),
                    );
                }
            }
        }
    }

    /// Restricts `filter` to resources listing `owner` among their owners.
    pub(crate) fn owned_by(&self, filter: &mut Filter, owner: Uuid) {
        filter.and(self.owned_by_any(1), [Arg::Text(owner.to_string())]);
    }

    /// Why a conditional write of resource `id` touched no row: `NotFound` when no row has this
    /// id, else `Conflict` (its revision or state moved on).
    pub(crate) async fn missing_or_conflict<'e>(
        &self,
        executor: impl sqlx::PgExecutor<'e>,
        id: &str,
    ) -> PortError {
        let sql = format!("SELECT 1::bigint FROM {} WHERE {} = ?", self.table, self.key);
        match sqlx::query_scalar::<_, i64>(q(&sql)).bind(id.to_string()).fetch_optional(executor).await {
            Ok(Some(_)) => PortError::Conflict,
            Ok(None) => PortError::NotFound,
            Err(e) => port_error(e),
        }
    }

    /// Rewrites the owners rows of resource `id`.
    pub(crate) async fn replace_owners(
        &self,
        tx: &mut Tx,
        id: &str,
        owners: &[Owner],
    ) -> Result<(), PortError> {
        let delete = format!("DELETE FROM {} WHERE {} = ?", self.owners_table, self.owner_fk);
        sqlx::query(q(&delete)).bind(id.to_string()).execute(&mut **tx).await.map_err(port_error)?;
        let insert = format!(
            "INSERT INTO {} ({}, owner_id, owner_type) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            self.owners_table, self.owner_fk
        );
        for owner in owners {
            sqlx::query(q(&insert))
                .bind(id.to_string())
                .bind(owner.id.to_string())
                .bind(owner_type_name(owner.owner_type))
                .execute(&mut **tx)
                .await
                .map_err(port_error)?;
        }
        Ok(())
    }

    /// One page of rows matching `filter` in `sort` order, and how many match in all, read in
    /// one snapshot. The rows are raw: decode them one by one (`rows::decode_each`).
    pub(crate) async fn page(
        &self,
        pool: &PgPool,
        filter: &Filter,
        sort: Sort,
        page: PageRequest,
    ) -> Result<Page<PgRow>, PortError> {
        let mut tx = pool.begin_with(READ_SNAPSHOT).await.map_err(port_error)?;
        let count = format!("SELECT COUNT(*) FROM {}{}", self.table, filter.where_sql());
        let total: i64 = bind_args!(sqlx::query_scalar(q(&count)), &filter.args)
            .fetch_one(&mut *tx)
            .await
            .map_err(port_error)?;
        let select = format!(
            "SELECT {} FROM {}{} {} LIMIT ? OFFSET ?",
            self.columns,
            self.table,
            filter.where_sql(),
            order_by(sort)
        );
        let items = bind_args!(sqlx::query(q(&select)), &filter.args)
            .bind(i64::from(page.size))
            .bind(int(page.offset()))
            .fetch_all(&mut *tx)
            .await
            .map_err(port_error)?;
        tx.rollback().await.map_err(port_error)?;
        Ok(Page { items, total: u64::try_from(total).unwrap_or(0) })
    }

    /// Every row matching `filter`, oldest first (ties by id), raw: decode them one by one
    /// (`rows::decode_each`).
    pub(crate) async fn all_rows(&self, pool: &PgPool, filter: &Filter) -> Result<Vec<PgRow>, PortError> {
        let select = format!(
            "SELECT {} FROM {}{} ORDER BY created_at, id",
            self.columns,
            self.table,
            filter.where_sql()
        );
        bind_args!(sqlx::query(q(&select)), &filter.args).fetch_all(pool).await.map_err(port_error)
    }

    /// Every row matching `filter`, oldest first (ties by id).
    pub(crate) async fn all<R>(&self, pool: &PgPool, filter: &Filter) -> Result<Vec<R>, PortError>
    where
        R: for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        self.all_ordered(pool, filter, "created_at, id").await
    }

    /// Every row matching `filter`, in the order of the fixed SQL fragment `order_by`.
    pub(crate) async fn all_ordered<R>(
        &self,
        pool: &PgPool,
        filter: &Filter,
        order_by: &'static str,
    ) -> Result<Vec<R>, PortError>
    where
        R: for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        let select =
            format!("SELECT {} FROM {}{} ORDER BY {order_by}", self.columns, self.table, filter.where_sql());
        bind_args!(sqlx::query_as::<_, R>(q(&select)), &filter.args).fetch_all(pool).await.map_err(port_error)
    }
}

/// Restricts `filter` to rows whose name or description contains `search`, case-insensitively
/// and literally (no wildcard or pattern from user input).
pub(crate) fn search(filter: &mut Filter, search: &str) {
    let pattern = contains_pattern(search);
    filter.and(
        "(name_key LIKE ? ESCAPE '\\' OR description_key LIKE ? ESCAPE '\\')",
        [Arg::Text(pattern.clone()), Arg::Text(pattern)],
    );
}

/// `ORDER BY <field> <dir>, id <dir>`.
fn order_by(sort: Sort) -> String {
    let column = match sort.field {
        SortField::CreatedAt => "created_at",
        SortField::UpdatedAt => "updated_at",
        SortField::Name => "name_key",
    };
    let direction = if sort.descending { "DESC" } else { "ASC" };
    format!("ORDER BY {column} {direction}, id {direction}")
}
