//! Splitting an analysis into passes whose memory fits a budget.
//!
//! The exact tests hold every value of their groups until the groups close, so
//! an analysis's memory is set by how much of the lake one pass reads. An
//! analysis that declares a window — `first_step`/`last_step` (its groups never
//! span steps) or `first_coordinate`/`last_coordinate` (its groups are
//! coordinates followed across steps) — can be run a window at a time.
//!
//! Windows are cut from **units** (a step, a coordinate) with a **weight** (the
//! gradient values the pass reads for it, from the key columns). Their width
//! is not guessed: the first window is small, the memory pool's peak
//! reservation is measured after each, and the cost per value seen so far
//! (the largest) sizes the next one, so a lake whose steps differ (noise points
//! among plain steps) still stays within the budget.

/// Which window an analysis declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    /// `first_step`/`last_step`: groups within a step.
    Steps,
    /// `first_coordinate`/`last_coordinate`: ranks of the sampled coordinates.
    Coordinates,
}

impl Axis {
    /// The two parameter names that bound a window on this axis.
    pub fn params(self) -> (&'static str, &'static str) {
        match self {
            Axis::Steps => ("first_step", "last_step"),
            Axis::Coordinates => ("first_coordinate", "last_coordinate"),
        }
    }
}

/// A unit a window can hold: a step or a coordinate rank, and the values a pass reads for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unit {
    /// The step, or the coordinate's rank.
    pub key: i64,
    /// Gradient values read for it.
    pub weight: u64,
}

/// What a window must stay within, and what has been measured so far.
#[derive(Debug, Clone)]
pub struct Sizer {
    /// Bytes a window may reserve.
    target: usize,
    /// Bytes reserved per value read, the largest measured (a prior before any).
    cost: f64,
    measured: bool,
}

/// Reserved bytes per value assumed before anything is measured: the noise
/// analysis keeps each value in four tests and two grouping sets (32 bytes in
/// f32, up to twice that with slack) and fits its largest group with ~28 bytes
/// a value per thread; measured there, 110–170 bytes. Only the first window
/// depends on it, and it is small.
const PRIOR_COST: f64 = 128.0;

/// The first window reads at most this share of the target at the prior cost.
const FIRST_SHARE: f64 = 0.25;

/// Later windows aim at this share of the target: a window's peak is not quite
/// proportional to its values (the working memory of evaluating a group is set
/// by the largest group, which a window of one kind of step and a window of
/// two hold alike), so the measured cost per value can be low by that much.
const SHARE: f64 = 0.5;

impl Sizer {
    /// A sizer for windows that reserve at most `target` bytes.
    pub fn new(target: usize) -> Self {
        Self { target, cost: PRIOR_COST, measured: false }
    }

    /// The cost per value used now.
    pub fn cost(&self) -> f64 {
        self.cost
    }

    /// Records that a window of `weight` values reserved at most `peak` bytes.
    pub fn measured(&mut self, weight: u64, peak: usize) {
        if weight == 0 {
            return;
        }
        let cost = peak as f64 / weight as f64;
        self.cost = if self.measured { self.cost.max(cost) } else { cost.max(1.0) };
        self.measured = true;
    }

    /// The values the next window may read.
    pub fn capacity(&self) -> u64 {
        let share = if self.measured { SHARE } else { FIRST_SHARE };
        (self.target as f64 * share / self.cost) as u64
    }

    /// The bytes one unit of `weight` values is expected to reserve.
    pub fn bytes_for(&self, weight: u64) -> u64 {
        (weight as f64 * self.cost) as u64
    }
}

/// The next window: units `start..end` of `units`, as many as fit in
/// `capacity` values, and always at least one.
pub fn next_window(units: &[Unit], start: usize, capacity: u64) -> usize {
    let mut end = start;
    let mut total = 0u64;
    while end < units.len() {
        let w = units[end].weight;
        if end > start && total.saturating_add(w) > capacity {
            break;
        }
        total = total.saturating_add(w);
        end += 1;
    }
    end
}

/// Consecutive windows of at most `width` units over `units` (a fixed width in steps).
pub fn fixed_windows(units: &[Unit], width: u64) -> Vec<(usize, usize)> {
    let width = usize::try_from(width.max(1)).unwrap_or(usize::MAX);
    (0..units.len()).step_by(width).map(|a| (a, (a.saturating_add(width)).min(units.len()))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(weights: &[u64]) -> Vec<Unit> {
        weights.iter().enumerate().map(|(i, &w)| Unit { key: i as i64 * 10, weight: w }).collect()
    }

    #[test]
    fn windows_take_what_fits_and_at_least_one_unit() {
        let u = units(&[5, 5, 5, 20, 1, 1]);
        assert_eq!(next_window(&u, 0, 10), 2);
        assert_eq!(next_window(&u, 2, 10), 3, "5, then 20 does not fit");
        assert_eq!(next_window(&u, 3, 10), 4, "a unit heavier than the capacity is a window alone");
        assert_eq!(next_window(&u, 4, 10), 6);
        assert_eq!(next_window(&u, 6, 10), 6, "nothing left");
        assert_eq!(fixed_windows(&u, 4), vec![(0, 4), (4, 6)]);
        assert_eq!(fixed_windows(&u, u64::MAX), vec![(0, 6)]);
    }

    #[test]
    fn the_sizer_starts_small_and_keeps_the_worst_cost_seen() {
        let mut s = Sizer::new(1 << 20);
        assert_eq!(s.capacity(), ((1 << 20) as f64 * FIRST_SHARE / PRIOR_COST) as u64);
        s.measured(1000, 8000);
        assert_eq!(s.cost(), 8.0);
        assert_eq!(s.capacity(), (1 << 20) / 16);
        s.measured(1000, 4000);
        assert_eq!(s.cost(), 8.0, "a cheaper window does not lower the estimate");
        s.measured(1000, 16000);
        assert_eq!(s.cost(), 16.0);
        assert_eq!(s.bytes_for(10), 160);
        s.measured(0, 123);
        assert_eq!(s.cost(), 16.0, "an empty window says nothing");
    }
}
