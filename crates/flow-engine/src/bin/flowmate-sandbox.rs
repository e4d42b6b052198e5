//! A sandbox process (see `flow_engine::sandbox`): answers jobs on standard input and output
//! until its input ends. The `flowmate` binary offers the same as `flowmate sandbox`.

use std::process::ExitCode;

fn main() -> ExitCode {
    match flow_engine::sandbox::serve_stdio() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("sandbox: {err}");
            ExitCode::FAILURE
        }
    }
}
