//! Storage contract: every storage port.
