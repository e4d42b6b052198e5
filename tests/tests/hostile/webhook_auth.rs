//! Hostile cases: webhook_auth (filled in by the work on issue 16).
