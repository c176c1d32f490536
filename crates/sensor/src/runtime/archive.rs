//! The archive stage: kept records and aggregates buffered and written hourly, one
//! pseudonym key per file.

use super::*;

// Archive.

pub(super) fn archiver(
    rx: Receiver<ToArchive>,
    mut writer: ArchiveWriter,
    mut key_id: String,
    flush: Duration,
    max_rows: usize,
    m: &Metrics,
) {
    let mut flows: Vec<FlowRecord> = Vec::new();
    let mut aggs: Vec<ServerAggregate> = Vec::new();
    let mut last = Instant::now();
    let write = |writer: &mut ArchiveWriter,
                 flows: &mut Vec<FlowRecord>,
                 aggs: &mut Vec<ServerAggregate>| {
        // Hour by hour: a row whose hour cannot be written loses that hour only, never
        // the rest of the buffer (CI-5).
        for (kind, written) in [
            ("flows", writer.write_flows_each(flows)),
            ("aggregates", writer.write_aggregates_each(aggs)),
        ] {
            for f in &written.files {
                let bytes = std::fs::metadata(&f.path).map(|m| m.len()).unwrap_or(0);
                m.archive_files.fetch_add(1, Ordering::Relaxed);
                m.archive_bytes.fetch_add(bytes, Ordering::Relaxed);
                let counter = if kind == "flows" {
                    &m.archive_flow_rows
                } else {
                    &m.archive_aggregate_rows
                };
                counter.fetch_add(f.records, Ordering::Relaxed);
            }
            for failed in &written.failed {
                m.archive_errors.fetch_add(1, Ordering::Relaxed);
                m.archive_lost_rows
                    .fetch_add(failed.rows, Ordering::Relaxed);
                tracing::error!(error = %failed.error, kind, rows = failed.rows, "archive write failed");
            }
        }
        flows.clear();
        aggs.clear();
    };
    loop {
        let msg = rx.recv_timeout(Duration::from_millis(500));
        match msg {
            Ok(msg) => {
                let (id, rows) = match &msg {
                    ToArchive::Flows(id, r) => (id, r.len()),
                    ToArchive::Aggregates(id, a) => (id, a.len()),
                };
                m.archive_queue.dequeued(rows as u64);
                if *id != key_id {
                    // One key per file: what was buffered under the old key goes first.
                    write(&mut writer, &mut flows, &mut aggs);
                    key_id = id.clone();
                    writer.set_pseudonym_key_id(Some(key_id.clone()));
                }
                match msg {
                    ToArchive::Flows(_, r) => flows.extend(r),
                    ToArchive::Aggregates(_, a) => aggs.extend(a),
                }
                if flows.len() + aggs.len() >= max_rows {
                    write(&mut writer, &mut flows, &mut aggs);
                    last = Instant::now();
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                write(&mut writer, &mut flows, &mut aggs);
                return;
            }
        }
        if last.elapsed() >= flush {
            write(&mut writer, &mut flows, &mut aggs);
            last = Instant::now();
        }
    }
}
