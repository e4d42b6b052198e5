//! Which jq programs may run in process.
//!
//! jaq has no interrupt point and no recursion limit: a thread running a jq program can be
//! neither stopped nor saved from a stack overflow. Many programs, though, end by construction
//! in time and memory bounded by their input: no user-defined functions, no loops or unbounded
//! generators, no operator that multiplies sizes. This module sorts a parsed program into that
//! class (run in process, on the caller's thread: the common transforms, such as
//! `.data + {processed: true}`) or the rest ("may run away": run in a sandbox process that is
//! killed at its deadline).
//!
//! The analysis is conservative: it accepts a small language (paths, literals, object and array
//! construction, pipes, comparisons, `if`, `try`, `//`, `+`, string interpolation and the
//! builtins of [`BUILTINS`]) and refuses, besides every loop and recursion, what multiplies
//! work or size beyond a small factor of the input:
//! - two generators combined by one operator or object (`[.[] + .[]]` is quadratic);
//! - a variable bound outside an iteration and used inside it (`. as $all | .[] | $all`), or a
//!   binding whose source is a generator (`.[] as $x | ...` runs its body once per element);
//! - `*` unless one side is a small number literal (a string times a number repeats it), `-`
//!   unless one side is a literal (array subtraction is quadratic);
//! - programs whose output may exceed [`MAX_SIZE_FACTOR`] times their input (`[., ., .]`).

use jaq_core::load::lex::StrPart;
use jaq_core::load::parse::{BinaryOp, Pattern, Term};
use jaq_core::ops::Math;
use jaq_core::path::{Part, Path};

/// The largest output, relative to the input, of a program run in process.
pub const MAX_SIZE_FACTOR: u32 = 8;

/// The most levels of arrays and objects a program run in process may add around its input's
/// values (so that jaq's recursion over the values it builds stays shallow).
pub const MAX_ADDED_NESTING: u32 = 64;

/// The deepest syntax tree of a program run in process. jaq recurses on it when it runs a
/// program (a chain of 300 operators overflows a 2 MiB stack in a debug build); deeper
/// programs run in the sandbox, on a large stack.
pub const MAX_SYNTAX_DEPTH: u32 = 64;

/// The largest number literal a string may be multiplied by in process.
const MAX_LITERAL_FACTOR: f64 = 8.0;

/// Builtins allowed in process: name, number of arguments, and whether the arguments run once
/// per element of the input (`map(f)`) rather than once on the input (`select(f)`). Each costs
/// time linear (or n log n, for sorting) in its input and returns at most its input's size plus
/// a constant.
pub const BUILTINS: &[(&str, usize, bool)] = &[
    ("empty", 0, false),
    ("error", 0, false),
    ("error", 1, false),
    ("null", 0, false),
    ("true", 0, false),
    ("false", 0, false),
    ("not", 0, false),
    ("length", 0, false),
    ("utf8bytelength", 0, false),
    ("type", 0, false),
    ("keys", 0, false),
    ("keys_unsorted", 0, false),
    ("has", 1, false),
    ("in", 1, false),
    ("select", 1, false),
    ("values", 0, false),
    ("nulls", 0, false),
    ("booleans", 0, false),
    ("numbers", 0, false),
    ("strings", 0, false),
    ("arrays", 0, false),
    ("objects", 0, false),
    ("iterables", 0, false),
    ("scalars", 0, false),
    ("map", 1, true),
    ("map_values", 1, true),
    ("to_entries", 0, false),
    ("from_entries", 0, false),
    ("with_entries", 1, true),
    ("add", 0, false),
    ("any", 0, false),
    ("all", 0, false),
    ("any", 1, true),
    ("all", 1, true),
    ("first", 0, false),
    ("last", 0, false),
    ("first", 1, false),
    ("isempty", 1, false),
    ("reverse", 0, false),
    ("sort", 0, false),
    ("sort_by", 1, true),
    ("group_by", 1, true),
    ("unique", 0, false),
    ("unique_by", 1, true),
    ("min", 0, false),
    ("max", 0, false),
    ("min_by", 1, true),
    ("max_by", 1, true),
    ("tostring", 0, false),
    ("tonumber", 0, false),
    ("tojson", 0, false),
    ("ascii_downcase", 0, false),
    ("ascii_upcase", 0, false),
    ("ltrimstr", 1, false),
    ("rtrimstr", 1, false),
    ("startswith", 1, false),
    ("endswith", 1, false),
    ("trim", 0, false),
    ("ltrim", 0, false),
    ("rtrim", 0, false),
    ("split", 1, false),
    ("join", 1, false),
    ("explode", 0, false),
    ("implode", 0, false),
    ("floor", 0, false),
    ("ceil", 0, false),
    ("round", 0, false),
    ("fabs", 0, false),
    ("abs", 0, false),
    ("sqrt", 0, false),
    ("now", 0, false),
    ("todate", 0, false),
    ("fromdate", 0, false),
    ("todateiso8601", 0, false),
    ("fromdateiso8601", 0, false),
    ("del", 1, false),
    ("to_number", 0, false),
    ("isnan", 0, false),
    ("isinfinite", 0, false),
    ("isnormal", 0, false),
    ("escape_html", 0, false),
    ("encode_uri", 0, false),
    ("encode_base64", 0, false),
    ("decode_base64", 0, false),
];

