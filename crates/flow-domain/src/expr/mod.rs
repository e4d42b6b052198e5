//! jq programs (edge conditions, edge mappers, the `jq` and `filter` components), through the
//! pure-Rust `jaq` interpreter, with the bounds that keep a program from taking its host down:
//! a text check before parsing ([`text`]), the sorting of programs into those that may run in
//! process and those that may run away ([`bounded`]), no access to the host (`env`, `input`,
//! `halt`, `debug` and `stderr` are not defined), and outputs converted with a nesting and size
//! limit.

pub mod bounded;
pub mod text;

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::{Num, Val};
use serde::Deserialize;
use serde_json::Value;

pub use text::{MAX_PROGRAM_BYTES, MAX_PROGRAM_NESTING, check_program_text};

type Data = data::JustLut<Val>;

/// The deepest nesting of arrays and objects a program's output may have by default (a host
/// passes its own body nesting limit to [`JqProgram::run_nested`]).
pub const MAX_OUTPUT_NESTING: usize = 64;

/// The stack of the thread that compiles a program: enough for the deepest syntax tree
/// [`check_program_text`] lets through.
const COMPILE_STACK_BYTES: usize = 64 * 1024 * 1024;

/// The most bytes (approximately, as JSON text) all outputs of one run may take.
pub const MAX_OUTPUT_BYTES: usize = 64 * 1024 * 1024;

/// Native filters that reach outside the program (the host's environment, standard input and
/// error, the process's exit) and the definitions built on them: not defined here.
const HOST_FILTERS: [&str; 9] =
    ["env", "input", "inputs", "halt", "halt_error", "stderr", "stderr_empty", "debug", "debug_empty"];

/// A compiled jq program.
pub struct JqProgram {
    filter: jaq_core::Filter<Data>,
    code: Box<str>,
    in_process: bool,
}

impl std::fmt::Debug for JqProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JqProgram").field("in_process", &self.in_process).finish_non_exhaustive()
    }
}

impl JqProgram {
    /// Checks `code`'s length and nesting ([`check_program_text`]), then parses and compiles it
    /// with the jq standard library (without the filters that reach the host) and sorts it
    /// ([`JqProgram::runs_in_process`]).
    ///
    /// # Errors
    /// A description of the limit exceeded, or of the first syntax or name error.
    pub fn compile(code: &str) -> Result<Self, String> {
        check_program_text(code)?;
        // jaq's parser and compiler recurse on the program's syntax tree (a 16 KiB program may
        // nest thousands of operators): they run on a thread of their own with a large stack.
        std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name("jq-compile".into())
                .stack_size(COMPILE_STACK_BYTES)
                .spawn_scoped(scope, || Self::compile_here(code))
                .map_err(|e| format!("cannot compile: {e}"))?
                .join()
                .map_err(|_| "the jq compiler failed".to_string())?
        })
    }

    fn compile_here(code: &str) -> Result<Self, String> {
        let hosted = |name: &str| HOST_FILTERS.contains(&name);
        let defs =
            jaq_core::defs().chain(jaq_std::defs()).chain(jaq_json::defs()).filter(|d| !hosted(d.name));
        let funs = jaq_core::funs().chain(jaq_std::funs()).chain(jaq_json::funs()).filter(|f| !hosted(f.0));
        let loader = Loader::new(defs);
        let arena = Arena::default();
        let modules = loader
            .load(&arena, File { code, path: () })
            .map_err(|errs| describe(errs.into_iter().map(|(_, e)| format!("{e:?}"))))?;
        let filter =
            Compiler::default().with_funs(funs).compile(modules).map_err(|errs| {
                describe(errs.into_iter().flat_map(|(_, es)| {
                    es.into_iter().map(|(name, undefined)| format!("{undefined:?} {name}"))
                }))
            })?;
        let in_process =
            jaq_core::load::parse(code, |p| p.term()).is_some_and(|term| bounded::runs_in_process(&term));
        Ok(Self { filter, code: code.into(), in_process })
    }

    /// The program's text.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// Whether the program ends by construction in time and memory bounded by its input, so it
    /// may run on the caller's thread; `false` for a program that may run away, which a host
    /// must run where it can be stopped (see [`bounded`]).
    pub fn runs_in_process(&self) -> bool {
        self.in_process
    }

    /// Runs the program on `input` and collects at most `limit` outputs.
    ///
    /// This runs on the caller's thread and cannot be interrupted: call it only for programs
    /// that [run in process](JqProgram::runs_in_process), or on a thread that may be lost.
    ///
    /// # Errors
    /// The first runtime error, or a message when more than `limit` values are produced, an
    /// output nests deeper than [`MAX_OUTPUT_NESTING`] levels or the outputs take more than
    /// [`MAX_OUTPUT_BYTES`].
    pub fn run(&self, input: &Value, limit: usize) -> Result<Vec<Value>, String> {
        self.run_nested(input, limit, MAX_OUTPUT_NESTING)
    }

    /// As [`JqProgram::run`], with outputs nesting at most `max_nesting` levels.
    ///
    /// # Errors
    /// As [`JqProgram::run`].
    pub fn run_nested(&self, input: &Value, limit: usize, max_nesting: usize) -> Result<Vec<Value>, String> {
        // Read straight from the borrowed value: no copy of the message first.
        let input = Val::deserialize(input).map_err(|e| e.to_string())?;
        let ctx = Ctx::<Data>::new(&self.filter.lut, Vars::new([]));
        let mut out = Vec::new();
        let mut budget = MAX_OUTPUT_BYTES;
        for value in self.filter.id.run((ctx, input)).map(unwrap_valr) {
            let value = value.map_err(|e| format!("jq error: {e}"))?;
            if out.len() == limit {
                return Err(format!("jq program produced more than {limit} outputs"));
            }
            out.push(to_json(&value, 0, max_nesting, &mut budget)?);
        }
        Ok(out)
    }

    /// Whether the program's first output on `input` is truthy (not `null` or `false`).
    ///
    /// As [`JqProgram::run`], this cannot be interrupted.
    ///
    /// # Errors
    /// Runtime errors of the program.
    pub fn holds(&self, input: &Value) -> Result<bool, String> {
        let input = Val::deserialize(input).map_err(|e| e.to_string())?;
        let ctx = Ctx::<Data>::new(&self.filter.lut, Vars::new([]));
        match self.filter.id.run((ctx, input)).map(unwrap_valr).next() {
            None => Ok(false),
            Some(value) => {
                let value = value.map_err(|e| format!("jq error: {e}"))?;
                Ok(!matches!(value, Val::Null | Val::Bool(false)))
            }
        }
    }
}

