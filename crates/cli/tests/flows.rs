//! `mamori flows` and `mamori collect` as a person runs them, on real third-party data.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

#[path = "../../flow/tests/common/mod.rs"]
mod common;

mod support;

use std::io::{BufRead, BufReader, Read};
use std::net::UdpSocket;
use std::time::Duration;
use support::mamori;

fn data_lines(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .count()
}

#[test]
fn zeek_and_argus_files_become_one_record_per_line() {
    let Some(conn) = common::test_data("botnet/sdt-003-androidtester-rat/conn.log") else {
        return;
    };
    let out = mamori().arg("flows").arg(&conn).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), data_lines(&conn));
    // The RAT's C2 connections, as the dataset's README describes them.
    let c2 = text
        .lines()
        .filter(|l| l.contains("\"dst\":\"147.32.83.234\"") && l.contains("\"dst_port\":1337"))
        .count();
    assert!(c2 >= 12, "{c2}");

    let Some(argus) = common::test_data("botnet/slips-argus-binetflow/test11-portscan.binetflow")
    else {
        return;
    };
    let out = mamori()
        .args(["flows", "--output", "csv", "--stats"])
        .arg(&argus)
        .output()
        .unwrap();
    let csv = String::from_utf8(out.stdout).unwrap();
    assert!(csv.starts_with("start,end,src,src_port,dst,dst_port,protocol"));
    assert_eq!(
        csv.lines().count() - 1,
        data_lines(&argus) - 1,
        "header line of the binetflow excluded"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("records per exporter"));
}

#[test]
fn captures_are_decoded_as_exports_or_metered() {
    let dir = "netflow/derived-softflowd-from-test-cc-capture-1";
    // softflowd exported 594 records (its own log, EXPORTER_COLLECTOR_COMMANDS.md).
    for file in [
        "softflowd-netflow-v5-export.pcap",
        "softflowd-netflow-v9-export.pcap",
        "softflowd-ipfix-export.pcap",
    ] {
        let Some(pcap) = common::test_data(&format!("{dir}/{file}")) else {
            return;
        };
        let out = mamori().arg("flows").arg(&pcap).output().unwrap();
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8(out.stdout).unwrap().lines().count(),
            594,
            "{file}"
        );
    }
    // The capture itself goes through the flow meter: every flow is metadata about the
    // beacon's server and others; nothing of the payload is printed.
    let Some(capture) = common::test_data("pcap/slips-test-cc/test-cc-capture-1.pcap") else {
        return;
    };
    let out = mamori().arg("flows").arg(&capture).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.lines().count() >= 297, "softflowd saw 297 connections");
    assert!(
        text.contains("\"141.193.213.21\""),
        "the C2 server of the capture's beacon"
    );
}

#[test]
fn compressed_files_are_read_as_they_ship() {
    use std::io::Write;
    let Some(conn) = common::test_data("botnet/sdt-003-androidtester-rat/conn.log") else {
        return;
    };
    let plain = std::fs::read(&conn).unwrap();
    let expected = mamori().arg("flows").arg(&conn).output().unwrap().stdout;
    let dir = tempfile::tempdir().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&plain).unwrap();
    let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
    xz.write_all(&plain).unwrap();
    let zst =
        ruzstd::encoding::compress_to_vec(&plain[..], ruzstd::encoding::CompressionLevel::Fastest);
    for (name, bytes) in [
        ("conn.log.gz", gz.finish().unwrap()),
        ("conn.log.xz", xz.finish().unwrap()),
        ("conn.log.zst", zst),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let out = mamori().arg("flows").arg(&path).output().unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, expected, "{name}");
    }
    // A corrupt stream is an error that names the file, not a crash.
    let bad = dir.path().join("bad.gz");
    std::fs::write(&bad, [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3]).unwrap();
    let out = mamori().arg("flows").arg(&bad).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.gz"));
}

#[test]
fn unknown_and_missing_files_are_clear_errors() {
    let Some(csv) =
        common::test_data("netflow/derived-softflowd-from-test-cc-capture-1/nfdump-from-v9.csv")
    else {
        return;
    };
    let out = mamori().arg("flows").arg(&csv).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("use --format to force one"));
    let out = mamori()
        .args(["flows", "/nonexistent/conn.log"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("opening /nonexistent/conn.log"));
}

#[test]
#[allow(clippy::disallowed_methods)] // starts and signals the collector as an operator would
fn collect_prints_what_it_receives_and_counts_it() {
    let Some(pcap) = common::test_data(
        "netflow/derived-softflowd-from-test-cc-capture-1/softflowd-ipfix-export.pcap",
    ) else {
        return;
    };
    let datagrams = common::udp_datagrams(&pcap);
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("mamori"))
        .args(["collect", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(
        line.contains(&format!("listening on udp 127.0.0.1:{port}")),
        "{line}"
    );
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    for (i, d) in datagrams.iter().enumerate() {
        sender.send_to(&d.payload, ("127.0.0.1", port)).unwrap();
        if i % 16 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    std::thread::sleep(Duration::from_millis(600));
    std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let mut out = String::new();
    #[allow(clippy::disallowed_methods)] // bounded by take()
    child
        .stdout
        .take()
        .unwrap()
        .take(64 << 20)
        .read_to_string(&mut out)
        .unwrap();
    let mut rest = String::new();
    #[allow(clippy::disallowed_methods)] // bounded by take()
    err.take(1 << 20).read_to_string(&mut rest).unwrap();
    assert!(child.wait().unwrap().success());
    let records = out.lines().count();
    assert!(records > 500, "{records}");
    assert!(out.lines().all(|l| l.contains("\"source\":\"ipfix\"")));
    // The exit summary counts the exporter's datagrams and records.
    let summary = rest.lines().find(|l| l.starts_with("127.0.0.1")).unwrap();
    let cols: Vec<&str> = summary.split_whitespace().collect();
    assert_eq!(
        cols[1].parse::<usize>().unwrap(),
        datagrams.len(),
        "{summary}"
    );
    assert_eq!(cols[2].parse::<usize>().unwrap(), records, "{summary}");
}

#[test]
fn pseudonymise_matches_the_reference_trace() {
    // The original Crypto-PAn distribution's sample key and trace (also in
    // crates/flow/tests/cryptopan.rs, where it is checked against yacryptopan too).
    let key = "1522178d33a4cf80130a5b1649907d10d8988f837979652762574c2d2a842202";
    let out = mamori()
        .args(["pseudonymise", "--key-hex", key])
        .write_stdin("128.11.68.132\n\nnot-an-address\n129.118.74.4\n")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text,
        "128.11.68.132\t135.242.180.132\n129.118.74.4\t134.136.186.123\n"
    );
    assert!(
        !out.status.success(),
        "a bad line makes the exit status fail"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 3: \"not-an-address\""));
    let out = mamori()
        .args(["pseudonymise", "--key-hex", "abcd"])
        .write_stdin("1.2.3.4\n")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("--key-hex"));
}