/// Output formats allowed in process (`@base64 "..."`, `@csv`): each linear in its input.
const FORMATS: &[&str] =
    &["@text", "@json", "@html", "@uri", "@csv", "@tsv", "@sh", "@base64", "@base64d", "@urid", "@htmld"];

/// What the analysis knows of a term that may run in process.
#[derive(Debug, Clone, Copy)]
struct Shape {
    /// May produce more than one output.
    generator: bool,
    /// An upper bound of each output's size relative to the input's (0: a constant).
    size: u32,
    /// An upper bound of the sizes of all outputs together, relative to the input's.
    total: u32,
    /// How many levels of arrays and objects the term may add around its input's values.
    nest: u32,
}

impl Shape {
    const CONSTANT: Self = Self { generator: false, size: 0, total: 0, nest: 0 };
    const INPUT: Self = Self { generator: false, size: 1, total: 1, nest: 0 };

    /// One output of size `size`, nesting `nest` levels around the input's values.
    fn single(size: u32, nest: u32) -> Self {
        Self { generator: false, size, total: size, nest }
    }

    /// This shape inside one more array or object.
    fn wrapped(self) -> Self {
        Self::single(self.total, self.nest.saturating_add(1))
    }
}

/// A variable in scope: its name, the size bound of its value, and the iteration depth at
/// which it was bound.
struct Binding<'s> {
    name: &'s str,
    size: u32,
    nest: u32,
    depth: u32,
}

/// The walk over a term: the variables in scope, how many iterations enclose the term, and
/// how deep in the syntax tree it is.
#[derive(Default)]
struct Analysis<'s> {
    scope: Vec<Binding<'s>>,
    depth: u32,
    level: u32,
}

/// Whether `term` (a whole jq program) may run in process; see the module documentation.
pub(crate) fn runs_in_process(term: &Term<&str>) -> bool {
    Analysis::default()
        .term(term)
        .is_some_and(|shape| shape.total <= MAX_SIZE_FACTOR && shape.nest <= MAX_ADDED_NESTING)
}

impl<'s> Analysis<'s> {
    /// The shape of `term`, or `None` when it may run away or its syntax tree is deeper than
    /// [`MAX_SYNTAX_DEPTH`].
    fn term(&mut self, term: &Term<&'s str>) -> Option<Shape> {
        if self.level >= MAX_SYNTAX_DEPTH {
            return None;
        }
        self.level += 1;
        let shape = self.shape(term);
        self.level -= 1;
        shape
    }

