//! DDoS: volumetric anomalies per destination (packets, bytes, flows per second; SYN and
//! ICMP floods), naming the heaviest sources.
//!
//! Per destination the detector counts one fixed window at a time (record start times
//! decide the window; sampled counters are renormalised). A closed window is compared
//! with the destination's own baseline, an exponentially weighted mean and variance of
//! log(pps + 1) over its normal windows: the robust z-score uses a variance floor of
//! 0.5² (a factor of e^0.5 ≈ 1.65 is ordinary variation), so a destination with no
//! history is judged by the absolute floor alone. A window is anomalous when its rate
//! reaches `min_pps` **and** its z-score reaches `z_threshold`; anomalous windows never
//! enter the baseline. Consecutive anomalous windows form one episode → one finding.
//! Top sources are counted with Space-Saving (8 counters per destination).

use std::net::IpAddr;

use std::collections::hash_map::Entry;

use rustc_hash::FxHashMap;

use crate::orient::is_bidirectional;
use mamori_core::finding::{Clients, DdosEvidence, Evidence, Finding, FindingKind};
use mamori_flow::FlowRecord;

/// DDoS detector settings.
#[derive(Clone, Debug)]
pub struct DdosConfig {
    /// Window length, seconds.
    pub window_s: u32,
    /// Absolute floor: packets per second (renormalised) a window needs to be an attack.
    pub min_pps: f64,
    /// z-score of log(pps + 1) against the destination's baseline.
    pub z_threshold: f64,
    /// Weight of a new normal window in the baseline.
    pub baseline_alpha: f64,
    /// Share of packets that must be unanswered SYNs (or ICMP) to name the flood.
    pub flood_share: f64,
    /// Most destinations tracked at once.
    pub max_destinations: usize,
    /// Most finished episodes kept until [`DdosDetector::findings`]; later ones are counted.
    pub max_episodes: usize,
}

impl Default for DdosConfig {
    fn default() -> Self {
        Self {
            window_s: 10,
            min_pps: 5_000.0,
            z_threshold: 6.0,
            baseline_alpha: 0.05,
            flood_share: 0.5,
            max_destinations: 1 << 18,
            max_episodes: 1 << 16,
        }
    }
}

const TOP: usize = 8;

#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    packets: u64,
    bytes: u64,
    flows: u64,
    syn_packets: u64,
    icmp_packets: u64,
}

#[derive(Debug, Default)]
struct Episode {
    first_ms: i64,
    last_ms: i64,
    windows: u32,
    worst: DdosEvidence,
    worst_z: f64,
    top: Vec<(IpAddr, u64)>,
}

#[derive(Debug)]
struct DestState {
    window: i64,
    counts: Counts,
    top: [(Option<IpAddr>, u64); TOP],
    mean: f64,
    var: f64,
    normal_windows: u64,
    episode: Option<Episode>,
}

impl DestState {
    fn new(window: i64) -> Self {
        Self {
            window,
            counts: Counts::default(),
            top: [(None, 0); TOP],
            mean: 0.0,
            var: 0.0,
            normal_windows: 0,
            episode: None,
        }
    }

    /// Space-Saving: increment the source's counter, or replace the smallest.
    fn count_source(&mut self, src: IpAddr, packets: u64) {
        if let Some(slot) = self.top.iter_mut().find(|(a, _)| *a == Some(src)) {
            slot.1 = slot.1.saturating_add(packets);
            return;
        }
        let mut min_i = 0;
        for (i, (_, c)) in self.top.iter().enumerate() {
            if *c < self.top[min_i].1 {
                min_i = i;
            }
        }
        let slot = &mut self.top[min_i];
        *slot = (Some(src), slot.1.saturating_add(packets));
    }
}

/// Finished episodes, at most `cap` kept (bounded state on an endless stream).
#[derive(Debug, Default)]
struct Episodes {
    list: Vec<Finding>,
    cap: usize,
    dropped: u64,
}

impl Episodes {
    fn push(&mut self, f: Finding) {
        if self.list.len() < self.cap {
            self.list.push(f);
        } else {
            self.dropped += 1;
        }
    }
}

/// Streams records into per-destination windows; reports attack episodes.
#[derive(Debug, Default)]
pub struct DdosDetector {
    cfg: DdosConfig,
    dests: FxHashMap<IpAddr, DestState>,
    done: Episodes,
    /// Destinations not tracked because `max_destinations` was reached.
    pub untracked_destinations: u64,
}

