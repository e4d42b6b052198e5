//! `outbox` rows.

use super::{from_json_text, parse_id};
use crate::sql::from_millis;
use flow_domain::error::PortError;
use flow_domain::event::Event;
use flow_domain::ids::EventId;

/// A row of `outbox`, its `payload` read as text (`payload::text AS payload`) so that one too
/// deep for the decoder fails this row alone; its `seq` is read on its own, so that a row whose
/// event cannot be read is still known by its position.
#[derive(sqlx::FromRow)]
pub(crate) struct OutboxRow {
    event_id: String,
    name: String,
    key: Option<String>,
    created_at: chrono::DateTime<chrono::Utc>,
    source: String,
    payload: String,
}

impl OutboxRow {
    /// The event of the row.
    ///
    /// # Errors
    /// A stored value that cannot be read back.
    pub(crate) fn event(self) -> Result<Event, PortError> {
        Ok(Event {
            id: parse_id::<EventId>(&self.event_id)?,
            name: self.name,
            key: self.key,
            created_at: from_millis(self.created_at)?,
            source: self.source,
            payload: from_json_text(&self.payload, "event payload")?,
        })
    }
}
