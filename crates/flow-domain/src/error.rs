//! The business failures every use case can report, and the storage/bus failures ports report.
//!
//! `adapters-http` maps [`ServiceError`] to status codes in exactly one table.

/// One validation problem, with the path of the offending field where one applies
/// (`graph.nodes[1].function`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// Path of the field, e.g. `graph.edges[0].source`; `None` for whole-document problems.
    pub field: Option<String>,
    /// Human-readable message.
    pub message: String,
}

impl FieldError {
    /// A problem with one field.
    pub fn at(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: Some(field.into()), message: message.into() }
    }
    /// A problem with the document as a whole.
    pub fn general(message: impl Into<String>) -> Self {
        Self { field: None, message: message.into() }
    }
}

/// Why a use case refused or failed. Every variant but `Unexpected` is a business outcome.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The input broke one or more rules; all of them are listed.
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// A path or filter id is not a well-formed id.
    #[error("Invalid id")]
    InvalidId,
    /// The resource does not exist, or the caller may not know it exists.
    #[error("{0}")]
    NotFound(String),
    /// The resource is in a state that forbids the operation (or a unique key is taken).
    #[error("{0}")]
    Conflict(String),
    /// The caller lacks a permission (`MISSING_PERMISSION`) or may not do this at all.
    #[error("{0}")]
    Forbidden(String),
    /// No valid credentials.
    #[error("{0}")]
    Unauthenticated(String),
    /// Too many failed attempts; retry after the given number of seconds.
    #[error("Too many failed login attempts")]
    RateLimited {
        /// Seconds until a new attempt is allowed.
        retry_after_secs: u64,
    },
    /// Too much work is waiting (the execution backlog is over its limit); retry after the
    /// given number of seconds. Nothing was stored.
    #[error("Too many executions are waiting to run")]
    Overloaded {
        /// Seconds to wait before retrying.
        retry_after_secs: u64,
    },
    /// A backing service (database, bus) is unreachable; retry later.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// An infrastructure failure with its cause chain; answered as a bare 500.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl ServiceError {
    /// The `403 MISSING_PERMISSION` refusal.
    pub fn missing_permission() -> Self {
        Self::Forbidden("MISSING_PERMISSION".into())
    }
    /// A single-field validation failure.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::at(field, message)])
    }
}

/// What a storage or bus port reports when it cannot do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// The row the operation was conditioned on does not exist.
    #[error("not found")]
    NotFound,
    /// The row exists but its state did not match the expected one (lost a race).
    #[error("state changed concurrently")]
    Conflict,
    /// A unique key is already taken; names the key (`username`, `tenant_name`, ...).
    #[error("duplicate {0}")]
    Duplicate(&'static str),
    /// The event was already handled by this consumer; nothing was changed.
    #[error("event already processed")]
    AlreadyProcessed,
    /// The backend cannot be reached (connection refused, pool timeout, broker down).
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    /// Anything else.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl PortError {
    /// The same error for one more caller (an adapter answering every write of a failed batch):
    /// `PortError` is not `Clone`, so an `Other` is copied as its message with its cause chain.
    #[must_use]
    pub fn copied(&self) -> PortError {
        match self {
            PortError::NotFound => PortError::NotFound,
            PortError::Conflict => PortError::Conflict,
            PortError::Duplicate(key) => PortError::Duplicate(key),
            PortError::AlreadyProcessed => PortError::AlreadyProcessed,
            PortError::Unavailable(message) => PortError::Unavailable(message.clone()),
            PortError::Other(e) => PortError::Other(anyhow::anyhow!("{e:#}")),
        }
    }
}

impl From<PortError> for ServiceError {
    fn from(err: PortError) -> Self {
        match err {
            PortError::Unavailable(msg) => ServiceError::Unavailable(msg),
            PortError::NotFound => ServiceError::NotFound("Not found".into()),
            PortError::Conflict => {
                ServiceError::Conflict("The resource was changed concurrently; retry.".into())
            }
            PortError::Duplicate(key) => ServiceError::Conflict(format!("Duplicate {key}")),
            other => ServiceError::Unexpected(anyhow::Error::new(other)),
        }
    }
}

/// Shorthand for use-case results.
pub type ServiceResult<T> = Result<T, ServiceError>;

/// A state-machine refusal (a command not allowed from the current status).
pub type Rejection = crate::lifecycle::Rejection;