/// The message when a value nests deeper than `max_nesting`.
fn too_deep(max_nesting: usize) -> String {
    format!("nesting deeper than {max_nesting} levels")
}

/// The JSON value of a jq output at nesting `depth`, converted directly (no text round trip)
/// except for numbers only jq's text form can carry exactly (big integers, decimals); every
/// node is charged to `budget` (approximate JSON bytes).
fn to_json(value: &Val, depth: usize, max_nesting: usize, budget: &mut usize) -> Result<Value, String> {
    let cost = match value {
        Val::TStr(bytes) | Val::BStr(bytes) => bytes.len() + 2,
        _ => 8,
    };
    *budget =
        budget.checked_sub(cost).ok_or_else(|| format!("output larger than {MAX_OUTPUT_BYTES} bytes"))?;
    Ok(match value {
        Val::Null => Value::Null,
        Val::Bool(b) => Value::Bool(*b),
        Val::Num(Num::Int(i)) => Value::from(i64::try_from(*i).map_err(|e| e.to_string())?),
        Val::Num(Num::Float(f)) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Val::Num(_) => {
            serde_json::from_str(&value.to_string()).map_err(|e| format!("jq output is not JSON: {e}"))?
        }
        Val::TStr(bytes) | Val::BStr(bytes) => Value::String(String::from_utf8_lossy(bytes).into_owned()),
        Val::Arr(items) => {
            if depth >= max_nesting {
                return Err(too_deep(max_nesting));
            }
            Value::Array(
                items.iter().map(|v| to_json(v, depth + 1, max_nesting, budget)).collect::<Result<_, _>>()?,
            )
        }
        Val::Obj(entries) => {
            if depth >= max_nesting {
                return Err(too_deep(max_nesting));
            }
            Value::Object(
                entries
                    .iter()
                    .map(|(key, value)| Ok((key_text(key), to_json(value, depth + 1, max_nesting, budget)?)))
                    .collect::<Result<_, String>>()?,
            )
        }
    })
}

