//! Anytime-valid sequential tests: evaluated at every interval, their false-alarm rate over
//! the whole rollout stays at or below α (Ville's inequality), unlike a fixed-horizon test
//! re-run every interval.
//!
//! # Error counts: Lindon & Malek's multinomial / Poisson-process test ([`CountTest`])
//! Model each arm's errors as a Poisson process with intensity `λ_i(t) = ρ_i·e^{δ_i}·λ(t)`,
//! `ρ` the traffic split and `λ(t)` a shared, arbitrary load curve (diurnal swings
//! included). Which arm the next error comes from is then Bernoulli(θ) with
//! `θ = ρ_c e^{δ_c}/(ρ_c e^{δ_c} + ρ_b e^{δ_b})`, free of `λ(t)`; under H0 (equal error
//! rates) `θ = θ₀ = ρ_c/(ρ_c + ρ_b)`. The test statistic is the Dirichlet-multinomial
//! (here Beta-binomial) mixture Bayes factor over the cumulative errors `x_c`, `x_b`, with
//! prior `Beta(k·θ₀, k·(1−θ₀))`:
//!
//! `BF = B(kθ₀ + x_c, k(1−θ₀) + x_b) / B(kθ₀, k(1−θ₀)) / (θ₀^{x_c} (1−θ₀)^{x_b})`.
//!
//! Only a canary that is *worse* should fail, so the mixture is restricted to `θ > θ₀`
//! (a prior truncated to the alternative is still a mixture of likelihood ratios, hence a
//! test martingale under every `θ ≤ θ₀`):
//!
//! `BF₊ = BF · P_post(θ > θ₀)/P_prior(θ > θ₀)`, with the regularised incomplete beta.
//!
//! Fail when `BF₊ ≥ 1/α`. The anytime p-value is `p_t = min(p_{t−1}, 1/BF₊)`. The
//! confidence sequence for θ is `{θ : B(α₀+x)/B(α₀) < θ^{x_c}(1−θ)^{x_b}/α}` (the same
//! mixture tested against every θ), mapped to the error-rate ratio
//! `r = θ/(1−θ) · (1−θ₀)/θ₀`; the estimate is `r` at `θ̂ = x_c/(x_c + x_b)` (NaN before the first
//! error, +∞ while only the canary has errors). Pass when the
//! whole sequence lies below `pass_ratio` (the canary is shown no worse than that).
//! Only the two error counters and the split are needed; the request counters are checked
//! for consistency and reported.
//!
//! # Latency: mixture SPRT on a normal approximation ([`ShiftTest`])
//! On log latencies (a multiplicative shift becomes additive), `θ̂` = difference of the
//! running means (canary − baseline), `V = s_c²/n_c + s_b²/n_b`. With a normal mixing
//! prior `N(0, τ²)` (Johari, Pekelis & Walsh) the mixture likelihood ratio is
//!
//! `Λ = √(V/(V+τ²)) · exp(τ² θ̂² / (2V(V+τ²)))`,
//!
//! restricted to `θ > 0` as above: `Λ₊ = 2·Λ·Φ(θ̂τ/√(V(V+τ²)))`. Fail when `Λ₊ ≥ 1/α`;
//! `p_t = min(p_{t−1}, 1/Λ₊)`. Confidence sequence:
//! `θ̂ ± √( V(V+τ²)/τ² · (2 ln(1/α) + ln((V+τ²)/V)) )`, reported as a relative shift
//! `e^θ − 1`. Pass when its upper end is below `ln(1 + max_shift)`. The variance is
//! estimated (a plug-in), so the guarantee is asymptotic; the test waits for
//! `min_samples` per arm before it may decide.

use super::{JudgeError, normal_quantile};
use statrs::function::beta::{beta_reg, ln_beta};

/// The decision of a sequential judge at one look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Decision {
    /// The canary is shown no worse than the tolerated margin: promote.
    Pass,
    /// The canary is shown worse than the baseline: roll back.
    Fail,
    /// Not enough evidence either way yet: keep watching.
    Continue,
}

/// A confidence sequence: an interval valid simultaneously at every look.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ConfidenceSequence {
    /// Lower end.
    pub low: f64,
    /// Upper end.
    pub high: f64,
}

