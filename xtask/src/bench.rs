//! `cargo xtask bench load`: reading a MovieLens-20M-shaped CSV
//! (user,item,rating,timestamp) into the training structure, against
//! `pandas.read_csv` followed by `scipy.sparse.csr_matrix` on the same file.
//!
//! Both sides run as child processes of this one and report their own load
//! time; peak memory (maximum resident set size) comes from `wait4`, so each
//! process is measured alone. The Python side runs in a virtual environment
//! under `target/bench-venv` that this task creates.

use crate::run as sh;
use anyhow::{bail, Context};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

const PANDAS_SCRIPT: &str = r#"
import sys, time
import numpy as np, pandas as pd, scipy.sparse as sp
t0 = time.perf_counter()
df = pd.read_csv(sys.argv[1])
users, uidx = np.unique(df["user_id"].to_numpy(), return_inverse=True)
items, iidx = np.unique(df["item_id"].to_numpy(), return_inverse=True)
m = sp.csr_matrix((df["rating"].to_numpy(np.float32), (uidx, iidx)), shape=(len(users), len(items)))
t = time.perf_counter() - t0
print(f"{t:.3f} {m.nnz} {m.shape[0]} {m.shape[1]}")
"#;

pub(crate) struct Measured {
    pub seconds: f64,
    pub wall: f64,
    pub peak_bytes: u64,
    pub stdout: String,
}

/// Runs `cmd` and measures the child's own peak resident set size.
pub(crate) fn measure(cmd: &mut Command) -> anyhow::Result<Measured> {
    eprintln!("$ {cmd:?}");
    let start = Instant::now();
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    let pid = child.id() as libc::pid_t;
    let stdout = child.stdout;
    let mut status = 0;
    // SAFETY: wait4 on our own child, with valid pointers to locals.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut text = String::new();
    if let Some(mut s) = stdout {
        use std::io::Read;
        s.read_to_string(&mut text)?;
    }
    // SAFETY: as above.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if r < 0 {
        bail!("wait4 failed");
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        bail!("{cmd:?} failed: {text}");
    }
    let wall = start.elapsed().as_secs_f64();
    let seconds: f64 = text
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(wall);
    Ok(Measured {
        seconds,
        wall,
        peak_bytes: usage.ru_maxrss as u64 * 1024,
        stdout: text,
    })
}

/// The same log in the orders users have: grouped by user (as generated),
/// by time (a real log: users interleaved) and shuffled. Written once.
fn orders(data_dir: &Path) -> anyhow::Result<Vec<(&'static str, std::path::PathBuf)>> {
    let grouped = data_dir.join("interactions.csv");
    let by_time = data_dir.join("interactions-by-time.csv");
    let shuffled = data_dir.join("interactions-shuffled.csv");
    if !by_time.is_file() || !shuffled.is_file() {
        // In a process of its own: a child started from a process that once
        // held the whole log would report that high-water mark as its peak.
        sh(Command::new(std::env::current_exe()?)
            .args(["bench", "write-orders"])
            .arg(data_dir))?;
    }
    Ok(vec![
        ("grouped by user", grouped),
        ("by time", by_time),
        ("shuffled", shuffled),
    ])
}

/// `cargo xtask bench write-orders DIR`: writes `DIR/interactions.csv` by
/// time and shuffled (see [`orders`]).
pub fn write_orders(data_dir: &Path) -> anyhow::Result<()> {
    let grouped = data_dir.join("interactions.csv");
    let by_time = data_dir.join("interactions-by-time.csv");
    let shuffled = data_dir.join("interactions-shuffled.csv");
    {
        eprintln!("writing the log by time and shuffled");
        let text = std::fs::read_to_string(&grouped)?;
        let mut lines = text.lines();
        let header = lines.next().context("an empty log")?;
        let col = header
            .split(',')
            .position(|c| c == "timestamp")
            .context("no timestamp column")?;
        let mut rows: Vec<&str> = lines.collect();
        let time = |l: &str| -> i64 {
            l.split(',')
                .nth(col)
                .and_then(|t| t.parse().ok())
                .unwrap_or(0)
        };
        let write = |path: &Path, rows: &[&str]| -> anyhow::Result<()> {
            let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
            use std::io::Write;
            writeln!(out, "{header}")?;
            for r in rows {
                writeln!(out, "{r}")?;
            }
            Ok(())
        };
        // Stable: ties keep the generated order.
        rows.sort_by_cached_key(|l| time(l));
        write(&by_time, &rows)?;
        // Fisher-Yates with a fixed xorshift stream.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for i in (1..rows.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            rows.swap(i, (state % (i as u64 + 1)) as usize);
        }
        write(&shuffled, &rows)?;
    }
    Ok(())
}

