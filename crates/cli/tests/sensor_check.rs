#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
//! `mamori sensor check`, and the checks `mamori sensor run` makes before it writes
//! anything (REQUIREMENTS CI-2, CI-5, CI-6): wrong
//! settings are refused with what to write, a refused start leaves no data directory, no
//! ledger key and no pseudonym key behind, and the administration commands never make a
//! sensor's data directory.

mod support;

use std::path::{Path, PathBuf};
use support::mamori;

/// A country list of its own (one documentation prefix), so these tests need no test data.
fn country_list(dir: &Path) -> PathBuf {
    let path = dir.join("jp.cidr");
    std::fs::write(&path, "192.0.2.0/24\n").unwrap();
    path
}

/// A configuration that `check` accepts, with `extra` appended (TOML sections).
fn config(dir: &Path, extra: &str) -> PathBuf {
    let list = country_list(dir);
    let path = dir.join("sensor.toml");
    std::fs::write(
        &path,
        format!(
            "data_dir = {data:?}\n[collector]\nlisten = []\n[selection]\nsubscriber_prefixes = [\"203.0.113.0/24\"]\n{extra}\n[geo]\ncidr_lists = [{{ country = \"JP\", path = {list:?} }}]\n[http]\nlisten = \"127.0.0.1:0\"\n",
            data = dir.join("data")
        ),
    )
    .unwrap();
    path
}

fn check(cfg: &Path, env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = mamori();
    cmd.args(["sensor", "check", "--config"]).arg(cfg);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn check_prints_the_effective_policy_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        "home_country = \"jp\"\n[retention]\nflows = \"3d\"",
    );
    let (ok, out, err) = check(&cfg, &[]);
    assert!(ok, "{err}");
    for needle in [
        "the sensor can start with it",
        "home country        JP",
        "203.0.113.0/24",
        "1 file(s), 1 IPv4 and 0 IPv6 ranges",
        "retention           flows 3d, aggregates 90d",
        "centre              none",
        "/status with the operator's or overseer's token",
    ] {
        assert!(out.contains(needle), "{needle:?} missing from\n{out}");
    }
    assert!(
        !dir.path().join("data").exists(),
        "check wrote the data dir"
    );
}

/// Each of these was accepted, and silently changed what the sensor kept (CI-2, CI-6).
#[test]
fn check_refuses_settings_that_would_silently_change_what_is_kept() {
    for (extra, needles) in [
        ("home_country = \"JA\"", &["home_country", "\"JA\""][..]),
        ("max_aggregates = 0", &["max_aggregates"][..]),
        (
            "[retention]\nflows = \"99999999999999d\"",
            &["99999999999999d", "36500d"][..],
        ),
        (
            "[detection]\nwindow = \"soon\"",
            &["window", "\"soon\""][..],
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), extra);
        let (ok, out, err) = check(&cfg, &[]);
        assert!(!ok, "{extra}: accepted\n{out}");
        for n in needles {
            assert!(err.contains(n), "{extra}: {n:?} missing from {err}");
        }
        assert!(
            !err.contains("retention") || extra.contains("retention"),
            "{err}"
        );
    }
    // A prefix with host bits set names the network to write.
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("203.0.113.0/24", "147.32.1.7/16");
    std::fs::write(&cfg, text).unwrap();
    let (ok, _, err) = check(&cfg, &[]);
    assert!(!ok && err.contains("147.32.0.0/16"), "{err}");
    // No country data: every flow would be dropped as domestic↔domestic.
    let bare = dir.path().join("bare.toml");
    std::fs::write(&bare, "[collector]\nlisten = []\n").unwrap();
    let (ok, _, err) = check(&bare, &[]);
    assert!(!ok && err.contains("no country data"), "{err}");
}

/// With [centre] and no token, or an input file missing, the start is refused before
/// anything is written: no data directory, ledger key or pseudonym key (CI-5).
/// `mamori sensor CMD --config CFG` (without `unset`): refused, naming `needle`, and the
/// data directory beside `cfg` not made.
fn refused(cmd: &str, cfg: &Path, unset: &str, needle: &str) {
    let out = mamori()
        .args(["sensor", cmd, "--config"])
        .arg(cfg)
        .env_remove(unset)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{cmd}: {err}");
    assert!(err.contains(needle), "{cmd}: {needle:?} missing from {err}");
    let data = cfg.parent().unwrap().join("data");
    assert!(!data.exists(), "{cmd} wrote before refusing");
}

#[test]
fn a_refused_start_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let unset = "TEST_SENSOR_TOKEN_UNSET";
    let cfg = config(
        dir.path(),
        &format!("[centre]\nurl = \"http://127.0.0.1:9\"\ntoken_env = \"{unset}\""),
    );
    refused("check", &cfg, unset, unset);
    refused("run", &cfg, unset, unset);
    // A UDP port in use: refused before the ledger or a key is made.
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let cfg = config(dir.path(), "");
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "listen = []",
        &format!("listen = [\"{}\"]", taken.local_addr().unwrap()),
    );
    std::fs::write(&cfg, text).unwrap();
    refused("run", &cfg, unset, "cannot listen on UDP");
    // An input file that is not there.
    let missing = dir.path().join("no-such.pcap");
    let cfg = config(dir.path(), &format!("[files]\npaths = [{missing:?}]"));
    refused("run", &cfg, unset, "no-such.pcap");
}

/// The administration commands work on a sensor's data and never make one (CI-5: `keys`
/// made `/var/lib/mamori-sensor` and a ledger key); the one default is the same in the help.
#[test]
fn admin_commands_never_make_a_data_directory_and_the_default_is_documented() {
    let dir = tempfile::tempdir().unwrap();
    let none = dir.path().join("none");
    for args in [
        &["sensor", "keys"][..],
        &["sensor", "ledger", "verify"][..],
        &["sensor", "overseer-token"][..],
        &["sensor", "operator-token"][..],
    ] {
        let out = mamori()
            .arg("--data-dir")
            .arg(&none)
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            err.contains("holds no sensor data") && err.contains("--data-dir"),
            "{args:?}: {err}"
        );
        assert!(!none.exists(), "{args:?} made {}", none.display());
    }
    // Without --data-dir: the default, named in the refusal, is not made either.
    let default = Path::new("/var/lib/mamori-sensor");
    let existed = default.exists();
    let out = mamori().args(["sensor", "keys"]).output().unwrap();
    if !existed {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("/var/lib/mamori-sensor"),
            "{err}"
        );
        assert!(!default.exists(), "sensor keys made the default data dir");
    }
    let help = mamori()
        .args(["sensor", "keys", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    assert!(help.contains("/var/lib/mamori-sensor"), "{help}");
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../config/sensor.example.toml"
    ))
    .unwrap();
    assert!(example.contains("data_dir = \"/var/lib/mamori-sensor\""));
}