/// What a sequential judge reports at each look.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SequentialResult {
    /// The decision.
    pub decision: Decision,
    /// The anytime-valid p-value for "the canary is no worse" (non-increasing over looks).
    pub p_value: f64,
    /// The e-value / mixture likelihood ratio against "no worse" at this look.
    pub e_value: f64,
    /// The estimate: error-rate ratio canary/baseline (counts), or relative latency shift
    /// `canary/baseline − 1` (latency).
    pub estimate: f64,
    /// The confidence sequence of the estimate at level `1 − α`.
    pub confidence_sequence: ConfidenceSequence,
}

/// Settings of [`CountTest`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CountTestConfig {
    /// The false-rollback probability over the whole rollout.
    pub alpha: f64,
    /// The canary's share of the traffic the two arms receive, `ρ_c/(ρ_c + ρ_b)`
    /// (0.5 when baseline and canary get the same weight).
    pub split: f64,
    /// Prior concentration `k` of `Beta(kθ₀, k(1−θ₀))`; small values favour large effects
    /// (Lindon & Malek's default of 100 tunes for small ones).
    pub concentration: f64,
    /// Pass once the confidence sequence of the error-rate ratio lies below this.
    pub pass_ratio: f64,
}

impl Default for CountTestConfig {
    fn default() -> Self {
        Self {
            alpha: 0.01,
            split: 0.5,
            concentration: 2.0,
            pass_ratio: 1.5,
        }
    }
}

/// Cumulative counters of both arms at one look (as `increase(...)` from the start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Counts {
    /// Errors of the baseline.
    pub baseline_errors: u64,
    /// Requests of the baseline.
    pub baseline_requests: u64,
    /// Errors of the canary.
    pub canary_errors: u64,
    /// Requests of the canary.
    pub canary_requests: u64,
}

/// The sequential error-count test (see the module docs). Feed it cumulative counters at
/// every look with [`CountTest::observe`].
#[derive(Debug, Clone)]
pub struct CountTest {
    config: CountTestConfig,
    last: Counts,
    p_value: f64,
    prior_tail: f64,
    ln_beta_prior: f64,
}

fn check_alpha(alpha: f64) -> Result<(), JudgeError> {
    if alpha > 0.0 && alpha < 1.0 {
        Ok(())
    } else {
        Err(JudgeError::InvalidParameter {
            name: "alpha",
            reason: format!("{alpha} is not strictly between 0 and 1"),
        })
    }
}

impl CountTest {
    /// A test with no observations yet.
    ///
    /// # Errors
    /// [`JudgeError::InvalidParameter`] when α or the split is not in (0, 1), or the
    /// concentration or pass ratio is not positive.
    pub fn new(config: CountTestConfig) -> Result<Self, JudgeError> {
        check_alpha(config.alpha)?;
        if !(config.split > 0.0 && config.split < 1.0) {
            return Err(JudgeError::InvalidParameter {
                name: "split",
                reason: format!("{} is not strictly between 0 and 1", config.split),
            });
        }
        if !(config.concentration > 0.0 && config.concentration.is_finite()) {
            return Err(JudgeError::InvalidParameter {
                name: "concentration",
                reason: format!("{} is not positive", config.concentration),
            });
        }
        if config.pass_ratio.is_nan() || config.pass_ratio <= 0.0 {
            return Err(JudgeError::InvalidParameter {
                name: "pass_ratio",
                reason: format!("{} is not positive", config.pass_ratio),
            });
        }
        let (a, b) = prior(&config);
        Ok(Self {
            config,
            last: Counts::default(),
            p_value: 1.0,
            prior_tail: beta_reg(b, a, 1.0 - config.split),
            ln_beta_prior: ln_beta(a, b),
        })
    }

