//! `cargo xtask bench serve`: `because serve` under load.
//!
//! An ALS model of 64 factors on MovieLens-20M-shaped data (138k users,
//! 27k items, 20M interactions, generated), served in release mode; oha on
//! loopback as the load generator, at fixed request rates, sharing the
//! machine's cores with the server. It reports p50 and p99 latency, errors
//! and the highest rate held for recommendations (k = 10; target p99 ≤ 10
//! ms at 1,000 requests/s) and for explained recommendations (target p99 ≤
//! 20 ms at 500 requests/s); events per second stored in batches of 100 in
//! SQLite (target ≥ 5,000) and, when `BECAUSE_TEST_POSTGRES` names a
//! server, in PostgreSQL; and a kill -9 at scale: acknowledged events
//! streamed from four clients, the server killed mid-stream and restarted,
//! and every acknowledged event found exactly once.
//!
//! oha is found on the PATH or installed with `cargo install oha --locked`
//! under the target folder.

use crate::run as sh;
use anyhow::{bail, Context};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KEY: &str = "bench-serve-key-0123456789";

/// One load run: what oha measured.
struct Load {
    rate: f64,
    achieved: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

fn oha(target: &Path) -> anyhow::Result<PathBuf> {
    if let Ok(out) = Command::new("oha").arg("--version").output() {
        if out.status.success() {
            return Ok(PathBuf::from("oha"));
        }
    }
    let tools = target.join("bench-tools");
    let bin = tools.join("bin").join("oha");
    if !bin.is_file() {
        sh(Command::new(env!("CARGO"))
            .args(["install", "oha", "--locked", "--root"])
            .arg(&tools))?;
    }
    Ok(bin)
}

/// Starts `because serve`; returns it with its address.
fn serve(
    because: &Path,
    model: &Path,
    dir: &Path,
    database: &str,
) -> anyhow::Result<(Child, String)> {
    std::fs::write(dir.join("key"), KEY)?;
    let mut child = Command::new(because)
        .arg("serve")
        .arg("--model")
        .arg(model)
        .arg("--api-key-file")
        .arg(dir.join("key"))
        .args(["--database", database, "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start because serve")?;
    match crate::served::listening_on(&mut child) {
        Ok(a) => Ok((child, a)),
        Err(e) => {
            let _ = child.kill();
            Err(e)
        }
    }
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Runs oha for `secs` at `rate` requests/s (0: as fast as it can with
/// `connections`), with `args` naming the request.
fn load(
    oha: &Path,
    rate: f64,
    secs: u64,
    connections: usize,
    args: &[String],
) -> anyhow::Result<Load> {
    let mut cmd = Command::new(oha);
    cmd.args(["--no-tui", "--output-format", "json", "-z"])
        .arg(format!("{secs}s"))
        .arg("-c")
        .arg(connections.to_string());
    if rate > 0.0 {
        // Latency from when each request was due, not when it was sent:
        // a stalled server is not hidden by a stalled generator.
        cmd.arg("-q")
            .arg(format!("{rate}"))
            .arg("--latency-correction");
    }
    cmd.args(args);
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {oha:?}"))?;
    if !out.status.success() {
        bail!("oha failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("oha's output: {}", String::from_utf8_lossy(&out.stdout)))?;
    let ms = |k: &str| v["latencyPercentiles"][k].as_f64().unwrap_or(f64::NAN) * 1000.0;
    let ok: u64 = v["statusCodeDistribution"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(code, _)| code.starts_with('2'))
                .map(|(_, n)| n.as_u64().unwrap_or(0))
                .sum()
        })
        .unwrap_or(0);
    let all_status: u64 = v["statusCodeDistribution"]
        .as_object()
        .map(|m| m.values().map(|n| n.as_u64().unwrap_or(0)).sum())
        .unwrap_or(0);
    // Requests still in flight when the run's time is up are cut off by
    // oha, not failed by the server.
    let failed: u64 = v["errorDistribution"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(e, _)| !e.contains("deadline"))
                .map(|(_, n)| n.as_u64().unwrap_or(0))
                .sum()
        })
        .unwrap_or(0);
    Ok(Load {
        rate,
        achieved: ok as f64 / secs as f64,
        p50_ms: ms("p50"),
        p99_ms: ms("p99"),
        errors: failed + (all_status - ok),
    })
}

fn report(name: &str, l: &Load) {
    println!(
        "{name:<28} rate {:>6.0}/s  served {:>7.0}/s  p50 {:>6.2} ms  p99 {:>7.2} ms  errors {}",
        l.rate, l.achieved, l.p50_ms, l.p99_ms, l.errors
    );
}

/// The rates tried, in order, until one is not held.
fn ladder(
    oha: &Path,
    name: &str,
    rates: &[f64],
    p99_target: f64,
    args: &[String],
) -> anyhow::Result<Option<f64>> {
    let mut held = None;
    for &rate in rates {
        // Let the server drain what the last run left.
        std::thread::sleep(Duration::from_secs(2));
        let l = load(oha, rate, 10, 64, args)?;
        report(name, &l);
        if l.errors > 0 || l.p99_ms > p99_target || l.achieved < 0.95 * rate {
            break;
        }
        held = Some(rate);
    }
    Ok(held)
}

/// Sends one HTTP/1.1 request; the status and body, or `None` when the
/// server is gone.
fn http(addr: &str, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.get(9..12)?.parse().ok()?;
    Some((
        status,
        out.split("\r\n\r\n").nth(1).unwrap_or("").to_string(),
    ))
}

/// A batch of `n` events for users `first..first+n` (as the data's IDs).
fn batch_body(n: usize, first: usize, keyed: Option<&str>) -> String {
    let events: Vec<String> = (0..n)
        .map(|k| {
            let key = keyed.map_or(String::new(), |p| {
                format!(r#", "idempotency_key": "{p}-{k}""#)
            });
            format!(
                r#"{{"user": "{}", "item": "{}", "event": "view"{key}}}"#,
                1 + (first + k) % 138_000,
                1 + (first * 7 + k * 13) % 26_000
            )
        })
        .collect();
    format!(r#"{{"events": [{}]}}"#, events.join(","))
}

/// Events per second stored in batches of 100, from 8 connections.
fn events_rate(oha: &Path, addr: &str, dir: &Path, secs: u64) -> anyhow::Result<Load> {
    let body = dir.join("batch.json");
    std::fs::write(&body, batch_body(100, 0, None))?;
    let args: Vec<String> = [
        "-m",
        "POST",
        "-T",
        "application/json",
        "-H",
        &format!("Authorization: Bearer {KEY}"),
        "-D",
        body.to_str().unwrap_or_default(),
        &format!("http://{addr}/v1/events"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    load(oha, 0.0, secs, 8, &args)
}

/// kill -9 at scale: four clients stream keyed batches of 100; the server
/// is killed once a third of the stream is acknowledged, then restarted; every acknowledged event
/// must be stored exactly once. Returns (acknowledged, stored).
fn kill_9(
    because: &Path,
    model: &Path,
    dir: &Path,
    database: &str,
) -> anyhow::Result<(usize, usize)> {
    let (server, addr) = serve(because, model, dir, database)?;
    let batches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let addr = addr.clone();
            let batches = batches.clone();
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                // At most 9,900 events per client: a user's history lists 10,000.
                for b in 0..99 {
                    let events: Vec<String> = (0..100)
                        .map(|k| {
                            format!(
                                r#"{{"user": "kill-{c}", "item": "{}", "idempotency_key": "k{c}-{b}-{k}"}}"#,
                                1 + k
                            )
                        })
                        .collect();
                    let body = format!(r#"{{"events": [{}]}}"#, events.join(","));
                    match http(&addr, "POST", "/v1/events", &body) {
                        Some((200, _)) => {
                            acked.extend((0..100).map(|k| format!("k{c}-{b}-{k}")));
                            batches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                        _ => break,
                    }
                }
                acked
            })
        })
        .collect();
    // Kill it once a third of the stream is acknowledged: mid-stream.
    let start = Instant::now();
    while batches.load(std::sync::atomic::Ordering::SeqCst) < 132
        && start.elapsed() < Duration::from_secs(60)
    {
        std::thread::sleep(Duration::from_millis(1));
    }
    stop(server);
    let acked: Vec<String> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap_or_default())
        .collect();
    let (server, addr) = serve(because, model, dir, database)?;
    let mut stored = Vec::new();
    for c in 0..4 {
        let (status, body) = http(&addr, "GET", &format!("/v1/users/kill-{c}/events"), "")
            .context("the restarted server does not answer")?;
        if status != 200 {
            bail!("listing events: {status} {body}");
        }
        let v: serde_json::Value = serde_json::from_str(&body)?;
        for e in v["events"].as_array().into_iter().flatten() {
            stored.push(
                e["idempotency_key"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
    }
    stop(server);
    let unique: std::collections::HashSet<&String> = stored.iter().collect();
    if unique.len() != stored.len() {
        bail!("kill -9: an event was stored twice");
    }
    if let Some(lost) = acked.iter().find(|k| !unique.contains(k)) {
        bail!("kill -9: acknowledged event {lost} was lost");
    }
    Ok((acked.len(), stored.len()))
}

/// A fresh PostgreSQL database on the configured server.
fn fresh_postgres() -> Option<String> {
    let admin = std::env::var("BECAUSE_TEST_POSTGRES").ok()?;
    let name = format!("because_bench_{}", std::process::id());
    let psql = |sql: String| {
        Command::new("psql")
            .arg(&admin)
            .args(["-qc", &sql])
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    let ok =
        psql(format!("DROP DATABASE IF EXISTS {name}")) && psql(format!("CREATE DATABASE {name}"));
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    ok.then(|| format!("{base}/{name}"))
}

/// The benchmarks' served model: ALS of 64 factors on the generated event
/// log of `size`, trained once and kept under the target folder.
pub(crate) fn model(because: &Path, target: &Path, size: &str) -> anyhow::Result<PathBuf> {
    // Events and times, unlike `bench load`'s ratings: a folder of its own.
    let data = target.join("bench-data").join(format!("{size}-events"));
    if !data.join("interactions.csv").is_file() {
        sh(Command::new(because)
            .args(["generate", "-q", "--size", size, "--out"])
            .arg(&data))?;
    }
    let model = target.join("bench-serve").join(size).join("model");
    if !model.join("manifest.json").is_file() {
        sh(Command::new(because)
            .args([
                "train",
                "-q",
                "--model",
                "als:factors=64,iterations=3",
                "--data",
            ])
            .arg(data.join("interactions.csv"))
            .arg("--out")
            .arg(&model))?;
    }
    Ok(model)
}

pub fn run(root: &Path, size: &str) -> anyhow::Result<()> {
    let (target, because) = crate::release_because(root)?;
    let oha = oha(&target)?;
    let model = model(&because, &target, size)?;
    let dir = target.join("bench-serve").join(size);
    let db = dir.join("events.sqlite");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let sqlite = format!("sqlite:{}", db.display());
    let started = Instant::now();
    let (server, addr) = serve(&because, &model, &dir, &sqlite)?;
    println!(
        "server ready in {:.1}s: {addr}",
        started.elapsed().as_secs_f64()
    );
    // Users 1..=99999 at random: nearly all known to the model.
    let url = |explain: bool| -> Vec<String> {
        vec![
            "--rand-regex-url".into(),
            format!(
                "http://{addr}/v1/users/[1-9][0-9]{{0,4}}/recommendations\\?k=10{}",
                if explain { "&explain=true" } else { "" }
            ),
        ]
    };
    let _warm = load(&oha, 200.0, 3, 16, &url(false))?;
    std::thread::sleep(Duration::from_secs(2));
    let rec = load(&oha, 1000.0, 20, 64, &url(false))?;
    report("recommend k=10", &rec);
    std::thread::sleep(Duration::from_secs(2));
    let exp = load(&oha, 500.0, 20, 64, &url(true))?;
    report("recommend + explain k=10", &exp);
    let rec_held = ladder(
        &oha,
        "recommend (ladder)",
        &[1000.0, 1500.0, 2000.0, 3000.0, 4000.0],
        10.0,
        &url(false),
    )?;
    let exp_held = ladder(
        &oha,
        "explain (ladder)",
        &[500.0, 750.0, 1000.0, 1500.0, 2000.0],
        20.0,
        &url(true),
    )?;
    let ev = events_rate(&oha, &addr, &dir, 10)?;
    stop(server);
    println!(
        "events (SQLite)              {:>8.0} events/s in batches of 100 (p50 {:.2} ms, p99 {:.2} ms per batch, errors {})",
        ev.achieved * 100.0,
        ev.p50_ms,
        ev.p99_ms,
        ev.errors
    );
    let mut pg_rate = None;
    if let Some(pg) = fresh_postgres() {
        let (server, addr) = serve(&because, &model, &dir, &pg)?;
        let ev = events_rate(&oha, &addr, &dir, 10)?;
        stop(server);
        println!(
            "events (PostgreSQL)          {:>8.0} events/s in batches of 100 (p50 {:.2} ms, p99 {:.2} ms per batch, errors {})",
            ev.achieved * 100.0,
            ev.p50_ms,
            ev.p99_ms,
            ev.errors
        );
        pg_rate = Some(ev.achieved * 100.0);
    }
    let (acked, stored) = kill_9(&because, &model, &dir, &sqlite)?;
    println!("kill -9 (SQLite): {acked} events acknowledged, all {stored} stored exactly once after the restart");
    if let Some(pg) = fresh_postgres() {
        let (acked, stored) = kill_9(&because, &model, &dir, &pg)?;
        println!("kill -9 (PostgreSQL): {acked} events acknowledged, all {stored} stored exactly once after the restart");
    }
    println!("\nsummary:");
    println!(
        "  recommend p99 {:.2} ms at 1,000/s (target <= 10 ms); highest rate held: {}",
        rec.p99_ms,
        rec_held.map_or("none of those tried".into(), |r| format!("{r:.0}/s"))
    );
    println!(
        "  explain p99 {:.2} ms at 500/s (target <= 20 ms); highest rate held: {}",
        exp.p99_ms,
        exp_held.map_or("none of those tried".into(), |r| format!("{r:.0}/s"))
    );
    println!(
        "  events: {:.0}/s on SQLite (target >= 5,000){}",
        ev.achieved * 100.0,
        pg_rate.map_or(String::new(), |r| format!(", {r:.0}/s on PostgreSQL"))
    );
    Ok(())
}

/// `cargo xtask bench retrieval [--items N]`: approximate retrieval on a
/// generated catalogue of N items (default 1M) and as many users, ALS of
/// 64 factors. The library side (`cargo bench -p because-service --bench
/// retrieval`: the index's build time, memory and recall, single-request
/// latency) writes the model folder with its index; then `because serve`
/// answers from it under oha: recommend at 1,000 requests/s (target p99 ≤
/// 5 ms), recommend + explain at 1,000 requests/s (target p99 ≤ 15 ms),
/// and both at saturation (4 and 32 connections); and the same with
/// `--exact`, for comparison.
pub fn run_retrieval(root: &Path, items: usize) -> anyhow::Result<()> {
    let (target, because) = crate::release_because(root)?;
    let out = target.join("bench-retrieval");
    sh(Command::new(env!("CARGO"))
        .current_dir(root)
        .args([
            "bench",
            "-q",
            "-p",
            "because-service",
            "--bench",
            "retrieval",
            "--",
        ])
        .args([
            "--items",
            &items.to_string(),
            "--users",
            &items.to_string(),
            "--out",
        ])
        .arg(&out))?;
    let oha = oha(&target)?;
    let model = out.join("model");
    let digits = items.saturating_sub(1).to_string().len();
    let url = |addr: &str, explain: bool| -> Vec<String> {
        vec![
            "--rand-regex-url".into(),
            format!(
                "http://{addr}/v1/users/u[1-9][0-9]{{0,{}}}/recommendations\\?k=10{}",
                digits.saturating_sub(1),
                if explain { "&explain=true" } else { "" }
            ),
        ]
    };
    for exact in [false, true] {
        let db = out.join("events.sqlite");
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
        std::fs::write(out.join("key"), KEY)?;
        let mut cmd = Command::new(&because);
        cmd.arg("serve")
            .arg("--model")
            .arg(&model)
            .arg("--api-key-file")
            .arg(out.join("key"))
            .arg("--database")
            .arg(format!("sqlite:{}", db.display()))
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped());
        if exact {
            cmd.arg("--exact");
        }
        let mut child = cmd.spawn().context("cannot start because serve")?;
        let addr = crate::served::listening_on(&mut child)?;
        let mode = if exact { "exact" } else { "approximate" };
        println!("because serve ({mode}) on {addr}");
        let _warm = load(&oha, 200.0, 3, 16, &url(&addr, false))?;
        for (name, explain, rate, connections) in [
            ("recommend @1000/s", false, 1000.0, 64),
            ("recommend + explain @1000/s", true, 1000.0, 64),
            ("recommend, 4 connections", false, 0.0, 4),
            ("recommend, 32 connections", false, 0.0, 32),
            ("recommend + explain, 4 conn.", true, 0.0, 4),
        ] {
            std::thread::sleep(Duration::from_secs(2));
            let l = load(&oha, rate, 15, connections, &url(&addr, explain))?;
            report(&format!("{mode}: {name}"), &l);
        }
        stop(child);
    }
    Ok(())
}