#[test]
fn detect_finds_the_beacon_and_the_rat_and_eval_scores_the_scanners() {
    // The capture's beacon to 141.193.213.21:443, in the pcap itself (through the flow meter).
    let Some(pcap) = common::test_data("pcap/slips-test-cc/test-cc-capture-1.pcap") else {
        return;
    };
    let out = mamori()
        .args(["detect", "--json", "--top", "3"])
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first: serde_json::Value = serde_json::from_str(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        (first["address"].as_str(), first["port"].as_u64()),
        (Some("141.193.213.21"), Some(443)),
        "{first}"
    );
    assert!(
        matches!(first["kind"].as_str(), Some("beacon" | "c2")),
        "{first}"
    );

    // The AndroidTester RAT's C2 (dataset README: 147.32.83.234:1337).
    let Some(conn) = common::test_data("botnet/sdt-003-androidtester-rat/conn.log") else {
        return;
    };
    let out = mamori()
        .args(["detect", "--json"])
        .arg(&conn)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.lines().any(|l| l.contains("\"kind\":\"c2\"")
            && l.contains("147.32.83.234")
            && l.contains("\"port\":1337")),
        "{text}"
    );

    // The external scanners of CTU-Normal-40, against the dataset's own labels.
    let Some(labeled) = common::test_data("botnet/sdt-008-zeek-mixed/conn.log.labeled") else {
        return;
    };
    let out = mamori()
        .args(["eval", "--profile", "telescope", "--labels"])
        .arg(&labeled)
        .arg(&labeled)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = String::from_utf8(out.stdout).unwrap();
    let scan = report.lines().find(|l| l.starts_with("| scan |")).unwrap();
    let cols: Vec<&str> = scan.split('|').map(str::trim).collect();
    let (precision, recall): (f64, f64) = (cols[7].parse().unwrap(), cols[8].parse().unwrap());
    assert!(precision >= 0.9 && recall >= 0.9, "{scan}");
    let out = mamori().args(["eval"]).arg(&labeled).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("give --labels FILE"));
}

struct Collect(Vec<mamori_flow::FlowRecord>);
impl mamori_sensor::files::BatchSink for Collect {
    type Error = std::convert::Infallible;
    fn batch(&mut self, b: &mamori_flow::FlowBatch) -> Result<(), Self::Error> {
        self.0.extend_from_slice(&b.records);
        Ok(())
    }
}

/// `mamori detect` and `mamori flows` read the sensor's own per-flow Parquet (issue 7 part
/// 3): the beacon of test-cc-capture-1, archived as the sensor archives kept flows, is found
/// from the archive as from the export; an aggregates file is refused with a clear reason.
#[test]
fn the_sensors_parquet_archive_is_read_by_flows_and_detect() {
    let Some(v9) = common::test_data(
        "netflow/derived-softflowd-from-test-cc-capture-1/softflowd-netflow-v9-export.pcap",
    ) else {
        return;
    };
    let mut records = Collect(Vec::new());
    mamori_sensor::files::read_file(&v9, mamori_sensor::files::FileFormat::Auto, &mut records)
        .unwrap();
    assert_eq!(records.0.len(), 594);
    let dir = tempfile::tempdir().unwrap();
    let writer = mamori_sensor::archive::ArchiveWriter::new(
        dir.path(),
        mamori_sensor::archive::RetentionPolicy::default(),
    )
    .unwrap();
    let files = writer.write_flows(&records.0).unwrap();
    assert!(!files.is_empty());

    let out = mamori()
        .arg("flows")
        .args(files.iter().map(|f| &f.path))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 594);

    let out = mamori()
        .arg("detect")
        .args(files.iter().map(|f| &f.path))
        .args(["--json", "--top", "3"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["kind"], "beacon", "{text}");
    assert_eq!(first["address"], "141.193.213.21", "{text}");

    let aggregate = mamori_flow::ServerAggregate {
        server: "141.193.213.21".parse().unwrap(),
        port: 443,
        protocol: 6,
        bin_start_ms: records.0[0].start_ms,
        flows: 1,
        packets_to_server: 1,
        bytes_to_server: 60,
        packets_from_server: 0,
        bytes_from_server: 0,
        distinct_clients: 1,
        transit: false,
    };
    let agg = writer.write_aggregates(&[aggregate]).unwrap();
    let out = mamori().arg("detect").arg(&agg[0].path).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not of flows"), "{err}");
}
