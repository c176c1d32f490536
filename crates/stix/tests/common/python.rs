//! Running the OASIS Python reference tools (test oracles) when they are installed.

use std::process::{Command, Output};

/// Runs `python3` with `args`. Starting a process is what `clippy.toml` reserves for
/// actuators; here it runs the OASIS reference implementations the tests compare against.
#[allow(clippy::disallowed_methods)]
pub(crate) fn python3(args: &[&str]) -> Option<Output> {
    Command::new("python3").args(args).output().ok()
}

/// Whether `module` imports; if not, says how to install `package` and returns false —
/// or fails when `MAMORI_REQUIRE_TEST_DATA=1`, so CI cannot skip silently.
#[allow(clippy::print_stderr, clippy::panic)]
pub(crate) fn have_module(module: &str, package: &str) -> bool {
    let ok = python3(&["-c", &format!("import {module}")]).is_some_and(|o| o.status.success());
    if !ok {
        if std::env::var("MAMORI_REQUIRE_TEST_DATA").is_ok_and(|v| v == "1") {
            panic!(
                "{package} is not installed and MAMORI_REQUIRE_TEST_DATA=1 (pip install {package})"
            );
        }
        eprintln!("skipping: {package} not installed (pip install {package})");
    }
    ok
}