pub fn run_load(root: &Path, size: &str) -> anyhow::Result<()> {
    let (because, data_dir, python) = prepare(root, size, &["pandas", "scipy"])?;
    let script = data_dir.join("bench-load.py");
    std::fs::write(&script, PANDAS_SCRIPT)?;
    let mb = |b: u64| b as f64 / 1e6;
    let mut table = Vec::new();
    for (order, csv) in orders(&data_dir)? {
        // Ours: `because clean --bench` prints its load time, rows and the
        // structure's size.
        let ours = measure(
            Command::new(&because)
                .args(["clean", "--bench", "--data"])
                .arg(&csv),
        )?;
        let theirs = measure(Command::new(&python).arg(&script).arg(&csv))?;
        let fields: Vec<&str> = ours.stdout.split_whitespace().collect();
        let structure: u64 = fields.get(2).and_then(|s| s.parse().ok()).unwrap_or(0);
        println!(
            "{order}: {} ({:.0} MB), {} rows; processes took {:.2} s (because) and {:.2} s (python)",
            csv.display(),
            mb(std::fs::metadata(&csv)?.len()),
            fields.get(1).unwrap_or(&"?"),
            ours.wall,
            theirs.wall
        );
        table.push(format!(
            "| {order:<16} | {:>6.2} s | {:>6.2} s | {:>5.2}x | {:>5.0} MB | {:>5.2} | {:>5.0} MB |",
            ours.seconds,
            theirs.seconds,
            theirs.seconds / ours.seconds,
            mb(ours.peak_bytes),
            ours.peak_bytes as f64 / structure.max(1) as f64,
            mb(theirs.peak_bytes),
        ));
    }
    println!("\n| file order       | because   | pandas+scipy | speed-up (>= 3x) | our peak | peak / structure (<= 2) | their peak |");
    println!("|---|---|---|---|---|---|---|");
    for row in table {
        println!("{row}");
    }
    Ok(())
}

