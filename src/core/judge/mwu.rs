//! The Mann-Whitney U test with `scipy.stats.mannwhitneyu` conventions.
//!
//! - `U = U_x = R_x − n_x(n_x+1)/2` of the first sample (the baseline) for every alternative.
//! - `greater`: the baseline is stochastically greater than the canary; `less`: the canary
//!   is greater (a latency regression shows up as a small `less` p-value).
//! - Asymptotic: `z = (U' − n_x n_y/2 − c)/σ` with the tie-corrected σ, `c = ½` with the
//!   continuity correction, `U' = U_x` (greater), `U_y` (less), `max(U_x, U_y)` (two-sided,
//!   p doubled and clipped to 1).
//! - Exact: `P₀(U ≥ ⌊U'⌋)` under the permutation null without ties, from the Gaussian
//!   binomial coefficient `∏_{i=1..m} (1 − q^{n+i})/(1 − q^i)`.
//! - `auto`: exact when `min(n_x, n_y) ≤ 8` and the pooled sample has no ties.
//!
//! Cost: two sorts and one merge, O(n log n); 10,000 values per side take well under 5 ms.

use super::rank::{rank_summary, sigma_u};
use super::{JudgeError, check_sample, normal_sf, sorted};

/// The alternative hypothesis, named as in scipy (relative to the baseline, the first sample).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Alternative {
    /// The two distributions differ.
    #[default]
    TwoSided,
    /// The baseline is stochastically less than the canary (the canary is larger).
    Less,
    /// The baseline is stochastically greater than the canary (the canary is smaller).
    Greater,
}

/// How the p-value is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Exact when `min(n_x, n_y) ≤ 8` and there are no ties, else asymptotic (scipy's rule).
    #[default]
    Auto,
    /// The permutation null distribution of U without ties (wrong with ties, as in scipy).
    Exact,
    /// The normal approximation with the tie-corrected σ.
    Asymptotic,
}

/// Options of [`mann_whitney`]; the default is scipy's default.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MwuOptions {
    /// The alternative hypothesis.
    pub alternative: Alternative,
    /// Subtract ½ from the U used (asymptotic method only). scipy's default: true.
    pub continuity: bool,
    /// How to compute the p-value.
    pub method: Method,
}

impl Default for MwuOptions {
    fn default() -> Self {
        Self {
            alternative: Alternative::TwoSided,
            continuity: true,
            method: Method::Auto,
        }
    }
}

/// The outcome of a Mann-Whitney U test.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MwuResult {
    /// `U_x`, the U statistic of the baseline (scipy's `statistic`).
    pub u: f64,
    /// `U_y = n_x·n_y − U_x`, the U statistic of the canary.
    pub u_canary: f64,
    /// The p-value (NaN when σ = 0 without continuity correction, as scipy).
    pub p_value: f64,
    /// The method actually used (`exact` or `asymptotic`, never `auto`).
    pub method: Method,
    /// The z statistic of the asymptotic method (None for exact).
    pub z: Option<f64>,
    /// The tie-corrected standard deviation of U under the null.
    pub sigma: f64,
    /// Whether the pooled sample has ties.
    pub has_ties: bool,
    /// Size of the baseline sample.
    pub n_baseline: usize,
    /// Size of the canary sample.
    pub n_canary: usize,
}

/// Largest `min(m,n)·m·n` for which the exact null distribution is enumerated
/// (about a second of work).
const EXACT_WORK_LIMIT: f64 = 1e9;

/// Run the Mann-Whitney U test of `baseline` against `canary`.
///
/// # Errors
/// [`JudgeError::EmptySample`] or [`JudgeError::NonFinite`] for a bad sample;
/// [`JudgeError::ExactTooLarge`] when `Method::Exact` is forced on huge samples.
pub fn mann_whitney(
    baseline: &[f64],
    canary: &[f64],
    options: MwuOptions,
) -> Result<MwuResult, JudgeError> {
    check_sample("baseline", baseline)?;
    check_sample("canary", canary)?;
    let (x, y) = (sorted(baseline), sorted(canary));
    mann_whitney_sorted(&x, &y, options)
}

