//! Mid-rank statistics of two sorted samples in one merge pass, O(n) after sorting.

/// What the Mann-Whitney and Wilcoxon computations need from the pooled ranking.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RankSummary {
    /// `U_x = #{x_i > y_j} + ½·#{x_i = y_j}` (equals `R_x − n_x(n_x+1)/2`).
    pub u_x: f64,
    /// `Σ (t³ − t)` over groups of equal values in the pooled sample.
    pub tie_term: f64,
}

/// Merge two ascending samples and return U of `x` and the tie term of the pool.
///
/// Exact: U is accumulated as twice its value in integers, so half-integers are exact.
pub(crate) fn rank_summary(x: &[f64], y: &[f64]) -> RankSummary {
    let (mut i, mut j) = (0usize, 0usize);
    let mut twice_u: u128 = 0;
    let mut tie_term = 0.0f64;
    while i < x.len() || j < y.len() {
        let v = match (x.get(i), y.get(j)) {
            (Some(&a), Some(&b)) => a.min(b),
            (Some(&a), None) => a,
            (None, Some(&b)) => b,
            (None, None) => break,
        };
        let i0 = i;
        while i < x.len() && x[i] == v {
            i += 1;
        }
        let j0 = j;
        while j < y.len() && y[j] == v {
            j += 1;
        }
        let (cx, cy) = ((i - i0) as u128, (j - j0) as u128);
        // each x in this group beats the j0 smaller y values and ties with cy of them
        twice_u += cx * (2 * j0 as u128 + cy);
        let t = (cx + cy) as f64;
        tie_term += t * t * t - t;
    }
    RankSummary {
        u_x: twice_u as f64 / 2.0,
        tie_term,
    }
}

/// Tie-corrected standard deviation of U under the null:
/// `σ = √( n_x·n_y/12 · ((n+1) − T/(n(n−1))) )`.
pub(crate) fn sigma_u(nx: usize, ny: usize, tie_term: f64) -> f64 {
    let (nx, ny) = (nx as f64, ny as f64);
    let n = nx + ny;
    // (n+1)·n·(n−1) − T is an exact integer for the sizes we meet, so all-tied gives 0.
    let numerator = (n + 1.0) * n * (n - 1.0) - tie_term;
    (nx * ny / 12.0 * (numerator / (n * (n - 1.0))))
        .max(0.0)
        .sqrt()
}
