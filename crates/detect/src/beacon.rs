//! Beaconing and C2: per (client, server, port, proto) regularity, scored with RITA v5's
//! beacon semantics on a bounded sketch, gated by a significance test against memoryless
//! arrivals that survives packet sampling.
//!
//! # The sketch (≤ 256 bytes per pair, key included)
//! [`PairState`] keeps exact totals (connections, first/last time, bytes each way, the
//! longest connection) and up to [`KEPT`] connection start times with their sizes. When
//! it is full it drops every other point and from then on keeps every `2^level`-th
//! connection ("systematic decimation"). Decimating a periodic train keeps it periodic
//! (period × 2^level), so the scale-free RITA statistics and the phase test still apply;
//! counts in the 24-bin histogram are weighted by 2^level.
//!
//! # The score
//! RITA v5 (`analysis/beacons.go`): timestamp score = mean of 1 − |Bowley skew| and
//! (median − MAD)/median of the inter-arrival times; data-size score likewise on the
//! sizes; histogram score = max(1 − coefficient of variation, bimodal fit) over 24 bins
//! spanning the observation window; duration score = max(coverage of the window, longest
//! run of non-empty bins / 12) once ≥ 6 bins are non-empty; beacon = weighted mean
//! (0.25 each). Deviations, on purpose: sizes are client → server bytes (unidirectional
//! exports carry no reply bytes in the same record), and the statistics run on the kept
//! points.
//!
//! RITA scores long series of same-sized connections highly even when their timing is
//! random (exponential inter-arrivals give a timestamp score ≈ 0.5). So the reported
//! beacon score is the geometric mean of RITA's score and a **timing significance**
//! score, the stronger of two tests against memoryless (Poisson) arrivals:
//! - *interval concentration*: how many intervals lie within ±10 % of the median; under
//!   an exponential law that probability is 2^-0.9 − 2^-1.1 = 0.069, so a binomial tail
//!   (the median interval itself left out) gives a p-value;
//! - *phase coherence* (sampling-robust): under 1:N packet sampling most connections
//!   vanish and the intervals become random multiples of the period, which ruins every
//!   interval statistic, but the surviving start times still sit on the lattice
//!   t0 + k·P. For candidate periods (the smallest intervals divided by 1–24, each
//!   refined by a least-squares fit over all pairwise differences) the Rayleigh test on
//!   the phases t/P gives a p-value, corrected for the candidates and the frequencies
//!   searched (look-elsewhere).
//!
//! The timing score is −log10(p)/12, capped at 1: p = 10⁻⁶ scores 0.5, RITA's base
//! threshold. Assumption (stated in the crate docs): jitter is per connection around a
//! schedule; a cumulative random walk (`sleep(P ± j)` on a busy client) loses phase
//! over long gaps, and then only the interval statistics (unsampled data) detect it.
//!
//! # C2
//! A beacon is promoted to `c2` by traits documented for C2 channels, combined by
//! noisy-OR with the beacon score: a non-standard service port (ATT&CK T1571, weight
//! 0.5), persistent presence (total connected time, as RITA's long-connection
//! analysis sums it; up to 0.3 at one hour), and an upload-heavy exchange
//! (exfiltration over the C2 channel, T1041, up to 0.3). Promotion needs a repeated
//! relationship (≥ `min_connections`) that the server answered with data, traits that
//! alone reach 0.5, and a combined score ≥ the configured C2 threshold (0.75). The
//! weights are priors from the behaviour catalogue, not fitted to the test files; a
//! RAT that is not periodic at all can still be promoted by its traits.

use std::net::IpAddr;

use rustc_hash::FxHashMap;

use crate::orient::{Oriented, is_nonstandard_port, orient};
use crate::stats;
use mamori_core::finding::{BeaconEvidence, Clients, Evidence, Finding, FindingKind};
use mamori_flow::FlowRecord;

/// P(|X − m| ≤ 0.1·m) for exponential X with median m: 2^-0.9 − 2^-1.1.
const CONC_NULL: f64 = 0.069_4;

/// Candidate periods are small differences divided by 1..=this: under 1:N sampling the
/// smallest surviving differences are small multiples of the period.
const PHASE_DIVISORS: u32 = 24;

/// Flag bit in `PairState::level`: some record was packet-sampled.
const SAMPLED: u8 = 0x80;

/// Connection start times kept per pair.
pub const KEPT: usize = 32;

