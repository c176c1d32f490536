//! What the binary's tests share: a `mamori` command with a clean environment, and a
//! `mamori serve` started on a free port of 127.0.0.1.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::disallowed_methods
)] // test support: starts and signals processes as an operator would

use assert_cmd::Command;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Lines};
use std::process::{Child, ChildStderr};
use std::time::{Duration, Instant};

/// `mamori`, without the developer's own `MAMORI_*` settings leaking in (the test-data
/// location excepted).
pub fn mamori() -> Command {
    let mut cmd = Command::cargo_bin("mamori").unwrap();
    for (k, _) in std::env::vars() {
        if k.starts_with("MAMORI_") && k != "MAMORI_TEST_DATA" {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// A running `mamori serve`, logging JSON to a pipe.
pub struct Server {
    pub child: Child,
    pub addr: String,
    pub lines: Lines<BufReader<ChildStderr>>,
    /// What it logged before it was listening.
    pub log: String,
}

/// Starts `mamori serve --listen 127.0.0.1:0 ARGS…` with `env`, and waits until it listens.
pub fn start_serve<I, S>(args: I, env: &[(&str, &str)]) -> Server
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    start_serve_in(None, args, env)
}

/// [`start_serve`] in the working directory `cwd` (where `./mamori-data` then lives).
pub fn start_serve_in<I, S>(cwd: Option<&std::path::Path>, args: I, env: &[(&str, &str)]) -> Server
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("mamori"));
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    for (k, _) in std::env::vars() {
        if k.starts_with("MAMORI_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .env("MAMORI_LOG_FORMAT", "json");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.stderr(std::process::Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut log = String::new();
    let addr = loop {
        assert!(Instant::now() < deadline, "server did not start: {log}");
        let line = lines.next().unwrap().unwrap();
        log.push_str(&line);
        log.push('\n');
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
            && let Some(addr) = v["addr"].as_str()
        {
            break addr.to_owned();
        }
    };
    Server {
        child,
        addr,
        lines,
        log,
    }
}

impl Server {
    /// Sends SIGTERM, collects the rest of the log, and returns it with the exit status.
    pub fn stop(mut self) -> (std::process::ExitStatus, String) {
        std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        let mut log = std::mem::take(&mut self.log);
        for line in self.lines.by_ref() {
            log.push_str(&line.unwrap());
            log.push('\n');
        }
        (self.child.wait().unwrap(), log)
    }
}

/// Runs `mamori --data-dir DATA ARGS…` as an administrator at the host would, asserts it
/// succeeded, and returns its trimmed standard output.
pub fn run_in(data: &OsStr, args: &[&str]) -> String {
    let out = mamori()
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Adds carrier "Carrier K" (organisation 2) with member `sensor-k` to the centre in
/// `data`, and returns the member's token: what a carrier's sensor posts findings with.
pub fn add_carrier(data: &OsStr) -> String {
    run_in(
        data,
        &[
            "admin",
            "org",
            "add",
            "--kind",
            "carrier",
            "--name",
            "Carrier K",
        ],
    );
    run_in(
        data,
        &[
            "admin", "user", "add", "--org", "2", "--name", "sensor-k", "--role", "member",
        ],
    );
    run_in(data, &["admin", "token", "issue", "--user", "2"])
}
