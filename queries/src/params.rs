//! Parameters of SQL scripts.
//!
//! A script declares each parameter in a comment line
//!
//! ```sql
//! -- param coordinates = 256 : coordinates sampled from the whole model
//! -- param run = '' : the run to analyse ('' = every run)
//! ```
//!
//! and uses it as `$coordinates`. [`bind`] replaces every use by the given
//! value or the declared default before the SQL reaches the parser, so the
//! planner sees plain literals (typed, foldable, pushed into scans) and the
//! script stays readable and runnable by hand (`gradlake sql --file`).
//! A default written as a number takes only numbers; one written as a quoted
//! string takes any text, which is quoted again on substitution. `$1`-style
//! positional placeholders are not parameters and are left alone, and so is
//! text inside comments, string literals and quoted identifiers.

use std::collections::BTreeMap;

/// A parameter a script declares.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamDecl {
    /// Its name, used as `$name`.
    pub name: String,
    /// The default value, as it is substituted.
    pub default: ParamValue,
    /// What it means (the text after `:`).
    pub doc: String,
}

/// A parameter's value.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    /// A finite number, substituted as written.
    Number(String),
    /// Text, substituted as a quoted SQL string.
    Text(String),
}

impl ParamValue {
    /// The SQL literal that replaces `$name`.
    pub fn to_sql(&self) -> String {
        match self {
            Self::Number(n) => n.clone(),
            Self::Text(t) => format!("'{}'", t.replace('\'', "''")),
        }
    }

    /// The value as a user would type it on the command line.
    pub fn display(&self) -> &str {
        match self {
            Self::Number(s) | Self::Text(s) => s,
        }
    }
}

/// A problem with a script's parameters; each names the parameter.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParamError {
    /// A `-- param` line that does not read `NAME = DEFAULT : description`.
    #[error("line {line}: a parameter is declared as `-- param NAME = DEFAULT : description`, got {text:?}")]
    BadDeclaration {
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
    /// `$name` is used but not declared.
    #[error("${name} is used but the script declares no parameter {name} (add `-- param {name} = DEFAULT : ...`)")]
    Undeclared {
        /// The parameter.
        name: String,
    },
    /// A value was given for a parameter the script does not have.
    #[error("unknown parameter {name:?}; this script has: {known}")]
    Unknown {
        /// The parameter given.
        name: String,
        /// The declared parameters, comma-separated.
        known: String,
    },
    /// A numeric parameter was given something else.
    #[error("parameter {name} takes a number, got {value:?}")]
    NotANumber {
        /// The parameter.
        name: String,
        /// The value given.
        value: String,
    },
    /// `NAME=VALUE` was expected.
    #[error("expected NAME=VALUE, got {0:?}")]
    BadAssignment(String),
}

/// Parses `NAME=VALUE` as given on a command line.
pub fn parse_assignment(s: &str) -> Result<(String, String), ParamError> {
    match s.split_once('=') {
        Some((name, value)) if is_identifier(name.trim()) => Ok((name.trim().to_string(), value.to_string())),
        _ => Err(ParamError::BadAssignment(s.to_string())),
    }
}

/// The parameters `sql` declares, in order.
pub fn declared(sql: &str) -> Result<Vec<ParamDecl>, ParamError> {
    let mut out = Vec::new();
    for (i, line) in sql.lines().enumerate() {
        let Some(rest) = line.trim_start().strip_prefix("--").map(str::trim_start) else { continue };
        let Some(rest) = rest.strip_prefix("param ") else { continue };
        let bad = || ParamError::BadDeclaration { line: i + 1, text: line.to_string() };
        let (name, rest) = rest.split_once('=').ok_or_else(bad)?;
        let name = name.trim();
        if !is_identifier(name) {
            return Err(bad());
        }
        let (default, doc) = split_default(rest.trim()).ok_or_else(bad)?;
        out.push(ParamDecl { name: name.to_string(), default, doc: doc.to_string() });
    }
    Ok(out)
}

/// Splits `DEFAULT : doc` where DEFAULT is a number or a quoted string (which may contain ':').
fn split_default(s: &str) -> Option<(ParamValue, &str)> {
    if let Some(body) = s.strip_prefix('\'') {
        let mut text = String::new();
        let mut chars = body.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c == '\'' {
                if chars.peek().map(|&(_, c)| c) == Some('\'') {
                    chars.next();
                    text.push('\'');
                    continue;
                }
                let doc = body[i + 1..].trim_start().strip_prefix(':')?.trim();
                return Some((ParamValue::Text(text), doc));
            }
            text.push(c);
        }
        None
    } else {
        let (value, doc) = s.split_once(':')?;
        let value = number(value.trim())?;
        Some((ParamValue::Number(value), doc.trim()))
    }
}