    fn shape(&mut self, term: &Term<&'s str>) -> Option<Shape> {
        match term {
            Term::Id => Some(Shape::INPUT),
            Term::Num(_) => Some(Shape::CONSTANT),
            Term::Str(format, parts) => self.string(*format, parts),
            Term::Arr(None) => Some(Shape::CONSTANT),
            Term::Arr(Some(inner)) => Some(self.term(inner)?.wrapped()),
            Term::Obj(entries) => self.object(entries),
            Term::Neg(inner) => self.term(inner),
            Term::BinOp(left, op, right) => self.binary(left, op, right),
            Term::TryCatch(body, catch) => {
                let body = self.term(body)?;
                let catch = match catch {
                    Some(catch) => self.term(catch)?,
                    None => Shape::CONSTANT,
                };
                Some(either(body, catch))
            }
            Term::IfThenElse(branches, otherwise) => self.conditional(branches, otherwise.as_deref()),
            Term::Call(name, args) => self.call(name, args),
            Term::Var(name) => self.variable(name),
            Term::Path(base, path) => self.path(base, path),
            Term::Recurse | Term::Label(..) | Term::Break(_) | Term::Fold(..) | Term::Def(..) => None,
        }
    }

    fn string(&mut self, format: Option<&str>, parts: &[StrPart<&'s str, Term<&'s str>>]) -> Option<Shape> {
        if format.is_some_and(|f| !FORMATS.contains(&f)) {
            return None;
        }
        let mut shape = Shape::CONSTANT;
        for part in parts {
            if let StrPart::Term(inner) = part {
                let inner = self.term(inner)?;
                shape = combine(shape, inner)?;
            }
        }
        Some(shape)
    }

    fn object(&mut self, entries: &[(Term<&'s str>, Option<Term<&'s str>>)]) -> Option<Shape> {
        let mut shape = Shape::CONSTANT;
        for (key, value) in entries {
            let key = match (key, value) {
                // `{a}` and `{"a"}` stand for `{a: .a}`.
                (Term::Str(None, _), None) => Shape::INPUT,
                _ => self.term(key)?,
            };
            shape = combine(shape, key)?;
            if let Some(value) = value {
                let value = self.term(value)?;
                shape = combine(shape, value)?;
            }
        }
        let generator = shape.generator;
        Some(Shape { generator, ..shape.wrapped() })
    }

    fn binary(
        &mut self,
        left: &Term<&'s str>,
        op: &BinaryOp<&'s str>,
        right: &Term<&'s str>,
    ) -> Option<Shape> {
        match op {
            BinaryOp::Pipe(None) => {
                let first = self.term(left)?;
                let second = self.iterated(first.generator, |a| a.term(right))?;
                Some(Shape {
                    generator: first.generator || second.generator,
                    size: first.size.saturating_mul(second.size),
                    total: first.total.saturating_mul(second.total),
                    nest: first.nest.saturating_add(second.nest),
                })
            }
            BinaryOp::Pipe(Some(pattern)) => {
                let source = self.term(left)?;
                if source.generator {
                    return None;
                }
                let bound = self.bind(pattern, source)?;
                let body = self.term(right);
                self.scope.truncate(self.scope.len() - bound);
                body
            }
            BinaryOp::Comma => {
                let (l, r) = (self.term(left)?, self.term(right)?);
                Some(Shape { generator: true, total: l.total.saturating_add(r.total), ..either(l, r) })
            }
            BinaryOp::Alt | BinaryOp::Or | BinaryOp::And | BinaryOp::Cmp(_) => {
                // Comparing or choosing costs at most the smaller side: no product unless both
                // sides generate.
                let (l, r) = (self.term(left)?, self.term(right)?);
                if l.generator && r.generator {
                    return None;
                }
                if matches!(op, BinaryOp::Alt) { Some(either(l, r)) } else { Some(Shape::CONSTANT) }
            }
            BinaryOp::Math(math) => self.arithmetic(*math, left, right),
            BinaryOp::Update | BinaryOp::UpdateAlt | BinaryOp::UpdateMath(_) | BinaryOp::Assign => {
                self.update(left, op, right)
            }
        }
    }

