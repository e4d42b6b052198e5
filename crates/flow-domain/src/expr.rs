//! jq programs (edge conditions, edge mappers, the `jq` and `filter` components), through the
//! pure-Rust `jaq` interpreter.

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::{Num, Val};
use serde::Deserialize;
use serde_json::Value;

type Data = data::JustLut<Val>;

/// A compiled jq program.
pub struct JqProgram {
    filter: jaq_core::Filter<Data>,
}

impl std::fmt::Debug for JqProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JqProgram")
    }
}

impl JqProgram {
    /// Parses and compiles `code` with the jq standard library.
    ///
    /// # Errors
    /// A description of the first syntax or name error.
    pub fn compile(code: &str) -> Result<Self, String> {
        let defs = jaq_core::defs().chain(jaq_std::defs()).chain(jaq_json::defs());
        let funs = jaq_core::funs().chain(jaq_std::funs()).chain(jaq_json::funs());
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
        Ok(Self { filter })
    }

    /// Runs the program on `input` and collects at most `limit` outputs.
    ///
    /// # Errors
    /// The first runtime error, or a message when more than `limit` values are produced.
    pub fn run(&self, input: &Value, limit: usize) -> Result<Vec<Value>, String> {
        // Read straight from the borrowed value: no copy of the message first.
        let input = Val::deserialize(input).map_err(|e| e.to_string())?;
        let ctx = Ctx::<Data>::new(&self.filter.lut, Vars::new([]));
        let mut out = Vec::new();
        for value in self.filter.id.run((ctx, input)).map(unwrap_valr) {
            let value = value.map_err(|e| format!("jq error: {e}"))?;
            if out.len() == limit {
                return Err(format!("jq program produced more than {limit} outputs"));
            }
            out.push(to_json(&value)?);
        }
        Ok(out)
    }

    /// Whether the program's first output on `input` is truthy (not `null` or `false`).
    ///
    /// # Errors
    /// Runtime errors of the program.
    pub fn holds(&self, input: &Value) -> Result<bool, String> {
        let out = self.run(input, 1024)?;
        Ok(out.first().is_some_and(|v| !matches!(v, Value::Null | Value::Bool(false))))
    }
}

/// The JSON value of a jq output, converted directly (no text round trip) except for numbers
/// only jq's text form can carry exactly (big integers, decimals).
fn to_json(value: &Val) -> Result<Value, String> {
    Ok(match value {
        Val::Null => Value::Null,
        Val::Bool(b) => Value::Bool(*b),
        Val::Num(Num::Int(i)) => Value::from(i64::try_from(*i).map_err(|e| e.to_string())?),
        Val::Num(Num::Float(f)) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Val::Num(_) => {
            serde_json::from_str(&value.to_string()).map_err(|e| format!("jq output is not JSON: {e}"))?
        }
        Val::TStr(bytes) | Val::BStr(bytes) => Value::String(String::from_utf8_lossy(bytes).into_owned()),
        Val::Arr(items) => Value::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        Val::Obj(entries) => Value::Object(
            entries
                .iter()
                .map(|(key, value)| Ok((key_text(key), to_json(value)?)))
                .collect::<Result<_, String>>()?,
        ),
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
}
