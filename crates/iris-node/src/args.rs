//! Checks of argument values and the policy names, kept free of napi so they are unit-tested.

use std::time::Duration;

use iris::OverflowPolicy;

/// The largest integer a JS number holds exactly.
pub(crate) const MAX_SAFE: f64 = 9_007_199_254_740_991.0;

/// A PID from a JS number: a positive integer below 2^53.
pub(crate) fn pid(n: f64) -> Result<u64, String> {
    if n.is_finite() && n.fract() == 0.0 && (1.0..=MAX_SAFE).contains(&n) {
        Ok(n as u64)
    } else {
        Err(format!(
            "pid must be a positive integer below 2^53, got {n}"
        ))
    }
}

/// A count (budget, capacity, milliseconds) from a JS number: a non-negative integer.
pub(crate) fn count(n: f64) -> Result<u64, String> {
    if n.is_finite() && n.fract() == 0.0 && (0.0..=MAX_SAFE).contains(&n) {
        Ok(n as u64)
    } else {
        Err(format!("expected a non-negative integer, got {n}"))
    }
}

/// A timeout in seconds from a JS number.
pub(crate) fn seconds(n: f64) -> Result<Duration, String> {
    if n.is_finite() && n >= 0.0 {
        Duration::try_from_secs_f64(n).map_err(|e| e.to_string())
    } else {
        Err(format!(
            "timeout must be a non-negative number of seconds, got {n}"
        ))
    }
}

/// An overflow policy by name, as in Python: `dropnew`, `dropold`, `redirect`, `spill`,
/// `block` (case-insensitive). `redirect` and `spill` need a target PID.
pub(crate) fn policy(name: &str, target: Option<u64>) -> Result<OverflowPolicy, String> {
    iris::parse_overflow_policy(name, target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_are_positive_safe_integers() {
        assert_eq!(pid(1.0), Ok(1));
        assert_eq!(pid(MAX_SAFE), Ok(9_007_199_254_740_991));
        for bad in [0.0, -1.0, 1.5, f64::NAN, f64::INFINITY, MAX_SAFE + 2.0] {
            assert!(pid(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn counts_and_seconds() {
        assert_eq!(count(0.0), Ok(0));
        assert!(count(-1.0).is_err() && count(0.5).is_err());
        assert_eq!(seconds(0.25), Ok(Duration::from_millis(250)));
        assert!(seconds(-0.1).is_err() && seconds(f64::NAN).is_err());
    }

    #[test]
    fn policies_by_name() {
        assert_eq!(policy("dropnew", None), Ok(OverflowPolicy::DropNew));
        assert_eq!(policy("DropOld", None), Ok(OverflowPolicy::DropOld));
        assert_eq!(policy("drop_new", None), Ok(OverflowPolicy::DropNew));
        assert_eq!(policy("block", Some(3)), Ok(OverflowPolicy::Block));
        assert_eq!(policy("redirect", Some(7)), Ok(OverflowPolicy::Redirect(7)));
        assert_eq!(policy("spill", Some(8)), Ok(OverflowPolicy::Spill(8)));
        assert!(policy("redirect", None).is_err());
        assert!(policy("nope", None).is_err());
    }
}
