//! Project automation: `cargo xtask <task>`.
//!
//! * `test`: fetch the real data sets, then run every test with them.
//! * `fetch-data [DIR]`: fetch MovieLens-100k (default `data/ml-100k`).
//! * `api`: schemathesis against `because serve` and its OpenAPI document.
//! * `dashboard`: the web dashboard end to end in headless Chromium.
//! * `python`: the Python package's wheel, installed fresh, under pytest.
//! * `bench load [--rows N]`: loading speed and memory against pandas + scipy.
//! * `bench serve`: `because serve` under load (oha), events per second, kill -9.
//! * `bench retrieval [--items N]`: approximate retrieval on a 1M-item catalogue, in process and served.
//! * `bench faults [--size S] [--before PATH]`: `because serve` through a reload, a rolling restart, a kill -9 of a replica and a PostgreSQL outage under load; mixed load on SQLite.
//! * `bench python`: the Python binding against the same calls in Rust and the CLI.
//! * `bench spark [--users N]`: recommend + explain on Spark in local[1] and local[2].
//! * `bench sequential [--size retail|retail-small] [--models S;S] [--recbole PYTHON]`: SASRec, GRU4Rec and the two-tower model trained to convergence on the retail shape; seconds per epoch against RecBole on MovieLens-100k.

mod api;
mod bench;
mod bench_faults;
mod bench_sequential;
mod bench_serve;
mod dashboard;
mod python;
mod served;
#[cfg(test)]
mod structure;

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = project_root();
    match args.first().map(String::as_str) {
        Some("test") => test(&root, &args[1..]),
        Some("fetch-data") => fetch_data(&root, args.get(1).map(PathBuf::from)).map(|_| ()),
        Some("bench") => bench::run(&root, &args[1..]),
        Some("api") => api::run(&root),
        Some("dashboard") => dashboard::run(&root),
        Some("python") => {
            let ml = fetch_data(&root, std::env::var_os("BECAUSE_ML100K").map(PathBuf::from))?;
            python::run(&root, &ml)
        }
        _ => {
            eprintln!("usage: cargo xtask <test | api | dashboard | python | fetch-data [DIR] | bench load [--rows N]>");
            bail!("unknown task {:?}", args.first());
        }
    }
}

/// Where cargo builds: `CARGO_TARGET_DIR`, or `target/` in the workspace.
pub(crate) fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

/// Builds `because` in the dev profile (as the tests are); returns the binary.
/// It builds every target of the workspace, as `cargo test --workspace
/// --all-targets` does, so that features resolve the same way and nothing
/// the tests built (burn above all) is compiled a second time.
pub(crate) fn debug_because(root: &Path) -> anyhow::Result<PathBuf> {
    run(Command::new(env!("CARGO")).current_dir(root).args([
        "build",
        "--workspace",
        "--all-targets",
    ]))?;
    Ok(target_dir(root).join("debug").join("because"))
}

/// Builds `because` in release mode; returns the target folder and the binary.
pub(crate) fn release_because(root: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let target = target_dir(root);
    run(Command::new(env!("CARGO")).current_dir(root).args([
        "build",
        "--release",
        "-p",
        "because-cli",
    ]))?;
    let because = target.join("release").join("because");
    Ok((target, because))
}

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

pub(crate) fn run(cmd: &mut Command) -> anyhow::Result<()> {
    eprintln!("$ {cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn fetch_data(root: &Path, dir: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let dir = dir.unwrap_or_else(|| root.join("data").join("ml-100k"));
    run(Command::new("bash")
        .arg(root.join("scripts/fetch-ml100k.sh"))
        .arg(&dir))?;
    Ok(dir)
}

fn test(root: &Path, extra: &[String]) -> anyhow::Result<()> {
    let ml = fetch_data(root, std::env::var_os("BECAUSE_ML100K").map(PathBuf::from))?;
    run(Command::new(env!("CARGO"))
        .current_dir(root)
        .args(["test", "--workspace", "--all-targets"])
        .args(extra)
        .env("BECAUSE_ML100K", &ml)
        .env("BECAUSE_REQUIRE_DATA", "1"))?;
    // Doc tests are not part of --all-targets.
    run(Command::new(env!("CARGO"))
        .current_dir(root)
        .args(["test", "--workspace", "--doc"]))?;
    // The HTTP API against its OpenAPI document.
    api::run(root)?;
    // The dashboard in a real browser.
    dashboard::run(root)?;
    // The Python package, built as a wheel and installed fresh.
    python::run(root, &ml)
}
