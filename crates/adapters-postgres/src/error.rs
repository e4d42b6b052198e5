//! Translation of sqlx errors into the domain's `PortError`, without SQL text in messages:
//! named unique constraints become `Duplicate(key)`, connection trouble `Unavailable`.

use flow_domain::error::PortError;
use sqlx::error::ErrorKind;

/// The key reported when another execution of the flow took the idempotency key first.
pub(crate) const IDEMPOTENCY_KEY: &str = "idempotency key";

/// The domain key reported for a violation of each named unique constraint or index.
const UNIQUE_KEYS: [(&str, &str); 10] = [
    ("users_login_username", "username"),
    ("users_end_user_username", "username"),
    ("tenants_name_unique", "tenant name"),
    ("components_pkey", "component name"),
    ("executions_pkey", "execution id"),
    ("executions_idempotency", IDEMPOTENCY_KEY),
    ("flows_pkey", "flow id"),
    ("templates_pkey", "template id"),
    ("tokens_pkey", "token"),
    ("tokens_hash_unique", "token"),
];

/// Maps an error of a statement that touches no unique key.
pub(crate) fn port_error(err: sqlx::Error) -> PortError {
    classify(err, None)
}

/// Maps an error, reporting a unique-key violation as `Duplicate` (the constraint's key, or
/// `key` for an unnamed one).
pub(crate) fn unique_as(key: &'static str) -> impl FnOnce(sqlx::Error) -> PortError {
    move |err| classify(err, Some(key))
}

/// Whether a SQLSTATE means "the database cannot be used right now": connection exceptions
/// (08), insufficient resources (53), operator intervention (57: shutdown, cannot connect now,
/// query canceled by timeout), system errors (58).
fn unavailable_state(code: &str) -> bool {
    ["08", "53", "57", "58"].iter().any(|class| code.starts_with(class))
}

fn classify(err: sqlx::Error, duplicate_key: Option<&'static str>) -> PortError {
    match &err {
        sqlx::Error::Database(db) => {
            if db.kind() == ErrorKind::UniqueViolation {
                let named = db
                    .constraint()
                    .and_then(|c| UNIQUE_KEYS.iter().find(|(name, _)| *name == c))
                    .map(|(_, key)| *key);
                if let Some(key) = named.or(duplicate_key) {
                    return PortError::Duplicate(key);
                }
            }
            if db.code().is_some_and(|c| unavailable_state(&c)) {
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
        sqlx::Error::Tls(_) => PortError::Unavailable("database TLS error".into()),
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