/// Thresholds and weights of the beacon detector. Defaults follow RITA v5's
/// `default_config.hjson` where RITA has the setting.
#[derive(Clone, Debug)]
pub struct BeaconConfig {
    /// Fewest connections a pair needs to be scored (RITA `unique_connection_threshold`).
    pub min_connections: u32,
    /// Report pairs whose beacon score reaches this (RITA base threshold 50 %).
    pub report_threshold: f64,
    /// Weights of the timestamp, data-size, duration and histogram scores (sum 1).
    pub weights: [f64; 4],
    /// Non-empty histogram bins needed for a duration score (RITA: 6).
    pub duration_min_bins: u32,
    /// Consecutive bins for a full consistency score (RITA: 12).
    pub duration_ideal_bins: u32,
    /// Bar-height grouping for the bimodal fit, as a share of the tallest bar (0.05).
    pub histogram_mode_sensitivity: f64,
    /// Bars that may be dropped as outliers in the bimodal fit (1).
    pub bimodal_outlier_removal: u32,
    /// Non-empty bins needed before the bimodal fit counts (11).
    pub bimodal_min_bins: u32,
    /// Fewest kept points for the phase test.
    pub phase_min_points: usize,
    /// Run the phase test on unsampled pairs too (slow; helps only series with many
    /// missing connections).
    pub phase_test_unsampled: bool,
    /// Shortest period considered, seconds.
    pub min_period_s: f64,
    /// Promote to `c2` at this combined score.
    pub c2_threshold: f64,
    /// Most pairs tracked at once; new pairs beyond it are counted, not tracked.
    pub max_pairs: usize,
}

impl Default for BeaconConfig {
    fn default() -> Self {
        Self {
            min_connections: 4,
            report_threshold: 0.5,
            weights: [0.25; 4],
            duration_min_bins: 6,
            duration_ideal_bins: 12,
            histogram_mode_sensitivity: 0.05,
            bimodal_outlier_removal: 1,
            bimodal_min_bins: 11,
            phase_min_points: 8,
            phase_test_unsampled: false,
            min_period_s: 1.0,
            c2_threshold: 0.75,
            max_pairs: 1 << 20,
        }
    }
}

/// The tracked pair: client, server, server port, protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PairKey {
    /// The client (pseudonymised in sensor mode).
    pub client: IpAddr,
    /// The server.
    pub server: IpAddr,
    /// The server port (0 for ICMP).
    pub port: u16,
    /// IP protocol.
    pub proto: u8,
}

/// The bounded per-pair sketch (see the module docs).
#[derive(Clone, Debug)]
pub struct PairState {
    first_ms: i64,
    last_ms: i64,
    bytes_up: u64,
    bytes_down: u64,
    count: u32,
    max_dur_ms: u32,
    /// Sum of connection durations, ms (saturating).
    total_dur_ms: u32,
    /// Start and end (ms after `first_ms`) and client port of the latest connection,
    /// to merge active-timeout splits of one long connection.
    last_start_off: u32,
    last_end_off: u32,
    last_sport: u16,
    /// log2 of the decimation step (low 5 bits) and [`SAMPLED`] (bit 7), in one byte
    /// to keep the sketch within 256 bytes with its key.
    level: u8,
    len: u8,
    ts: [u32; KEPT],
    size: [u8; KEPT],
}

/// Sizes are kept as 8 steps per octave: 9 % resolution, 1 B to 4 GB in a byte.
fn encode_size(bytes: u64) -> u8 {
    let code = ((bytes as f64 + 1.0).log2() * 8.0).round();
    code.clamp(0.0, 255.0) as u8
}

fn decode_size(code: u8) -> f64 {
    (f64::from(code) / 8.0).exp2() - 1.0
}

fn offset(ms: i64, base: i64) -> u32 {
    ms.saturating_sub(base).clamp(0, i64::from(u32::MAX)) as u32
}

impl PairState {
    /// An empty sketch whose offsets start at `start_ms`.
    pub fn new(start_ms: i64) -> Self {
        Self {
            first_ms: start_ms,
            last_ms: start_ms,
            bytes_up: 0,
            bytes_down: 0,
            count: 0,
            max_dur_ms: 0,
            total_dur_ms: 0,
            last_start_off: 0,
            last_end_off: 0,
            last_sport: 0,
            level: 0,
            len: 0,
            ts: [0; KEPT],
            size: [0; KEPT],
        }
    }

