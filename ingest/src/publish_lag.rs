//! How long a written gradient may stay invisible to readers.
//!
//! A [`LakeWriter`](crate::LakeWriter) makes a file visible only once it is
//! whole (atomically, on close), so a reader that follows a run while it is
//! recorded (`gradlake watch`) sees nothing of the open file. Files are closed
//! by size; a [`PublishLag`] also closes them by age, so the follower trails
//! the run by at most that lag. Each early close is one more file, so the lag
//! grows with the run: a share of its age, between a floor and a ceiling.

use std::str::FromStr;
use std::time::Duration;

/// The longest a gradient may wait in open files before they are closed and
/// published, given the run's age: `share × age`, clamped to `[min, max]`.
/// Checked as tensors and scalars arrive: a producer that pauses leaves its
/// last data unpublished until it writes again or finishes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PublishLag {
    /// Share of the run's age.
    pub share: f64,
    /// Lag at the start of a run.
    pub min: Duration,
    /// Lag however long the run.
    pub max: Duration,
}

impl PublishLag {
    /// A thirtieth of the run's age, between 1 s and 60 s: a short run is
    /// followed within a second or two, and a day-long one adds about one file
    /// a minute (some 1,500 in all) whatever its rate.
    pub const AUTO: Self = Self { share: 1.0 / 30.0, min: Duration::from_secs(1), max: Duration::from_secs(60) };

    /// The same lag throughout the run.
    pub fn fixed(lag: Duration) -> Self {
        Self { share: 0.0, min: lag, max: lag }
    }

    /// The lag allowed `age` into the run.
    pub fn at(&self, age: Duration) -> Duration {
        age.mul_f64(self.share).clamp(self.min, self.max.max(self.min))
    }
}

/// A lag as the command line gives it: `auto`, `never` (close files by size
/// only: `None`), or seconds.
pub fn parse_publish_lag(text: &str) -> Result<Option<PublishLag>, String> {
    match text {
        "auto" => Ok(Some(PublishLag::AUTO)),
        "never" => Ok(None),
        seconds => match f64::from_str(seconds) {
            Ok(s) if s > 0.0 && s.is_finite() => Ok(Some(PublishLag::fixed(Duration::from_secs_f64(s)))),
            _ => Err(format!("expected auto, never or a positive number of seconds, got {text:?}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_automatic_lag_is_a_thirtieth_of_the_age_within_its_bounds() {
        let s = Duration::from_secs;
        assert_eq!(PublishLag::AUTO.at(s(0)), s(1));
        assert_eq!(PublishLag::AUTO.at(s(15)), s(1));
        assert_eq!(PublishLag::AUTO.at(s(300)), s(10));
        assert_eq!(PublishLag::AUTO.at(s(86_400)), s(60));
        assert_eq!(PublishLag::fixed(s(5)).at(s(86_400)), s(5));
    }

    #[test]
    fn parses_what_the_command_line_takes() {
        assert_eq!(parse_publish_lag("auto"), Ok(Some(PublishLag::AUTO)));
        assert_eq!(parse_publish_lag("never"), Ok(None));
        assert_eq!(parse_publish_lag("2.5"), Ok(Some(PublishLag::fixed(Duration::from_millis(2500)))));
        for bad in ["0", "-1", "soon", "inf", ""] {
            assert!(parse_publish_lag(bad).unwrap_err().contains("auto, never"), "{bad}");
        }
    }
}
