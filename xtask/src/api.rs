//! `cargo xtask api`: schemathesis against `because serve`.
//!
//! Serves the demo's model (with an API key, so writes are exercised too)
//! and runs schemathesis, from PyPI in a virtual environment under the
//! target folder, against the served OpenAPI document: every response must
//! match its schema, no request may get a 5xx, schema-valid requests must
//! be accepted and invalid ones refused.

use anyhow::{bail, Context};
use std::path::Path;
use std::process::Command;

/// The schemathesis release the check is pinned to.
const SCHEMATHESIS: &str = "schemathesis==4.32.5";

pub fn run(root: &Path) -> anyhow::Result<()> {
    let target = crate::target_dir(root);
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
    // With the demo's features and event log, so every kind of reason and the
    // dashboard's routes are exercised.
    let served = crate::served::demo_server(root, "api-check", crate::served::CONTEXT)?;
    // Its caches go to the scratch folder, not the working tree.
    let status = Command::new(&st)
        .current_dir(&served.work)
        .arg("--config-file")
        .arg(root.join("crates/because-server/schemathesis.toml"))
        .arg("run")
        .arg(format!("http://{}/openapi.json", served.addr))
        .args(["-H", &format!("Authorization: Bearer {}", served.key)])
        .args(["--max-examples", "50", "--workers", "2", "--seed", "1"])
        .status();
    drop(served);
    if !status.context("cannot run schemathesis")?.success() {
        bail!("schemathesis found responses that do not match the OpenAPI document");
    }
    Ok(())
}
