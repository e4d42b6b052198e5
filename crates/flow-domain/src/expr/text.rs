//! Checks on a jq program's text made before it is lexed: jaq's lexer, parser and compiler
//! recurse on the program's nesting, so a program nested thousands of levels deep (or
//! megabytes long) would overflow the stack of whichever thread compiles it (flow validation
//! compiles edge programs on the threads that serve requests). This linear scan bounds both.

/// The longest jq program accepted, in bytes.
pub const MAX_PROGRAM_BYTES: usize = 16 * 1024;

/// The deepest nesting of brackets, string interpolations and `if`/`reduce`/`foreach`/`try`/
/// `def`/`label` constructs accepted in a jq program.
pub const MAX_PROGRAM_NESTING: usize = 64;

/// Fails when `code` is longer than [`MAX_PROGRAM_BYTES`] or nests deeper than
/// [`MAX_PROGRAM_NESTING`]; counts conservatively (a keyword counts as one more level until the
/// end of the enclosing bracket), so no program it accepts recurses deeper in jaq.
///
/// # Errors
/// A plain description of the limit that was exceeded.
pub fn check_program_text(code: &str) -> Result<(), String> {
    if code.len() > MAX_PROGRAM_BYTES {
        return Err(format!("program longer than {MAX_PROGRAM_BYTES} bytes"));
    }
    let too_deep = || format!("program nested deeper than {MAX_PROGRAM_NESTING} levels");
    // Each entry: the closing byte of an open bracket (or `"` for a string) and the keyword
    // levels opened inside it.
    let mut open: Vec<(u8, usize)> = vec![(0, 0)];
    let bytes = code.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let in_string = open.last().is_some_and(|(close, _)| *close == b'"');
        if in_string {
            match b {
                b'\\' if bytes.get(i + 1) == Some(&b'(') => {
                    depth += 1;
                    open.push((b')', 0));
                    i += 2;
                    if depth > MAX_PROGRAM_NESTING {
                        return Err(too_deep());
                    }
                    continue;
                }
                b'\\' => i += 1,
                b'"' => {
                    open.pop();
                    depth = depth.saturating_sub(1);
                }
                _ => {}
            }
            i += 1;
            continue;
        }
        match b {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' | b'(' | b'[' | b'{' => {
                let close = match b {
                    b'"' => b'"',
                    b'(' => b')',
                    b'[' => b']',
                    _ => b'}',
                };
                depth += 1;
                open.push((close, 0));
            }
            b')' | b']' | b'}' => {
                if let Some((_, keywords)) = open.pop() {
                    depth = depth.saturating_sub(1 + keywords);
                }
                if open.is_empty() {
                    open.push((0, 0)); // unbalanced: the parser reports it
                }
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                let word = &code[start..i];
                let preceded_by_dot_or_dollar = start > 0 && matches!(bytes[start - 1], b'.' | b'$' | b'@');
                if !preceded_by_dot_or_dollar
                    && matches!(word, "if" | "reduce" | "foreach" | "try" | "def" | "label" | "as")
                {
                    depth += 1;
                    if let Some((_, keywords)) = open.last_mut() {
                        *keywords += 1;
                    }
                }
                if depth > MAX_PROGRAM_NESTING {
                    return Err(too_deep());
                }
                continue;
            }
            b'-' => {
                // A unary minus nests too (`- - - 1`); count a run of them.
                let run = bytes[i..].iter().take_while(|c| matches!(c, b'-' | b' ')).count();
                if bytes[i..i + run].iter().filter(|c| **c == b'-').count() > MAX_PROGRAM_NESTING {
                    return Err(too_deep());
                }
                i += run;
                continue;
            }
            _ => {}
        }
        if depth > MAX_PROGRAM_NESTING {
            return Err(too_deep());
        }
        i += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_programs() {
        for code in [
            ".data + {processed: true}",
            "{order: .data.id, total: (.data.qty * .data.price)}",
            "\"hello \\(.name) \\(\"nested \\(.x)\")\"",
            "if .a then .b elif .c then .d else .e end",
            "# a comment with ( [ { \"\n.a",
            "reduce .[] as $x (0; . + $x)",
        ] {
            assert_eq!(check_program_text(code), Ok(()), "{code}");
        }
    }

    #[test]
    fn refuses_deep_or_long_programs() {
        let deep = format!("{}.{}", "(".repeat(65), ")".repeat(65));
        assert!(check_program_text(&deep).is_err_and(|e| e.contains("nested deeper than 64")));
        let deep_ifs = "if . then ".repeat(65) + "." + &" else . end".repeat(65);
        assert!(check_program_text(&deep_ifs).is_err());
        let deep_strings = "\"\\(".repeat(40) + "." + &")\"".repeat(40);
        assert!(check_program_text(&deep_strings).is_err());
        let negations = "- ".repeat(65) + "1";
        assert!(check_program_text(&negations).is_err());
        let long = ".a".repeat(MAX_PROGRAM_BYTES);
        assert!(check_program_text(&long).is_err_and(|e| e.contains("longer than")));
        let nested_64 = format!("{}.{}", "[".repeat(64), "]".repeat(64));
        assert_eq!(check_program_text(&nested_64), Ok(()));
    }
}