    /// Take the cumulative counters of one look and return the decision.
    ///
    /// # Errors
    /// [`JudgeError::CounterDecreased`] when a counter went down (a reset: start a new
    /// test); [`JudgeError::ErrorsExceedRequests`] for inconsistent counters.
    pub fn observe(&mut self, counts: Counts) -> Result<SequentialResult, JudgeError> {
        let pairs = [
            (
                "baseline errors",
                self.last.baseline_errors,
                counts.baseline_errors,
            ),
            (
                "baseline requests",
                self.last.baseline_requests,
                counts.baseline_requests,
            ),
            (
                "canary errors",
                self.last.canary_errors,
                counts.canary_errors,
            ),
            (
                "canary requests",
                self.last.canary_requests,
                counts.canary_requests,
            ),
        ];
        for (counter, previous, current) in pairs {
            if current < previous {
                return Err(JudgeError::CounterDecreased {
                    counter,
                    previous,
                    current,
                });
            }
        }
        for (arm, errors, requests) in [
            ("baseline", counts.baseline_errors, counts.baseline_requests),
            ("canary", counts.canary_errors, counts.canary_requests),
        ] {
            if errors > requests {
                return Err(JudgeError::ErrorsExceedRequests {
                    arm,
                    errors,
                    requests,
                });
            }
        }
        self.last = counts;
        Ok(self.evaluate())
    }

    /// The current counters.
    pub fn counts(&self) -> Counts {
        self.last
    }

    fn evaluate(&mut self) -> SequentialResult {
        let cfg = self.config;
        let theta0 = cfg.split;
        let (a, b) = prior(&cfg);
        let xc = self.last.canary_errors as f64;
        let xb = self.last.baseline_errors as f64;
        let ln_marginal = ln_beta(a + xc, b + xb) - self.ln_beta_prior;
        let ln_null = xc * theta0.ln() + xb * (1.0 - theta0).ln();
        let ln_bf = ln_marginal - ln_null;
        // P_post(θ > θ₀) = I_{1−θ₀}(b + x_b, a + x_c)
        let post_tail = beta_reg(b + xb, a + xc, 1.0 - theta0);
        let ln_bf_plus = ln_bf + post_tail.ln() - self.prior_tail.ln();
        let e_value = ln_bf_plus.exp();
        self.p_value = self.p_value.min((-ln_bf_plus).exp()).min(1.0);
        let threshold = (1.0 / cfg.alpha).ln();
        // confidence sequence on θ, then on the rate ratio
        let ln_l = |t: f64| xc * t.ln() + xb * (1.0 - t).ln();
        let bound = ln_marginal - threshold; // keep θ with ln L(θ) > bound
        let hat = if xc + xb > 0.0 {
            xc / (xc + xb)
        } else {
            theta0
        };
        let inside = |t: f64| ln_l(t) > bound;
        let low = if xc == 0.0 || !inside(1e-300_f64.max(hat)) {
            0.0
        } else {
            bisect(inside, 0.0, hat)
        };
        let high = if xb == 0.0 {
            1.0
        } else {
            1.0 - bisect(|s| inside(1.0 - s), 0.0, 1.0 - hat)
        };
        let ratio = |t: f64| t / (1.0 - t) * (1.0 - theta0) / theta0;
        let cs = ConfidenceSequence {
            low: ratio(low),
            high: ratio(high),
        };
        let decision = if ln_bf_plus >= threshold {
            Decision::Fail
        } else if cs.high < cfg.pass_ratio {
            Decision::Pass
        } else {
            Decision::Continue
        };
        SequentialResult {
            decision,
            p_value: self.p_value,
            e_value,
            estimate: if xc + xb == 0.0 {
                f64::NAN
            } else {
                xc / xb * (1.0 - theta0) / theta0
            },
            confidence_sequence: cs,
        }
    }
}

fn prior(cfg: &CountTestConfig) -> (f64, f64) {
    (
        cfg.concentration * cfg.split,
        cfg.concentration * (1.0 - cfg.split),
    )
}

/// The boundary of `{t : inside(t)}` between `outside_end` (where it is false, or the end
/// of the range) and `inside_end` (where it is true), by 100 bisection steps.
fn bisect(inside: impl Fn(f64) -> bool, outside_end: f64, inside_end: f64) -> f64 {
    let (mut out, mut inn) = (outside_end, inside_end);
    if inside(out) {
        return out;
    }
    for _ in 0..100 {
        let mid = out + (inn - out) / 2.0;
        if inside(mid) {
            inn = mid;
        } else {
            out = mid;
        }
    }
    inn
}

