//! Compiled jq programs of the `jq` and `filter` components, cached by their text: a program
//! is compiled (with the jq standard library, which is costly) once per process, not once per
//! message.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use flow_domain::expr::JqProgram;

/// How many programs the cache keeps before it starts over.
const CACHE_LIMIT: usize = 4096;

static PROGRAMS: LazyLock<Mutex<HashMap<String, Arc<JqProgram>>>> = LazyLock::new(Mutex::default);

/// The compiled program of `code` (compiled on first use; errors are not cached).
///
/// # Errors
/// Why `code` does not compile.
pub(crate) fn compiled(code: &str) -> Result<Arc<JqProgram>, String> {
    if let Some(program) = lock().get(code) {
        return Ok(Arc::clone(program));
    }
    let program = Arc::new(JqProgram::compile(code)?);
    let mut programs = lock();
    if programs.len() >= CACHE_LIMIT {
        programs.clear();
    }
    programs.insert(code.to_owned(), Arc::clone(&program));
    Ok(program)
}

fn lock() -> std::sync::MutexGuard<'static, HashMap<String, Arc<JqProgram>>> {
    PROGRAMS.lock().unwrap_or_else(|e| e.into_inner())
}