    /// Marks the pair as seen through packet sampling (enables the phase test).
    pub fn mark_sampled(&mut self) {
        self.level |= SAMPLED;
    }

    fn sampled(&self) -> bool {
        self.level & SAMPLED != 0
    }

    /// log2 of the decimation step of the kept points.
    pub fn decimation(&self) -> u8 {
        self.level & 0x1f
    }

    /// Connections observed (active-timeout continuations merged).
    pub fn connections(&self) -> u32 {
        self.count
    }

    /// Median interval between connections (seconds, undoing the decimation) and median
    /// client → server size (bytes) of the kept points; `None` under 4 points.
    pub(crate) fn medians(&self, scratch: &mut Scratch) -> Option<(f64, f64)> {
        let n = usize::from(self.len);
        if n < 4 {
            return None;
        }
        let Scratch { a, b, .. } = scratch;
        a.clear();
        a.extend(
            self.ts[..n]
                .windows(2)
                .map(|w| f64::from(w[1] - w[0]) / 1000.0),
        );
        a.sort_unstable_by(f64::total_cmp);
        b.clear();
        b.extend(self.size[..n].iter().map(|c| decode_size(*c)));
        b.sort_unstable_by(f64::total_cmp);
        let scale = f64::from(1u32 << self.decimation());
        Some((stats::median_sorted(a) / scale, stats::median_sorted(b)))
    }

    /// First and last connection start, ms.
    pub(crate) fn span(&self) -> (i64, i64) {
        (self.first_ms, self.last_ms)
    }

    /// Adds one client → server connection (or an active-timeout continuation of the
    /// latest one: same client port, starting within 2 s of its end).
    pub fn observe(&mut self, start_ms: i64, end_ms: i64, sport: u16, up: u64, down: u64) {
        if start_ms < self.first_ms {
            // Out-of-order record earlier than the first: rebase the offsets.
            let shift = offset(self.first_ms, start_ms);
            for t in self.ts.iter_mut().take(usize::from(self.len)) {
                *t = t.saturating_add(shift);
            }
            self.last_start_off = self.last_start_off.saturating_add(shift);
            self.last_end_off = self.last_end_off.saturating_add(shift);
            self.first_ms = start_ms;
        }
        let end_ms = end_ms.max(start_ms);
        self.last_ms = self.last_ms.max(start_ms);
        self.bytes_up = self.bytes_up.saturating_add(up);
        self.bytes_down = self.bytes_down.saturating_add(down);
        let (s, e) = (
            offset(start_ms, self.first_ms),
            offset(end_ms, self.first_ms),
        );
        let continuation = self.count > 0
            && sport != 0
            && sport == self.last_sport
            && s >= self.last_start_off
            && s <= self.last_end_off.saturating_add(2_000);
        if continuation {
            self.total_dur_ms = self
                .total_dur_ms
                .saturating_add(e.saturating_sub(self.last_end_off));
            self.last_end_off = self.last_end_off.max(e);
            self.max_dur_ms = self.max_dur_ms.max(self.last_end_off - self.last_start_off);
            return;
        }
        self.last_sport = sport;
        self.last_start_off = s;
        self.last_end_off = e;
        self.max_dur_ms = self.max_dur_ms.max(e - s);
        self.total_dur_ms = self.total_dur_ms.saturating_add(e - s);
        let index = self.count;
        self.count = self.count.saturating_add(1);
        if !index.is_multiple_of(1 << self.decimation()) {
            return;
        }
        if usize::from(self.len) == KEPT {
            // Keep every other point: the kept set becomes every 2^(level+1)-th.
            for i in 0..KEPT / 2 {
                self.ts[i] = self.ts[2 * i];
                self.size[i] = self.size[2 * i];
            }
            self.len = (KEPT / 2) as u8;
            self.level = (self.level & SAMPLED) | (self.decimation() + 1).min(31);
            if !index.is_multiple_of(1 << self.decimation()) {
                return;
            }
        }
        // Insert in time order (records arrive roughly, not exactly, ordered).
        let n = usize::from(self.len);
        let mut at = n;
        while at > 0 && self.ts[at - 1] > s {
            at -= 1;
        }
        let mut i = n;
        while i > at {
            self.ts[i] = self.ts[i - 1];
            self.size[i] = self.size[i - 1];
            i -= 1;
        }
        self.ts[at] = s;
        self.size[at] = encode_size(up);
        self.len += 1;
    }

