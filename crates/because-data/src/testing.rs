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

/// Rounds every float in `v` to four significant digits, so snapshots do
/// not depend on the last bits of floating-point arithmetic.
pub fn rounded(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(0.0);
            if x == 0.0 || n.is_i64() || n.is_u64() {
                return Value::Number(n);
            }
            let scale = 10f64.powi(3 - x.abs().log10().floor() as i32);
            serde_json::json!((x * scale).round() / scale)
        }
        Value::Array(a) => Value::Array(a.into_iter().map(rounded).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, rounded(v))).collect()),
        other => other,
    }
}

/// Compares `value` (floats rounded, pretty JSON) with the snapshot file at
/// `path`, naming the first line that differs. With `BECAUSE_BLESS=1` the
/// file is rewritten instead.
///
/// # Panics
/// When the two differ.
pub fn assert_snapshot(path: &std::path::Path, value: &impl serde::Serialize) {
    let v = serde_json::to_value(value).unwrap_or_default();
    let got = serde_json::to_string_pretty(&rounded(v)).unwrap_or_default() + "\n";
    if std::env::var_os("BECAUSE_BLESS").is_some() {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = std::fs::write(path, &got);
    }
    let want = std::fs::read_to_string(path).unwrap_or_default();
    if let Some((line, (g, w))) = got
        .lines()
        .zip(want.lines().chain(std::iter::repeat("(missing)")))
        .enumerate()
        .find(|(_, (g, w))| g != w)
    {
        panic!(
            "{} changed at line {}:\n  got:  {g}\n  want: {w}\nif that is intended, run with BECAUSE_BLESS=1",
            path.display(),
            line + 1,
        );
    }
    assert_eq!(
        got.lines().count(),
        want.lines().count(),
        "{} has more lines than the value",
        path.display()
    );
}