impl DdosDetector {
    /// A detector with `cfg`.
    pub fn new(cfg: DdosConfig) -> Self {
        Self {
            done: Episodes {
                cap: cfg.max_episodes,
                ..Episodes::default()
            },
            cfg,
            ..Self::default()
        }
    }

    /// Episodes not kept because `max_episodes` was reached.
    pub fn dropped_episodes(&self) -> u64 {
        self.done.dropped
    }

    fn window_of(&self, ms: i64) -> i64 {
        ms.div_euclid(i64::from(self.cfg.window_s.max(1)) * 1000)
    }

    /// Adds one record.
    pub fn observe(&mut self, r: &FlowRecord) {
        let w = self.window_of(r.start_ms);
        let len = self.dests.len();
        let cfg = self.cfg.clone();
        let st = match self.dests.entry(r.dst_addr) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(v) if len < cfg.max_destinations => v.insert(DestState::new(w)),
            Entry::Vacant(_) => {
                self.untracked_destinations += 1;
                return;
            }
        };
        if w > st.window {
            close_window(&cfg, r.dst_addr, st, &mut self.done);
            // Empty windows in between are normal, quiet windows (at most 64 counted).
            let gap = w.saturating_sub(st.window).saturating_sub(1).clamp(0, 64);
            for _ in 0..gap {
                update_baseline(&cfg, st, 0.0);
                if let Some(ep) = st.episode.take() {
                    self.done.push(finish_episode(r.dst_addr, ep, &cfg));
                }
            }
            st.window = w;
        }
        // A flow longer than the window contributes its average rate, not its total, so a
        // long download is not a burst in the window where it started.
        let f = r.sampling_factor();
        let window_ms = u64::from(cfg.window_s.max(1)) * 1000;
        let dur_ms = u64::try_from(r.end_ms.saturating_sub(r.start_ms))
            .unwrap_or(0)
            .max(window_ms);
        let share = |n: u64| ((u128::from(n) * u128::from(window_ms)) / u128::from(dur_ms)) as u64;
        let packets = share(r.packets.saturating_mul(f));
        st.counts.packets = st.counts.packets.saturating_add(packets);
        st.counts.bytes = st
            .counts
            .bytes
            .saturating_add(share(r.bytes.saturating_mul(f)));
        st.counts.flows = st.counts.flows.saturating_add(f);
        if r.is_icmp() {
            st.counts.icmp_packets = st.counts.icmp_packets.saturating_add(packets);
        } else if r.protocol == 6 {
            let unanswered = if is_bidirectional(r) {
                r.rev_packets == 0
            } else {
                r.tcp_flags & 0x02 != 0 && r.tcp_flags & 0x10 == 0
            };
            if unanswered {
                st.counts.syn_packets = st.counts.syn_packets.saturating_add(packets);
            }
        }
        st.count_source(r.src_addr, packets);
    }

    /// Closes every open window and returns the episodes found, by address.
    pub fn findings(mut self) -> Vec<Finding> {
        let cfg = self.cfg.clone();
        let mut dests: Vec<(IpAddr, DestState)> = self.dests.drain().collect();
        dests.sort_unstable_by_key(|(a, _)| *a);
        for (addr, mut st) in dests {
            close_window(&cfg, addr, &mut st, &mut self.done);
            if let Some(ep) = st.episode.take() {
                self.done.push(finish_episode(addr, ep, &cfg));
            }
        }
        let mut out = self.done.list;
        out.sort_by(|a, b| {
            a.address
                .cmp(&b.address)
                .then(a.first_seen.cmp(&b.first_seen))
        });
        out
    }
}

fn update_baseline(cfg: &DdosConfig, st: &mut DestState, x: f64) {
    if st.normal_windows == 0 {
        st.mean = x;
        st.var = 0.0;
    } else {
        let a = cfg.baseline_alpha;
        let d = x - st.mean;
        st.mean += a * d;
        st.var = (1.0 - a) * (st.var + a * d * d);
    }
    st.normal_windows += 1;
}