    /// Scores the pair against the observation window `[window_start, window_end]`
    /// (ms). `None` when the pair has too few connections.
    pub fn score(
        &self,
        window: (i64, i64),
        cfg: &BeaconConfig,
        scratch: &mut Scratch,
    ) -> Option<PairScore> {
        let n = usize::from(self.len);
        if self.count < cfg.min_connections || n < 4 {
            return None;
        }
        let ts = &self.ts[..n];
        let sizes = &self.size[..n];
        let Scratch { a, b, c } = scratch;

        // Timestamp score.
        a.clear();
        a.extend(ts.windows(2).map(|w| f64::from(w[1] - w[0]) / 1000.0));
        let nonzero = a.iter().filter(|d| **d > 0.0).count();
        if nonzero < 3 {
            return None;
        }
        a.sort_unstable_by(f64::total_cmp);
        let (q1, q2, q3) = stats::quartiles_sorted(a);
        let ts_skew = stats::bowley_skew(q1, q2, q3);
        let ts_mad = stats::mad_sorted(a, q2, b);
        let ts_mad_score = if q2 >= 1.0 {
            ((q2 - ts_mad) / q2).max(0.0)
        } else {
            1.0
        };
        let ts_score = round3((1.0 - ts_skew.abs() + ts_mad_score) / 2.0);

        // Interval concentration around the median (sorted intervals in `a`).
        let tol = 0.1 * q2;
        let near = a.iter().filter(|d| (**d - q2).abs() <= tol).count();
        let intervals = a.len() as u32;
        let conc_log10_p = if q2 >= cfg.min_period_s {
            // The median itself is one of the near intervals when the count is odd.
            let k = (near as u32).saturating_sub(intervals % 2);
            stats::binomial_tail_log10(k, intervals.saturating_sub(intervals % 2), CONC_NULL)
        } else {
            0.0
        };

        // Phase coherence on candidate periods from the smallest intervals.
        // Run only for sampled pairs (unless configured otherwise) whose intervals alone
        // are not already conclusive (p > 10⁻⁶): it is the slow path (~100 µs a pair).
        let (phase_period, phase_r, phase_log10_p) =
            if conc_log10_p > -6.0 && (self.sampled() || cfg.phase_test_unsampled) {
                self.phase_test(cfg, c)
            } else {
                (0.0, 0.0, 0.0)
            };

        // Data-size score.
        b.clear();
        b.extend(sizes.iter().map(|c| decode_size(*c)));
        b.sort_unstable_by(f64::total_cmp);
        let (d1, d2, d3) = stats::quartiles_sorted(b);
        let ds_skew = stats::bowley_skew(d1, d2, d3);
        a.clear();
        a.extend(b.iter().map(|x| (x - d2).abs()));
        a.sort_unstable_by(f64::total_cmp);
        let ds_mad = stats::median_sorted(a);
        let ds_mad_score = if d2 >= 1.0 {
            ((d2 - ds_mad) / d2).max(0.0)
        } else {
            0.0
        };
        let ds_score = round3((1.0 - ds_skew.abs() + ds_mad_score) / 2.0);

        let (hist_score, dur_score) = self.histogram_and_duration(window, cfg);
        let [wt, wd, wdur, wh] = cfg.weights;
        let rita = round3(ts_score * wt + ds_score * wd + dur_score * wdur + hist_score * wh);

        let timing_neg_log10 = (-conc_log10_p).max(-phase_log10_p).max(0.0);
        let timing = (timing_neg_log10 / 12.0).min(1.0);
        let beacon = (rita * timing).sqrt();

        let total = self.bytes_up.saturating_add(self.bytes_down);
        let upload_share = if total > 0 {
            self.bytes_up as f64 / total as f64
        } else {
            0.0
        };
        Some(PairScore {
            beacon,
            evidence: BeaconEvidence {
                client: None,
                connections: u64::from(self.count),
                kept_points: n as u32,
                decimation: self.decimation(),
                median_interval_s: q2,
                ts_skew,
                ts_mad_s: ts_mad,
                ts_score,
                median_bytes: d2,
                ds_skew,
                ds_mad,
                ds_score,
                hist_score,
                dur_score,
                rita_score: rita,
                phase_period_s: phase_period,
                phase_coherence: phase_r,
                phase_neg_log10_p: -phase_log10_p,
                max_duration_s: f64::from(self.max_dur_ms) / 1000.0,
                // Concurrent connections must not count twice: presence is capped by
                // the relationship's elapsed span.
                total_duration_s: f64::from(
                    self.total_dur_ms
                        .min(self.last_end_off.max(offset(self.last_ms, self.first_ms))),
                ) / 1000.0,
                down_bytes_per_connection: self.bytes_down as f64 / f64::from(self.count.max(1)),
                upload_share,
                nonstandard_port: false,
                server_clients: 0,
            },
        })
    }

