//! Hostile tests (docs/security.md): every finding of the attack review as a case, so that a
//! regression fails here. Each part is a module of its own; the cases that could crash the
//! process run against the real `flowmate` binary, where a crash is the failure.

#[path = "hostile/findings.rs"]
mod findings;
#[path = "hostile/intake.rs"]
mod intake;
#[path = "hostile/programs.rs"]
mod programs;
#[path = "hostile/recovery.rs"]
mod recovery;
#[path = "hostile/webhook_auth.rs"]
mod webhook_auth;