    fn arithmetic(&mut self, math: Math, left: &Term<&'s str>, right: &Term<&'s str>) -> Option<Shape> {
        let allowed = match math {
            Math::Add | Math::Div | Math::Rem => true,
            Math::Mul => literal_factor(left).or(literal_factor(right)).is_some(),
            Math::Sub => is_literal(left) || is_literal(right),
        };
        if !allowed {
            return None;
        }
        let (l, r) = (self.term(left)?, self.term(right)?);
        let combined = combine(l, r)?;
        Some(match math {
            Math::Mul => scale(combined, literal_factor(left).or(literal_factor(right)).unwrap_or(1)),
            _ => combined,
        })
    }

    /// `path |= f`, `path = f`, `path += f`, `path //= f`: the right side runs once per path
    /// (on the value there for `|=`, on the input for the others).
    fn update(
        &mut self,
        left: &Term<&'s str>,
        op: &BinaryOp<&'s str>,
        right: &Term<&'s str>,
    ) -> Option<Shape> {
        let paths = self.term(left)?;
        let value = match op {
            BinaryOp::Update => self.iterated(true, |a| a.term(right))?,
            BinaryOp::UpdateMath(Math::Mul | Math::Sub) => return None,
            _ => {
                let value = self.term(right)?;
                // The right side's value is copied into every path: one path at most.
                if paths.generator && value.size > 0 {
                    return None;
                }
                value
            }
        };
        let grown = value.total.saturating_add(1);
        Some(Shape {
            generator: value.generator,
            size: grown,
            total: grown,
            nest: paths.nest.max(value.nest),
        })
    }

    fn conditional(
        &mut self,
        branches: &[(Term<&'s str>, Term<&'s str>)],
        otherwise: Option<&Term<&'s str>>,
    ) -> Option<Shape> {
        let mut shape = Shape::CONSTANT;
        for (condition, then) in branches {
            let condition = self.term(condition)?;
            let then = self.term(then)?;
            if condition.generator && then.generator {
                return None;
            }
            let mut branch = either(shape, then);
            branch.generator |= condition.generator;
            shape = branch;
        }
        let otherwise = match otherwise {
            Some(term) => self.term(term)?,
            None => Shape::INPUT,
        };
        Some(either(shape, otherwise))
    }

