//! Finding the shared third-party test data (`../shared/data` beside the repository).
//!
//! A user's clone has no such folder: tests then skip and say so plainly. In CI,
//! `MAMORI_REQUIRE_TEST_DATA=1` turns a missing file into a failure, so a skipped test
//! cannot hide there. Test support only (feature `testdata`).

use std::path::PathBuf;

/// The test-data root: `MAMORI_TEST_DATA`, else `../shared/data` from the workspace root.
pub fn root() -> PathBuf {
    match std::env::var_os("MAMORI_TEST_DATA") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
    }
}

/// The path of `rel` under the test-data root, or `None` (after saying so on stderr) when
/// it is missing. Panics when it is missing and `MAMORI_REQUIRE_TEST_DATA=1`.
#[allow(clippy::print_stderr, clippy::panic)]
pub fn path(rel: &str) -> Option<PathBuf> {
    let p = root().join(rel);
    if p.exists() {
        return Some(p);
    }
    let required = std::env::var("MAMORI_REQUIRE_TEST_DATA").is_ok_and(|v| v == "1");
    if required {
        panic!(
            "test data {} is missing and MAMORI_REQUIRE_TEST_DATA=1; set MAMORI_TEST_DATA to the shared data folder",
            p.display()
        );
    }
    eprintln!(
        "skipping: test data {} not found (set MAMORI_TEST_DATA to the shared data folder)",
        p.display()
    );
    None
}