    /// Best (period, coherence, log10 p corrected) over the candidate periods.
    /// `diffs` is scratch for the pairwise differences.
    ///
    /// A candidate (an interval divided by 1–24) is far too coarse to hold phase over a
    /// day (a 60 s period must be right to ~P²/T = 0.04 s), so each is refined first:
    /// walking all pairwise differences in increasing order, each one consistent with
    /// the current period (within P/4 of a multiple k·P) joins a least-squares fit
    /// P = Σk·d / Σk², so the long differences pin P down (the per-point jitter does not
    /// grow with the span). The p-value is corrected for the candidates tried and for
    /// the frequencies the refinement could have landed on (span / 2P per candidate).
    fn phase_test(&self, cfg: &BeaconConfig, diffs: &mut Vec<f64>) -> (f64, f64, f64) {
        let n = usize::from(self.len);
        if n < cfg.phase_min_points {
            return (0.0, 0.0, 0.0);
        }
        let ts = &self.ts[..n];
        diffs.clear();
        for (i, a) in ts.iter().enumerate() {
            for b in &ts[i + 1..] {
                diffs.push(f64::from(b - a) / 1000.0);
            }
        }
        diffs.sort_unstable_by(f64::total_cmp);
        let span = diffs.last().copied().unwrap_or(0.0);
        // Candidate bases: the three smallest distinct differences (5 % apart) of at least
        // the minimum period; under 1:N sampling they are small multiples of the period.
        let mut bases = [0.0f64; 3];
        let mut nb = 0;
        for d in diffs.iter().copied().filter(|d| *d >= cfg.min_period_s) {
            if nb == 0 || d > bases[nb - 1] * 1.05 {
                bases[nb] = d;
                nb += 1;
                if nb == bases.len() {
                    break;
                }
            }
        }
        let mut trials = 0.0f64;
        let mut tested = [0.0f64; 3 * PHASE_DIVISORS as usize];
        let mut ntested = 0;
        let mut best = (0.0, 0.0, 0.0);
        for base in &bases[..nb] {
            for m in 1..=PHASE_DIVISORS {
                let coarse = base / f64::from(m);
                if coarse < cfg.min_period_s {
                    break;
                }
                // Look-elsewhere: the frequencies this candidate's refinement could reach.
                trials += (span / (2.0 * coarse)).max(1.0);
                let Some(period) = refine_period(coarse, f64::from(m), diffs) else {
                    continue;
                };
                if period < cfg.min_period_s
                    || tested[..ntested]
                        .iter()
                        .any(|p| (p - period).abs() < period * 1e-4)
                {
                    continue;
                }
                if let Some(slot) = tested.get_mut(ntested) {
                    *slot = period;
                    ntested += 1;
                }
                let w = std::f64::consts::TAU / period;
                let (mut c, mut s) = (0.0f64, 0.0f64);
                for t in ts {
                    let phase = w * (f64::from(*t) / 1000.0);
                    c += phase.cos();
                    s += phase.sin();
                }
                let r = (c * c + s * s).sqrt() / n as f64;
                let lp = stats::rayleigh_log10_p(n, r);
                if lp < best.2 {
                    best = (period, r, lp);
                }
            }
        }
        best.2 = (best.2 + trials.max(1.0).log10()).min(0.0);
        best
    }

