//! Retry policy: exponential backoff with caller-supplied jitter, then dead.
//!
//! The policy is pure: the caller passes a jitter sample in `0..=1` (e.g. `fastrand::f64()`),
//! so tests and the scheduler decide where randomness comes from.

use std::time::Duration;
use thiserror::Error;

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Run again after this delay.
    RetryAfter(Duration),
    /// Out of attempts: the job is dead.
    Dead,
}

/// An invalid retry policy.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum RetryPolicyError {
    /// The factor is below 1 or not a finite number.
    #[error("retry factor must be a finite number of at least 1, got {0}")]
    Factor(f64),
    /// The jitter fraction is outside 0..=1.
    #[error("retry jitter must be between 0 and 1, got {0}")]
    Jitter(f64),
    /// Zero attempts would never run the job.
    #[error("max attempts must be at least 1")]
    MaxAttempts,
    /// The first delay is longer than the cap.
    #[error("retry base delay {base:?} is longer than the cap {cap:?}")]
    BaseAboveCap {
        /// The base delay.
        base: Duration,
        /// The cap.
        cap: Duration,
    },
}

/// Exponential backoff: the delay after attempt `n` (1-based) is `base × factor^(n-1)`, capped
/// at `cap`, then shortened by up to `jitter` of itself (`delay × (1 − jitter × sample)`), so a
/// delay never exceeds the cap and retries of many jobs spread out instead of arriving together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    base: Duration,
    factor: f64,
    cap: Duration,
    jitter: f64,
    max_attempts: u32,
}

impl Default for RetryPolicy {
    /// 1 s, doubling, capped at 10 minutes, 20 % jitter, 8 attempts.
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            factor: 2.0,
            cap: Duration::from_secs(600),
            jitter: 0.2,
            max_attempts: 8,
        }
    }
}

impl RetryPolicy {
    /// A validated policy.
    pub fn new(
        base: Duration,
        factor: f64,
        cap: Duration,
        jitter: f64,
        max_attempts: u32,
    ) -> Result<Self, RetryPolicyError> {
        if !factor.is_finite() || factor < 1.0 {
            return Err(RetryPolicyError::Factor(factor));
        }
        if !(0.0..=1.0).contains(&jitter) {
            return Err(RetryPolicyError::Jitter(jitter));
        }
        if max_attempts == 0 {
            return Err(RetryPolicyError::MaxAttempts);
        }
        if base > cap {
            return Err(RetryPolicyError::BaseAboveCap { base, cap });
        }
        Ok(Self {
            base,
            factor,
            cap,
            jitter,
            max_attempts,
        })
    }

    /// The most attempts a job gets, the first one included.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The delay before the first retry.
    pub fn base(&self) -> Duration {
        self.base
    }

    /// The longest delay.
    pub fn cap(&self) -> Duration {
        self.cap
    }

