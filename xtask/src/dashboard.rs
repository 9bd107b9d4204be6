//! `cargo xtask dashboard`: the dashboard end to end in headless Chromium.
//!
//! Serves the demo's model with its features and event log, starts
//! chromedriver (Debian's `chromium` and `chromium-driver`), and runs
//! `crates/because-server/tests/browser/dashboard.py`, which drives the
//! browser over the WebDriver protocol with Python's standard library only.
//! Screenshots of every page land in `<target>/dashboard-screenshots/`.

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The first of `names` found on the `PATH`, or the path in `env`.
fn program(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// Kills chromedriver (and the browsers it started) when dropped.
struct Driver(std::process::Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn run(root: &Path) -> anyhow::Result<()> {
    let chromium = program(
        "BECAUSE_CHROMIUM",
        &["chromium", "chromium-browser", "google-chrome"],
    );
    let chromedriver = program("BECAUSE_CHROMEDRIVER", &["chromedriver"]);
    let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
        let missing = "no Chromium or chromedriver: install Debian's `chromium` and \
                       `chromium-driver` (or set BECAUSE_CHROMIUM and BECAUSE_CHROMEDRIVER)";
        // CI requires the browser test; elsewhere it is skipped, loudly.
        if std::env::var_os("BECAUSE_REQUIRE_BROWSER").is_some_and(|v| v == "1") {
            bail!("{missing}");
        }
        eprintln!("SKIPPED the dashboard's browser test: {missing}");
        return Ok(());
    };
    let served = crate::served::demo_server(root, "dashboard-check", crate::served::CONTEXT)?;
    // A small SASRec on the demo's log, served beside it: the method picker
    // and the attention view.
    let because = crate::target_dir(root).join("debug").join("because");
    let demo = served.work.join("demo");
    crate::run(
        Command::new(&because)
            .current_dir(&demo)
            .args(["train", "--quiet", "--data", "data/interactions.csv"])
            .args([
                "--model",
                "sasrec:dim=16,layers=1,heads=2,ffn=16,max_len=10,epochs=2",
            ])
            .args(["--out", "models/sasrec"]),
    )?;
    let sequential = crate::served::serve(&because, &served.work, "models/sasrec", &[])?;
    // A two-tower model with the demo's user and item features: new users
    // described by features alone.
    crate::run(
        Command::new(&because)
            .current_dir(&demo)
            .args(["train", "--quiet", "--data", "data/interactions.csv"])
            .args(["--items", "data/items.csv", "--users", "data/users.csv"])
            .args([
                "--model",
                "twotower:dim=16,hidden=16,epochs=3,min_support=2",
            ])
            .args(["--out", "models/twotower"]),
    )?;
    let featured = crate::served::serve(&because, &served.work, "models/twotower", &[])?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let _driver = Driver(
        Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", chromedriver.display()))?,
    );
    let shots = crate::target_dir(root).join("dashboard-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots)?;
    let status = Command::new("python3")
        .arg(root.join("crates/because-server/tests/browser/dashboard.py"))
        .env("BECAUSE_BASE", format!("http://{}", served.addr))
        .env(
            "BECAUSE_BASE_SEQUENTIAL",
            format!("http://{}", sequential.addr),
        )
        .env("BECAUSE_BASE_FEATURED", format!("http://{}", featured.addr))
        .env("BECAUSE_KEY", served.key)
        .env("BECAUSE_WEBDRIVER", format!("http://127.0.0.1:{port}"))
        .env("BECAUSE_CHROMIUM", &chromium)
        .env("BECAUSE_SHOTS", &shots)
        .env("BECAUSE_DEMO", served.work.join("demo"))
        .status()
        .context("cannot run python3")?;
    drop(served);
    drop(sequential);
    drop(featured);
    if !status.success() {
        bail!(
            "the dashboard's browser test failed (screenshots so far in {})",
            shots.display()
        );
    }
    eprintln!("dashboard screenshots: {}", shots.display());
    Ok(())
}
