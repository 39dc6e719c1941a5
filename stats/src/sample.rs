//! Turning raw values into the sorted positive sample the tail statistics need.

/// A sorted sample of finite positive values and how many inputs were skipped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PositiveSample {
    /// Finite, strictly positive values in ascending order.
    pub sorted: Vec<f64>,
    /// Inputs dropped because they were NaN, infinite, zero or negative.
    pub skipped: u64,
}

impl PositiveSample {
    /// Keeps the finite positive values of `values` and sorts them.
    pub fn new(values: impl IntoIterator<Item = f64>) -> Self {
        let mut skipped = 0;
        let mut sorted: Vec<f64> = values
            .into_iter()
            .filter(|v| {
                let keep = v.is_finite() && *v > 0.0;
                skipped += u64::from(!keep);
                keep
            })
            .collect();
        radsort::sort(&mut sorted);
        Self { sorted, skipped }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_and_counts_what_a_tail_statistic_cannot_use() {
        let s = PositiveSample::new([3.0, f64::NAN, -1.0, 0.0, 1.0, f64::INFINITY, 2.0]);
        assert_eq!(s.sorted, [1.0, 2.0, 3.0]);
        assert_eq!(s.skipped, 4);
    }
}
