//! `cargo xtask bench sequential [--size retail|retail-small] [--models
//! SPECS] [--recbole PYTHON]`: the sequential and neural models' training
//! at a shop's scale, and against RecBole on MovieLens-100k.
//!
//! 1. **The retail shape.** On the generated log (`because generate --size
//!    retail`: 1.4M visitors, 235k items; visitors with at least 3 events
//!    kept), `because train` trains each model as a user would, with its
//!    defaults and early stopping: the seconds to the saved model (the
//!    search, then the refit on everything), the epochs run, training
//!    events per second over both fits, and the process's peak memory.
//! 2. **Seconds per epoch against RecBole 1.2.1** (CPU torch, the same
//!    threads), on MovieLens-100k at the same sizes: ours from `because
//!    train` with a fixed epoch count, RecBole's from
//!    `xtask/scripts/recbole_bench.py` (the fastest of its timed epochs).
//!    Needs a Python with RecBole (`--recbole PYTHON`; DEPENDENCIES.md says
//!    how to install one); without it this part is skipped, saying so.
//!
//! Each side runs as a child process on 2 threads; peak memory comes from
//! `wait4`.

use crate::bench::{measure, Measured};
use crate::run as sh;
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Threads each side trains on.
const THREADS: &str = "2";

/// Epochs RecBole is timed for (minutes each for SASRec on 2 threads).
const RECBOLE_EPOCHS: usize = 1;

/// What `because train` reported.
struct Fit {
    measured: Measured,
    interactions: u64,
    seconds: f64,
    epochs_run: u64,
    best: u64,
}

fn train(
    because: &Path,
    log: &Path,
    spec: &str,
    extra: &[&str],
    out: &Path,
) -> anyhow::Result<Fit> {
    let measured = measure(
        Command::new(because)
            .arg("train")
            .arg("--data")
            .arg(log)
            .args(["--model", spec, "--index", "never", "--quiet", "--out"])
            .arg(out)
            .args(extra)
            .env("RAYON_NUM_THREADS", THREADS),
    )?;
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json"))?)?;
    let metrics = &manifest["metrics"];
    let stopped = &metrics["early_stopping"];
    // "trained SPEC on N interactions (...)"
    let interactions = measured
        .stdout
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix("trained ")?;
            let on = rest.split(" on ").nth(1)?;
            on.split_whitespace().next()?.parse().ok()
        })
        .context("no `trained ... on N interactions` line")?;
    Ok(Fit {
        interactions,
        seconds: metrics["fit_seconds"].as_f64().unwrap_or(f64::NAN),
        epochs_run: stopped["epochs_run"].as_u64().unwrap_or(0),
        best: stopped["best_epoch"].as_u64().unwrap_or(0),
        measured,
    })
}

/// `cargo xtask bench sequential`.
pub fn run(root: &Path, size: &str, models: &str, recbole: Option<PathBuf>) -> anyhow::Result<()> {
    let (target, because) = crate::release_because(root)?;
    let data_dir = target.join("bench-data").join(size);
    if !data_dir.join("interactions.csv").is_file() {
        sh(Command::new(&because)
            .args(["generate", "--size", size, "--out"])
            .arg(&data_dir))?;
    }
    let work = target.join("bench-sequential");
    std::fs::create_dir_all(&work)?;
    let log = data_dir.join("interactions.csv");
    let mut lines = Vec::new();
    for spec in models.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let out = work.join("model");
        let f = train(
            &because,
            &log,
            spec,
            &["--min-user-interactions", "3"],
            &out,
        )?;
        let epochs = f.epochs_run + f.best;
        lines.push(format!(
            "{size} {spec:<40} {:>7.1}s to the saved model ({} epochs searched, best {}, refit), {:>9.0} events/s, peak {:.0} MB",
            f.measured.wall,
            f.epochs_run,
            f.best,
            f.interactions as f64 * epochs as f64 / f.seconds,
            f.measured.peak_bytes as f64 / 1e6
        ));
        println!("{}", lines.last().unwrap_or(&String::new()));
    }
    // Against RecBole on MovieLens-100k.
    let ml = crate::fetch_data(root, std::env::var_os("BECAUSE_ML100K").map(PathBuf::from))?;
    let epochs = 3;
    for (ours, theirs) in [("sasrec", "SASRec"), ("gru4rec", "GRU4Rec")] {
        let out = work.join("ml100k");
        let spec = format!("{ours}:epochs={epochs}");
        let f = train(
            &because,
            &ml.join("ratings.csv"),
            &spec,
            &["--no-rating"],
            &out,
        )?;
        let per_epoch = f.seconds / epochs as f64;
        let line = match &recbole {
            Some(python) => {
                // RecBole writes its logs (`log/`, `log_tensorboard/`) where it runs.
                let recbole_work = work.join("recbole");
                std::fs::create_dir_all(&recbole_work)?;
                let r = measure(
                    Command::new(python)
                        .current_dir(&recbole_work)
                        .arg(root.join("xtask/scripts/recbole_bench.py"))
                        .arg(theirs)
                        .arg(std::path::absolute(&ml)?)
                        .arg(RECBOLE_EPOCHS.to_string())
                        .arg(THREADS)
                        .arg(&recbole_work),
                )?;
                let theirs_s: f64 = r
                    .stdout
                    .split_whitespace()
                    .next()
                    .and_then(|s| s.parse().ok())
                    .context("no seconds from RecBole")?;
                format!(
                    "ml-100k {ours:<8} because {per_epoch:.2}s/epoch (peak {:.0} MB) | RecBole {theirs_s:.2}s/epoch (peak {:.0} MB) | {:.1}x (target >= 10x)",
                    f.measured.peak_bytes as f64 / 1e6,
                    r.peak_bytes as f64 / 1e6,
                    theirs_s / per_epoch
                )
            }
            None => format!(
                "ml-100k {ours:<8} because {per_epoch:.2}s/epoch (peak {:.0} MB) | RecBole not measured: pass --recbole PYTHON",
                f.measured.peak_bytes as f64 / 1e6
            ),
        };
        println!("{line}");
        lines.push(line);
    }
    println!("\n{}", lines.join("\n"));
    println!("(2 threads each; retail: `because train` with its defaults and early stopping, visitors with >= 3 events; events/s counts every epoch of the search and the refit; ml-100k: ours {epochs} epochs, RecBole's fastest of {RECBOLE_EPOCHS})");
    Ok(())
}
