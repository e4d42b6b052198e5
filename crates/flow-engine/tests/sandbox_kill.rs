//! A sandbox process whose job outlives its time limit is killed (its CPU is free again), not
//! abandoned: alone in this test binary, so that no other test's sandbox process is counted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use flow_domain::expr::JqProgram;
use flow_engine::sandbox::JqOutput;
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// The sandbox processes this test process started that are still alive (not zombies).
fn live_children() -> usize {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| std::fs::read_to_string(entry.ok()?.path().join("stat")).ok())
        .filter(|stat| {
            // pid (comm) state ppid ...
            let Some(after) = stat.rsplit_once(") ") else { return false };
            let fields: Vec<&str> = after.1.split(' ').collect();
            stat.contains("(flowmate-sandbo") && fields.get(1) == Some(&me.as_str()) && fields[0] != "Z"
        })
        .count()
}

#[tokio::test]
async fn a_runaway_program_s_process_is_killed_at_the_limit() {
    let sandbox = common::sandbox();
    let program = JqProgram::compile("last(range(1e12))").unwrap();
    let cancel = CancellationToken::new();
    let out = sandbox
        .run_jq(&program, &json!(null), JqOutput::Values(1), Duration::from_millis(200), &cancel)
        .await;
    assert_eq!(out, Err("time limit of 200 ms exceeded".to_string()));
    let deadline = Instant::now() + Duration::from_secs(5);
    while live_children() > 0 {
        assert!(Instant::now() < deadline, "the runaway sandbox process was not killed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