    /// RITA's histogram and duration scores over 24 bins spanning the window.
    fn histogram_and_duration(&self, window: (i64, i64), cfg: &BeaconConfig) -> (f64, f64) {
        const BINS: usize = 24;
        let (w0, w1) = window;
        if w1 <= w0 {
            return (0.0, 0.0);
        }
        let span = w1.saturating_sub(w0) as f64;
        let weight = f64::from(1u32 << self.decimation());
        let mut hist = [0.0f64; BINS];
        for t in &self.ts[..usize::from(self.len)] {
            let at = (self
                .first_ms
                .saturating_add(i64::from(*t))
                .saturating_sub(w0)) as f64;
            let bin = ((at / span) * BINS as f64)
                .floor()
                .clamp(0.0, (BINS - 1) as f64) as usize;
            hist[bin] += weight;
        }
        let total: f64 = hist.iter().sum();
        if total <= 0.0 {
            return (0.0, 0.0);
        }
        let mean = total / BINS as f64;
        let sd = (hist.iter().map(|h| (h - mean).powi(2)).sum::<f64>() / BINS as f64).sqrt();
        let cv = sd / mean;
        let cv_score = if cv > 1.0 { 0.0 } else { round3(1.0 - cv) };

        let tallest = hist.iter().copied().fold(0.0, f64::max);
        let bin_size = (tallest * cfg.histogram_mode_sensitivity).ceil().max(1.0);
        let mut modes: [(f64, u32); BINS] = [(0.0, 0); BINS];
        let mut nmodes = 0;
        let mut bars = 0u32;
        for h in hist.iter().copied().filter(|h| *h > 0.0) {
            bars += 1;
            let key = (h / bin_size).floor() * bin_size;
            if let Some(m) = modes[..nmodes].iter_mut().find(|m| m.0 == key) {
                m.1 += 1;
            } else {
                modes[nmodes] = (key, 1);
                nmodes += 1;
            }
        }
        let mut longest = 0u32;
        let mut run = 0u32;
        for i in 0..2 * BINS {
            if hist[i % BINS] > 0.0 {
                run += 1;
                longest = longest.max(run);
            } else {
                run = 0;
            }
        }
        let longest = longest.min(BINS as u32);
        let bimodal = if bars >= cfg.bimodal_min_bins {
            let (mut first, mut second) = (0u32, 0u32);
            for (_, c) in &modes[..nmodes] {
                if *c > first {
                    second = first;
                    first = *c;
                } else if *c > second {
                    second = *c;
                }
            }
            let adjusted = f64::from(bars.saturating_sub(cfg.bimodal_outlier_removal)).max(1.0);
            round3((f64::from(first + second) / adjusted).min(1.0))
        } else {
            0.0
        };
        let hist_score = cv_score.max(bimodal);

        let dur_score = if bars >= cfg.duration_min_bins {
            let coverage = ((self.last_ms.saturating_sub(self.first_ms) as f64 / span) * 1000.0)
                .ceil()
                / 1000.0;
            let consistency = ((f64::from(longest) / f64::from(cfg.duration_ideal_bins)) * 1000.0)
                .ceil()
                / 1000.0;
            coverage.min(1.0).max(consistency.min(1.0))
        } else {
            0.0
        };
        (hist_score, dur_score)
    }
}

