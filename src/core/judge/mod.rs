//! Statistical canary-vs-baseline judges: Mann-Whitney U, Hodges-Lehmann shift,
//! Kayenta-style scoring and anytime-valid sequential tests.
//!
//! Orientation everywhere: the **baseline** (control) is the first sample, the **canary**
//! (experiment) the second. U and the `alternative` follow
//! `scipy.stats.mannwhitneyu(baseline, canary)`; shifts are `canary − baseline`.
//!
//! - [`mwu`]: the Mann-Whitney U test (tie and continuity corrections, exact and
//!   asymptotic p-values).
//! - [`shift`]: the Hodges-Lehmann shift with its exact distribution-free interval, and the
//!   asymptotic (R `wilcox.test`, Kayenta) interval, computed on the step function exactly.
//! - [`kayenta`]: the `NetflixACAJudge` classifier, the weighted-sum scorer and multi-interval
//!   runs.
//! - [`sequential`]: anytime-valid tests for error counts (Lindon & Malek) and for a latency
//!   shift (mixture SPRT), safe to evaluate at every interval.
//!
//! Everything here is pure and synchronous: samples and counters come in as arguments.

pub mod kayenta;
pub mod mwu;
pub mod sequential;
pub mod shift;

mod pairwise;
mod rank;

pub use mwu::{Alternative, Method, MwuOptions, MwuResult, mann_whitney};

pub use sequential::{
    ConfidenceSequence, CountTest, CountTestConfig, Counts, Decision, SequentialResult, ShiftTest,
    ShiftTestConfig,
};
pub use shift::{ShiftInterval, hodges_lehmann, wilcox_asymptotic, wilcox_asymptotic_zeroin};

/// Why a judge could not compute its result.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JudgeError {
    /// A sample passed to a judge is empty.
    #[error("the {which} sample is empty")]
    EmptySample {
        /// `baseline` or `canary`.
        which: &'static str,
    },
    /// A sample holds NaN or an infinite value (remove or replace them first).
    #[error("the {which} sample holds a non-finite value at index {index}")]
    NonFinite {
        /// `baseline` or `canary`.
        which: &'static str,
        /// 0-based position of the value.
        index: usize,
    },
    /// A parameter is outside its range (confidence not in (0, 1), α not in (0, 1), ...).
    #[error("invalid parameter {name}: {reason}")]
    InvalidParameter {
        /// The parameter's name.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The exact null distribution was requested for samples too large to enumerate.
    #[error(
        "exact p-value needs the null distribution of U for {n_baseline}×{n_canary} samples, which is too large; use the asymptotic method"
    )]
    ExactTooLarge {
        /// Size of the baseline sample.
        n_baseline: usize,
        /// Size of the canary sample.
        n_canary: usize,
    },
    /// Every observation of both samples is equal, so the asymptotic interval is undefined
    /// (R: "cannot compute confidence interval when all observations are tied").
    #[error("cannot compute a confidence interval when all observations are tied")]
    AllTied,
    /// A cumulative counter went down between two updates (a counter reset or a wrong query).
    #[error("the {counter} counter decreased from {previous} to {current}")]
    CounterDecreased {
        /// Which counter (e.g. `canary errors`).
        counter: &'static str,
        /// The earlier value.
        previous: u64,
        /// The later, smaller value.
        current: u64,
    },
    /// A count is inconsistent (more errors than requests).
    #[error("the {arm} arm reports {errors} errors out of {requests} requests")]
    ErrorsExceedRequests {
        /// `baseline` or `canary`.
        arm: &'static str,
        /// Cumulative errors.
        errors: u64,
        /// Cumulative requests.
        requests: u64,
    },
    /// A latency observation is not positive, so its logarithm is undefined.
    #[error(
        "the {which} sample holds a non-positive value {value} at index {index}; the log-scale shift test needs positive latencies"
    )]
    NonPositive {
        /// `baseline` or `canary`.
        which: &'static str,
        /// 0-based position of the value.
        index: usize,
        /// The value.
        value: f64,
    },
}

/// Check that a sample is non-empty and finite.
pub(crate) fn check_sample(which: &'static str, sample: &[f64]) -> Result<(), JudgeError> {
    if sample.is_empty() {
        return Err(JudgeError::EmptySample { which });
    }
    if let Some(index) = sample.iter().position(|v| !v.is_finite()) {
        return Err(JudgeError::NonFinite { which, index });
    }
    Ok(())
}

/// Check that a confidence level lies strictly between 0 and 1.
pub(crate) fn check_confidence(confidence: f64) -> Result<(), JudgeError> {
    if confidence > 0.0 && confidence < 1.0 {
        Ok(())
    } else {
        Err(JudgeError::InvalidParameter {
            name: "confidence",
            reason: format!("{confidence} is not strictly between 0 and 1"),
        })
    }
}

/// Sorted copy of a sample (total order; callers have checked that values are finite).
pub(crate) fn sorted(sample: &[f64]) -> Vec<f64> {
    let mut v = sample.to_vec();
    v.sort_unstable_by(f64::total_cmp);
    v
}

/// Standard normal upper tail `P(Z > z)`, `½·erfc(z/√2)` (as scipy's `norm.sf`).
pub(crate) fn normal_sf(z: f64) -> f64 {
    if z.is_nan() {
        return f64::NAN;
    }
    0.5 * statrs::function::erf::erfc(z / std::f64::consts::SQRT_2)
}

/// Standard normal quantile `Φ⁻¹(p)`.
pub(crate) fn normal_quantile(p: f64) -> f64 {
    -std::f64::consts::SQRT_2 * statrs::function::erf::erfc_inv(2.0 * p)
}

/// SplitMix64: a tiny deterministic generator (pivot choice, Kayenta's noise rule).
pub(crate) struct SplitMix(pub(crate) u64);

impl SplitMix {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, bound)` (modulo bias is negligible for the bounds used here).
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    /// Uniform in (0, 1).
    pub(crate) fn uniform(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    pub(crate) fn gaussian(&mut self) -> f64 {
        let (u1, u2) = (self.uniform(), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}
