//! `mamori collect`: the UDP collector on its own, printing what it receives.

use crate::flows::{Output, Printer};
use mamori_sensor::collector::{Collector, CollectorConfig, Stats};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

fn print_stats(stats: &Stats) {
    let mut s = String::from(
        "exporter                                  datagrams    records  malformed  unknown_tmpl    dropped",
    );
    for (ip, e) in stats.snapshot() {
        let unknown = e.anomalies.get("unknown_template").copied().unwrap_or(0);
        s.push_str(&format!(
            "\n{:<40} {:>10} {:>10} {:>10} {:>13} {:>10}",
            ip.to_string(),
            e.datagrams,
            e.records,
            e.malformed(),
            unknown,
            e.dropped_records
        ));
    }
    #[allow(clippy::print_stderr)]
    {
        eprintln!("{s}");
    }
}

pub(crate) async fn run(
    listen: Vec<SocketAddr>,
    output: Output,
    stats_every: Option<u64>,
) -> anyhow::Result<()> {
    let cfg = CollectorConfig {
        listen,
        ..CollectorConfig::default()
    };
    let (tx, rx) = sync_channel(64);
    let collector = Collector::start(&cfg, tx, Arc::new(mamori_core::time::SystemClock))?;
    for addr in collector.local_addrs() {
        tracing::info!(%addr, "collecting");
        #[allow(clippy::print_stderr)]
        {
            eprintln!("listening on udp {addr}; Ctrl-C or SIGTERM to stop");
        }
    }
    let stats = collector.stats().clone();
    let printer = std::thread::spawn(move || -> anyhow::Result<()> {
        let stdout = std::io::stdout().lock();
        let mut printer = Printer::new(std::io::BufWriter::with_capacity(1 << 16, stdout), output);
        let every = stats_every.map(Duration::from_secs);
        let mut last = Instant::now();
        loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(batch) => {
                    printer.batch(&batch)?;
                    printer.flush()?;
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return printer.flush(),
            }
            if every.is_some_and(|e| last.elapsed() >= e) {
                print_stats(&stats);
                last = Instant::now();
            }
        }
    });
    crate::serve::shutdown_signal().await;
    let stats = collector.stop();
    printer
        .join()
        .map_err(|_| anyhow::anyhow!("the printing thread panicked"))??;
    print_stats(&stats);
    Ok(())
}
