//! `cargo xtask api`: schemathesis against `because serve`.
//!
//! Serves the demo's model (with an API key, so writes are exercised too)
//! and runs schemathesis, from PyPI in a virtual environment under the
//! target folder, against the served OpenAPI document: every response must
//! match its schema, no request may get a 5xx, schema-valid requests must
//! be accepted and invalid ones refused.

use anyhow::{bail, Context};
use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};

/// The schemathesis release the check is pinned to.
const SCHEMATHESIS: &str = "schemathesis==4.32.5";

pub fn run(root: &Path) -> anyhow::Result<()> {
    let target = crate::target_dir(root);
    crate::run(Command::new(env!("CARGO")).current_dir(root).args([
        "build",
        "-p",
        "because-cli",
        "--bin",
        "because",
    ]))?;
    let because = target.join("debug").join("because");
    let venv = target.join("api-venv");
    let st = venv.join("bin").join("schemathesis");
    if !st.is_file() {
        crate::run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
        crate::run(Command::new(venv.join("bin").join("python")).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            SCHEMATHESIS,
        ]))?;
    }
    let work = tempdir(&target)?;
    crate::run(
        Command::new(&because)
            .args(["demo", "--size", "tiny", "--quiet", "--out"])
            .arg(work.join("demo")),
    )?;
    let key = "schemathesis-key-0123456789";
    std::fs::write(work.join("key"), key)?;
    let mut server = Command::new(&because)
        .arg("serve")
        .arg("--model")
        .arg(work.join("demo").join("models").join("best"))
        .arg("--api-key-file")
        .arg(work.join("key"))
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start because serve")?;
    let mut line = String::new();
    std::io::BufReader::new(server.stdout.take().context("no stdout")?).read_line(&mut line)?;
    let Some(addr) = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
    else {
        let _ = server.kill();
        bail!("because serve did not say where it listens: {line:?}");
    };
    // Its caches go to the scratch folder, not the working tree.
    let status = Command::new(&st)
        .current_dir(&work)
        .arg("--config-file")
        .arg(root.join("crates/because-server/schemathesis.toml"))
        .arg("run")
        .arg(format!("http://{addr}/openapi.json"))
        .args(["-H", &format!("Authorization: Bearer {key}")])
        .args(["--max-examples", "50", "--workers", "2", "--seed", "1"])
        .status();
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&work);
    if !status.context("cannot run schemathesis")?.success() {
        bail!("schemathesis found responses that do not match the OpenAPI document");
    }
    Ok(())
}

fn tempdir(target: &Path) -> anyhow::Result<std::path::PathBuf> {
    let dir = target.join(format!("api-check-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
