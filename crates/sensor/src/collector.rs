//! The UDP collector: NetFlow v5/v9, IPFIX and sFlow on any number of ports.

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
}

impl Default for CollectorConfig {
    fn default() -> Self {
        Self {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 2055))],
            recv_buffer_bytes: 32 * 1024 * 1024,
            batch_records: 8192,
            flush_ms: 200,
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
}

/// Counters per exporter, shared with whoever reports them.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    inner: Arc<Mutex<BTreeMap<IpAddr, ExporterStats>>>,
}

impl Stats {
    /// A copy of the counters now.
    pub fn snapshot(&self) -> BTreeMap<IpAddr, ExporterStats> {
        self.inner.lock().map(|m| m.clone()).unwrap_or_default()
    }

    fn merge(&self, local: &mut BTreeMap<IpAddr, ExporterStats>) {
        if let Ok(mut shared) = self.inner.lock() {
            for (ip, s) in std::mem::take(local) {
                let e = shared.entry(ip).or_default();
                e.datagrams += s.datagrams;
                e.records += s.records;
                e.dropped_records += s.dropped_records;
                for (k, n) in s.anomalies {
                    *e.anomalies.entry(k).or_default() += n;
                }
            }
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
        let stats = Stats::default();
        let mut threads = Vec::new();
        let mut local = Vec::new();
        for &addr in &cfg.listen {
            let socket = bind(addr, cfg.recv_buffer_bytes)
                .map_err(|source| CollectorError::Bind { addr, source })?;
            let bound = socket
                .local_addr()
                .map_err(|source| CollectorError::Bind { addr, source })?;
            local.push(bound);
            let worker = Worker {
                socket,
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

struct Worker {
    socket: UdpSocket,
    sink: SyncSender<FlowBatch>,
    clock: Arc<dyn Clock>,
    stop: Arc<AtomicBool>,
    stats: Stats,
    batch_records: usize,
    flush: Duration,
}

impl Worker {
    fn run(self) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut decoder = ExportDecoder::default();
        let mut batch = FlowBatch::with_capacity(self.batch_records + 64);
        let mut local: BTreeMap<IpAddr, ExporterStats> = BTreeMap::new();
        // Records per exporter in the current batch, to attribute a dropped batch.
        let mut in_batch: BTreeMap<IpAddr, u64> = BTreeMap::new();
        let mut last_flush = Instant::now();
        let mut before = [0u64; AnomalyKind::ALL.len()];
        loop {
            let stopping = self.stop.load(Ordering::Relaxed);
            match self.socket.recv_from(&mut buf) {
                Ok((n, from)) => {
                    let exporter = from.ip();
                    let payload = buf.get(..n).unwrap_or_default();
                    let records_before = batch.records.len();
                    for (slot, kind) in before.iter_mut().zip(AnomalyKind::ALL) {
                        *slot = batch.anomalies.get(kind);
                    }
                    let now = self.clock.now().timestamp_millis();
                    decoder.decode(Datagram::new(exporter, now, payload), &mut batch);
                    let s = local.entry(exporter).or_default();
                    s.datagrams += 1;
                    let decoded = (batch.records.len() - records_before) as u64;
                    s.records += decoded;
                    *in_batch.entry(exporter).or_default() += decoded;
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
                    for (ip, n) in &in_batch {
                        local.entry(*ip).or_default().dropped_records += n;
                    }
                }
                in_batch.clear();
            }
            if due || stopping {
                self.stats.merge(&mut local);
                last_flush = Instant::now();
            }
            if stopping {
                self.stats.merge(&mut local);
                return;
            }
        }
    }
}