/// [`mann_whitney`] on samples already sorted ascending and checked finite.
pub(crate) fn mann_whitney_sorted(
    x: &[f64],
    y: &[f64],
    options: MwuOptions,
) -> Result<MwuResult, JudgeError> {
    let (nx, ny) = (x.len(), y.len());
    let summary = rank_summary(x, y);
    let mn = nx as f64 * ny as f64;
    let u_x = summary.u_x;
    let u_y = mn - u_x;
    let has_ties = summary.tie_term > 0.0;
    let sigma = sigma_u(nx, ny, summary.tie_term);
    let method = match options.method {
        Method::Auto if nx.min(ny) <= 8 && !has_ties => Method::Exact,
        Method::Auto => Method::Asymptotic,
        m => m,
    };
    let (u_used, factor) = match options.alternative {
        Alternative::Greater => (u_x, 1.0),
        Alternative::Less => (u_y, 1.0),
        Alternative::TwoSided => (u_x.max(u_y), 2.0),
    };
    let (tail, z) = match method {
        Method::Exact => {
            let null = UNull::new(nx, ny)?;
            (null.sf(u_used.trunc() as u64), None)
        }
        _ => {
            let c = if options.continuity { 0.5 } else { 0.0 };
            let z = (u_used - mn / 2.0 - c) / sigma;
            (normal_sf(z), Some(z))
        }
    };
    // NaN (σ = 0 without continuity) stays NaN, as in scipy
    let p_value = if tail.is_nan() {
        f64::NAN
    } else {
        (factor * tail).min(1.0)
    };
    Ok(MwuResult {
        u: u_x,
        u_canary: u_y,
        p_value,
        method,
        z,
        sigma,
        has_ties,
        n_baseline: nx,
        n_canary: ny,
    })
}

/// The exact null distribution of U for sizes `(m, n)` without ties: `counts[u]` is the
/// number of arrangements with `U = u` (up to a common scale factor), `u = 0..=m·n`.
#[derive(Debug, Clone)]
pub(crate) struct UNull {
    counts: Vec<f64>,
    total: f64,
}

impl UNull {
    /// Enumerate the distribution from the Gaussian binomial coefficient
    /// `∏_{i=1..m} (1 − q^{n'+i})/(1 − q^i)`, `m = min`, `n' = max`: multiply by
    /// `(1 − q^{n'+i})`, then divide by `(1 − q^i)` (a strided prefix sum). After each step
    /// the polynomial is the Gaussian binomial `[n'+i choose i]`, with non-negative integer
    /// coefficients. The division is exact in integers but amplifies rounding errors, so the
    /// steps run in f64 only while `C(m+n, m) < 2^52` (every count exact) and otherwise in
    /// fixed-width integers modulo `2^(64·L)` ([`Wide`]): only additions and subtractions
    /// occur, so the results are exact once `2^(64·L)` exceeds `C(m+n, m)`, even though
    /// intermediate values are negative. They are then scaled into f64 by a common power
    /// of two.
    ///
    /// # Errors
    /// [`JudgeError::ExactTooLarge`] when `min·m·n` exceeds the work limit.
    pub(crate) fn new(nx: usize, ny: usize) -> Result<Self, JudgeError> {
        let (m, n) = (nx.min(ny), nx.max(ny));
        if (m as f64) * (nx as f64) * (ny as f64) > EXACT_WORK_LIMIT {
            return Err(JudgeError::ExactTooLarge {
                n_baseline: nx,
                n_canary: ny,
            });
        }
        let ln2_total = statrs::function::factorial::ln_binomial((m + n) as u64, m as u64)
            / std::f64::consts::LN_2;
        let counts = if ln2_total < 52.0 {
            gaussian_binomial::<f64>(m, n)
        } else if ln2_total < 126.0 {
            wide_counts::<2>(m, n)
        } else if ln2_total < 254.0 {
            wide_counts::<4>(m, n)
        } else if ln2_total < 510.0 {
            wide_counts::<8>(m, n)
        } else if ln2_total < 1022.0 {
            wide_counts::<16>(m, n)
        } else {
            wide_counts::<32>(m, n)
        };
        let total = counts.iter().sum();
        Ok(Self { counts, total })
    }

    /// `m·n`, the largest value of U.
    fn max_u(&self) -> u64 {
        self.counts.len() as u64 - 1
    }

    /// `P₀(U ≤ u)`, summing the shorter tail (the distribution is symmetric).
    pub(crate) fn cdf(&self, u: u64) -> f64 {
        let max = self.max_u();
        if u >= max {
            return 1.0;
        }
        let u = u as usize;
        if 2 * u <= self.counts.len() {
            self.counts[..=u].iter().sum::<f64>() / self.total
        } else {
            1.0 - self.counts[u + 1..].iter().sum::<f64>() / self.total
        }
    }