/// Least-squares period over the pairwise differences consistent with `period` (a
/// candidate made from one difference of `cycles` periods), in one ascending pass: a
/// difference gets its cycle count k only while the fit is precise enough for k to be
/// unambiguous (k·σ_P < P/4); the fit P = Σk·d / Σk² then tightens σ_P, which lets
/// longer differences in. `None` when most early differences do not fit (a wrong
/// candidate: abandoned before it costs a full pass).
fn refine_period(mut period: f64, cycles: f64, diffs: &[f64]) -> Option<f64> {
    let mut sigma_p = period / 8.0 / cycles.max(1.0);
    let (mut skd, mut skk, mut ss) = (0.0f64, 0.0f64, 0.0f64);
    let (mut fit, mut seen) = (0u32, 0u32);
    for d in diffs.iter().copied() {
        let k = (d / period).round();
        if k < 1.0 {
            continue;
        }
        if k * sigma_p > period / 4.0 {
            break;
        }
        seen += 1;
        let resid = d - k * period;
        if resid.abs() > period / 4.0 {
            if seen >= 8 && 2 * fit < seen {
                return None;
            }
            continue;
        }
        fit += 1;
        skd += k * d;
        skk += k * k;
        ss += resid * resid;
        period = skd / skk;
        let sigma_d = (ss / f64::from(fit)).sqrt().max(period / 32.0);
        sigma_p = sigma_d / skk.sqrt();
    }
    (fit >= 3).then_some(period)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Reusable buffers for scoring (no allocation per pair).
#[derive(Debug, Default)]
pub struct Scratch {
    a: Vec<f64>,
    b: Vec<f64>,
    c: Vec<f64>,
}

/// A pair's beacon score and its figures.
#[derive(Clone, Debug)]
pub struct PairScore {
    /// Geometric mean of RITA's score and the timing significance, 0–1.
    pub beacon: f64,
    /// The figures.
    pub evidence: BeaconEvidence,
}

/// Streams client → server records into per-pair sketches; scores them on
/// [`BeaconDetector::findings`].
#[derive(Debug, Default)]
pub struct BeaconDetector {
    cfg: BeaconConfig,
    pairs: FxHashMap<PairKey, PairState>,
    window: Option<(i64, i64)>,
    /// Pairs not tracked because `max_pairs` was reached.
    pub untracked_pairs: u64,
}

impl BeaconDetector {
    /// A detector with `cfg`.
    pub fn new(cfg: BeaconConfig) -> Self {
        Self {
            cfg,
            ..Self::default()
        }
    }

    /// Pairs currently tracked.
    pub fn tracked_pairs(&self) -> usize {
        self.pairs.len()
    }

    /// The tracked pairs (for the fan-in detector).
    pub(crate) fn pairs(&self) -> &FxHashMap<PairKey, PairState> {
        &self.pairs
    }

    /// The observation window (earliest and latest record start), if any record came.
    pub fn window(&self) -> Option<(i64, i64)> {
        self.window
    }

    /// The configuration.
    pub fn config(&self) -> &BeaconConfig {
        &self.cfg
    }

    /// Adds one record.
    pub fn observe(&mut self, r: &FlowRecord) {
        if r.start_ms <= 0 {
            return;
        }
        self.window = Some(match self.window {
            None => (r.start_ms, r.start_ms),
            Some((a, b)) => (a.min(r.start_ms), b.max(r.start_ms)),
        });
        let o: Oriented = orient(r);
        let key = PairKey {
            client: o.client,
            server: o.server,
            port: o.server_port,
            proto: r.protocol,
        };
        if !o.forward {
            // A reply record of a unidirectional export: bytes only, never a new pair.
            if let Some(p) = self.pairs.get_mut(&key) {
                p.bytes_down = p.bytes_down.saturating_add(o.down_bytes);
            }
            return;
        }
        let len = self.pairs.len();
        let max = self.cfg.max_pairs;
        match self.pairs.get_mut(&key) {
            Some(p) => {
                p.observe(
                    r.start_ms,
                    r.end_ms,
                    o.client_port,
                    o.up_bytes,
                    o.down_bytes,
                );
                if r.sampling_rate > 1 {
                    p.mark_sampled();
                }
            }
            None if len < max => {
                let mut p = PairState::new(r.start_ms);
                if r.sampling_rate > 1 {
                    p.mark_sampled();
                }
                p.observe(
                    r.start_ms,
                    r.end_ms,
                    o.client_port,
                    o.up_bytes,
                    o.down_bytes,
                );
                self.pairs.insert(key, p);
            }
            None => self.untracked_pairs += 1,
        }
    }

    /// Scores every pair; returns beacon and C2 findings (one per server:port:proto, the
    /// strongest pair's evidence, all its beaconing clients listed), deterministic order.
    pub fn findings(&self) -> Vec<Finding> {
        let Some(window) = self.window else {
            return Vec::new();
        };
        let mut scratch = Scratch::default();
        // Distinct clients per server:port:proto among tracked pairs.
        let mut fan_in: FxHashMap<(IpAddr, u16, u8), u64> = FxHashMap::default();
        for k in self.pairs.keys() {
            *fan_in.entry((k.server, k.port, k.proto)).or_default() += 1;
        }
        struct Acc {
            best: (f64, PairKey, PairScore, bool),
            clients: Vec<IpAddr>,
            first: i64,
            last: i64,
        }
        let mut per_server: std::collections::BTreeMap<(IpAddr, u16, u8), Acc> = Default::default();
        let mut keys: Vec<&PairKey> = self.pairs.keys().collect();
        keys.sort_unstable();
        for key in keys {
            let Some(state) = self.pairs.get(key) else {
                continue;
            };
            let Some(mut s) = state.score(window, &self.cfg, &mut scratch) else {
                continue;
            };
            s.evidence.client = Some(key.client);
            s.evidence.nonstandard_port =
                key.proto != 1 && key.proto != 58 && is_nonstandard_port(key.port);
            s.evidence.server_clients = fan_in
                .get(&(key.server, key.port, key.proto))
                .copied()
                .unwrap_or(1);
            let (c2, is_c2) = c2_score(s.beacon, &s.evidence, self.cfg.c2_threshold);
            let score = if is_c2 { c2 } else { s.beacon };
            if score < self.cfg.report_threshold && !is_c2 {
                continue;
            }
            let acc = per_server
                .entry((key.server, key.port, key.proto))
                .or_insert(Acc {
                    best: (-1.0, *key, s.clone(), false),
                    clients: Vec::new(),
                    first: state.first_ms,
                    last: state.last_ms,
                });
            acc.clients.push(key.client);
            acc.first = acc.first.min(state.first_ms);
            acc.last = acc.last.max(state.last_ms);
            if score > acc.best.0 {
                acc.best = (score, *key, s, is_c2);
            }
        }
        per_server
            .into_iter()
            .map(|((server, port, proto), acc)| {
                let (score, _, s, is_c2) = acc.best;
                Finding {
                    kind: if is_c2 {
                        FindingKind::C2
                    } else {
                        FindingKind::Beacon
                    },
                    address: server,
                    port,
                    proto,
                    score: round3(score),
                    first_seen: acc.first,
                    last_seen: acc.last,
                    clients: Clients::new(acc.clients.len() as u64, acc.clients),
                    evidence: Evidence::Beacon(s.evidence),
                    feed: None,
                }
            })
            .collect()
    }
}

/// Noisy-OR of the beacon score with the C2 traits; `(score, promoted)`.
///
/// Promotion needs a repeated, answered relationship (the caller checks the connection
/// count), the server sending more than bare TCP headers back (≥ 120 bytes per
/// connection), traits that alone reach 0.5, and the combined score at `threshold`.
pub fn c2_score(beacon: f64, e: &BeaconEvidence, threshold: f64) -> (f64, bool) {
    let port = if e.nonstandard_port { 0.5 } else { 0.0 };
    let long = 0.3 * (e.total_duration_s / 3600.0).min(1.0);
    let upload = 0.3 * ((e.upload_share - 0.5) / 0.5).clamp(0.0, 1.0);
    let traits = 1.0 - (1.0 - port) * (1.0 - long) * (1.0 - upload);
    let combined = 1.0 - (1.0 - beacon) * (1.0 - traits);
    let answered = e.down_bytes_per_connection >= 120.0;
    let promoted = answered && traits >= 0.5 && combined >= threshold;
    (combined, promoted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair_with(starts: impl IntoIterator<Item = i64>, size: u64) -> PairState {
        let mut p: Option<PairState> = None;
        for (i, s) in starts.into_iter().enumerate() {
            let st = p.get_or_insert_with(|| PairState::new(s));
            st.observe(s, s + 500, 40_000 + (i % 20_000) as u16, size, 4 * size);
        }
        p.unwrap_or_else(|| PairState::new(0))
    }

    #[test]
    fn state_is_at_most_256_bytes_with_its_key() {
        let total = std::mem::size_of::<PairState>() + std::mem::size_of::<PairKey>();
        assert!(total <= 256, "{total} bytes");
    }

    #[test]
    fn perfect_beacon_scores_near_one_and_decimation_keeps_it_periodic() {
        let p = pair_with((0..288).map(|i| 1_000_000 + i * 300_000), 512);
        assert!(
            p.decimation() >= 3,
            "288 connections decimate into {KEPT} points"
        );
        let window = (1_000_000, 1_000_000 + 287 * 300_000);
        let s = p
            .score(window, &BeaconConfig::default(), &mut Scratch::default())
            .unwrap();
        assert!(s.beacon > 0.9, "{s:?}");
        assert!(
            (s.evidence.median_interval_s - 300.0 * 8.0).abs() < 1e-6 || s.evidence.decimation != 3
        );
    }

    #[test]
    fn active_timeout_splits_of_one_connection_are_one_connection() {
        let mut p = PairState::new(0);
        for i in 0..10 {
            p.observe(i * 60_000, i * 60_000 + 60_000, 50_000, 100, 100);
        }
        assert_eq!(p.connections(), 1);
        assert_eq!(p.max_dur_ms, 600_000);
    }
}