/// Settings of [`ShiftTest`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShiftTestConfig {
    /// The false-rollback probability over the whole rollout.
    pub alpha: f64,
    /// Standard deviation τ of the normal mixing prior on the log-scale shift (0.1 ≈ a
    /// 10% change).
    pub tau: f64,
    /// Pass once the confidence sequence of the relative shift lies below this
    /// (e.g. 0.05 = the canary is at most 5% slower).
    pub max_shift: f64,
    /// Observations needed in each arm before the test may decide (the variance is a
    /// plug-in estimate).
    pub min_samples: u64,
}

impl Default for ShiftTestConfig {
    fn default() -> Self {
        Self {
            alpha: 0.01,
            tau: 0.1,
            max_shift: 0.05,
            min_samples: 50,
        }
    }
}

/// Running moments of one arm (Welford).
#[derive(Debug, Clone, Copy, Default)]
struct Moments {
    n: u64,
    mean: f64,
    m2: f64,
}

impl Moments {
    fn push(&mut self, v: f64) {
        self.n += 1;
        let d = v - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (v - self.mean);
    }

    fn variance(&self) -> f64 {
        if self.n < 2 {
            f64::NAN
        } else {
            self.m2 / (self.n - 1) as f64
        }
    }
}

/// The sequential latency-shift test (see the module docs). Feed it the new latency
/// observations of each look with [`ShiftTest::observe`].
#[derive(Debug, Clone)]
pub struct ShiftTest {
    config: ShiftTestConfig,
    baseline: Moments,
    canary: Moments,
    p_value: f64,
}

impl ShiftTest {
    /// A test with no observations yet.
    ///
    /// # Errors
    /// [`JudgeError::InvalidParameter`] for α outside (0, 1), or τ or `max_shift` not
    /// positive.
    pub fn new(config: ShiftTestConfig) -> Result<Self, JudgeError> {
        check_alpha(config.alpha)?;
        for (name, v) in [("tau", config.tau), ("max_shift", config.max_shift)] {
            if !(v > 0.0 && v.is_finite()) {
                return Err(JudgeError::InvalidParameter {
                    name,
                    reason: format!("{v} is not positive"),
                });
            }
        }
        Ok(Self {
            config,
            baseline: Moments::default(),
            canary: Moments::default(),
            p_value: 1.0,
        })
    }

    /// Add the latencies observed since the last look (positive values) and decide.
    ///
    /// # Errors
    /// [`JudgeError::NonFinite`] or [`JudgeError::NonPositive`] for a bad value (nothing is
    /// added then).
    pub fn observe(
        &mut self,
        baseline: &[f64],
        canary: &[f64],
    ) -> Result<SequentialResult, JudgeError> {
        for (which, s) in [("baseline", baseline), ("canary", canary)] {
            if let Some(index) = s.iter().position(|v| !v.is_finite()) {
                return Err(JudgeError::NonFinite { which, index });
            }
            if let Some(index) = s.iter().position(|&v| v <= 0.0) {
                return Err(JudgeError::NonPositive {
                    which,
                    index,
                    value: s[index],
                });
            }
        }
        for &v in baseline {
            self.baseline.push(v.ln());
        }
        for &v in canary {
            self.canary.push(v.ln());
        }
        Ok(self.evaluate())
    }

    fn evaluate(&mut self) -> SequentialResult {
        let cfg = self.config;
        let (b, c) = (self.baseline, self.canary);
        let ready = b.n >= cfg.min_samples.max(2) && c.n >= cfg.min_samples.max(2);
        let v = c.variance() / c.n as f64 + b.variance() / b.n as f64;
        if !ready || v.is_nan() || v <= 0.0 {
            let estimate = if b.n > 0 && c.n > 0 {
                (c.mean - b.mean).exp() - 1.0
            } else {
                f64::NAN
            };
            return SequentialResult {
                decision: Decision::Continue,
                p_value: self.p_value,
                e_value: 1.0,
                estimate,
                confidence_sequence: ConfidenceSequence {
                    low: -1.0,
                    high: f64::INFINITY,
                },
            };
        }
        let theta = c.mean - b.mean;
        let tau2 = cfg.tau * cfg.tau;
        let ln_lambda = 0.5 * (v / (v + tau2)).ln() + tau2 * theta * theta / (2.0 * v * (v + tau2));
        // restrict the prior to θ > 0: Λ₊ = 2Λ·Φ(θ̂τ/√(V(V+τ²)))
        let z = theta * cfg.tau / (v * (v + tau2)).sqrt();
        let ln_phi = ln_normal_cdf(z);
        let ln_lambda_plus = ln_lambda + std::f64::consts::LN_2 + ln_phi;
        let threshold = (1.0 / cfg.alpha).ln();
        self.p_value = self.p_value.min((-ln_lambda_plus).exp()).min(1.0);
        let half_width = (v * (v + tau2) / tau2 * (2.0 * threshold + ((v + tau2) / v).ln())).sqrt();
        let cs = ConfidenceSequence {
            low: (theta - half_width).exp() - 1.0,
            high: (theta + half_width).exp() - 1.0,
        };
        let decision = if ln_lambda_plus >= threshold {
            Decision::Fail
        } else if cs.high < cfg.max_shift {
            Decision::Pass
        } else {
            Decision::Continue
        };
        SequentialResult {
            decision,
            p_value: self.p_value,
            e_value: ln_lambda_plus.exp(),
            estimate: theta.exp() - 1.0,
            confidence_sequence: cs,
        }
    }
}