/// Builds `because`, generates the data and the venv; returns (because, data dir, python).
fn prepare(
    root: &Path,
    size: &str,
    packages: &[&str],
) -> anyhow::Result<(std::path::PathBuf, std::path::PathBuf, std::path::PathBuf)> {
    let (target, because) = crate::release_because(root)?;
    let data_dir = target.join("bench-data").join(size);
    if !data_dir.join("interactions.csv").is_file() {
        sh(Command::new(&because)
            .args([
                "generate",
                "--size",
                size,
                "--ratings",
                "--no-events",
                "--out",
            ])
            .arg(&data_dir))?;
    }
    let venv = target.join("bench-venv");
    let python = venv.join("bin").join("python");
    if !python.is_file() {
        sh(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    }
    if !packages.is_empty() {
        sh(Command::new(&python)
            .args(["-m", "pip", "install", "--quiet"])
            .args(packages))?;
    }
    Ok((because, data_dir, python))
}

/// How many times `bench models` runs each side of each mode.
const ROUNDS: usize = 3;

/// `cargo xtask bench models`: ALS, BPR and evaluation against implicit,
/// each the best of [`ROUNDS`] alternating runs.
pub fn run_models(root: &Path, size: &str) -> anyhow::Result<()> {
    let (because, data_dir, python) = prepare(root, size, &["pandas", "scipy", "implicit"])?;
    let split = data_dir.join("split");
    if !split.join("train.csv").is_file() {
        sh(Command::new(&because)
            .args([
                "split",
                "--no-rating",
                "--method",
                "user-temporal",
                "--validation",
                "0",
                "--test",
                "0.2",
                "--data",
            ])
            .arg(data_dir.join("interactions.csv"))
            .arg("--out")
            .arg(&split))?;
    }
    // The Rust side is a bench target; find its binary through cargo's JSON messages.
    let out = Command::new(env!("CARGO"))
        .current_dir(root)
        .args([
            "bench",
            "--no-run",
            "--message-format=json",
            "-p",
            "because-eval",
            "--bench",
            "models",
        ])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let exe = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"]["name"] == "models")
        .find_map(|v| v["executable"].as_str().map(std::path::PathBuf::from))
        .ok_or_else(|| anyhow::anyhow!("cannot find the models bench binary"))?;
    let script = root.join("xtask/scripts/implicit_bench.py");
    let (train, test) = (split.join("train.csv"), split.join("test.csv"));
    let mb = |b: u64| b as f64 / 1e6;
    let mut lines = Vec::new();
    for (mode, n, target) in [("als", "5", 0.8), ("bpr", "3", 1.0), ("eval", "", 0.5)] {
        let mut ours_cmd = Command::new(&exe);
        let mut theirs_cmd = Command::new(&python);
        theirs_cmd.arg(&script).env("BENCH_THREADS", "2");
        if mode == "eval" {
            ours_cmd.args([mode]).arg(&train).arg(&test);
            theirs_cmd.arg(mode).arg(&train).arg(&test);
        } else {
            ours_cmd.args([mode]).arg(&train).arg(n);
            theirs_cmd.arg(mode).arg(&train).arg(n);
        }
        // Alternating runs, best of each side: this machine's speed drifts
        // by a third from minute to minute, and the fastest run is the one
        // least disturbed.
        ours_cmd.env("RAYON_NUM_THREADS", "2");
        let (mut ours, mut theirs) = (measure(&mut ours_cmd)?, measure(&mut theirs_cmd)?);
        let mut runs = vec![(ours.seconds, theirs.seconds)];
        for _ in 1..ROUNDS {
            let (o, t) = (measure(&mut ours_cmd)?, measure(&mut theirs_cmd)?);
            runs.push((o.seconds, t.seconds));
            if o.seconds < ours.seconds {
                ours = o;
            }
            if t.seconds < theirs.seconds {
                theirs = t;
            }
        }
        println!(
            "{mode}: runs (because, implicit) {}",
            runs.iter()
                .map(|(o, t)| format!("({o:.3}, {t:.3})"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let ratio = ours.seconds / theirs.seconds;
        lines.push(format!(
            "{mode:<5} because {:.3}s (peak {:.0} MB) | implicit {:.3}s (peak {:.0} MB) | ratio {:.2} (target <= {target}) {}",
            ours.seconds,
            mb(ours.peak_bytes),
            theirs.seconds,
            mb(theirs.peak_bytes),
            ratio,
            if ratio <= target { "ok" } else { "MISSED" }
        ));
        println!("{}", lines.last().unwrap_or(&String::new()));
        println!(
            "      because: {}      implicit: {}",
            ours.stdout.trim(),
            theirs.stdout.trim()
        );
    }
    let explain = measure(
        Command::new(&exe)
            .arg("explain")
            .arg(&train)
            .env("RAYON_NUM_THREADS", "2"),
    )?;
    lines.push(format!(
        "explain: {} (targets: ratio <= 3, counterfactual <= 50 ms)",
        explain.stdout.trim()
    ));
    println!("\n{}", lines.join("\n"));
    println!("(best of {ROUNDS} alternating runs; als: seconds per iteration, 64 factors, conjugate gradient; bpr: seconds per epoch, 64 factors; eval: top-10 for all test users plus metrics; 2 threads each)");
    Ok(())
}

/// `cargo xtask bench python`: the Python binding's overhead against the
/// same calls in Rust and against the command line.
pub fn run_python(root: &Path, size: &str) -> anyhow::Result<()> {
    let (because, data_dir, _) = prepare(root, size, &[])?;
    let target = crate::target_dir(root);
    let wheel = crate::python::build_wheel(root, "release")?;
    let venv = crate::python::fresh_venv(&target, "bench-python-venv", &wheel, &[])?;
    let model = bench_model(&because, &data_dir)?;
    let cli = measure(
        Command::new(&because)
            .args(["recommend", "--quiet", "--all", "--k", "10", "--model"])
            .arg(&model)
            .arg("--out")
            .arg(data_dir.join("cli-recommendations.json"))
            .env("RAYON_NUM_THREADS", "2"),
    )?;
    let py = measure(
        Command::new(venv.join("bin").join("python"))
            .arg(root.join("xtask/scripts/python_bench.py"))
            .arg(&model)
            .arg(data_dir.join("python-recommendations.json"))
            .env("RAYON_NUM_THREADS", "2"),
    )?;
    let r: serde_json::Value = serde_json::from_str(py.stdout.trim())?;
    let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
    let us = |s: f64| s * 1e6;
    let ratio_own = f("python_single_own_history") / f("rust_single");
    let ratio_row = f("python_single_with_row") / f("rust_single");
    let batch = f("batch_json_seconds") / cli.wall;
    println!(
        "\none user (ALS, 64 factors, {} users, top 10; mean of 500 users x 20 calls):",
        r["users"]
    );
    println!(
        "  rust                          {:>8.1} us",
        us(f("rust_single"))
    );
    println!(
        "  python, model's own history   {:>8.1} us  ratio {ratio_own:.2} (target <= 2) {}",
        us(f("python_single_own_history")),
        if ratio_own <= 2.0 { "ok" } else { "MISSED" }
    );
    println!(
        "  python, with the user's row   {:>8.1} us  ratio {ratio_row:.2}",
        us(f("python_single_with_row"))
    );
    println!("every user, model loading included:");
    println!(
        "  command line (recommend --all, JSON)  {:>6.2} s",
        cli.wall
    );
    println!(
        "  python recommend_all(path=) same file {:>6.2} s  ratio {batch:.2} (target <= 1.10) {}",
        f("batch_json_seconds"),
        if batch <= 1.10 { "ok" } else { "MISSED" }
    );
    println!(
        "  python recommend(all users) arrays    {:>6.2} s  ratio {:.2}",
        f("batch_arrays_seconds"),
        f("batch_arrays_seconds") / cli.wall
    );
    println!(
        "  python recommend_all() as a dict      {:>6.2} s  (no loading; parsing 1.4M records in Python)",
        f("batch_dict_seconds")
    );
    Ok(())
}

/// The ALS model the Python and Spark benchmarks share: trained by the
/// command line on the generated data, once.
fn bench_model(because: &Path, data_dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    let model = data_dir.join("python-bench-model");
    if !model.join("manifest.json").is_file() {
        sh(Command::new(because)
            .args([
                "train",
                "--quiet",
                "--model",
                "als:factors=64,iterations=3",
                "--data",
            ])
            .arg(data_dir.join("interactions.csv"))
            .arg("--out")
            .arg(&model))?;
    }
    Ok(model)
}

/// `cargo xtask bench open`: opening the model folders of EASE (26,744
/// items: a 2.9 GB matrix) and ALS (64 factors) trained on the
/// MovieLens-20M-shaped data, as `because recommend --user` does: the
/// whole command's wall time and its peak resident memory, best of three
/// (the file in the page cache, as when a server reloads or a notebook
/// reopens a model it just trained).
pub fn run_open(root: &Path, size: &str) -> anyhow::Result<()> {
    let (because, data_dir, _) = prepare(root, size, &[])?;
    let mb = |b: u64| b as f64 / 1e6;
    let mut rows = Vec::new();
    for (name, spec) in [("ease", "ease:lambda=500"), ("als", "als:factors=64")] {
        let model = data_dir.join(format!("open-bench-{name}"));
        let opens = |model: &Path| {
            Command::new(&because)
                .args(["recommend", "--quiet", "--user", "1", "--model"])
                .arg(model)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !opens(&model) {
            let train = measure(
                Command::new(&because)
                    .args(["train", "--quiet", "--model", spec, "--data"])
                    .arg(data_dir.join("interactions.csv"))
                    .arg("--out")
                    .arg(&model),
            )?;
            println!(
                "trained {spec}: {:.1} s, peak {:.0} MB",
                train.wall,
                mb(train.peak_bytes)
            );
        }
        let bytes: u64 = std::fs::read_dir(&model)?
            .filter_map(|e| e.ok()?.metadata().ok())
            .map(|m| m.len())
            .sum();
        let mut best: Option<Measured> = None;
        for _ in 0..3 {
            let m = measure(
                Command::new(&because)
                    .args(["recommend", "--quiet", "--user", "1", "--model"])
                    .arg(&model),
            )?;
            if best.as_ref().is_none_or(|b| m.wall < b.wall) {
                best = Some(m);
            }
        }
        let best = best.context("no run")?;
        rows.push(format!(
            "| {spec:<16} | {:>8.0} MB | {:>6.2} s | {:>6.0} MB |",
            mb(bytes),
            best.wall,
            mb(best.peak_bytes)
        ));
    }
    println!("\n`because recommend --model M --user 1` (open, check, score one user), best of 3:");
    println!("| model            | folder      | wall     | peak RSS  |");
    println!("|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
    Ok(())
}

/// `cargo xtask bench spark`: recommend + explain rows per second on Spark
/// in `local[1]` and `local[2]`, what is shipped, memory per worker.
pub fn run_spark(root: &Path, size: &str, users: usize) -> anyhow::Result<()> {
    let (because, data_dir, _) = prepare(root, size, &[])?;
    let target = crate::target_dir(root);
    let wheel = crate::python::build_wheel(root, "release")?;
    let venv = crate::python::fresh_venv(
        &target,
        "bench-spark-venv",
        &wheel,
        &[crate::python::PYSPARK, "pyarrow", "pandas<3"],
    )?;
    let model = bench_model(&because, &data_dir)?;
    let out = measure(
        Command::new(venv.join("bin").join("python"))
            .arg(root.join("xtask/scripts/spark_bench.py"))
            .arg(&model)
            .arg(users.to_string())
            .args(["local[1]", "local[2]"]),
    )?;
    println!("\nrecommend + explain on Spark, top 10 of {users} users (ALS, 64 factors, no counterfactuals):");
    for line in out.stdout.lines().filter(|l| l.starts_with('{')) {
        let r: serde_json::Value = serde_json::from_str(line)?;
        println!(
            "  {:<9} {:>8} rows in {:>6.1} s = {:>7.0} rows/s; {} Python workers, peak {:.0} MB each; model folder shipped: {:.1} MB",
            r["master"].as_str().unwrap_or("?"),
            r["rows"],
            r["seconds"].as_f64().unwrap_or(f64::NAN),
            r["rows_per_second"].as_f64().unwrap_or(f64::NAN),
            r["python_workers"],
            r["worker_peak_mb"].as_f64().unwrap_or(f64::NAN),
            r["model_bytes"].as_f64().unwrap_or(f64::NAN) / 1e6,
        );
    }
    Ok(())
}

pub fn run(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let size = args
        .iter()
        .position(|a| a == "--size")
        .and_then(|k| args.get(k + 1))
        .map(String::as_str)
        .unwrap_or("ml20m");
    match args.first().map(String::as_str) {
        Some("load") => run_load(root, size),
        Some("models") => run_models(root, size),
        Some("open") => run_open(root, size),
        Some("serve") => crate::bench_serve::run(root, size),
        Some("retrieval") => {
            let items = args
                .iter()
                .position(|a| a == "--items")
                .and_then(|k| args.get(k + 1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(1_000_000);
            crate::bench_serve::run_retrieval(root, items)
        }
        Some("faults") => {
            let before = args
                .iter()
                .position(|a| a == "--before")
                .and_then(|k| args.get(k + 1))
                .map(std::path::PathBuf::from);
            crate::bench_faults::run(root, size, before)
        }
        Some("python") => run_python(root, size),
        Some("sequential") => {
            let arg = |flag: &str| {
                args.iter()
                    .position(|a| a == flag)
                    .and_then(|k| args.get(k + 1))
            };
            let size = arg("--size").map_or("retail", String::as_str);
            let models = arg("--models").map_or(
                "gru4rec;sasrec:learning_rate=0.005;twotower",
                String::as_str,
            );
            crate::bench_sequential::run(root, size, models, arg("--recbole").map(std::path::PathBuf::from))
        }
        Some("spark") => {
            let users = args
                .iter()
                .position(|a| a == "--users")
                .and_then(|k| args.get(k + 1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(20_000);
            run_spark(root, size, users)
        }
        Some("write-orders") => write_orders(Path::new(args.get(1).map_or(".", String::as_str))),
        _ => bail!(
            "usage: cargo xtask bench load|models|open|serve|retrieval|faults|python|spark|sequential [--size tiny|small|medium|ml20m|retail|retail-small] [--items N] [--before PATH] [--models SPEC;SPEC] [--recbole PYTHON]"
        ),
    }
}
