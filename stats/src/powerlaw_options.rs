//! How a power-law tail is chosen and how its KS distance is measured.
//!
//! Two choices change a fit's result on real data, so both are explicit:
//!
//! * **The KS convention under ties.** Clauset's reference code (`plfit.m`, and
//!   the C `plfit` that igraph uses) compares the fitted CDF with the empirical
//!   CDF at *every* tail point: the i-th smallest of m tail values (0-based) is
//!   at i/m, tied values included. The Python `powerlaw` package evaluates the
//!   empirical CDF only once per distinct value, at its left limit (the share of
//!   tail values strictly below it). Without ties the two are identical; with
//!   ties the package's D is smaller wherever a tie group is large, which favours
//!   a low xmin. [`KsConvention::Csn`] is the default; [`KsConvention::Powerlaw`]
//!   reproduces the package.
//! * **The xmin rule.** CSN choose xmin by minimising D; the alternatives fix the
//!   tail in advance (the top fraction of the values, a value, or the whole
//!   sample), which makes verdicts comparable across groups and sample sizes.
//!
//! Options are written as text, `key=value` pairs separated by commas or
//! spaces, e.g. `xmin=top:0.1, ks=powerlaw` (see [`FitOptions::from_str`]).

use std::fmt;
use std::str::FromStr;

/// Which xmin values the KS-minimising search tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Candidates {
    /// Every distinct value except the largest (exact CSN).
    All,
    /// At most this many distinct values at evenly spaced ranks (a quantile grid).
    Quantiles(usize),
}

/// How xmin, the start of the fitted tail, is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum XminRule {
    /// Clauset–Shalizi–Newman: the candidate that minimises the KS distance.
    Search(Candidates),
    /// The largest `fraction` of the values (in (0, 1]): xmin is the
    /// ⌈fraction·n⌉-th largest value (at least the 2nd), and the tail every value
    /// ≥ xmin, so ties at xmin are all in.
    Top(f64),
    /// A fixed xmin (> 0); the tail is every value ≥ it.
    Value(f64),
    /// The whole sample: xmin is its smallest value.
    All,
}

/// Which empirical CDF the KS distance compares with the fitted law.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KsConvention {
    /// Every tail point, ties included: the i-th smallest (0-based) of m at i/m,
    /// as Clauset's `plfit.m` and the C `plfit`.
    #[default]
    Csn,
    /// Distinct values only, each at the share of tail values strictly below it,
    /// as the Python `powerlaw` package.
    Powerlaw,
}

/// The options of a power-law fit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitOptions {
    /// How xmin is chosen.
    pub xmin: XminRule,
    /// How the KS distance treats ties.
    pub ks: KsConvention,
}

impl Default for FitOptions {
    /// CSN's exact search over every distinct value, with CSN's KS distance.
    fn default() -> Self {
        Self { xmin: XminRule::Search(Candidates::All), ks: KsConvention::Csn }
    }
}

impl FitOptions {
    /// The default options with another KS convention.
    pub fn with_ks(self, ks: KsConvention) -> Self {
        Self { ks, ..self }
    }

    /// The default options with another xmin rule.
    pub fn with_xmin(self, xmin: XminRule) -> Self {
        Self { xmin, ..self }
    }
}

/// What is wrong with an options text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionsError(pub String);

impl fmt::Display for OptionsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OptionsError {}

const SYNTAX: &str = "expected key=value pairs: xmin=csn|top:FRACTION|value:X|all, ks=csn|powerlaw";

impl FromStr for XminRule {
    type Err = OptionsError;

    /// `csn` (or `search`), `csn:K` (at most K candidates), `top:F`, `value:X`, `all`.
    fn from_str(s: &str) -> Result<Self, OptionsError> {
        let s = s.trim();
        let (name, arg) = match s.split_once(':') {
            Some((n, a)) => (n.trim(), Some(a.trim())),
            None => (s, None),
        };
        let number = |what: &str| -> Result<f64, OptionsError> {
            let a = arg.ok_or_else(|| OptionsError(format!("xmin={name} needs a {what}, as {name}:{what}")))?;
            a.parse::<f64>().map_err(|_| OptionsError(format!("xmin={name}:{a}: {a} is not a number")))
        };
        match (name.to_ascii_lowercase().as_str(), arg) {
            ("csn" | "search", None) => Ok(Self::Search(Candidates::All)),
            ("csn" | "search", Some(a)) => match a.parse::<usize>() {
                Ok(k) if k >= 1 => Ok(Self::Search(Candidates::Quantiles(k))),
                _ => Err(OptionsError(format!("xmin={name}:{a}: the number of candidates must be an integer >= 1"))),
            },
            ("top", _) => match number("FRACTION")? {
                f if f > 0.0 && f <= 1.0 => Ok(Self::Top(f)),
                f => Err(OptionsError(format!("xmin=top:{f}: the fraction must be in (0, 1]"))),
            },
            ("value", _) => match number("X")? {
                x if x > 0.0 && x.is_finite() => Ok(Self::Value(x)),
                x => Err(OptionsError(format!("xmin=value:{x}: xmin must be a finite number > 0"))),
            },
            ("all", None) => Ok(Self::All),
            _ => Err(OptionsError(format!("unknown xmin rule '{s}': use csn, top:FRACTION, value:X or all"))),
        }
    }
}