fn number(s: &str) -> Option<String> {
    let v: f64 = s.parse().ok()?;
    v.is_finite().then(|| s.to_string())
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `sql` with every `$name` replaced by the value in `values` or the declared default.
/// A value for an undeclared parameter, a use of an undeclared one, or text for a
/// numeric one is an error naming it.
pub fn bind(sql: &str, values: &[(String, String)]) -> Result<String, ParamError> {
    let decls = declared(sql)?;
    let mut bound: BTreeMap<&str, ParamValue> = decls.iter().map(|d| (d.name.as_str(), d.default.clone())).collect();
    for (name, value) in values {
        let Some(slot) = bound.get_mut(name.as_str()) else {
            let known = decls.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", ");
            let known = if known.is_empty() { "no parameters".to_string() } else { known };
            return Err(ParamError::Unknown { name: name.clone(), known });
        };
        *slot = match slot {
            ParamValue::Number(_) => ParamValue::Number(
                number(value.trim())
                    .ok_or_else(|| ParamError::NotANumber { name: name.clone(), value: value.clone() })?,
            ),
            ParamValue::Text(_) => ParamValue::Text(value.clone()),
        };
    }
    substitute(sql, &bound)
}

/// Replaces `$name` outside comments, strings and quoted identifiers.
fn substitute(sql: &str, bound: &BTreeMap<&str, ParamValue>) -> Result<String, ParamError> {
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = sql[i..].find('\n').map_or(bytes.len(), |n| i + n);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = sql[i + 2..].find("*/").map_or(bytes.len(), |n| i + 2 + n + 2);
            }
            quote @ (b'\'' | b'"') => {
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == quote {
                        if bytes.get(i + 1) == Some(&quote) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'$' if bytes.get(i + 1).is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_') => {
                let end = sql[i + 1..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .map_or(bytes.len(), |n| i + 1 + n);
                let name = &sql[i + 1..end];
                let value = bound.get(name).ok_or_else(|| ParamError::Undeclared { name: name.to_string() })?;
                out.push_str(&sql[copied..i]);
                out.push_str(&value.to_sql());
                i = end;
                copied = end;
            }
            _ => i += 1,
        }
    }
    out.push_str(&sql[copied.min(sql.len())..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRIPT: &str = "-- demo\n-- param k = 64 : how many\n-- param run = 'it''s: here' : the run\n\
                          SELECT $k, '$k', \"$k\", $1 /* $k */ FROM t WHERE run = $run -- $k\n";

    #[test]
    fn declarations_are_read_with_their_defaults() {
        let d = declared(SCRIPT).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(
            (d[0].name.as_str(), &d[0].default, d[0].doc.as_str()),
            ("k", &ParamValue::Number("64".into()), "how many")
        );
        assert_eq!(d[1].default, ParamValue::Text("it's: here".into()));
        assert_eq!(d[1].doc, "the run");
    }

    #[test]
    fn uses_outside_strings_and_comments_are_replaced() {
        let sql = bind(SCRIPT, &[]).unwrap();
        assert!(
            sql.ends_with("SELECT 64, '$k', \"$k\", $1 /* $k */ FROM t WHERE run = 'it''s: here' -- $k\n"),
            "{sql}"
        );
        let sql = bind(SCRIPT, &[("k".into(), "1e-3".into()), ("run".into(), "a'b".into())]).unwrap();
        assert!(sql.contains("SELECT 1e-3,") && sql.contains("run = 'a''b'"), "{sql}");
    }

    #[test]
    fn mistakes_name_the_parameter() {
        assert_eq!(
            bind(SCRIPT, &[("n".into(), "1".into())]),
            Err(ParamError::Unknown { name: "n".into(), known: "k, run".into() })
        );
        assert_eq!(
            bind(SCRIPT, &[("k".into(), "1; DROP TABLE t".into())]),
            Err(ParamError::NotANumber { name: "k".into(), value: "1; DROP TABLE t".into() })
        );
        assert_eq!(bind("SELECT $x", &[]), Err(ParamError::Undeclared { name: "x".into() }));
        assert!(matches!(declared("-- param k 3"), Err(ParamError::BadDeclaration { line: 1, .. })));
        assert!(matches!(declared("-- param k = nan : x"), Err(ParamError::BadDeclaration { .. })));
        assert_eq!(parse_assignment("k=3"), Ok(("k".into(), "3".into())));
        assert!(parse_assignment("=3").is_err());
    }
}