/// An object key as text (jq keys are strings; anything else is written as jq writes it).
fn key_text(key: &Val) -> String {
    match key {
        Val::TStr(bytes) | Val::BStr(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        other => other.to_string(),
    }
}

fn describe(errors: impl Iterator<Item = String>) -> String {
    let all: Vec<String> = errors.collect();
    if all.is_empty() { "invalid jq program".into() } else { all.join("; ") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn compiles_runs_and_reports_errors() {
        let p = JqProgram::compile(".data | .a + 1").expect("valid program");
        assert_eq!(p.run(&json!({"data": {"a": 41}}), 10), Ok(vec![json!(42)]));
        let many = JqProgram::compile(".[] | {x: .}").expect("valid program");
        assert_eq!(many.run(&json!([1, 2]), 10), Ok(vec![json!({"x": 1}), json!({"x": 2})]));
        assert!(JqProgram::compile(".a |").is_err());
        assert!(JqProgram::compile("nosuchfunction(1)").is_err());
        let cond = JqProgram::compile(".n > 2").expect("valid program");
        assert_eq!(cond.holds(&json!({"n": 3})), Ok(true));
        assert_eq!(cond.holds(&json!({"n": 1})), Ok(false));
        let endless = JqProgram::compile("repeat(1)").expect("valid program");
        assert!(endless.run(&json!(null), 100).is_err());
    }

    #[test]
    fn values_cross_into_jq_and_back_unchanged() {
        let doc = json!({
            "s": "Grüße \"quoted\" \n", "i": -42, "big": 9_007_199_254_740_993_u64, "f": 42.5,
            "t": true, "n": null, "a": [1, [2, {"x": []}], {}], "o": {"k": {"deep": "v"}}
        });
        let identity = JqProgram::compile(".").expect("valid program");
        assert_eq!(identity.run(&doc, 1), Ok(vec![doc.clone()]));
        let add = JqProgram::compile(". + {processed: true}").expect("valid program");
        let mut expected = doc.clone();
        expected["processed"] = json!(true);
        assert_eq!(add.run(&doc, 1), Ok(vec![expected]));
        let float = JqProgram::compile(".f * 2, 1 / 3").expect("valid program");
        assert_eq!(float.run(&doc, 2), Ok(vec![json!(85.0), json!(1.0 / 3.0)]));
    }

    #[test]
    fn host_filters_are_not_defined() {
        for code in ["env", "$ENV", "input", "inputs", "halt", "halt_error", "debug", "stderr", "debug(1)"] {
            assert!(JqProgram::compile(code).is_err(), "{code}");
        }
        assert!(JqProgram::compile("now | floor").is_ok());
    }

    #[test]
    fn outputs_nest_at_most_64_levels() {
        let nested = |levels: usize| format!("{}.{}", "[".repeat(levels), "]".repeat(levels));
        let ok = JqProgram::compile(&nested(64)).expect("valid program");
        assert!(ok.run(&json!(1), 1).is_ok());
        let input = (0..64).fold(json!(1), |v, _| json!([v]));
        let over = JqProgram::compile("[.]").expect("valid program");
        assert_eq!(over.run(&input, 1), Err("nesting deeper than 64 levels".to_string()));
        assert!(over.holds(&input).is_ok_and(|holds| holds));
    }

    /// The longest programs of the shapes jaq recurses on (operator chains, paths, sequences)
    /// compile on a thread with a 2 MiB stack, the stack of the threads that serve requests
    /// (flow validation compiles edge programs there), and those that run in process run there.
    #[test]
    fn the_longest_programs_compile_and_run_on_a_small_stack() {
        let fill = |unit: &str, last: &str| {
            let mut code = unit.repeat((MAX_PROGRAM_BYTES - last.len()) / unit.len());
            code.push_str(last);
            code
        };
        let programs = [
            fill(". | ", "."),
            fill(". + ", "."),
            fill("1, ", "1"),
            fill(".a", ""),
            fill(".[0]", ""),
            fill("not | ", "."),
            fill(". // ", "."),
            fill(". and ", "."),
            fill("1 - ", "1"),
            fill(". == ", "."),
            fill("try ", "."),
            fill(". as $x | ", "."),
        ];
        let handle = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || {
                for code in &programs {
                    // Deep programs compile, but run in the sandbox only.
                    if let Ok(program) = JqProgram::compile(code)
                        && program.runs_in_process()
                    {
                        let _ = program.run(&json!({"a": {"a": 1}}), 10);
                    }
                }
            })
            .expect("thread");
        assert!(handle.join().is_ok());
    }

    #[test]
    fn programs_are_sorted_for_where_they_run() {
        assert!(JqProgram::compile(".data + {processed: true}").is_ok_and(|p| p.runs_in_process()));
        assert!(JqProgram::compile("def f: f + 1; f").is_ok_and(|p| !p.runs_in_process()));
        assert!(JqProgram::compile("last(range(459305798))").is_ok_and(|p| !p.runs_in_process()));
    }
}
