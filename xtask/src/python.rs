//! `cargo xtask python`: builds the Python package's wheel with maturin,
//! installs it into a fresh virtual environment and runs its tests with
//! pytest (MovieLens-100k and the `because` binary at hand, as the real
//! data tests require; PySpark in local mode for `because.spark`).

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The maturin release the wheel is built with.
const MATURIN: &str = "maturin==1.16.0";

/// The PySpark release the Spark tests run on.
pub const PYSPARK: &str = "pyspark==4.3.0";

/// Makes `venv` afresh and installs `pkgs` (paths or requirements) into it.
fn venv_with(venv: &Path, pkgs: &[&std::ffi::OsStr]) -> anyhow::Result<()> {
    crate::run(
        Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(venv),
    )?;
    crate::run(
        Command::new(venv.join("bin").join("python"))
            .args(["-m", "pip", "install", "--quiet"])
            .args(pkgs),
    )
}

/// A virtual environment under the target folder, made once, with `pkgs`.
pub fn tools_venv(target: &Path, name: &str, pkgs: &[&str]) -> anyhow::Result<PathBuf> {
    let venv = target.join(name);
    let stamp = venv.join(".because-installed");
    let want = pkgs.join(" ");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(want.as_str()) {
        let pkgs: Vec<&std::ffi::OsStr> = pkgs.iter().map(std::ffi::OsStr::new).collect();
        venv_with(&venv, &pkgs)?;
        std::fs::write(&stamp, &want)?;
    }
    Ok(venv)
}

/// Builds the wheel (dev profile, sharing the tests' build) into
/// `<target>/wheels`; returns its path.
pub fn build_wheel(root: &Path, profile: &str) -> anyhow::Result<PathBuf> {
    let target = crate::target_dir(root);
    let tools = tools_venv(&target, "maturin-venv", &[MATURIN])?;
    let out = target.join("wheels").join(profile);
    let _ = std::fs::remove_dir_all(&out);
    crate::run(
        Command::new(tools.join("bin").join("maturin"))
            .current_dir(root)
            .args(["build", "--profile", profile, "--manifest-path"])
            .arg(root.join("crates/because-python/Cargo.toml"))
            .arg("--out")
            .arg(&out),
    )?;
    let wheel = std::fs::read_dir(&out)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .context("maturin wrote no wheel")?;
    Ok(wheel)
}

/// A fresh virtual environment with the wheel and `extra` installed.
pub fn fresh_venv(
    target: &Path,
    name: &str,
    wheel: &Path,
    extra: &[&str],
) -> anyhow::Result<PathBuf> {
    let venv = target.join(name);
    let mut pkgs = vec![wheel.as_os_str()];
    pkgs.extend(extra.iter().map(std::ffi::OsStr::new));
    venv_with(&venv, &pkgs)?;
    Ok(venv)
}

pub fn run(root: &Path, ml100k: &Path) -> anyhow::Result<()> {
    let target = crate::target_dir(root);
    // The command line, for the tests that compare with it.
    let because = crate::debug_because(root)?;
    let wheel = build_wheel(root, "dev")?;
    // PySpark for the Spark tests (local mode, on the machine's Java 17);
    // PySpark 4.3 does not fully support pandas 3.
    let venv = fresh_venv(
        &target,
        "python-test-venv",
        &wheel,
        &["pytest", PYSPARK, "pyarrow", "pandas<3"],
    )?;
    let status = Command::new(venv.join("bin").join("python"))
        .current_dir(root)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(root.join("crates/because-python/tests"))
        .env("BECAUSE_ML100K", ml100k)
        .env("BECAUSE_REQUIRE_DATA", "1")
        .env("BECAUSE_BIN", &because)
        .status()
        .context("cannot run pytest")?;
    if !status.success() {
        bail!("the Python package's tests failed");
    }
    Ok(())
}
