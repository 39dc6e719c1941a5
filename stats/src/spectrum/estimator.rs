//! One covariance estimator chosen by a [`Method`].

use super::exact::{ExactCovariance, MAX_DIM};
use super::{FrequentDirections, GramCovariance, Spectrum, SpectrumError};

/// Sketch rows when none are asked for.
pub const DEFAULT_RANK: usize = 128;

/// The most sketch rows accepted (a sketch of d = 10⁴ would hold 15 GiB).
pub const MAX_RANK: usize = 1 << 16;

/// `auto` keeps rows (Gram) while they take at most this many bytes...
const AUTO_GRAM_BYTES: usize = 64 << 20;
/// ...and at most d of them; then it switches to the exact method up to this
/// dimension (a 32 MiB scatter matrix), to Frequent Directions beyond.
const AUTO_EXACT_MAX_DIM: usize = 2048;

/// How a covariance spectrum is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// d × d scatter matrix: exact, O(d²) memory.
    Exact,
    /// n × n Gram matrix: exact, O(n·d) memory.
    Gram,
    /// Frequent Directions with `rank` rows: O(rank·d) memory, bounded error.
    Fd {
        /// Sketch rows ℓ.
        rank: usize,
    },
    /// Gram while n ≤ d and the rows fit in 64 MiB; then exact for d ≤ 2048,
    /// Frequent Directions with `rank` rows beyond.
    Auto {
        /// Sketch rows ℓ if it comes to Frequent Directions.
        rank: usize,
    },
}

impl Method {
    /// From its SQL name (`exact`, `gram`, `fd`, `auto`) and an optional rank.
    pub fn parse(name: &str, rank: Option<usize>) -> Option<Method> {
        let rank = rank.unwrap_or(DEFAULT_RANK);
        match name.to_ascii_lowercase().as_str() {
            "exact" => Some(Method::Exact),
            "gram" => Some(Method::Gram),
            "fd" => Some(Method::Fd { rank }),
            "auto" => Some(Method::Auto { rank }),
            _ => None,
        }
    }

    /// Its SQL name.
    pub fn name(&self) -> &'static str {
        match self {
            Method::Exact => "exact",
            Method::Gram => "gram",
            Method::Fd { .. } => "fd",
            Method::Auto { .. } => "auto",
        }
    }

    /// Its name with its rank, for messages.
    pub fn describe(&self) -> String {
        match self {
            Method::Fd { rank } | Method::Auto { rank } => format!("'{}' (rank {rank})", self.name()),
            _ => format!("'{}'", self.name()),
        }
    }

    /// The rank for the methods that have one, else 0.
    pub fn rank(&self) -> usize {
        match self {
            Method::Fd { rank } | Method::Auto { rank } => *rank,
            _ => 0,
        }
    }
}

/// The state an estimator is in.
#[derive(Debug, Clone)]
pub(crate) enum State {
    /// No row yet: the dimension is not known.
    Empty,
    Exact(ExactCovariance),
    Gram(GramCovariance),
    Fd(FrequentDirections),
}

/// A covariance estimator: its method, its state and the rows it skipped.
#[derive(Debug, Clone)]
pub struct CovEstimator {
    method: Method,
    pub(crate) state: State,
    skipped: u64,
}

impl CovEstimator {
    /// An empty estimator.
    pub fn new(method: Method) -> Self {
        Self { method, state: State::Empty, skipped: 0 }
    }

    pub(crate) fn from_state(method: Method, state: State, skipped: u64) -> Self {
        Self { method, state, skipped }
    }

