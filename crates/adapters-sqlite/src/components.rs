//! `ComponentRepository`: external components registered over the API, keyed by their unique
//! name, with owners for the visibility filter. The insert is one group-commit job (see
//! `write`).

use crate::error::{port_error, unique_as};
use crate::listing::Resource;
use crate::rows::{COMPONENT_COLUMNS, COMPONENT_WRITE_COLUMNS, ComponentRow, component_values};
use crate::sql::{Filter, bind_args, placeholders};
use crate::store::SqliteStore;
use async_trait::async_trait;
use flow_domain::error::PortError;
use flow_domain::model::ExternalComponent;
use flow_domain::ports::ComponentRepository;
use flow_domain::query::Visibility;
use sqlx::AssertSqlSafe;
use std::sync::LazyLock;

const COMPONENTS: Resource = Resource {
    table: "components",
    key: "name",
    owners_table: "component_owners",
    owner_fk: "component_name",
    columns: COMPONENT_COLUMNS,
};

static INSERT_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO components ({}) VALUES ({})",
        COMPONENT_WRITE_COLUMNS.join(", "),
        placeholders(COMPONENT_WRITE_COLUMNS.len())
    )
});

static GET_SQL: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {COMPONENT_COLUMNS} FROM components WHERE name = ?"));

#[async_trait]
impl ComponentRepository for SqliteStore {
    async fn insert(&self, component: &ExternalComponent) -> Result<(), PortError> {
        let values = component_values(component)?;
        let (name, owners) = (component.name.clone(), component.owners.clone());
        self.write(false, move |tx| {
            Box::pin(async move {
                bind_args!(sqlx::query(AssertSqlSafe(INSERT_SQL.as_str())), &values)
                    .execute(&mut *tx)
                    .await
                    .map_err(unique_as("component name"))?;
                COMPONENTS.replace_owners(tx, &name, &owners).await
            })
        })
        .await
    }

    async fn get(&self, name: &str) -> Result<Option<ExternalComponent>, PortError> {
        let row = sqlx::query_as::<_, ComponentRow>(AssertSqlSafe(GET_SQL.as_str()))
            .bind(name.to_string())
            .fetch_optional(&self.reader)
            .await
            .map_err(port_error)?;
        row.map(ExternalComponent::try_from).transpose()
    }

    async fn list(&self, visibility: &Visibility) -> Result<Vec<ExternalComponent>, PortError> {
        let mut filter = Filter::default();
        COMPONENTS.visible(&mut filter, visibility);
        let rows = COMPONENTS.all_ordered::<ComponentRow>(&self.reader, &filter, "name").await?;
        rows.into_iter().map(ExternalComponent::try_from).collect()
    }
}
