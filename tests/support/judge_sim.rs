//! Seeded simulators of baseline and canary traffic for the sequential judge tests.
#![allow(dead_code)] // each test file uses a different subset

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Binomial, Distribution, LogNormal, Poisson};
use rollgate::core::judge::Counts;

/// A healthy or regressed error-count stream: Poisson request arrivals per interval with
/// a diurnal swing of the load, binomial errors per arm.
pub struct CountSim {
    rng: StdRng,
    /// Requests per second across both arms at mean load.
    pub total_rate: f64,
    /// Canary share of the requests.
    pub split: f64,
    /// Baseline error rate.
    pub p_baseline: f64,
    /// Canary error rate.
    pub p_canary: f64,
    /// Seconds per interval.
    pub interval_s: f64,
    counts: Counts,
    t: f64,
}

impl CountSim {
    /// A simulator starting at t = 0 with zero counters.
    pub fn new(seed: u64, total_rate: f64, split: f64, p_baseline: f64, p_canary: f64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            total_rate,
            split,
            p_baseline,
            p_canary,
            interval_s: 10.0,
            counts: Counts::default(),
            t: 0.0,
        }
    }

    fn poisson(&mut self, mean: f64) -> u64 {
        if mean <= 0.0 {
            return 0;
        }
        Poisson::new(mean)
            .expect("positive mean")
            .sample(&mut self.rng) as u64
    }

    fn binomial(&mut self, n: u64, p: f64) -> u64 {
        Binomial::new(n, p).expect("valid p").sample(&mut self.rng)
    }

    /// Advance one interval and return the cumulative counters.
    pub fn step(&mut self) -> Counts {
        // diurnal swing: ±50% over a 24-minute "day" (compressed so a rollout sees it)
        let load = 1.0 + 0.5 * (2.0 * std::f64::consts::PI * self.t / 1440.0).sin();
        let mean = self.total_rate * load * self.interval_s;
        let rb = self.poisson(mean * (1.0 - self.split));
        let rc = self.poisson(mean * self.split);
        let eb = self.binomial(rb, self.p_baseline);
        let ec = self.binomial(rc, self.p_canary);
        self.counts.baseline_requests += rb;
        self.counts.canary_requests += rc;
        self.counts.baseline_errors += eb;
        self.counts.canary_errors += ec;
        self.t += self.interval_s;
        self.counts
    }
}

/// Lognormal latencies for both arms; the canary's are multiplied by `1 + shift`.
pub struct LatencySim {
    rng: StdRng,
    dist: LogNormal<f64>,
    /// Relative shift of the canary.
    pub shift: f64,
}

impl LatencySim {
    /// Median 100 ms, log-sd 0.5.
    pub fn new(seed: u64, shift: f64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            dist: LogNormal::new(100f64.ln(), 0.5).expect("valid"),
            shift,
        }
    }

    /// `n` baseline and `n` canary latencies.
    pub fn step(&mut self, n: usize) -> (Vec<f64>, Vec<f64>) {
        let b = (0..n).map(|_| self.dist.sample(&mut self.rng)).collect();
        let c = (0..n)
            .map(|_| self.dist.sample(&mut self.rng) * (1.0 + self.shift))
            .collect();
        (b, c)
    }
}

/// The naive judge: a one-sided two-proportion z-test on the cumulative counters, re-run
/// at every look at level α as if each look were the only one.
pub fn naive_z_rejects(c: Counts, alpha: f64) -> bool {
    let (nb, nc) = (c.baseline_requests as f64, c.canary_requests as f64);
    if nb == 0.0 || nc == 0.0 {
        return false;
    }
    let (pb, pc) = (c.baseline_errors as f64 / nb, c.canary_errors as f64 / nc);
    let pooled = (c.baseline_errors + c.canary_errors) as f64 / (nb + nc);
    let se = (pooled * (1.0 - pooled) * (1.0 / nb + 1.0 / nc)).sqrt();
    if se == 0.0 {
        return false;
    }
    let z = (pc - pb) / se;
    z > rollgate::core::judge::sequential::z_one_sided(alpha)
}
