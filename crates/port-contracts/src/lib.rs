//! Contract suites for the domain's ports. Each suite is a set of async functions taking the
//! port under test; every adapter's tests call every function, so all adapters honour the same
//! documented contract. A failing contract is a panic with a message naming the rule.

pub mod bus;
pub mod storage;
