//! PostgreSQL storage adapter (work in progress).
