//! `TemplateRepository`: templates with their owners and tags, optimistic concurrency on
//! `revision`. Every write is one group-commit job (see `write`).

use crate::error::{port_error, unique_as};
use crate::listing::{Resource, search};
use crate::rows::{TEMPLATE_COLUMNS, TEMPLATE_WRITE_COLUMNS, TemplateRow, decode_each, template_values};
use crate::sql::{Arg, Filter, bind_args, placeholders};
use crate::store::SqliteStore;
use crate::write::append_events;
use async_trait::async_trait;
use flow_domain::error::PortError;
use flow_domain::event::Event;
use flow_domain::ids::TemplateId;
use flow_domain::model::Template;
use flow_domain::ports::TemplateRepository;
use flow_domain::query::{Page, TemplateQuery};
use sqlx::AssertSqlSafe;
use std::sync::LazyLock;
use uuid::Uuid;

const TEMPLATES: Resource = Resource {
    table: "templates",
    key: "id",
    owners_table: "template_owners",
    owner_fk: "template_id",
    columns: TEMPLATE_COLUMNS,
};

static INSERT_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO templates (id, {}, revision) VALUES (?, {}, ?)",
        TEMPLATE_WRITE_COLUMNS.join(", "),
        placeholders(TEMPLATE_WRITE_COLUMNS.len())
    )
});

static UPDATE_SQL: LazyLock<String> = LazyLock::new(|| {
    let sets: Vec<String> = TEMPLATE_WRITE_COLUMNS.iter().map(|c| format!("{c} = ?")).collect();
    format!("UPDATE templates SET {}, revision = revision + 1 WHERE id = ? AND revision = ?", sets.join(", "))
});

static GET_SQL: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {TEMPLATE_COLUMNS} FROM templates WHERE id = ?"));

/// Templates having any of `tags`, plus untagged templates.
fn tagged(filter: &mut Filter, tags: &[String]) {
    let clause = format!(
        "(json_array_length(tags) = 0 OR EXISTS (SELECT 1 FROM json_each(templates.tags) t WHERE t.value IN ({})))",
        placeholders(tags.len())
    );
    filter.and(clause, tags.iter().map(|t| Arg::Text(t.clone())));
}

#[async_trait]
impl TemplateRepository for SqliteStore {
    async fn insert(&self, template: &Template, events: &[Event]) -> Result<(), PortError> {
        let id = template.id.to_string();
        let values = template_values(template)?;
        let (revision, owners, events) = (template.revision, template.owners.clone(), events.to_vec());
        self.write(!events.is_empty(), move |tx| {
            Box::pin(async move {
                bind_args!(sqlx::query(AssertSqlSafe(INSERT_SQL.as_str())).bind(id.clone()), &values)
                    .bind(revision)
                    .execute(&mut *tx)
                    .await
                    .map_err(unique_as("template id"))?;
                TEMPLATES.replace_owners(tx, &id, &owners).await?;
                append_events(tx, &events).await
            })
        })
        .await
    }

    async fn get(&self, id: TemplateId) -> Result<Option<Template>, PortError> {
        let row = sqlx::query_as::<_, TemplateRow>(AssertSqlSafe(GET_SQL.as_str()))
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await
            .map_err(port_error)?;
        row.map(Template::try_from).transpose()
    }

    async fn list(&self, query: &TemplateQuery) -> Result<Page<Template>, PortError> {
        let mut filter = Filter::default();
        TEMPLATES.visible(&mut filter, &query.visibility);
        if let Some(status) = query.status {
            filter.and("status = ?", [Arg::Text(status.as_str().into())]);
        }
        if let Some(flow_type) = query.flow_type {
            filter.and("flow_type = ?", [Arg::Text(flow_type.as_str().into())]);
        }
        if let Some(owner) = query.owner {
            TEMPLATES.owned_by(&mut filter, owner);
        }
        if !query.tags.is_empty() {
            tagged(&mut filter, &query.tags);
        }
        if let Some(text) = &query.search {
            search(&mut filter, text);
        }
        let page = TEMPLATES.page(&self.reader, &filter, query.sort, query.page).await?;
        let items = decode_each(page.items, "templates", "id", &self.unreadable, |row: TemplateRow| {
            Template::try_from(row)
        });
        Ok(Page { items, total: page.total })
    }

    async fn save(&self, template: &Template, events: &[Event]) -> Result<(), PortError> {
        let id = template.id.to_string();
        let values = template_values(template)?;
        let (revision, owners, events) = (template.revision, template.owners.clone(), events.to_vec());
        self.write(!events.is_empty(), move |tx| {
            Box::pin(async move {
                let updated = bind_args!(sqlx::query(AssertSqlSafe(UPDATE_SQL.as_str())), &values)
                    .bind(id.clone())
                    .bind(revision)
                    .execute(&mut *tx)
                    .await
                    .map_err(port_error)?;
                if updated.rows_affected() == 0 {
                    return Err(TEMPLATES.missing_or_conflict(tx, &id).await);
                }
                TEMPLATES.replace_owners(tx, &id, &owners).await?;
                append_events(tx, &events).await
            })
        })
        .await
    }

    async fn delete(&self, template: &Template, events: &[Event]) -> Result<(), PortError> {
        let (id, revision, events) = (template.id.to_string(), template.revision, events.to_vec());
        self.write(!events.is_empty(), move |tx| {
            Box::pin(async move {
                let deleted = sqlx::query("DELETE FROM templates WHERE id = ? AND revision = ?")
                    .bind(id.clone())
                    .bind(revision)
                    .execute(&mut *tx)
                    .await
                    .map_err(port_error)?;
                if deleted.rows_affected() == 0 {
                    return Err(TEMPLATES.missing_or_conflict(tx, &id).await);
                }
                append_events(tx, &events).await
            })
        })
        .await
    }

    async fn list_owned_by(&self, owner_id: Uuid) -> Result<Vec<Template>, PortError> {
        let mut filter = Filter::default();
        TEMPLATES.owned_by(&mut filter, owner_id);
        let rows = TEMPLATES.all::<TemplateRow>(&self.reader, &filter).await?;
        rows.into_iter().map(Template::try_from).collect()
    }
}