    /// `P₀(U ≥ u)`.
    pub(crate) fn sf(&self, u: u64) -> f64 {
        if u == 0 {
            return 1.0;
        }
        let max = self.max_u();
        if u > max {
            return 0.0;
        }
        // P(U ≥ u) = P(U ≤ mn − u) by symmetry
        self.cdf(max - u)
    }
}

/// Coefficients of the Gaussian binomial `[m+n choose m]_q` (see [`UNull::new`]).
fn gaussian_binomial<T>(m: usize, n: usize) -> Vec<T>
where
    T: Clone + From<u8> + for<'a> std::ops::AddAssign<&'a T> + for<'a> std::ops::SubAssign<&'a T>,
{
    let len = m * n + 1;
    let zero = T::from(0u8);
    let mut c = vec![zero.clone(); len + n + m + 1];
    c[0] = T::from(1u8);
    let mut deg = 0usize;
    for i in 1..=m {
        let shift = n + i;
        // multiply by (1 − q^shift)
        for k in (shift..=deg + shift).rev() {
            let (head, tail) = c.split_at_mut(k);
            tail[0] -= &head[k - shift];
        }
        // divide by (1 − q^i): the quotient has degree i·n
        let new_deg = i * n;
        for k in i..=new_deg {
            let (head, tail) = c.split_at_mut(k);
            tail[0] += &head[k - i];
        }
        for v in c.iter_mut().take(deg + shift + 1).skip(new_deg + 1) {
            *v = zero.clone();
        }
        deg = new_deg;
    }
    c.truncate(len);
    c
}

/// An unsigned integer of `64·L` bits with wrapping addition and subtraction: the ring
/// `Z/2^(64·L)`, enough for exact Gaussian binomial coefficients (see [`UNull::new`]).
#[derive(Clone, Copy)]
struct Wide<const L: usize>([u64; L]);

impl<const L: usize> From<u8> for Wide<L> {
    fn from(v: u8) -> Self {
        let mut limbs = [0u64; L];
        limbs[0] = u64::from(v);
        Self(limbs)
    }
}

impl<const L: usize> std::ops::AddAssign<&Wide<L>> for Wide<L> {
    fn add_assign(&mut self, rhs: &Wide<L>) {
        let mut carry = false;
        for (a, &b) in self.0.iter_mut().zip(rhs.0.iter()) {
            let (s1, c1) = a.overflowing_add(b);
            let (s2, c2) = s1.overflowing_add(u64::from(carry));
            *a = s2;
            carry = c1 || c2;
        }
    }
}

impl<const L: usize> std::ops::SubAssign<&Wide<L>> for Wide<L> {
    fn sub_assign(&mut self, rhs: &Wide<L>) {
        let mut borrow = false;
        for (a, &b) in self.0.iter_mut().zip(rhs.0.iter()) {
            let (d1, b1) = a.overflowing_sub(b);
            let (d2, b2) = d1.overflowing_sub(u64::from(borrow));
            *a = d2;
            borrow = b1 || b2;
        }
    }
}

/// The exact counts in `Wide<L>`, scaled into f64 by a common power of two so that the
/// largest fits (the largest count has fewer than `64·L` bits).
fn wide_counts<const L: usize>(m: usize, n: usize) -> Vec<f64> {
    let exact = gaussian_binomial::<Wide<L>>(m, n);
    let top = exact
        .iter()
        .filter_map(|c| c.0.iter().rposition(|&l| l != 0))
        .max()
        .unwrap_or(0);
    let drop = top.saturating_sub(14); // keep values below 2^960
    exact
        .iter()
        .map(|c| {
            c.0.iter()
                .enumerate()
                .skip(drop)
                .map(|(k, &l)| l as f64 * 2f64.powi(64 * (k - drop) as i32))
                .sum()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_counts_of_3_by_3_are_the_gaussian_binomial() {
        let null = UNull::new(3, 3).expect("small");
        let expected = [1.0, 1.0, 2.0, 3.0, 3.0, 3.0, 3.0, 2.0, 1.0, 1.0];
        assert_eq!(null.counts, expected);
        assert_eq!(null.total, 20.0);
        assert_eq!(null.sf(9), 0.05);
    }

    #[test]
    fn reference_example_of_judges_md() {
        let r =
            mann_whitney(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0], MwuOptions::default()).expect("valid");
        assert_eq!(r.u, 0.0);
        assert_eq!(r.method, Method::Exact);
        assert!((r.p_value - 0.1).abs() < 1e-15);
        assert!((r.sigma - 2.2913).abs() < 1e-4);
    }
}
