//! The README as a newcomer runs it: every `sh` block of `README.md`, in order, in one
//! shell, against a real `mamori serve` on 127.0.0.1 with a fresh data directory. Only
//! what must differ is substituted: the first administrator's token printed at first
//! start (`mamori_1_…`) and the address (`127.0.0.1:8080` becomes the ephemeral port).
//! Any command that fails fails the test, naming the README line of its block.
//!
//! A block that cannot run here (it builds mamori, needs PostgreSQL, capture files or a
//! sensor) starts with the visible line `# not run by the README test: <why>`; the test
//! prints each one it skipped, and insists that the walkthrough's sections do run.

#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // tests: starts processes as a user would

mod support;

use std::path::Path;

/// How a block that the test does not run begins.
const SKIP: &str = "# not run by the README test:";
/// The placeholder the README uses for the token printed at first start.
const TOKEN_PLACEHOLDER: &str = "mamori_1_…";
/// The address the README uses for the centre.
const README_ADDR: &str = "127.0.0.1:8080";

/// A fenced `sh` block: the section it is in, the README line of its first line, its text.
struct Block {
    section: String,
    line: usize,
    text: String,
}

fn sh_blocks(readme: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut section = String::new();
    let mut open: Option<Block> = None;
    for (n, line) in readme.lines().enumerate() {
        match &mut open {
            Some(block) if line.trim_end() == "```" => {
                out.push(std::mem::replace(
                    block,
                    Block {
                        section: String::new(),
                        line: 0,
                        text: String::new(),
                    },
                ));
                open = None;
            }
            Some(block) => {
                block.text.push_str(line);
                block.text.push('\n');
            }
            None if line.trim_end() == "```sh" => {
                open = Some(Block {
                    section: section.clone(),
                    line: n + 2,
                    text: String::new(),
                });
            }
            None => {
                if let Some(title) = line.strip_prefix("## ") {
                    title.clone_into(&mut section);
                }
            }
        }
    }
    assert!(open.is_none(), "README.md: an sh block is never closed");
    out
}

#[test]
fn every_readme_command_runs_on_a_fresh_install() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    let (skipped, run): (Vec<Block>, Vec<Block>) = sh_blocks(&readme)
        .into_iter()
        .partition(|b| b.text.starts_with(SKIP));
    for b in &skipped {
        let why = b.text.lines().next().unwrap_or("")[SKIP.len()..].trim();
        assert!(
            !why.is_empty(),
            "README.md:{}: say why it is not run",
            b.line
        );
        eprintln!("skipped README.md:{} ({}): {why}", b.line, b.section);
    }
    // The walkthrough itself runs: a README that skipped it would prove nothing.
    for section in [
        "Run it",
        "Administer it",
        "Report an incident (operators)",
        "Verify the ledger (the overseer)",
    ] {
        assert!(
            run.iter().any(|b| b.section == section),
            "no block of {section:?} runs"
        );
    }
    let script_text: String = run.iter().map(|b| b.text.as_str()).collect();
    assert!(
        script_text.contains(TOKEN_PLACEHOLDER) && script_text.contains(README_ADDR),
        "the README names the first token as {TOKEN_PLACEHOLDER} and the centre as {README_ADDR}"
    );

    // A fresh install: `mamori serve` in an empty directory, as the README starts it.
    let dir = tempfile::tempdir().unwrap();
    let server = support::start_serve_in(Some(dir.path()), Vec::<&str>::new(), &[]);
    let token = server
        .log
        .split_whitespace()
        .find(|w| w.starts_with("mamori_1_"))
        .unwrap_or_else(|| panic!("no first token printed at first start: {}", server.log))
        .to_owned();

    let mut script = String::from(
        "set -euo pipefail\n\
         trap 'echo \"README.md:$README_LINE: failed (exit $?): $BASH_COMMAND\" >&2' ERR\n",
    );
    for b in &run {
        script.push_str(&format!(
            "README_LINE={}\necho '+ README.md:{} ({})' >&2\n",
            b.line, b.line, b.section
        ));
        script.push_str(
            &b.text
                .replace(README_ADDR, &server.addr)
                .replace(TOKEN_PLACEHOLDER, &token),
        );
    }
    let bin = assert_cmd::cargo::cargo_bin("mamori");
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = std::process::Command::new("timeout");
    cmd.args(["300", "bash", "-c", &script])
        .current_dir(dir.path())
        .env("PATH", path);
    for (k, _) in std::env::vars() {
        if k.starts_with("MAMORI_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd.output().unwrap();
    let (status, log) = server.stop();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "a README command failed:\n{stderr}\n--- stdout ---\n{stdout}\n--- server ---\n{log}"
    );
    assert!(status.success(), "{log}");
    // What the walkthrough promises, seen in its own output.
    assert!(
        stdout.contains("Energy Ministry") && stdout.contains("revoked token 3"),
        "{stdout}"
    );
    assert!(stdout.contains("verified: "), "{stdout}");
}