    /// The decision after `attempt` attempts have failed (1 after the first failure).
    /// `jitter_sample` should be uniform in `0..=1`; values outside are clamped, NaN counts as 0.
    pub fn next(&self, attempt: u32, jitter_sample: f64) -> RetryDecision {
        if attempt >= self.max_attempts {
            return RetryDecision::Dead;
        }
        let exponent = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let cap = self.cap.as_secs_f64();
        // powi may overflow to infinity; min() brings it back to the cap before converting.
        let undelayed = (self.base.as_secs_f64() * self.factor.powi(exponent)).min(cap);
        let sample = if jitter_sample.is_nan() {
            0.0
        } else {
            jitter_sample.clamp(0.0, 1.0)
        };
        let delayed = (undelayed * (1.0 - self.jitter * sample)).clamp(0.0, cap);
        RetryDecision::RetryAfter(Duration::from_secs_f64(delayed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(value: f64) -> RetryDecision {
        RetryDecision::RetryAfter(Duration::from_secs_f64(value))
    }

    fn policy(jitter: f64) -> RetryPolicy {
        RetryPolicy::new(
            Duration::from_secs(1),
            2.0,
            Duration::from_secs(60),
            jitter,
            10,
        )
        .expect("valid")
    }

    #[test]
    fn exponential_without_jitter() {
        let p = policy(0.0);
        let delays: Vec<_> = (1..=9).map(|attempt| p.next(attempt, 0.7)).collect();
        assert_eq!(
            delays,
            vec![
                secs(1.0),
                secs(2.0),
                secs(4.0),
                secs(8.0),
                secs(16.0),
                secs(32.0),
                secs(60.0),
                secs(60.0),
                secs(60.0)
            ]
        );
        assert_eq!(p.next(10, 0.0), RetryDecision::Dead);
        assert_eq!(p.next(u32::MAX, 0.0), RetryDecision::Dead);
    }

    #[test]
    fn attempt_zero_is_treated_like_the_first() {
        assert_eq!(policy(0.0).next(0, 0.0), secs(1.0));
    }

    #[test]
    fn jitter_shortens_by_up_to_the_fraction() {
        let p = policy(0.5);
        assert_eq!(p.next(3, 0.0), secs(4.0));
        assert_eq!(p.next(3, 1.0), secs(2.0));
        assert_eq!(p.next(3, 0.5), secs(3.0));
        assert_eq!(p.next(8, 1.0), secs(30.0));
        assert_eq!(p.next(3, -5.0), secs(4.0));
        assert_eq!(p.next(3, 7.0), secs(2.0));
        assert_eq!(p.next(3, f64::NAN), secs(4.0));
    }

    #[test]
    fn never_exceeds_the_cap_even_for_huge_attempts() {
        let p = RetryPolicy::new(
            Duration::from_secs(1),
            10.0,
            Duration::from_secs(5),
            0.0,
            u32::MAX,
        )
        .expect("valid");
        assert_eq!(p.next(u32::MAX - 1, 0.0), secs(5.0));
        assert_eq!(p.next(400, 0.0), secs(5.0));
    }

    #[test]
    fn single_attempt_policy_is_dead_at_once() {
        let p = RetryPolicy::new(Duration::ZERO, 1.0, Duration::ZERO, 0.0, 1).expect("valid");
        assert_eq!(p.next(1, 0.0), RetryDecision::Dead);
    }

    #[test]
    fn invalid_policies() {
        let s = Duration::from_secs;
        assert_eq!(
            RetryPolicy::new(s(1), 0.5, s(5), 0.0, 3),
            Err(RetryPolicyError::Factor(0.5))
        );
        assert!(matches!(
            RetryPolicy::new(s(1), f64::NAN, s(5), 0.0, 3),
            Err(RetryPolicyError::Factor(_))
        ));
        assert!(matches!(
            RetryPolicy::new(s(1), f64::INFINITY, s(5), 0.0, 3),
            Err(RetryPolicyError::Factor(_))
        ));
        assert_eq!(
            RetryPolicy::new(s(1), 2.0, s(5), 1.5, 3),
            Err(RetryPolicyError::Jitter(1.5))
        );
        assert_eq!(
            RetryPolicy::new(s(1), 2.0, s(5), -0.1, 3),
            Err(RetryPolicyError::Jitter(-0.1))
        );
        assert_eq!(
            RetryPolicy::new(s(1), 2.0, s(5), 0.1, 0),
            Err(RetryPolicyError::MaxAttempts)
        );
        assert_eq!(
            RetryPolicy::new(s(9), 2.0, s(5), 0.1, 3),
            Err(RetryPolicyError::BaseAboveCap {
                base: s(9),
                cap: s(5)
            })
        );
    }

    #[test]
    fn default_is_sane() {
        let p = RetryPolicy::default();
        assert_eq!(p.max_attempts(), 8);
        assert_eq!(p.base(), Duration::from_secs(1));
        assert_eq!(p.cap(), Duration::from_secs(600));
        assert_eq!(p.next(1, 0.0), secs(1.0));
        assert_eq!(p.next(8, 0.0), RetryDecision::Dead);
    }
}
