//! Translation of sqlx errors into the domain's `PortError`, without SQL text in messages.

use flow_domain::error::PortError;
use sqlx::error::ErrorKind;

/// SQLite primary result codes that mean "the database cannot be used right now".
const SQLITE_UNAVAILABLE_CODES: [i64; 7] = [
    5,  // SQLITE_BUSY
    6,  // SQLITE_LOCKED
    8,  // SQLITE_READONLY
    10, // SQLITE_IOERR
    13, // SQLITE_FULL
    14, // SQLITE_CANTOPEN
    15, // SQLITE_PROTOCOL
];

/// Maps an error of a statement that touches no unique key.
pub(crate) fn port_error(err: sqlx::Error) -> PortError {
    classify(err, None)
}

/// Maps an error, reporting a unique-key violation as `Duplicate(key)`.
pub(crate) fn unique_as(key: &'static str) -> impl FnOnce(sqlx::Error) -> PortError {
    move |err| classify(err, Some(key))
}

fn classify(err: sqlx::Error, duplicate_key: Option<&'static str>) -> PortError {
    match &err {
        sqlx::Error::Database(db) => {
            if db.kind() == ErrorKind::UniqueViolation
                && let Some(key) = duplicate_key
            {
                return PortError::Duplicate(key);
            }
            let primary = db.code().and_then(|c| c.parse::<i64>().ok()).map(|c| c & 0xff);
            if primary.is_some_and(|c| SQLITE_UNAVAILABLE_CODES.contains(&c)) {
                return PortError::Unavailable(format!("database error: {}", db.message()));
            }
            PortError::Other(anyhow::Error::new(err).context("database error"))
        }
        sqlx::Error::PoolTimedOut => {
            PortError::Unavailable("timed out waiting for a database connection".into())
        }
        sqlx::Error::PoolClosed => PortError::Unavailable("the database pool is closed".into()),
        sqlx::Error::WorkerCrashed => PortError::Unavailable("the database worker stopped".into()),
        sqlx::Error::Io(io) => PortError::Unavailable(format!("database I/O error: {io}")),
        _ => PortError::Other(anyhow::Error::new(err).context("database error")),
    }
}

/// A stored value that cannot be read back into the model.
pub(crate) fn corrupt(what: &str) -> PortError {
    PortError::Other(anyhow::anyhow!("stored {what} is malformed"))
}

/// A model value that cannot be serialized for storage.
pub(crate) fn unserializable(what: &str, err: serde_json::Error) -> PortError {
    PortError::Other(anyhow::Error::new(err).context(format!("cannot serialize {what}")))
}