    /// The method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// Name of the estimator in use now (`auto` resolves to one of the others).
    pub fn current(&self) -> &'static str {
        match &self.state {
            State::Empty => self.method.name(),
            // An exact estimator holds its first row as a row (see `start`).
            State::Gram(_) if self.method == Method::Exact => "exact",
            State::Exact(_) => "exact",
            State::Gram(_) => "gram",
            State::Fd(_) => "fd",
        }
    }

    /// Rows used.
    pub fn count(&self) -> u64 {
        match &self.state {
            State::Empty => 0,
            State::Exact(e) => e.count(),
            State::Gram(g) => g.count(),
            State::Fd(f) => f.count(),
        }
    }

    /// Rows skipped (NULL or with a non-finite element).
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Counts a skipped row.
    pub fn skip(&mut self) {
        self.skipped += 1;
    }

    /// Dimension, once known.
    pub fn dim(&self) -> Option<usize> {
        match &self.state {
            State::Empty => None,
            State::Exact(e) => Some(e.dim()),
            State::Gram(g) => Some(g.dim()),
            State::Fd(f) => Some(f.dim()),
        }
    }

    /// An exact estimator starts by keeping its first row as a row (d values)
    /// and builds its d × d scatter at the second: a one-row state — what a
    /// partial aggregate sends for every input row when DataFusion skips the
    /// partial stage (`convert_to_state`) — would otherwise cost d² values to
    /// say nothing (one row's scatter is zero).
    fn start(&mut self, d: usize) -> Result<(), SpectrumError> {
        self.state = match self.method {
            Method::Exact if d > MAX_DIM => return Err(SpectrumError::TooLarge { method: "exact", d, max_d: MAX_DIM }),
            Method::Exact => State::Gram(GramCovariance::new(d)),
            Method::Gram | Method::Auto { .. } => State::Gram(GramCovariance::new(d)),
            Method::Fd { rank } => State::Fd(FrequentDirections::new(d, rank)),
        };
        Ok(())
    }

    /// Adds one row.
    pub fn push(&mut self, row: &[f64]) -> Result<(), SpectrumError> {
        if matches!(self.state, State::Empty) {
            self.start(row.len())?;
        }
        match &mut self.state {
            State::Empty => unreachable!("started above"),
            State::Exact(e) => e.push(row),
            State::Gram(g) => {
                g.push(row)?;
                self.promote_if_due()
            }
            State::Fd(f) => f.push(row),
        }
    }

    /// Under `auto`, leaves the Gram method once it stops paying; an exact
    /// estimator leaves it at its second row.
    fn promote_if_due(&mut self) -> Result<(), SpectrumError> {
        let State::Gram(g) = &self.state else { return Ok(()) };
        let d = g.dim();
        let (exact, rank) = match self.method {
            Method::Exact if g.count() < 2 => return Ok(()),
            Method::Exact => (true, 0),
            Method::Auto { .. } if g.count() as usize <= d && size_of_val(g.rows()) <= AUTO_GRAM_BYTES => return Ok(()),
            Method::Auto { rank } => (d <= AUTO_EXACT_MAX_DIM.min(MAX_DIM), rank),
            Method::Gram | Method::Fd { .. } => return Ok(()),
        };
        let mut next =
            if exact { State::Exact(ExactCovariance::new(d)?) } else { State::Fd(FrequentDirections::new(d, rank)) };
        for row in g.rows().chunks_exact(d.max(1)) {
            match &mut next {
                State::Exact(e) => e.push(row)?,
                State::Fd(f) => f.push(row)?,
                _ => unreachable!("built above"),
            }
        }
        self.state = next;
        Ok(())
    }

    /// Adds everything `other` has seen. Both must use the same method.
    pub fn merge(&mut self, other: CovEstimator) -> Result<(), SpectrumError> {
        if other.method != self.method {
            return Err(SpectrumError::Incompatible(format!(
                "{} with {}",
                self.method.describe(),
                other.method.describe()
            )));
        }
        self.skipped += other.skipped;
        if let (Some(a), Some(b)) = (self.dim(), other.dim())
            && a != b
        {
            return Err(SpectrumError::DimensionMismatch { expected: a, got: b });
        }
        let state = std::mem::replace(&mut self.state, State::Empty);
        self.state = match (state, other.state) {
            (State::Empty, s) | (s, State::Empty) => s,
            (State::Exact(mut a), State::Exact(b)) => {
                a.merge(b)?;
                State::Exact(a)
            }
            (State::Gram(mut a), State::Gram(b)) => {
                a.merge(b)?;
                State::Gram(a)
            }
            (State::Fd(mut a), State::Fd(b)) => {
                a.merge(b)?;
                State::Fd(a)
            }
            // `auto` and an exact estimator's one-row start mix states: a Gram side is folded into the other.
            (State::Gram(g), State::Exact(mut e)) | (State::Exact(mut e), State::Gram(g)) => {
                for row in g.rows().chunks_exact(g.dim().max(1)) {
                    e.push(row)?;
                }
                State::Exact(e)
            }
            (State::Gram(g), State::Fd(mut f)) | (State::Fd(mut f), State::Gram(g)) => {
                for row in g.rows().chunks_exact(g.dim().max(1)) {
                    f.push(row)?;
                }
                State::Fd(f)
            }
            (State::Exact(_), State::Fd(_)) | (State::Fd(_), State::Exact(_)) => {
                return Err(SpectrumError::Incompatible("an exact estimator with a sketch".into()));
            }
        };
        self.promote_if_due()
    }

    /// The spectrum, or `None` below two rows.
    pub fn spectrum(&mut self) -> Result<Option<Spectrum>, SpectrumError> {
        match &mut self.state {
            State::Empty => Ok(None),
            State::Exact(e) => e.spectrum(),
            State::Gram(g) => g.spectrum(),
            State::Fd(f) => f.spectrum(),
        }
    }

    /// Makes the state as small as its method allows before it is encoded:
    /// a sketch shrinks to fewer than `rank` rows (see
    /// [`FrequentDirections::compact`]); the other states are exact and stay.
    pub fn compact(&mut self) -> Result<(), SpectrumError> {
        match &mut self.state {
            State::Fd(f) => f.compact(),
            State::Empty | State::Exact(_) | State::Gram(_) => Ok(()),
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        size_of::<Self>()
            + match &self.state {
                State::Empty => 0,
                State::Exact(e) => e.bytes(),
                State::Gram(g) => g.bytes(),
                State::Fd(f) => f.bytes(),
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-row state is what DataFusion sends per input row when it skips the
    /// partial stage: it must hold the row (d values), not a d × d scatter.
    #[test]
    fn an_exact_estimator_of_one_row_holds_the_row_and_two_rows_give_the_closed_form() {
        let d = 600;
        let a: Vec<f64> = (0..d).map(|i| (i % 7) as f64 - 3.0).collect();
        let b: Vec<f64> = (0..d).map(|i| ((i * 3) % 5) as f64).collect();
        let mut one = CovEstimator::new(Method::Exact);
        one.push(&a).unwrap();
        assert!(one.bytes() < 4 * d * size_of::<f64>(), "{} bytes for one row", one.bytes());
        assert_eq!(one.current(), "exact");
        assert!(one.spectrum().unwrap().is_none());
        // Two rows: the covariance is (a − b)(a − b)ᵀ / 2, one eigenvalue ‖a − b‖² / 2.
        let want = a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>() / 2.0;
        let mut pushed = one.clone();
        pushed.push(&b).unwrap();
        let mut merged = one;
        let mut other = CovEstimator::new(Method::Exact);
        other.push(&b).unwrap();
        merged.merge(other).unwrap();
        for mut e in [pushed, merged] {
            assert!(matches!(e.state, State::Exact(_)), "the second row builds the scatter");
            let s = e.spectrum().unwrap().unwrap();
            assert_eq!(s.eigenvalues.len(), d);
            assert!((s.eigenvalues[0] - want).abs() <= 1e-9 * want, "{} vs {want}", s.eigenvalues[0]);
            assert!(s.eigenvalues[1].abs() <= 1e-9 * want);
        }
        let too_big = CovEstimator::new(Method::Exact).push(&vec![0.0; MAX_DIM + 1]).unwrap_err();
        assert!(matches!(too_big, SpectrumError::TooLarge { .. }), "{too_big}");
    }
}
