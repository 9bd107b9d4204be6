//! Support for tests that use real data sets.
//!
//! Plain `cargo test` is hermetic; tests on MovieLens-100k read the folder
//! named by `BECAUSE_ML100K` (which `cargo xtask test` fills). When the
//! variable is unset they are skipped with a message, except under CI or
//! with `BECAUSE_REQUIRE_DATA=1`, where they fail: a quality bar must never
//! pass by not running.

use std::path::PathBuf;

/// The MovieLens-100k folder (`ratings.csv`, `items.csv`, `users.csv`), or
/// `None` when the test should be skipped.
///
/// # Panics
/// When the data is required (CI) but not available.
pub fn ml100k_dir() -> Option<PathBuf> {
    let required =
        std::env::var_os("CI").is_some() || std::env::var_os("BECAUSE_REQUIRE_DATA").is_some();
    match std::env::var_os("BECAUSE_ML100K").map(PathBuf::from) {
        Some(dir) if dir.join("ratings.csv").is_file() => Some(dir),
        Some(dir) => panic!(
            "BECAUSE_ML100K={} has no ratings.csv; run `cargo xtask fetch-data`",
            dir.display()
        ),
        None if required => {
            panic!("BECAUSE_ML100K is not set; run the tests with `cargo xtask test`")
        }
        None => {
            eprintln!("skipping: BECAUSE_ML100K is not set (run `cargo xtask test` for the real-data tests)");
            None
        }
    }
}