    fn call(&mut self, name: &str, args: &[Term<&'s str>]) -> Option<Shape> {
        let &(_, _, per_element) =
            BUILTINS.iter().find(|(builtin, arity, _)| *builtin == name && *arity == args.len())?;
        let mut size =
            if matches!(name, "empty" | "null" | "true" | "false" | "length" | "now") { 0 } else { 1 };
        let mut nest = u32::from(matches!(name, "to_entries" | "group_by" | "split"));
        let mut generator =
            matches!(name, "values" | "nulls" | "booleans" | "numbers" | "strings" | "arrays")
                || matches!(name, "objects" | "iterables" | "scalars");
        for arg in args {
            let arg = self.iterated(per_element, |a| a.term(arg))?;
            // `select`, `first(f)` and `del(f)` pass their input or f's output through;
            // `map(f)` collects f's outputs over all elements: at most f's total per element.
            size = size.max(arg.total);
            nest = nest.max(arg.nest.saturating_add(u32::from(per_element)));
            generator |= arg.generator && matches!(name, "select" | "error");
        }
        Some(Shape { generator, size, total: size, nest })
    }

    fn variable(&self, name: &str) -> Option<Shape> {
        if name == "$__loc__" {
            return Some(Shape::CONSTANT);
        }
        let binding = self.scope.iter().rev().find(|b| b.name == name)?;
        // A value from outside an iteration, used inside it, is worked on once per element.
        if binding.depth < self.depth && binding.size > 0 {
            return None;
        }
        Some(Shape::single(binding.size, binding.nest))
    }

    fn path(&mut self, base: &Term<&'s str>, path: &Path<Term<&'s str>>) -> Option<Shape> {
        // jaq runs each part of a path as one more level of its syntax tree.
        let parts = u32::try_from(path.0.len()).unwrap_or(u32::MAX);
        if self.level.saturating_add(parts) > MAX_SYNTAX_DEPTH {
            return None;
        }
        let mut shape = self.term(base)?;
        for (part, _optional) in &path.0 {
            match part {
                Part::Index(index) => self.simple_index(index)?,
                Part::Range(None, None) => shape.generator = true,
                Part::Range(from, upto) => {
                    for bound in [from, upto].into_iter().flatten() {
                        self.simple_index(bound)?;
                    }
                }
            }
        }
        Some(shape)
    }

    /// An index must be cheap to compute, since it is computed once per output of its base:
    /// a literal, a variable, or a path into the input without calls.
    fn simple_index(&mut self, index: &Term<&'s str>) -> Option<()> {
        let simple = match index {
            Term::Num(_) | Term::Var(_) => true,
            Term::Str(None, parts) => parts.iter().all(|p| !matches!(p, StrPart::Term(_))),
            Term::Path(base, path) => {
                matches!(**base, Term::Id)
                    && path.0.iter().all(|(part, _)| matches!(part, Part::Index(i) if is_literal(i)))
            }
            Term::Neg(inner) => matches!(**inner, Term::Num(_)),
            _ => false,
        };
        if simple { self.term(index).filter(|s| !s.generator).map(|_| ()) } else { None }
    }

    /// Analyses `f` one iteration deeper when `iterates` (it runs once per element).
    fn iterated(&mut self, iterates: bool, f: impl FnOnce(&mut Self) -> Option<Shape>) -> Option<Shape> {
        if iterates {
            self.depth += 1;
        }
        let shape = f(self);
        if iterates {
            self.depth -= 1;
        }
        shape
    }

    /// Binds the variables of `pattern` to values of `source`; returns how many.
    fn bind(&mut self, pattern: &Pattern<&'s str>, source: Shape) -> Option<usize> {
        match pattern {
            Pattern::Var(name) => {
                let (size, nest) = (source.size, source.nest);
                self.scope.push(Binding { name, size, nest, depth: self.depth });
                Some(1)
            }
            Pattern::Arr(items) => {
                let mut bound = 0;
                for item in items {
                    bound += self.bind(item, source)?;
                }
                Some(bound)
            }
            Pattern::Obj(entries) => {
                let mut bound = 0;
                for (key, item) in entries {
                    self.simple_index(key)?;
                    bound += self.bind(item, source)?;
                }
                Some(bound)
            }
        }
    }
}

/// The shape of a value built from both `l` and `r` (`l + r`, `{a: l, b: r}`, `"\(l)\(r)"`):
/// every output of one is combined with every output of the other. `None` when that is a
/// product: both generate, or one generates and the other is not a constant (each output
/// would copy it).
fn combine(l: Shape, r: Shape) -> Option<Shape> {
    match (l.generator, r.generator) {
        (false, false) => Some(Shape::single(l.size.saturating_add(r.size), l.nest.max(r.nest))),
        (true, false) if r.size == 0 => Some(l),
        (false, true) if l.size == 0 => Some(r),
        _ => None,
    }
}

/// The outputs of one of `l` or `r` (branches, alternatives).
fn either(l: Shape, r: Shape) -> Shape {
    Shape {
        generator: l.generator || r.generator,
        size: l.size.max(r.size),
        total: l.total.max(r.total),
        nest: l.nest.max(r.nest),
    }
}

/// `shape` with its sizes multiplied by `factor`.
fn scale(shape: Shape, factor: u32) -> Shape {
    Shape { size: shape.size.saturating_mul(factor), total: shape.total.saturating_mul(factor), ..shape }
}

/// How many times `term`, when it is a number literal, may repeat a string it multiplies: its
/// magnitude when that is an integer of at most [`MAX_LITERAL_FACTOR`], 1 when it is not an
/// integer (a string times a fraction is an error, not a repetition); `None` for anything
/// else.
fn literal_factor(term: &Term<&str>) -> Option<u32> {
    let number = match term {
        Term::Num(n) => n,
        Term::Neg(inner) => match &**inner {
            Term::Num(n) => n,
            _ => return None,
        },
        _ => return None,
    };
    let n = number.parse::<f64>().ok()?.abs();
    if n.fract() != 0.0 {
        Some(1)
    } else if n <= MAX_LITERAL_FACTOR {
        // An integer of at most 8: the cast is exact.
        Some((n as u32).max(1))
    } else {
        None
    }
}

/// A literal: a number, a string without interpolation, `null`/`true`/`false`, or an array or
/// object of literals.
fn is_literal(term: &Term<&str>) -> bool {
    match term {
        Term::Num(_) => true,
        Term::Neg(inner) => matches!(**inner, Term::Num(_)),
        Term::Str(None, parts) => parts.iter().all(|p| !matches!(p, StrPart::Term(_))),
        Term::Arr(None) => true,
        Term::Arr(Some(inner)) => literal_sequence(inner),
        Term::Obj(entries) => {
            entries.iter().all(|(k, v)| is_literal(k) && v.as_ref().is_some_and(is_literal))
        }
        Term::Call(name, args) => args.is_empty() && matches!(*name, "null" | "true" | "false"),
        _ => false,
    }
}

/// `a, b, c` of literals.
fn literal_sequence(term: &Term<&str>) -> bool {
    match term {
        Term::BinOp(l, BinaryOp::Comma, r) => literal_sequence(l) && literal_sequence(r),
        other => is_literal(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn in_process(code: &str) -> bool {
        let term = jaq_core::load::parse(code, |p| p.term()).unwrap_or_else(|| panic!("parses: {code}"));
        runs_in_process(&term)
    }

    #[test]
    fn common_transforms_run_in_process() {
        for code in [
            ".",
            ".data + {processed: true}",
            ".data + {checked: true}",
            "{order: .data.id, total: (.data.price * 2)}",
            "{greeting: (\"hello \" + .data.name)}",
            ".data.items[] | {data: .}",
            ".data.items | map(select(.qty > 0) | {sku, qty})",
            ".n > 2",
            ".data.a // \"default\"",
            "if .data.kind == \"a\" then .data.x elif .data.kind == \"b\" then .data.y else null end",
            "\"id: \\(.data.id)\"",
            ".data | to_entries | map(\"\\(.key)=\\(.value)\") | join(\"&\")",
            ".data | keys | length",
            ".data.items | sort_by(.price) | first",
            ".data.name | ascii_downcase | ltrimstr(\"mr \")",
            "try .data.x catch \"missing\"",
            ".data.when | todate",
            ".data as $d | {id: $d.id, name: $d.name}",
            ".data.tags - [\"internal\"]",
            ".data.price / 100",
            ".data |= . + {seen: true}",
            "del(.data.secret)",
            "@base64 \"\\(.data.user):\\(.data.password)\"",
            ".data.items[.data.index]",
        ] {
            assert!(in_process(code), "{code}");
        }
    }

    #[test]
    fn programs_that_may_run_away_go_to_the_sandbox() {
        for code in [
            "def f: f + 1; f",
            "last(range(459305798))",
            "[limit(10; repeat(1))]",
            "[.[] | ..]",
            "reduce .[] as $x (0; . + $x)",
            "[foreach .[] as $x (0; . + $x)]",
            "[.[] + .[]]",
            "{a: .[], b: .[]}",
            ".[] as $x | [.[] | $x]",
            ". as $all | .[] | $all",
            ".s * 1000000",
            ".qty * .price",
            ".a - .b",
            "[., ., ., ., ., ., ., ., .]",
            "(. + .) | (. + .) | (. + .) | (. + .)",
            "env",
            "input",
            "label $out | 1, break $out",
            "test(\"a+\")",
            "fromjson",
            "tostream",
            "flatten",
            "walk(.)",
            "if .[] then .[] else . end",
            ".[] = .",
            ".[.[] | tostring]",
            "getpath([\"a\"])",
            "@unknownformat \"x\"",
            &(". | ".repeat(64) + "."),
        ] {
            assert!(!in_process(code), "{code}");
        }
    }
}
