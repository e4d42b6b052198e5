//! The sandbox (`flow_engine::sandbox`): programs that may run away are stopped at their time
//! limit and their process killed, a program that overflows its stack or its memory fails alone
//! with a plain message, and the pool goes on serving the next job.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use flow_domain::expr::JqProgram;
use flow_engine::sandbox::{JqOutput, RhaiLimits, Sandbox, SandboxConfig};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

fn jq(code: &str) -> JqProgram {
    JqProgram::compile(code).unwrap()
}

async fn run(sandbox: &Sandbox, code: &str, input: Value, time_ms: u64) -> Result<Vec<Value>, String> {
    let cancel = CancellationToken::new();
    sandbox.run_jq(&jq(code), &input, JqOutput::Values(10), Duration::from_millis(time_ms), &cancel).await
}

#[tokio::test]
async fn runaway_programs_are_killed_at_their_limit_and_the_pool_goes_on() {
    let sandbox = common::sandbox();

    // Row 3 of the attack review: a generator that would run for seconds.
    let started = std::time::Instant::now();
    let err = run(&sandbox, "last(range(459305798))", json!(null), 300).await.unwrap_err();
    assert_eq!(err, "time limit of 300 ms exceeded");
    assert!(started.elapsed() < Duration::from_secs(5));

    // Row 1: unbounded recursion overflows the stack of the sandbox process, not ours.
    let err = run(&sandbox, "def f: f + 1; f", json!(0), 10_000).await.unwrap_err();
    assert!(err.starts_with("stack overflow"), "{err}");

    // A string repeated past the memory limit.
    let err = run(&sandbox, "\"x\" * 100000000000", json!(null), 10_000).await.unwrap_err();
    assert!(err.starts_with("memory limit of"), "{err}");

    // The pool still serves: a program that may run away but does not.
    let out = run(&sandbox, "[limit(3; repeat(.))]", json!(7), 10_000).await.unwrap();
    assert_eq!(out, vec![json!([7, 7, 7])]);
}

#[tokio::test]
async fn a_script_returning_a_deep_value_fails_with_the_nesting_limit() {
    let sandbox = common::sandbox();
    let limits = RhaiLimits {
        time_ms: 30_000,
        memory_bytes: 16 * 1024 * 1024,
        operations: 10_000_000,
        max_nesting: 64,
    };
    let cancel = CancellationToken::new();
    // Row 2 of the attack review (60,000 levels there; each level copies the ones below, so
    // fewer here, in a debug build, and still far past the limit).
    let script = "let a = []; for i in 0..3000 { a = [a]; } a";
    let err = sandbox.run_rhai(script, &json!({}), limits, &cancel).await.unwrap_err();
    assert_eq!(err, "nesting deeper than 64 levels");
    let fine = sandbox.run_rhai("#{ n: msg.data.n + 1 }", &json!({"data": {"n": 1}}), limits, &cancel).await;
    assert_eq!(fine, Ok(vec![json!({"n": 2})]));
}

#[tokio::test]
async fn a_cancelled_job_stops_at_once() {
    let sandbox = common::sandbox();
    let cancel = CancellationToken::new();
    let program = jq("last(range(1e12))");
    let job = sandbox.run_jq(&program, &json!(null), JqOutput::Values(1), Duration::from_secs(30), &cancel);
    let canceller = async {
        // Cancel once the job holds a process.
        while sandbox.busy() == 0 {
            tokio::task::yield_now().await;
        }
        cancel.cancel();
    };
    let (result, ()) = tokio::join!(job, canceller);
    assert_eq!(result, Err("cancelled".to_string()));
}

#[tokio::test]
async fn a_job_waits_for_a_busy_pool_only_within_its_limit() {
    let config = SandboxConfig { processes: 1, ..common::sandbox().config().clone() };
    let sandbox = std::sync::Arc::new(Sandbox::new(config));
    let busy = {
        let sandbox = sandbox.clone();
        tokio::spawn(async move { run(&sandbox, "last(range(1e12))", json!(null), 2_000).await })
    };
    // Wait until the first job holds the only process.
    while sandbox.busy() == 0 {
        tokio::task::yield_now().await;
    }
    let err = run(&sandbox, "[limit(1; repeat(1))]", json!(null), 100).await.unwrap_err();
    assert!(err.contains("busy sandbox processes"), "{err}");
    assert_eq!(busy.await.unwrap(), Err("time limit of 2000 ms exceeded".to_string()));
}

#[tokio::test]
async fn bounded_programs_run_in_process_without_a_sandbox_process() {
    // No sandbox process can start from this program: a bounded program never needs one.
    let sandbox =
        Sandbox::new(SandboxConfig { program: "/nonexistent/sandbox".into(), ..SandboxConfig::default() });
    let cancel = CancellationToken::new();
    let program = jq(".data + {processed: true}");
    let out = sandbox
        .run_jq(&program, &json!({"data": {"a": 1}}), JqOutput::Values(10), Duration::from_secs(1), &cancel)
        .await;
    assert_eq!(out, Ok(vec![json!({"a": 1, "processed": true})]));
    let err = run(&sandbox, "def f: 1; f", json!(null), 1_000).await.unwrap_err();
    assert!(err.starts_with("cannot start a sandbox process"), "{err}");
}
