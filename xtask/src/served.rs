//! `because serve` on the demo's model, for the checks that drive it from
//! outside (schemathesis, the browser).

use anyhow::Context;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The demo's item and user features and its raw event log, as `serve`
/// arguments (relative to the demo's output).
pub const CONTEXT: &[&str] = &[
    "--items",
    "data/items.csv",
    "--users",
    "data/users.csv",
    "--events",
    "data/interactions.csv",
];

/// A server on the demo's tiny model, with an API key; stopped, and its
/// scratch folder removed, when dropped.
pub struct Served {
    server: Child,
    /// `host:port` it listens on.
    pub addr: String,
    /// The API key writes need.
    pub key: &'static str,
    /// The scratch folder: the demo's output is in `demo/`.
    pub work: PathBuf,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

/// Builds `because` (debug), runs the tiny demo in a scratch folder under
/// the target folder named after `purpose`, and serves its best model with
/// the `extra` arguments (paths in them relative to the demo's output).
pub fn demo_server(root: &Path, purpose: &str, extra: &[&str]) -> anyhow::Result<Served> {
    let target = crate::target_dir(root);
    let because = crate::debug_because(root)?;
    let work = target.join(format!("{purpose}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    crate::run(
        Command::new(&because)
            .args(["demo", "--size", "tiny", "--quiet", "--out"])
            .arg(work.join("demo")),
    )?;
    serve(&because, &work, "models/best", extra)
}

/// `because serve` of the model folder `model` (relative to `work/demo`,
/// where `demo_server` ran the demo) with the check's API key.
pub fn serve(because: &Path, work: &Path, model: &str, extra: &[&str]) -> anyhow::Result<Served> {
    let key = "check-key-0123456789abcdef";
    std::fs::write(work.join("key"), key)?;
    let mut server = Command::new(because)
        .current_dir(work.join("demo"))
        .arg("serve")
        .args(["--model", model])
        .arg("--api-key-file")
        .arg(work.join("key"))
        .args(["--listen", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start because serve")?;
    let addr = listening_on(&mut server);
    // Made before the address is checked, so a failure still stops it.
    let mut served = Served {
        server,
        addr: String::new(),
        key,
        work: work.to_path_buf(),
    };
    served.addr = addr?;
    Ok(served)
}

/// Where a just-started `because serve` listens (`host:port`), from the
/// first line it prints.
pub fn listening_on(server: &mut Child) -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::BufReader::new(server.stdout.take().context("no stdout")?).read_line(&mut line)?;
    line.split("http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .map(str::to_string)
        .with_context(|| format!("because serve did not say where it listens: {line:?}"))
}