fn close_window(cfg: &DdosConfig, addr: IpAddr, st: &mut DestState, done: &mut Episodes) {
    let c = st.counts;
    if c.packets == 0 && c.flows == 0 {
        return;
    }
    let secs = f64::from(cfg.window_s.max(1));
    let pps = c.packets as f64 / secs;
    let x = (pps + 1.0).ln();
    let sd = (st.var + 0.25).sqrt();
    let z = (x - st.mean) / sd;
    if pps >= cfg.min_pps && z >= cfg.z_threshold {
        let share = |n: u64| {
            if c.packets > 0 {
                n as f64 / c.packets as f64
            } else {
                0.0
            }
        };
        let (syn, icmp) = (share(c.syn_packets), share(c.icmp_packets));
        let attack = if syn >= cfg.flood_share {
            "syn_flood"
        } else if icmp >= cfg.flood_share {
            "icmp_flood"
        } else {
            "volumetric"
        };
        let start = st.window.saturating_mul(i64::from(cfg.window_s) * 1000);
        let ep = st.episode.get_or_insert_with(|| Episode {
            first_ms: start,
            ..Episode::default()
        });
        ep.last_ms = start.saturating_add(i64::from(cfg.window_s) * 1000 - 1);
        ep.windows += 1;
        for (a, n) in st.top.iter().filter_map(|(a, n)| a.map(|a| (a, *n))) {
            match ep.top.iter_mut().find(|(x, _)| *x == a) {
                Some(e) => e.1 = e.1.saturating_add(n),
                None => ep.top.push((a, n)),
            }
        }
        ep.top.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
        ep.top.truncate(2 * TOP);
        if z > ep.worst_z {
            ep.worst_z = z;
            ep.worst = DdosEvidence {
                attack: attack.to_string(),
                window_s: cfg.window_s,
                pps,
                bps: c.bytes as f64 * 8.0 / secs,
                flows_per_s: c.flows as f64 / secs,
                baseline_pps: if st.normal_windows > 0 {
                    st.mean.exp() - 1.0
                } else {
                    0.0
                },
                z,
                syn_share: syn,
                icmp_share: icmp,
                windows: 0,
                top_sources: Vec::new(),
            };
        }
    } else {
        if let Some(ep) = st.episode.take() {
            done.push(finish_episode(addr, ep, cfg));
        }
        update_baseline(cfg, st, x);
    }
    st.counts = Counts::default();
    st.top = [(None, 0); TOP];
}

fn finish_episode(addr: IpAddr, ep: Episode, cfg: &DdosConfig) -> Finding {
    let mut e = ep.worst;
    e.windows = ep.windows;
    e.top_sources = ep.top.iter().take(TOP).copied().collect();
    // 0.5 at the threshold, approaching 1 as z doubles it.
    let score = (0.5 + 0.5 * ((e.z - cfg.z_threshold) / cfg.z_threshold)).clamp(0.5, 1.0);
    let sources: Vec<IpAddr> = ep.top.iter().map(|(a, _)| *a).collect();
    Finding {
        kind: FindingKind::Ddos,
        address: addr,
        port: 0,
        proto: 0,
        score: (score * 1000.0).round() / 1000.0,
        first_seen: ep.first_ms,
        last_seen: ep.last_ms,
        clients: Clients::new(sources.len() as u64, sources),
        evidence: Evidence::Ddos(e),
        feed: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mamori_flow::FlowSource;

    fn rec(src: [u8; 4], t_ms: i64, packets: u64, flags: u8) -> FlowRecord {
        FlowRecord {
            src_addr: src.into(),
            dst_addr: [192, 0, 2, 80].into(),
            src_port: 40_000,
            dst_port: 80,
            protocol: 6,
            packets,
            bytes: packets * 60,
            tcp_flags: flags,
            start_ms: t_ms,
            end_ms: t_ms,
            sampling_rate: 1000,
            source: FlowSource::NetflowV9,
            ..FlowRecord::default()
        }
    }

    #[test]
    fn syn_flood_after_quiet_baseline_is_one_episode_naming_the_sources() {
        let mut d = DdosDetector::new(DdosConfig::default());
        // An hour of normal load: ~10 sampled packets per 10 s (1,000 pps renormalised).
        for i in 0..360 {
            d.observe(&rec([198, 51, 100, 1], i * 10_000, 10, 0x1b));
        }
        // One minute of SYN flood from 4 sources: ~2,000 sampled packets per window.
        for i in 0..60 {
            for s in 1..=4u8 {
                d.observe(&rec([203, 0, 113, s], 3_600_000 + i * 1000, 50, 0x02));
            }
        }
        for i in 0..30 {
            d.observe(&rec([198, 51, 100, 1], 3_660_000 + i * 10_000, 10, 0x1b));
        }
        let f = d.findings();
        assert_eq!(f.len(), 1, "{f:?}");
        let Evidence::Ddos(e) = &f[0].evidence else {
            panic!("ddos evidence expected");
        };
        assert_eq!(e.attack, "syn_flood");
        assert_eq!(e.windows, 6);
        assert_eq!(e.top_sources.len(), 4);
        assert!(
            e.top_sources
                .iter()
                .all(|(a, _)| matches!(a, IpAddr::V4(v) if v.octets()[..3] == [203, 0, 113]))
        );
    }
}
