//! `FlowRepository`: flows with their owners, optimistic concurrency on `revision`.

use crate::error::{port_error, unique_as};
use crate::listing::{Resource, search};
use crate::rows::{FLOW_COLUMNS, FLOW_WRITE_COLUMNS, FlowRow, decode_each, flow_values};
use crate::sql::{Arg, Filter, bind_args, millis, placeholders, q};
use crate::store::PostgresStore;
use crate::write::{append_events, record_consumed};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use flow_domain::error::PortError;
use flow_domain::event::{Consumed, Event};
use flow_domain::ids::FlowId;
use flow_domain::model::{Flow, FlowStatus};
use flow_domain::ports::FlowRepository;
use flow_domain::query::{FlowQuery, Page};
use std::sync::LazyLock;
use uuid::Uuid;

const FLOWS: Resource = Resource {
    table: "flows",
    key: "id",
    owners_table: "flow_owners",
    owner_fk: "flow_id",
    columns: FLOW_COLUMNS,
};

static INSERT_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO flows (id, {}, revision) VALUES (?, {}, ?)",
        FLOW_WRITE_COLUMNS.join(", "),
        placeholders(FLOW_WRITE_COLUMNS.len())
    )
});

static UPDATE_SQL: LazyLock<String> = LazyLock::new(|| {
    let sets: Vec<String> = FLOW_WRITE_COLUMNS.iter().map(|c| format!("{c} = ?")).collect();
    format!("UPDATE flows SET {}, revision = revision + 1 WHERE id = ? AND revision = ?", sets.join(", "))
});

static GET_SQL: LazyLock<String> = LazyLock::new(|| format!("SELECT {FLOW_COLUMNS} FROM flows WHERE id = ?"));

#[async_trait]
impl FlowRepository for PostgresStore {
    async fn insert(&self, flow: &Flow, events: &[Event]) -> Result<(), PortError> {
        let id = flow.id.to_string();
        let values = flow_values(flow)?;
        let mut tx = self.begin_write().await?;
        bind_args!(sqlx::query(q(&INSERT_SQL)).bind(id.clone()), &values)
            .bind(flow.revision)
            .execute(&mut *tx)
            .await
            .map_err(unique_as("flow id"))?;
        FLOWS.replace_owners(&mut tx, &id, &flow.owners).await?;
        append_events(&mut tx, events).await?;
        self.commit(tx, !events.is_empty()).await
    }

    async fn get(&self, id: FlowId) -> Result<Option<Flow>, PortError> {
        let row = sqlx::query_as::<_, FlowRow>(q(&GET_SQL))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(port_error)?;
        row.map(Flow::try_from).transpose()
    }

    async fn list(&self, query: &FlowQuery) -> Result<Page<Flow>, PortError> {
        let mut filter = Filter::default();
        FLOWS.visible(&mut filter, &query.visibility);
        if let Some(status) = query.status {
            filter.and("status = ?", [Arg::Text(status.as_str().into())]);
        }
        if let Some(flow_type) = query.flow_type {
            filter.and("flow_type = ?", [Arg::Text(flow_type.as_str().into())]);
        }
        if let Some(template) = query.from_template {
            filter.and("from_template = ?", [Arg::Text(template.to_string())]);
        }
        if let Some(owner) = query.owner {
            FLOWS.owned_by(&mut filter, owner);
        }
        if let Some(text) = &query.search {
            search(&mut filter, text);
        }
        let page = FLOWS.page(&self.pool, &filter, query.sort, query.page).await?;
        let items =
            decode_each(page.items, "flows", "id", &self.unreadable, |row: FlowRow| Flow::try_from(row));
        Ok(Page { items, total: page.total })
    }

    async fn save<'a>(
        &self,
        flow: &Flow,
        events: &[Event],
        consumed: Option<&'a Consumed>,
    ) -> Result<(), PortError> {
        let id = flow.id.to_string();
        let values = flow_values(flow)?;
        let mut tx = self.begin_write().await?;
        record_consumed(&mut tx, consumed).await?;
        let updated = bind_args!(sqlx::query(q(&UPDATE_SQL)), &values)
            .bind(id.clone())
            .bind(flow.revision)
            .execute(&mut *tx)
            .await
            .map_err(port_error)?;
        if updated.rows_affected() == 0 {
            return Err(FLOWS.missing_or_conflict(&mut *tx, &id).await);
        }
        FLOWS.replace_owners(&mut tx, &id, &flow.owners).await?;
        append_events(&mut tx, events).await?;
        self.commit(tx, !events.is_empty()).await
    }

    async fn delete(&self, flow: &Flow, events: &[Event]) -> Result<(), PortError> {
        let id = flow.id.to_string();
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query(q("DELETE FROM flows WHERE id = ? AND revision = ?"))
            .bind(id.clone())
            .bind(flow.revision)
            .execute(&mut *tx)
            .await
            .map_err(port_error)?;
        if deleted.rows_affected() == 0 {
            return Err(FLOWS.missing_or_conflict(&mut *tx, &id).await);
        }
        append_events(&mut tx, events).await?;
        self.commit(tx, !events.is_empty()).await
    }

    async fn list_stalled(&self, before: DateTime<Utc>, limit: u32) -> Result<Vec<Flow>, PortError> {
        let sql = format!(
            "SELECT {FLOW_COLUMNS} FROM flows WHERE status IN (?, ?) AND status_changed_at < ? \
             ORDER BY status_changed_at, id LIMIT ?"
        );
        let rows = sqlx::query(q(&sql))
            .bind(FlowStatus::Starting.as_str())
            .bind(FlowStatus::Stopping.as_str())
            .bind(millis(before))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(port_error)?;
        Ok(decode_each(rows, "flows", "id", &self.unreadable, |row: FlowRow| Flow::try_from(row)))
    }

    async fn list_scheduled(&self) -> Result<Vec<Flow>, PortError> {
        let mut filter = Filter::default();
        filter.and("status = ?", [Arg::Text(FlowStatus::Active.as_str().into())]);
        filter.and("cron IS NOT NULL AND trim(cron) <> ''", []);
        let rows = FLOWS.all_rows(&self.pool, &filter).await?;
        Ok(decode_each(rows, "flows", "id", &self.unreadable, |row: FlowRow| Flow::try_from(row)))
    }

    async fn list_owned_by(&self, owner_id: Uuid) -> Result<Vec<Flow>, PortError> {
        let mut filter = Filter::default();
        FLOWS.owned_by(&mut filter, owner_id);
        let rows = FLOWS.all::<FlowRow>(&self.pool, &filter).await?;
        rows.into_iter().map(Flow::try_from).collect()
    }

    async fn ping(&self) -> Result<(), PortError> {
        self.ping_reader().await
    }
}
