//! The UDP collector: NetFlow v5/v9, IPFIX and sFlow on any number of ports.
//!
//! **Architecture invariant:** what it counts stays bounded whoever sends to the port
//! (CI-6; STYLE 4): datagrams from outside the exporter
//! allow-list ([`CollectorConfig::exporters`]) are rejected, undecoded, by one counter; at
//! most [`CollectorConfig::max_exporters`] exporters are counted one by one, the rest
//! together as `other`. What the kernel dropped because the socket's receive buffer was
//! full is read from `/proc/net/udp{,6}` by the socket's inode, so a shortfall is
//! never invisible.

use mamori_core::Clock;
use mamori_flow::{AnomalyKind, Datagram, DatagramDecoder, ExportDecoder, FlowBatch};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How the collector listens and batches (`[collector]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CollectorConfig {
    /// UDP addresses to listen on (NetFlow, IPFIX and sFlow are told apart per datagram).
    pub listen: Vec<SocketAddr>,
    /// Kernel receive buffer per socket, bytes. Large buffers absorb bursts; the kernel
    /// may cap it (`net.core.rmem_max`): the effective size is logged.
    pub recv_buffer_bytes: usize,
    /// Records per batch handed downstream.
    pub batch_records: usize,
    /// A partly filled batch is handed on after this long, milliseconds.
    pub flush_ms: u64,
    /// The carrier's exporters (its routers), as prefixes: datagrams from any other
    /// source are rejected undecoded and counted together (`rejected_datagrams`). Empty:
    /// every source is taken (then [`max_exporters`](Self::max_exporters) still bounds the
    /// counters).
    pub exporters: Vec<ipnet::IpNet>,
    /// Most exporters counted one by one; datagrams from further ones are counted
    /// together under `other`.
    pub max_exporters: usize,
}

impl Default for CollectorConfig {
    fn default() -> Self {
        Self {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 2055))],
            recv_buffer_bytes: 32 * 1024 * 1024,
            batch_records: 8192,
            flush_ms: 200,
            exporters: Vec::new(),
            max_exporters: 256,
        }
    }
}

/// Counters for one exporter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExporterStats {
    /// Datagrams received.
    pub datagrams: u64,
    /// Records decoded.
    pub records: u64,
    /// Anomalies by kind (`truncated`, `unknown_template`, …).
    pub anomalies: BTreeMap<&'static str, u64>,
    /// Records decoded but dropped because the downstream queue was full.
    pub dropped_records: u64,
    /// When the last datagram arrived (Unix milliseconds, the collector's clock; 0: never).
    pub last_datagram_ms: i64,
}

impl ExporterStats {
    /// Datagrams or sets that could not be decoded (every anomaly but unknown templates).
    pub fn malformed(&self) -> u64 {
        self.anomalies
            .iter()
            .filter(|(k, _)| **k != AnomalyKind::UnknownTemplate.name())
            .map(|(_, n)| n)
            .sum()
    }

    fn add(&mut self, s: &ExporterStats) {
        self.datagrams += s.datagrams;
        self.records += s.records;
        self.dropped_records += s.dropped_records;
        self.last_datagram_ms = self.last_datagram_ms.max(s.last_datagram_ms);
        for (k, n) in &s.anomalies {
            *self.anomalies.entry(k).or_default() += n;
        }
    }
}

/// The collector's counters that are not per exporter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CollectorTotals {
    /// The exporters beyond [`CollectorConfig::max_exporters`], counted together.
    pub other: ExporterStats,
    /// Datagrams from sources outside [`CollectorConfig::exporters`], not decoded.
    pub rejected_datagrams: u64,
    /// Datagrams the kernel dropped because a socket's receive buffer was full (all
    /// sockets, since each was opened; `/proc/net/udp{,6}`).
    pub kernel_drops: u64,
}

#[derive(Debug, Default)]
struct Shared {
    exporters: BTreeMap<IpAddr, ExporterStats>,
    totals: CollectorTotals,
    /// The kernel's drop counter of each socket (a gauge per socket, summed on read).
    kernel_drops: BTreeMap<SocketAddr, u64>,
}

/// Counters per exporter, shared with whoever reports them.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    inner: Arc<Mutex<Shared>>,
    max_exporters: usize,
}

/// A worker's counts since its last merge, keyed by exporter (`None`: `other`). Bounded
/// by the cap too, so a flood of sources between two merges does not grow it.
type Local = BTreeMap<Option<IpAddr>, ExporterStats>;

impl Stats {
    fn new(max_exporters: usize) -> Self {
        Self {
            inner: Arc::default(),
            max_exporters,
        }
    }

    /// A copy of the per-exporter counters now (at most `max_exporters` entries).
    pub fn snapshot(&self) -> BTreeMap<IpAddr, ExporterStats> {
        self.inner
            .lock()
            .map(|m| m.exporters.clone())
            .unwrap_or_default()
    }

    /// The `other` exporters, the rejected datagrams and the kernel's drops now.
    pub fn totals(&self) -> CollectorTotals {
        self.inner
            .lock()
            .map(|m| {
                let mut t = m.totals.clone();
                t.kernel_drops = m.kernel_drops.values().sum();
                t
            })
            .unwrap_or_default()
    }

    fn merge(&self, local: &mut Local, rejected: &mut u64) {
        if let Ok(mut shared) = self.inner.lock() {
            let shared = &mut *shared;
            shared.totals.rejected_datagrams += std::mem::take(rejected);
            for (key, s) in std::mem::take(local) {
                let room = shared.exporters.len() < self.max_exporters;
                let e = match key {
                    Some(ip) if room || shared.exporters.contains_key(&ip) => {
                        shared.exporters.entry(ip).or_default()
                    }
                    _ => &mut shared.totals.other,
                };
                e.add(&s);
            }
        }
    }

    fn set_kernel_drops(&self, socket: SocketAddr, drops: u64) {
        if let Ok(mut shared) = self.inner.lock() {
            shared.kernel_drops.insert(socket, drops);
        }
    }
}

/// Why the collector could not start.
#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    /// A socket could not be bound or configured.
    #[error("cannot listen on UDP {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// A running collector: one receive thread per socket.
#[derive(Debug)]
pub struct Collector {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    local: Vec<SocketAddr>,
    stats: Stats,
}

const MAX_DATAGRAM: usize = 65_535;

impl Collector {
    /// Binds every address and starts receiving; full batches go to `sink`. When `sink` is
    /// full the batch is dropped and counted (never blocks the socket).
    pub fn start(
        cfg: &CollectorConfig,
        sink: SyncSender<FlowBatch>,
        clock: Arc<dyn Clock>,
    ) -> Result<Collector, CollectorError> {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Stats::new(cfg.max_exporters);
        let mut threads = Vec::new();
        let mut local = Vec::new();
        for &addr in &cfg.listen {
            let socket = bind(addr, cfg.recv_buffer_bytes)
                .map_err(|source| CollectorError::Bind { addr, source })?;
            let bound = socket
                .local_addr()
                .map_err(|source| CollectorError::Bind { addr, source })?;
            local.push(bound);
            let inode = socket_inode(&socket);
            if inode.is_none() {
                tracing::warn!(%bound, "cannot find the socket's inode: the kernel's receive drops will not be counted");
            }
            let worker = Worker {
                socket,
                bound,
                inode,
                exporters: cfg.exporters.clone(),
                max_exporters: cfg.max_exporters,
                sink: sink.clone(),
                clock: clock.clone(),
                stop: stop.clone(),
                stats: stats.clone(),
                batch_records: cfg.batch_records.max(1),
                flush: Duration::from_millis(cfg.flush_ms.max(1)),
            };
            let handle = std::thread::Builder::new()
                .name(format!("collect {bound}"))
                .spawn(move || worker.run())
                .map_err(|source| CollectorError::Bind { addr, source })?;
            threads.push(handle);
        }
        Ok(Collector {
            stop,
            threads,
            local,
            stats,
        })
    }

    /// The addresses actually bound (port 0 resolved).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Stops receiving, hands on what is buffered, and waits for the threads.
    pub fn stop(self) -> Stats {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().ok();
        }
        self.stats
    }
}

fn bind(addr: SocketAddr, recv_buffer: usize) -> std::io::Result<UdpSocket> {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    // Best effort: the kernel caps it at net.core.rmem_max; what we got is logged.
    if socket.set_recv_buffer_size(recv_buffer).is_ok() {
        let got = socket.recv_buffer_size().unwrap_or(0);
        if got < recv_buffer {
            tracing::warn!(%addr, requested = recv_buffer, got, "UDP receive buffer capped by the kernel (raise net.core.rmem_max)");
        }
    }
    socket.bind(&addr.into())?;
    let socket: UdpSocket = socket.into();
    // Wake up regularly to flush partial batches and to notice stop().
    socket.set_read_timeout(Some(Duration::from_millis(50)))?;
    Ok(socket)
}

/// The inode of a socket (`/proc/self/fd/N` links to `socket:[INODE]`), by which
/// `/proc/net/udp{,6}` names it.
fn socket_inode(socket: &UdpSocket) -> Option<u64> {
    use std::os::fd::AsRawFd as _;
    let link = std::fs::read_link(format!("/proc/self/fd/{}", socket.as_raw_fd())).ok()?;
    let text = link.to_str()?;
    text.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The kernel's drop counter of the UDP socket with `inode`: the last column of its line
/// in `/proc/net/udp` or `/proc/net/udp6` (`inode` is the tenth).
fn kernel_drops(inode: u64) -> Option<u64> {
    ["/proc/net/udp", "/proc/net/udp6"]
        .iter()
        .find_map(|table| {
            let text = std::fs::read_to_string(table).ok()?;
            drops_in(&text, inode)
        })
}

fn drops_in(table: &str, inode: u64) -> Option<u64> {
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let this: u64 = fields.get(9)?.parse().ok()?;
        (this == inode).then(|| fields.last()?.parse().ok())?
    })
}

/// How often a worker reads the kernel's drop counter (it reads a file listing every UDP
/// socket of the host).
const KERNEL_DROPS_EVERY: Duration = Duration::from_secs(1);

struct Worker {
    socket: UdpSocket,
    bound: SocketAddr,
    inode: Option<u64>,
    exporters: Vec<ipnet::IpNet>,
    max_exporters: usize,
    sink: SyncSender<FlowBatch>,
    clock: Arc<dyn Clock>,
    stop: Arc<AtomicBool>,
    stats: Stats,
    batch_records: usize,
    flush: Duration,
}

impl Worker {
    fn accepts(&self, exporter: IpAddr) -> bool {
        self.exporters.is_empty() || self.exporters.iter().any(|p| p.contains(&exporter))
    }

    fn run(self) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut decoder = ExportDecoder::default();
        let mut batch = FlowBatch::with_capacity(self.batch_records + 64);
        let mut local = Local::new();
        let mut rejected = 0u64;
        // Records per exporter in the current batch, to attribute a dropped batch.
        let mut in_batch: BTreeMap<Option<IpAddr>, u64> = BTreeMap::new();
        let mut last_flush = Instant::now();
        let mut drops_read: Option<Instant> = None;
        let mut before = [0u64; AnomalyKind::ALL.len()];
        loop {
            let stopping = self.stop.load(Ordering::Relaxed);
            match self.socket.recv_from(&mut buf) {
                Ok((_, from)) if !self.accepts(from.ip()) => rejected += 1,
                Ok((n, from)) => {
                    let exporter = from.ip();
                    // Counted one by one while there is room, else as `other`.
                    let key = Some(exporter).filter(|_| {
                        local.contains_key(&Some(exporter)) || local.len() < self.max_exporters
                    });
                    let payload = buf.get(..n).unwrap_or_default();
                    let records_before = batch.records.len();
                    for (slot, kind) in before.iter_mut().zip(AnomalyKind::ALL) {
                        *slot = batch.anomalies.get(kind);
                    }
                    let now = self.clock.now().timestamp_millis();
                    decoder.decode(Datagram::new(exporter, now, payload), &mut batch);
                    let s = local.entry(key).or_default();
                    s.datagrams += 1;
                    s.last_datagram_ms = now;
                    let decoded = (batch.records.len() - records_before) as u64;
                    s.records += decoded;
                    *in_batch.entry(key).or_default() += decoded;
                    for (was, kind) in before.iter().zip(AnomalyKind::ALL) {
                        let delta = batch.anomalies.get(kind) - was;
                        if delta > 0 {
                            *s.anomalies.entry(kind.name()).or_default() += delta;
                        }
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "UDP receive failed");
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            let due = last_flush.elapsed() >= self.flush;
            if batch.records.len() >= self.batch_records || ((due || stopping) && !batch.is_empty())
            {
                let full = std::mem::replace(
                    &mut batch,
                    FlowBatch::with_capacity(self.batch_records + 64),
                );
                if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
                    self.sink.try_send(full)
                {
                    for (key, n) in &in_batch {
                        local.entry(*key).or_default().dropped_records += n;
                    }
                }
                in_batch.clear();
            }
            if due || stopping {
                self.stats.merge(&mut local, &mut rejected);
                let read_now = drops_read.is_none_or(|t| t.elapsed() >= KERNEL_DROPS_EVERY);
                if let Some(inode) = self.inode.filter(|_| read_now || stopping) {
                    if let Some(drops) = kernel_drops(inode) {
                        self.stats.set_kernel_drops(self.bound, drops);
                    }
                    drops_read = Some(Instant::now());
                }
                last_flush = Instant::now();
            }
            if stopping {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_drop_counter_is_found_by_inode() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
   7: 0100007F:0807 00000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 4242 2 0000000000000000 30292\n\
   8: 0100007F:0808 00000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 4243 2 0000000000000000 0\n";
        assert_eq!(drops_in(table, 4242), Some(30_292));
        assert_eq!(drops_in(table, 4243), Some(0));
        assert_eq!(drops_in(table, 1), None);
        assert_eq!(drops_in("garbage\n1 2 3\n", 3), None);
    }
}
