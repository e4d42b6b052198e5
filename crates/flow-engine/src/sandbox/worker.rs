//! The sandbox process's side: limits itself, then answers jobs from standard input one at a
//! time on a thread with a large stack, until its input ends.

use std::collections::HashMap;
use std::io::{self, BufReader, BufWriter};

use flow_domain::expr::JqProgram;
use rustix::process::{Resource, Rlimit, nice, setrlimit};

use super::protocol::{Job, Reply, read_frame, write_frame};
use super::rhai_script;

/// The stack of the thread that runs jobs: deep recursion in a program ends in a clean death
/// of this process (reported by the pool), not before.
const JOB_STACK_BYTES: usize = 64 * 1024 * 1024;

/// Room for the stacks of the job thread and of jq's compile thread, on top of the memory
/// limit, since thread stacks count as data.
const STACKS_BYTES: u64 = 3 * 64 * 1024 * 1024;

/// Compiled jq programs kept by one process.
const PROGRAM_CACHE: usize = 256;

/// Serves jobs on standard input and output until the input ends; what a binary's `sandbox`
/// command calls. The memory limit is read from [`super::MEMORY_ENV`] (bytes; none when
/// unset).
///
/// # Errors
/// When the limits cannot be set or the job thread cannot start.
pub fn serve_stdio() -> io::Result<()> {
    limit_self()?;
    std::thread::Builder::new()
        .name("sandbox-job".into())
        .stack_size(JOB_STACK_BYTES)
        .spawn(serve)?
        .join()
        .map_err(|_| io::Error::other("the job thread panicked"))?
}

/// Lowers this process's priority (requests are served first) and sets its limits: memory,
/// open files, file size, core dumps.
fn limit_self() -> io::Result<()> {
    nice(10)?;
    let limit =
        |resource, bytes: u64| setrlimit(resource, Rlimit { current: Some(bytes), maximum: Some(bytes) });
    if let Some(memory) = std::env::var(super::MEMORY_ENV).ok().and_then(|v| v.parse::<u64>().ok()) {
        limit(Resource::Data, memory.saturating_add(STACKS_BYTES))?;
    }
    limit(Resource::Core, 0)?;
    limit(Resource::Fsize, 0)?;
    limit(Resource::Nofile, 16)?;
    Ok(())
}

fn serve() -> io::Result<()> {
    let mut input = BufReader::new(io::stdin().lock());
    let mut output = BufWriter::new(io::stdout().lock());
    let mut programs: HashMap<String, JqProgram> = HashMap::new();
    while let Some(frame) = read_frame(&mut input)? {
        let reply = match serde_json::from_slice::<Job>(&frame) {
            Ok(job) => run(job, &mut programs),
            Err(e) => Reply::Err(format!("unreadable job: {e}")),
        };
        let bytes = serde_json::to_vec(&reply).map_err(io::Error::other)?;
        write_frame(&mut output, &bytes)?;
    }
    Ok(())
}

fn run(job: Job, programs: &mut HashMap<String, JqProgram>) -> Reply {
    let result = match job {
        Job::Jq { program, input, max_outputs, max_nesting } => {
            if !programs.contains_key(&program) {
                match JqProgram::compile(&program) {
                    Ok(compiled) => {
                        if programs.len() >= PROGRAM_CACHE {
                            programs.clear();
                        }
                        programs.insert(program.clone(), compiled);
                    }
                    Err(e) => return Reply::Err(format!("invalid jq program: {e}")),
                }
            }
            match (programs.get(&program), max_outputs) {
                (Some(compiled), Some(limit)) => compiled.run_nested(&input, limit, max_nesting),
                (Some(compiled), None) => compiled.holds(&input).map(|holds| vec![holds.into()]),
                (None, _) => Err("invalid jq program".into()),
            }
        }
        Job::Rhai { script, input, limits } => rhai_script::run(&script, &input, limits),
    };
    match result {
        Ok(values) => Reply::Ok(values),
        Err(message) => Reply::Err(message),
    }
}