impl fmt::Display for XminRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Search(Candidates::All) => write!(f, "csn"),
            Self::Search(Candidates::Quantiles(k)) => write!(f, "csn:{k}"),
            Self::Top(x) => write!(f, "top:{x}"),
            Self::Value(x) => write!(f, "value:{x}"),
            Self::All => write!(f, "all"),
        }
    }
}

impl FromStr for KsConvention {
    type Err = OptionsError;

    fn from_str(s: &str) -> Result<Self, OptionsError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csn" | "clauset" => Ok(Self::Csn),
            "powerlaw" => Ok(Self::Powerlaw),
            other => Err(OptionsError(format!("unknown KS convention '{other}': use csn or powerlaw"))),
        }
    }
}

impl fmt::Display for KsConvention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Csn => "csn",
            Self::Powerlaw => "powerlaw",
        })
    }
}

impl FromStr for FitOptions {
    type Err = OptionsError;

    /// Parses `key=value` pairs separated by commas or white space; keys are
    /// `xmin` and `ks`, each at most once; the empty text gives the defaults.
    fn from_str(s: &str) -> Result<Self, OptionsError> {
        let mut options = Self::default();
        let (mut seen_xmin, mut seen_ks) = (false, false);
        // Spaces around '=' and ':' belong to the pair, not between pairs.
        let mut text = String::with_capacity(s.len());
        for c in s.chars() {
            if c.is_whitespace() && text.ends_with(['=', ':']) {
                continue;
            }
            if matches!(c, '=' | ':') {
                text.truncate(text.trim_end().len());
            }
            text.push(c);
        }
        for pair in text.split(|c: char| c == ',' || c.is_whitespace()).filter(|p| !p.is_empty()) {
            let Some((key, value)) = pair.split_once('=') else {
                return Err(OptionsError(format!("'{pair}': {SYNTAX}")));
            };
            match key.trim().to_ascii_lowercase().as_str() {
                "xmin" if !seen_xmin => (options.xmin, seen_xmin) = (value.parse()?, true),
                "ks" if !seen_ks => (options.ks, seen_ks) = (value.parse()?, true),
                "xmin" | "ks" => return Err(OptionsError(format!("'{key}' is given twice"))),
                _ => return Err(OptionsError(format!("unknown option '{key}': {SYNTAX}"))),
            }
        }
        Ok(options)
    }
}

impl fmt::Display for FitOptions {
    /// The canonical text, which parses back to the same options.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "xmin={}, ks={}", self.xmin, self.ks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_rule_and_round_trips() {
        let cases = [
            ("", FitOptions::default()),
            ("ks=powerlaw", FitOptions::default().with_ks(KsConvention::Powerlaw)),
            ("xmin=top:0.1, ks=csn", FitOptions::default().with_xmin(XminRule::Top(0.1))),
            ("XMIN = value: 0.5", FitOptions::default().with_xmin(XminRule::Value(0.5))),
            ("xmin=all ks=powerlaw", FitOptions { xmin: XminRule::All, ks: KsConvention::Powerlaw }),
            ("xmin=csn:50", FitOptions::default().with_xmin(XminRule::Search(Candidates::Quantiles(50)))),
        ];
        for (text, want) in cases {
            let got: FitOptions = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(got, want, "{text}");
            assert_eq!(got.to_string().parse::<FitOptions>().unwrap(), want, "{text} round trip");
        }
    }

    #[test]
    fn bad_options_name_what_is_wrong() {
        for (text, needle) in [
            ("xmin=top:0", "(0, 1]"),
            ("xmin=top:1.5", "(0, 1]"),
            ("xmin=top", "FRACTION"),
            ("xmin=value:-1", "> 0"),
            ("xmin=value:abc", "not a number"),
            ("xmin=best", "unknown xmin rule"),
            ("ks=scipy", "unknown KS convention"),
            ("alpha=2", "unknown option 'alpha'"),
            ("ks=csn ks=powerlaw", "twice"),
            ("powerlaw", "key=value"),
            ("xmin=csn:0", "integer >= 1"),
        ] {
            let e = text.parse::<FitOptions>().unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }
}
