//! Small robust statistics on caller-owned slices (no allocation): medians, quartiles,
//! MAD, Bowley skew, binomial and Rayleigh tail probabilities.

/// Median of a **sorted** slice (0 for an empty one).
pub(crate) fn median_sorted(v: &[f64]) -> f64 {
    let n = v.len();
    if n == 0 {
        return 0.0;
    }
    let mid = n / 2;
    if n % 2 == 1 {
        v.get(mid).copied().unwrap_or(0.0)
    } else {
        let a = v.get(mid - 1).copied().unwrap_or(0.0);
        let b = v.get(mid).copied().unwrap_or(0.0);
        (a + b) / 2.0
    }
}

/// Quartiles (Q1, Q2, Q3) of a **sorted** slice, as the `stats` Go package RITA uses
/// computes them: medians of the lower and upper halves, the middle element excluded
/// when the length is odd.
pub(crate) fn quartiles_sorted(v: &[f64]) -> (f64, f64, f64) {
    let n = v.len();
    let q2 = median_sorted(v);
    let (lo, hi) = if n % 2 == 1 {
        (v.get(..n / 2), v.get(n / 2 + 1..))
    } else {
        (v.get(..n / 2), v.get(n / 2..))
    };
    (
        median_sorted(lo.unwrap_or(&[])),
        q2,
        median_sorted(hi.unwrap_or(&[])),
    )
}

/// Bowley (quartile) skew as RITA computes it: 0 unless the IQR is at least 10 units
/// and the median differs from both quartiles.
pub(crate) fn bowley_skew(q1: f64, q2: f64, q3: f64) -> f64 {
    let den = q3 - q1;
    if den >= 10.0 && q2 != q1 && q2 != q3 {
        (q1 + q3 - 2.0 * q2) / den
    } else {
        0.0
    }
}

/// Median absolute deviation of a **sorted** slice around its median, using `scratch`
/// (resized) for the deviations.
pub(crate) fn mad_sorted(v: &[f64], median: f64, scratch: &mut Vec<f64>) -> f64 {
    scratch.clear();
    scratch.extend(v.iter().map(|x| (x - median).abs()));
    scratch.sort_unstable_by(f64::total_cmp);
    median_sorted(scratch)
}

/// log10 of P(X ≥ k) for X ~ Binomial(n, p), summed in log space (n is small).
pub(crate) fn binomial_tail_log10(k: u32, n: u32, p: f64) -> f64 {
    if k == 0 {
        return 0.0;
    }
    if k > n || p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    let (lp, lq) = (p.ln(), (1.0 - p).ln());
    let term = |i: u32| ln_choose(n, i) + f64::from(i) * lp + f64::from(n - i) * lq;
    let max = (k..=n).map(term).fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = (k..=n).map(|i| (term(i) - max).exp()).sum();
    (max + sum.ln()) / std::f64::consts::LN_10
}

fn ln_choose(n: u32, k: u32) -> f64 {
    let k = k.min(n - k);
    (0..k)
        .map(|i| (f64::from(n - i)).ln() - (f64::from(i + 1)).ln())
        .sum()
}

/// log10 of the Rayleigh test's p-value for `n` phases with mean resultant length `r`
/// (Zar's approximation: p = exp(√(1 + 4n + 4(n² − R²)) − (1 + 2n)), R = n·r).
pub(crate) fn rayleigh_log10_p(n: usize, r: f64) -> f64 {
    let n = n as f64;
    let big_r = n * r;
    let ln_p = (1.0 + 4.0 * n + 4.0 * (n * n - big_r * big_r))
        .max(0.0)
        .sqrt()
        - (1.0 + 2.0 * n);
    (ln_p / std::f64::consts::LN_10).min(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quartiles_follow_the_exclusive_halves_method() {
        // Known values of the method (Go stats.Quartile doc example).
        let v = [
            6.0, 7.0, 15.0, 36.0, 39.0, 40.0, 41.0, 42.0, 43.0, 47.0, 49.0,
        ];
        assert_eq!(quartiles_sorted(&v), (15.0, 40.0, 43.0));
        let v = [7.0, 15.0, 36.0, 39.0, 40.0, 41.0];
        assert_eq!(quartiles_sorted(&v), (15.0, 37.5, 40.0));
    }

    #[test]
    fn bowley_is_zero_for_small_iqr_and_signed_otherwise() {
        assert_eq!(bowley_skew(1.0, 2.0, 5.0), 0.0);
        assert!((bowley_skew(10.0, 12.0, 30.0) - 0.8).abs() < 1e-12);
        assert!((bowley_skew(10.0, 28.0, 30.0) + 0.8).abs() < 1e-12);
    }

    #[test]
    fn binomial_tail_matches_direct_sums() {
        // P(Bin(4, 0.5) >= 3) = 5/16.
        let got = 10f64.powf(binomial_tail_log10(3, 4, 0.5));
        assert!((got - 5.0 / 16.0).abs() < 1e-12, "{got}");
        assert_eq!(binomial_tail_log10(0, 4, 0.5), 0.0);
    }

    #[test]
    fn rayleigh_p_is_one_for_no_coherence_and_tiny_for_full() {
        assert!(rayleigh_log10_p(30, 0.0) > -0.1);
        assert!(rayleigh_log10_p(30, 1.0) < -10.0);
    }
}