/// `ln Φ(z)`, accurate in the far left tail too.
fn ln_normal_cdf(z: f64) -> f64 {
    let p = super::normal_sf(-z);
    if p > 1e-300 {
        p.ln()
    } else {
        // Mills ratio asymptote: Φ(z) ≈ φ(z)/|z|
        -0.5 * z * z - (-z).ln() - 0.5 * (2.0 * std::f64::consts::PI).ln()
    }
}

/// Wald's SPRT limit for telling error rate `p1` from `p0` between two equally loaded arms
/// (sequential.md §1.5): the expected number of requests per arm,
/// `d(1−β ‖ α) / KL(θ₁ ‖ ½) / (p0 + p1)` with `θ₁ = p1/(p0 + p1)`.
pub fn sprt_requests_two_arm(p0: f64, p1: f64, alpha: f64, beta: f64) -> f64 {
    let theta1 = p1 / (p0 + p1);
    binary_kl(1.0 - beta, alpha) / binary_kl(theta1, 0.5) / (p0 + p1)
}

/// Wald's SPRT limit for a shift `delta` of the mean of normal observations with standard
/// deviation `sigma`, two equally loaded arms: expected observations per arm,
/// `d(1−β ‖ α) / (δ²/(4σ²))`.
pub fn sprt_samples_normal_shift(delta: f64, sigma: f64, alpha: f64, beta: f64) -> f64 {
    binary_kl(1.0 - beta, alpha) / (delta * delta / (4.0 * sigma * sigma))
}

/// Binary Kullback-Leibler divergence `d(p ‖ q)` in nats.
pub fn binary_kl(p: f64, q: f64) -> f64 {
    let term = |a: f64, b: f64| if a == 0.0 { 0.0 } else { a * (a / b).ln() };
    term(p, q) + term(1.0 - p, 1.0 - q)
}

/// The one-sided normal quantile `z_{1−α}` (for fixed-horizon comparisons).
pub fn z_one_sided(alpha: f64) -> f64 {
    normal_quantile(1.0 - alpha)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sprt_limit_matches_sequential_md() {
        // 0.5% → 2% at 10 req/s: about 87 s (sequential.md §1.6)
        let t = sprt_requests_two_arm(0.005, 0.02, 0.01, 0.05) / 10.0;
        assert!((t - 86.7).abs() < 1.0, "{t}");
    }

    #[test]
    fn a_clear_regression_fails_and_equal_rates_do_not() {
        let mut bad = CountTest::new(CountTestConfig::default()).expect("valid");
        let r = bad
            .observe(Counts {
                baseline_errors: 5,
                baseline_requests: 1000,
                canary_errors: 40,
                canary_requests: 1000,
            })
            .expect("valid");
        assert_eq!(r.decision, Decision::Fail);
        assert!(r.p_value < 0.01 && r.estimate == 8.0);
        let mut same = CountTest::new(CountTestConfig::default()).expect("valid");
        let r = same
            .observe(Counts {
                baseline_errors: 20,
                baseline_requests: 4000,
                canary_errors: 20,
                canary_requests: 4000,
            })
            .expect("valid");
        assert_eq!(r.decision, Decision::Continue);
        assert!(r.confidence_sequence.low < 1.0 && r.confidence_sequence.high > 1.0);
    }
}
