//! The rule every bench's RESULT and RATIO lines follow (issue 17): a figure bought with
//! refusals, drops or timeouts is not a clean figure. Each RESULT line carries its run's
//! failure and attempt counts; a run whose failures exceed [`DEGRADED_SHARE`] of its attempts
//! is named in its RATIO line (` degraded=NAME:P%`), or, when it has no ratio, marked in its
//! RESULT line (` degraded=P%`).

/// Failures above this share of a run's attempts make its figures `degraded`.
pub const DEGRADED_SHARE: f64 = 0.001;

/// What a run attempted and how many of those attempts failed (refused, dropped, timed out,
/// answered with an error).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    pub failed: u64,
    pub attempts: u64,
}

impl Faults {
    pub fn new(failed: u64, attempts: u64) -> Faults {
        Faults { failed, attempts }
    }

    /// The share of attempts that failed; failures without a counted attempt count as all.
    pub fn share(self) -> f64 {
        match (self.failed, self.attempts.max(self.failed)) {
            (0, _) | (_, 0) => 0.0,
            (f, a) => f as f64 / a as f64,
        }
    }

    pub fn is_degraded(self) -> bool {
        self.share() > DEGRADED_SHARE
    }

    /// ` degraded=P%` for a RESULT line with no ratio; empty when the run is clean.
    pub fn marker(self) -> String {
        if self.is_degraded() {
            format!(" degraded={}", percent(self.share()))
        } else {
            String::new()
        }
    }
}

impl std::ops::Add for Faults {
    type Output = Faults;

    fn add(self, o: Faults) -> Faults {
        Faults {
            failed: self.failed + o.failed,
            attempts: self.attempts + o.attempts,
        }
    }
}

impl std::iter::Sum for Faults {
    fn sum<I: Iterator<Item = Faults>>(it: I) -> Faults {
        it.fold(Faults::default(), |a, b| a + b)
    }
}

/// A RATIO line's verdict on the runs it compares: empty when all are clean, else
/// ` degraded=NAME:P%,...` naming each run over [`DEGRADED_SHARE`].
pub fn degraded(runs: &[(&str, Faults)]) -> String {
    let bad: Vec<String> = runs
        .iter()
        .filter(|(_, f)| f.is_degraded())
        .map(|(n, f)| format!("{n}:{}", percent(f.share())))
        .collect();
    if bad.is_empty() {
        String::new()
    } else {
        format!(" degraded={}", bad.join(","))
    }
}

fn percent(share: f64) -> String {
    format!("{:.2}%", 100.0 * share)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_a_thousandth_is_degraded() {
        // 0.1 % is still clean; above it is not.
        assert_eq!(Faults::new(1, 1000).marker(), "");
        assert_eq!(Faults::new(2, 1000).marker(), " degraded=0.20%");
        assert_eq!(Faults::new(0, 0).marker(), "");
        assert_eq!(Faults::new(3, 0).marker(), " degraded=100.00%");
        assert_eq!(
            degraded(&[("provd", Faults::new(5, 100)), ("kea", Faults::new(0, 100))]),
            " degraded=provd:5.00%"
        );
        assert_eq!(
            degraded(&[("a", Faults::new(2, 1000)), ("b", Faults::new(1, 10))]),
            " degraded=a:0.20%,b:10.00%"
        );
        assert_eq!(degraded(&[("a", Faults::new(1, 1000))]), "");
        let total: Faults = [Faults::new(1, 10), Faults::new(2, 20)].into_iter().sum();
        assert_eq!(total, Faults::new(3, 30));
    }
}
