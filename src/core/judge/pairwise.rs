//! Order statistics of the `m·n` pairwise differences `y_j − x_i` without materialising them.
//!
//! The differences form an implicit matrix whose rows (fixed `i`) increase with `j` and
//! whose columns decrease with `i`. Counting the differences below a pivot takes one
//! two-pointer pass, O(m + n). Selection keeps, per row, a window `[lo_i, hi_i)` of
//! candidate columns and shrinks it around the target rank with pivots drawn from the
//! remaining candidates (Monahan's randomised selection, 1984, with a Floyd–Rivest style
//! pivot: the sample quantile at the target's relative position in a small random sample of
//! candidates). Expected O((m + n)·log(m·n)) time and O(m) memory; once a few thousand
//! candidates remain they are gathered and selected directly. The pseudo-random source is
//! a fixed-seed SplitMix64, so results are deterministic (and exact: the answer is always an
//! element of the matrix).
//!
//! Differences are compared exactly as computed, `fl(y_j − x_i)`; rounding is monotone, so
//! the rows and columns stay sorted in floating point too.

use super::SplitMix;

/// The pairwise differences `y_j − x_i` of two ascending samples.
pub(crate) struct PairwiseDiffs<'a> {
    x: &'a [f64],
    y: &'a [f64],
}

const SAMPLE: usize = 48;

impl<'a> PairwiseDiffs<'a> {
    /// Differences of `y` minus `x`; both must be sorted ascending and non-empty.
    pub(crate) fn new(x: &'a [f64], y: &'a [f64]) -> Self {
        Self { x, y }
    }

    /// Number of differences, `m·n`.
    pub(crate) fn len(&self) -> u64 {
        self.x.len() as u64 * self.y.len() as u64
    }

    fn at(&self, i: usize, j: usize) -> f64 {
        self.y[j] - self.x[i]
    }

    /// Per row, the number of columns whose difference is `< p` (strict) or `≤ p`.
    fn row_counts(&self, p: f64, strict: bool, out: &mut [usize]) -> u64 {
        let n = self.y.len();
        let mut j = 0usize;
        let mut total = 0u64;
        for (i, slot) in out.iter_mut().enumerate() {
            let xi = self.x[i];
            if strict {
                while j < n && self.y[j] - xi < p {
                    j += 1;
                }
            } else {
                while j < n && self.y[j] - xi <= p {
                    j += 1;
                }
            }
            *slot = j;
            total += j as u64;
        }
        total
    }

    /// The `k`-th smallest difference, 0-based (`k < m·n`).
    pub(crate) fn kth(&self, k: u64) -> f64 {
        let m = self.x.len();
        let n = self.y.len();
        debug_assert!(k < self.len());
        let mut lo = vec![0usize; m];
        let mut hi = vec![n; m];
        let mut less = vec![0usize; m];
        let mut le = vec![0usize; m];
        let mut prefix = vec![0u64; m + 1];
        let mut rng = SplitMix(0x005E_ED0F_CA4A_12E5);
        let gather_limit = (4 * (m + n)).max(4096) as u64;
        loop {
            let mut below = 0u64;
            for i in 0..m {
                prefix[i + 1] = prefix[i] + (hi[i] - lo[i]) as u64;
                below += lo[i] as u64;
            }
            let remaining = prefix[m];
            let target = k - below; // rank among the candidates
            if remaining <= gather_limit {
                let mut cand = Vec::with_capacity(remaining as usize);
                for i in 0..m {
                    for j in lo[i]..hi[i] {
                        cand.push(self.at(i, j));
                    }
                }
                let (_, v, _) = cand.select_nth_unstable_by(target as usize, f64::total_cmp);
                return *v;
            }
            // Floyd–Rivest style pivot from a random sample of candidates
            let mut sample = [0.0f64; SAMPLE];
            for s in &mut sample {
                let r = rng.below(remaining);
                let i = prefix.partition_point(|&p| p <= r) - 1;
                let j = lo[i] + (r - prefix[i]) as usize;
                *s = self.at(i, j);
            }
            sample.sort_unstable_by(f64::total_cmp);
            let pos = ((target as f64 / remaining as f64) * (SAMPLE as f64 - 1.0)).round() as usize;
            let p = sample[pos.min(SAMPLE - 1)];
            let count_less = self.row_counts(p, true, &mut less);
            if k < count_less {
                for i in 0..m {
                    hi[i] = hi[i].min(less[i]);
                }
                continue;
            }
            let count_le = self.row_counts(p, false, &mut le);
            if k < count_le {
                return p;
            }
            for i in 0..m {
                lo[i] = lo[i].max(le[i]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kth_matches_sorting_all_differences() {
        let mut state = SplitMix(7);
        for (m, n) in [(1, 1), (3, 5), (70, 90), (150, 40)] {
            // coarse values so that many differences tie
            let mut x: Vec<f64> = (0..m).map(|_| (state.below(50) as f64) * 0.5).collect();
            let mut y: Vec<f64> = (0..n).map(|_| (state.below(60) as f64) * 0.5).collect();
            x.sort_unstable_by(f64::total_cmp);
            y.sort_unstable_by(f64::total_cmp);
            let mut all: Vec<f64> = x
                .iter()
                .flat_map(|a| y.iter().map(move |b| b - a))
                .collect();
            all.sort_unstable_by(f64::total_cmp);
            let d = PairwiseDiffs::new(&x, &y);
            for k in [0, all.len() / 3, all.len() / 2, all.len() - 1] {
                assert_eq!(d.kth(k as u64), all[k], "m={m} n={n} k={k}");
            }
        }
    }
}
