//! `cargo xtask bench faults [--size S] [--before PATH]`: `because serve`
//! through faults, under load.
//!
//! The model is `bench serve`'s (ALS, 64 factors, on the generated log of
//! `--size`, default the MovieLens-20M shape), served in release mode. Load
//! comes from clients of our own that behave like a round-robin balancer:
//! each request goes to the next replica, and a request that got no answer
//! at all (connection refused or reset before a byte came back) is sent to
//! the next replica, as a balancer retries it; it counts as failed only
//! when no replica answered. Every tenth request stores a batch of 10
//! events with idempotency keys (so a retried batch is stored once); the
//! rest are recommendations for random known users. Each scenario reports
//! the requests sent, those failed (by status), those retried, p99 latency
//! during the fault and after it, and the events acknowledged against
//! those found in the database afterwards.
//!
//! Scenarios: a model reload (three `/v1/admin/reload` calls, against the
//! same load without them), a rolling restart of two replicas (SIGTERM,
//! restart, wait for `/readyz`, then the other; each with a 1 s shutdown
//! delay, behind a balancer that checks `/readyz` every 200 ms), a
//! `kill -9` of one of two replicas (restarted 2 s later, behind the same
//! balancer), and a PostgreSQL restart with 10 s down
//! (on a cluster of the benchmark's own, when PostgreSQL is installed).
//! Then mixed load on SQLite, 90% recommendations and 10% event batches
//! from 8 closed-loop clients, with this build and, given `--before`, with
//! another `because` binary (an older build, to compare).

use anyhow::{bail, Context};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KEY: &str = "bench-faults-key-0123456789";

/// One request as a client saw it.
#[derive(Clone, Copy)]
struct Outcome {
    /// When it was sent, since the scenario started.
    at: Duration,
    took: Duration,
    /// The status, or `None` when no replica answered.
    status: Option<u16>,
    /// Whether a replica refused the connection (down, or restarting):
    /// sent to the next one.
    refused: bool,
    /// Whether a replica took the request and closed without an answer
    /// (killed with it in flight): sent to the next one.
    cut: bool,
    write: bool,
}

/// Why a request got no answer from a replica.
enum NoAnswer {
    /// The connection was refused.
    Refused,
    /// The replica took the request and closed without answering.
    Cut,
}

/// Sends one request: its status, or why nothing came back.
fn request(addr: &str, method: &str, path: &str, body: &str) -> Result<u16, NoAnswer> {
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return Err(NoAnswer::Refused);
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(15)));
    let sent = write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    if sent.is_err() && out.is_empty() {
        return Err(NoAnswer::Cut);
    }
    out.get(9..12)
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(|t| t.parse().ok())
        .ok_or(NoAnswer::Cut)
}

/// Sends one request; `None` when nothing came back.
fn send(addr: &str, method: &str, path: &str, body: &str) -> Option<u16> {
    request(addr, method, path, body).ok()
}

/// The load: `clients` threads, each sending a request every `every`
/// (closed loop when zero) round-robin over `replicas`, until `stop`.
struct Load {
    stop: Arc<AtomicBool>,
    clients: Vec<std::thread::JoinHandle<(Vec<Outcome>, Vec<String>)>>,
}

impl Load {
    fn start(
        replicas: Arc<Mutex<Vec<String>>>,
        clients: usize,
        every: Duration,
        tag: &str,
        start: Instant,
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let clients = (0..clients)
            .map(|c| {
                let (replicas, stop) = (replicas.clone(), stop.clone());
                let user = format!("{tag}-{c}");
                std::thread::spawn(move || {
                    let (mut outcomes, mut acked) = (Vec::new(), Vec::new());
                    let mut n: usize = 0;
                    let mut next = Instant::now();
                    while !stop.load(Ordering::Relaxed) {
                        if !every.is_zero() {
                            let now = Instant::now();
                            if next > now {
                                std::thread::sleep(next - now);
                            }
                            next += every;
                        }
                        let write = n % 10 == 9;
                        let (method, path, body, keys) = if write {
                            let keys: Vec<String> =
                                (0..10).map(|k| format!("{user}-{n}-{k}")).collect();
                            let events: Vec<String> = keys
                                .iter()
                                .enumerate()
                                .map(|(k, key)| {
                                    format!(
                                        r#"{{"user": "{user}", "item": "{}", "idempotency_key": "{key}"}}"#,
                                        1 + (n * 7 + k) % 20_000
                                    )
                                })
                                .collect();
                            let body = format!(r#"{{"events": [{}]}}"#, events.join(","));
                            ("POST", "/v1/events".to_string(), body, keys)
                        } else {
                            let u = 1 + (n * 7919 + c * 104_729) % 100_000;
                            let path = format!("/v1/users/{u}/recommendations?k=10");
                            ("GET", path, String::new(), Vec::new())
                        };
                        let list = replicas.lock().map(|r| r.clone()).unwrap_or_default();
                        let sent = Instant::now();
                        let (mut status, mut refused, mut cut) = (None, false, false);
                        for attempt in 0..list.len() {
                            let addr = &list[(n + c + attempt) % list.len()];
                            match request(addr, method, &path, &body) {
                                Ok(s) => {
                                    status = Some(s);
                                    break;
                                }
                                Err(NoAnswer::Refused) => refused = true,
                                Err(NoAnswer::Cut) => cut = true,
                            }
                        }
                        if write && status.is_some_and(|s| (200..300).contains(&s)) {
                            acked.extend(keys);
                        }
                        outcomes.push(Outcome {
                            at: sent - start,
                            took: sent.elapsed(),
                            status,
                            refused,
                            cut,
                            write,
                        });
                        n += 1;
                    }
                    (outcomes, acked)
                })
            })
            .collect();
        Load { stop, clients }
    }

    fn finish(self) -> (Vec<Outcome>, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let (mut outcomes, mut acked) = (Vec::new(), Vec::new());
        for c in self.clients {
            if let Ok((o, a)) = c.join() {
                outcomes.extend(o);
                acked.extend(a);
            }
        }
        (outcomes, acked)
    }
}

fn p99(outcomes: &[Outcome], from: Duration, to: Duration, write: bool) -> f64 {
    let mut ms: Vec<f64> = outcomes
        .iter()
        .filter(|o| o.at >= from && o.at < to && o.write == write && o.status.is_some())
        .map(|o| o.took.as_secs_f64() * 1000.0)
        .collect();
    if ms.is_empty() {
        return f64::NAN;
    }
    ms.sort_by(f64::total_cmp);
    ms[((ms.len() as f64 * 0.99).ceil() as usize).clamp(1, ms.len()) - 1]
}

/// What a scenario measured.
struct Report {
    name: String,
    outcomes: Vec<Outcome>,
    fault: (Duration, Duration),
    acked: usize,
    found: usize,
    note: String,
}

impl Report {
    fn print(&self) {
        let o = &self.outcomes;
        let failed: Vec<&Outcome> = o
            .iter()
            .filter(|x| !x.status.is_some_and(|s| (200..300).contains(&s)))
            .collect();
        let mut by_status = std::collections::BTreeMap::<String, usize>::new();
        for f in &failed {
            let kind = if f.write { "write" } else { "read" };
            let s = f.status.map_or("no answer".to_string(), |s| s.to_string());
            *by_status.entry(format!("{kind} {s}")).or_default() += 1;
        }
        let end = o.iter().map(|x| x.at).max().unwrap_or_default() + Duration::from_secs(1);
        let (from, to) = self.fault;
        println!(
            "{:<34} sent {:>6}  failed {:>4} {:<28} retried {:>3} refused, {:>3} cut  read p99 during {:>7.2} ms, after {:>6.2} ms  write p99 during {:>7.2} ms  events acked {:>6}, found {:>6}{}",
            self.name,
            o.len(),
            failed.len(),
            if by_status.is_empty() {
                String::new()
            } else {
                format!("{by_status:?}")
            },
            o.iter().filter(|x| x.refused).count(),
            o.iter().filter(|x| x.cut).count(),
            p99(o, from, to, false),
            p99(o, to, end, false),
            p99(o, from, to, true),
            self.acked,
            self.found,
            if self.note.is_empty() {
                String::new()
            } else {
                format!("  ({})", self.note)
            }
        );
    }
}

/// A balancer's health check: every 200 ms, the replicas whose `/readyz`
/// answers 200 become the ones requests go to (all of them when none is
/// ready), until stopped.
struct Balancer {
    /// The replicas requests go to now.
    replicas: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    checker: std::thread::JoinHandle<()>,
}

impl Balancer {
    fn start(all: Vec<String>) -> Balancer {
        let replicas = Arc::new(Mutex::new(all.clone()));
        let stop = Arc::new(AtomicBool::new(false));
        let (active, done) = (replicas.clone(), stop.clone());
        let checker = std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let ready: Vec<String> = all
                    .iter()
                    .filter(|a| send(a, "GET", "/readyz", "") == Some(200))
                    .cloned()
                    .collect();
                if let Ok(mut a) = active.lock() {
                    *a = if ready.is_empty() { all.clone() } else { ready };
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        Balancer {
            replicas,
            stop,
            checker,
        }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.checker.join();
    }
}

/// A `because serve` process on a fixed port, restartable there.
struct Replica {
    child: Option<Child>,
    addr: String,
    args: Vec<String>,
    because: PathBuf,
}

impl Replica {
    fn start(because: &Path, addr: &str, args: &[String]) -> anyhow::Result<Replica> {
        let mut r = Replica {
            child: None,
            addr: addr.to_string(),
            args: args.to_vec(),
            because: because.to_path_buf(),
        };
        r.restart()?;
        Ok(r)
    }

    fn restart(&mut self) -> anyhow::Result<()> {
        let child = Command::new(&self.because)
            .arg("serve")
            .args(&self.args)
            .args(["--listen", &self.addr])
            .stdout(Stdio::null())
            .spawn()
            .context("cannot start because serve")?;
        self.child = Some(child);
        let start = Instant::now();
        while send(&self.addr, "GET", "/readyz", "") != Some(200) {
            if start.elapsed() > Duration::from_secs(120) {
                bail!("{} did not become ready", self.addr);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// SIGTERM, then waits for the process to drain and exit.
    fn terminate(&mut self) -> anyhow::Result<Duration> {
        let Some(mut child) = self.child.take() else {
            return Ok(Duration::ZERO);
        };
        let start = Instant::now();
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let status = child.wait()?;
        if !status.success() {
            bail!("serve exited with {status} on SIGTERM");
        }
        Ok(start.elapsed())
    }

    fn kill_9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill_9();
    }
}

fn free_port() -> anyhow::Result<String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.to_string())
}

/// The idempotency keys stored for `users` (through the API).
fn found(addr: &str, acked: &[String]) -> anyhow::Result<usize> {
    let mut users: Vec<&str> = acked
        .iter()
        .filter_map(|k| k.rsplitn(3, '-').nth(2))
        .collect();
    users.sort_unstable();
    users.dedup();
    let mut stored = std::collections::HashSet::new();
    for u in users {
        let mut s = std::net::TcpStream::connect(addr)?;
        write!(
            s,
            "GET /v1/users/{u}/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nConnection: close\r\n\r\n"
        )?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        let body = out.split("\r\n\r\n").nth(1).unwrap_or("");
        let v: serde_json::Value =
            serde_json::from_str(body).with_context(|| format!("events of {u}: {out}"))?;
        for e in v["events"].as_array().into_iter().flatten() {
            if let Some(k) = e["idempotency_key"].as_str() {
                stored.insert(k.to_string());
            }
        }
    }
    Ok(acked.iter().filter(|k| stored.contains(*k)).count())
}

/// A PostgreSQL cluster of the benchmark's own, to stop and start.
struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

impl Cluster {
    fn pg_ctl(&self, args: &[&str]) -> anyhow::Result<()> {
        let root = unsafe { libc::geteuid() } == 0;
        let mut cmd = if root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"])
                .arg(self.bin.join("pg_ctl"));
            c
        } else {
            Command::new(self.bin.join("pg_ctl"))
        };
        let status = cmd
            .arg("-D")
            .arg(&self.dir)
            .args(args)
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            bail!("pg_ctl {args:?} failed");
        }
        Ok(())
    }

    fn stop(&self) -> anyhow::Result<()> {
        self.pg_ctl(&["-m", "fast", "-w", "stop"])
    }

    fn start(&self) -> anyhow::Result<()> {
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c max_connections=200",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log");
        self.pg_ctl(&[
            "-l",
            log.to_str().unwrap_or_default(),
            "-w",
            "-o",
            &opts,
            "start",
        ])
    }
}

/// Starts the benchmark's own cluster with `.ci/postgres`, if PostgreSQL
/// is installed (or installable).
fn cluster(root: &Path, target: &Path) -> Option<(Cluster, String)> {
    let dir = target.join("bench-faults").join("pg");
    let port = 55_499;
    let out = Command::new(root.join(".ci").join("postgres"))
        .env("BECAUSE_PG_DIR", &dir)
        .env("BECAUSE_PG_PORT", port.to_string())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let url = String::from_utf8(out.stdout).ok()?.trim().to_string();
    let bin = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("pg_ctl").is_file())
        .max()?;
    let name = format!("because_faults_{}", std::process::id());
    let created = Command::new("psql")
        .arg(&url)
        .args(["-qc", &format!("CREATE DATABASE {name}")])
        .status()
        .is_ok_and(|s| s.success());
    let base = url.rsplit_once('/').map_or(url.as_str(), |(b, _)| b);
    created.then(|| (Cluster { bin, dir, port }, format!("{base}/{name}")))
}

/// A fresh SQLite file for a scenario.
fn sqlite(dir: &Path, name: &str) -> String {
    let db = dir.join(format!("{name}.sqlite"));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    format!("sqlite:{}", db.display())
}

pub fn run(root: &Path, size: &str, before: Option<PathBuf>) -> anyhow::Result<()> {
    let (target, because) = crate::release_because(root)?;
    let model = crate::bench_serve::model(&because, &target, size)?;
    let dir = target.join("bench-faults");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("key"), KEY)?;
    let args = |db: &str| -> Vec<String> {
        vec![
            "--model".into(),
            model.display().to_string(),
            "--api-key-file".into(),
            dir.join("key").display().to_string(),
            "--database".into(),
            db.into(),
        ]
    };
    // 4 clients at 100 requests/s each: 400 requests/s, 40 of them event batches.
    let (clients, every) = (4, Duration::from_millis(10));
    let mut reports = Vec::new();

    // Reload: the same load without and with three reloads.
    for reloads in [false, true] {
        let db = sqlite(&dir, "reload");
        let one = Replica::start(&because, &free_port()?, &args(&db))?;
        let replicas = Arc::new(Mutex::new(vec![one.addr.clone()]));
        let start = Instant::now();
        let tag = if reloads { "reload" } else { "steady" };
        let load = Load::start(replicas, clients, every, tag, start);
        let mut took = Vec::new();
        for _ in 0..3 {
            std::thread::sleep(Duration::from_secs(5));
            if reloads {
                let t = Instant::now();
                let s = send(&one.addr, "POST", "/v1/admin/reload", "");
                if s != Some(200) {
                    bail!("reload answered {s:?}");
                }
                took.push(t.elapsed().as_secs_f64());
            }
        }
        std::thread::sleep(Duration::from_secs(5));
        let (outcomes, acked) = load.finish();
        let found = found(&one.addr, &acked)?;
        reports.push(Report {
            name: if reloads {
                "reload x3 (SQLite)".into()
            } else {
                "no fault, same load (SQLite)".into()
            },
            outcomes,
            fault: (Duration::from_secs(5), Duration::from_secs(16)),
            acked: acked.len(),
            found,
            note: if reloads {
                format!(
                    "reloads took {}",
                    took.iter()
                        .map(|t| format!("{t:.2} s"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            } else {
                String::new()
            },
        });
        reports.last().map(Report::print);
    }

    let pg = cluster(root, &target);
    let shared = match &pg {
        Some((_, url)) => url.clone(),
        None => sqlite(&dir, "replicas"),
    };
    let backend = if pg.is_some() { "PostgreSQL" } else { "SQLite" };

    // A rolling restart of two replicas, behind a balancer that checks
    // /readyz every 200 ms; each replica goes on answering for 1 s after
    // SIGTERM with /readyz failing (--shutdown-delay), so the balancer
    // stops sending before its port closes.
    {
        let mut delayed = args(&shared);
        delayed.extend(["--shutdown-delay".to_string(), "1".to_string()]);
        let mut a = Replica::start(&because, &free_port()?, &delayed)?;
        let mut b = Replica::start(&because, &free_port()?, &delayed)?;
        let balancer = Balancer::start(vec![a.addr.clone(), b.addr.clone()]);
        let start = Instant::now();
        let load = Load::start(balancer.replicas.clone(), clients, every, "rolling", start);
        std::thread::sleep(Duration::from_secs(5));
        let from = start.elapsed();
        let mut drained = Vec::new();
        for r in [&mut a, &mut b] {
            drained.push(r.terminate()?.as_secs_f64());
            r.restart()?;
            std::thread::sleep(Duration::from_secs(1));
        }
        let to = start.elapsed();
        std::thread::sleep(Duration::from_secs(5));
        let (outcomes, acked) = load.finish();
        balancer.stop();
        let found = found(&a.addr, &acked)?;
        reports.push(Report {
            name: format!("rolling restart, 2 replicas ({backend})"),
            outcomes,
            fault: (from, to),
            acked: acked.len(),
            found,
            note: format!(
                "SIGTERM to exit (1 s shutdown delay, then draining) {} s; {:.1} s for both",
                drained
                    .iter()
                    .map(|d| format!("{d:.2}"))
                    .collect::<Vec<_>>()
                    .join(" and "),
                (to - from).as_secs_f64()
            ),
        });
        reports.last().map(Report::print);
    }

    // kill -9 of one of two replicas, restarted 2 s later, behind the same
    // balancer.
    {
        let mut a = Replica::start(&because, &free_port()?, &args(&shared))?;
        let b = Replica::start(&because, &free_port()?, &args(&shared))?;
        let balancer = Balancer::start(vec![a.addr.clone(), b.addr.clone()]);
        let start = Instant::now();
        let load = Load::start(balancer.replicas.clone(), clients, every, "kill9", start);
        std::thread::sleep(Duration::from_secs(5));
        let from = start.elapsed();
        a.kill_9();
        std::thread::sleep(Duration::from_secs(2));
        a.restart()?;
        let to = start.elapsed();
        std::thread::sleep(Duration::from_secs(5));
        let (outcomes, acked) = load.finish();
        balancer.stop();
        let found = found(&b.addr, &acked)?;
        reports.push(Report {
            name: format!("kill -9 of 1 of 2 replicas ({backend})"),
            outcomes,
            fault: (from, to),
            acked: acked.len(),
            found,
            note: String::new(),
        });
        reports.last().map(Report::print);
    }

    // PostgreSQL down for 10 s.
    if let Some((cluster, url)) = &pg {
        let one = Replica::start(&because, &free_port()?, &args(url))?;
        let replicas = Arc::new(Mutex::new(vec![one.addr.clone()]));
        let start = Instant::now();
        let load = Load::start(replicas, clients, every, "pgdown", start);
        std::thread::sleep(Duration::from_secs(5));
        let from = start.elapsed();
        cluster.stop()?;
        let stopped = start.elapsed();
        // Readiness while it is down.
        std::thread::sleep(Duration::from_secs(1));
        let ready_down = send(&one.addr, "GET", "/readyz", "");
        let health_down = send(&one.addr, "GET", "/healthz", "");
        std::thread::sleep(Duration::from_secs(9));
        cluster.start()?;
        let back = start.elapsed();
        std::thread::sleep(Duration::from_secs(6));
        let ready_up = send(&one.addr, "GET", "/readyz", "");
        let (outcomes, acked) = load.finish();
        let found = found(&one.addr, &acked)?;
        // Recovery: from the database's return to the first write stored.
        let recovered = outcomes
            .iter()
            .filter(|o| o.write && o.at >= back && o.status == Some(200))
            .map(|o| o.at + o.took)
            .min()
            .map(|t| t.saturating_sub(back).as_secs_f64());
        // What the targets allow: 503s for writes from the moment the
        // database is stopped until 2 s after it is back; nothing else.
        let outside = outcomes
            .iter()
            .filter(|o| !o.status.is_some_and(|s| (200..300).contains(&s)))
            .filter(|o| {
                !o.write
                    || o.status != Some(503)
                    || o.at + o.took < from
                    || o.at > back + Duration::from_secs(2)
            })
            .count();
        reports.push(Report {
            name: "PostgreSQL down 10 s".into(),
            outcomes,
            fault: (from, back),
            acked: acked.len(),
            found,
            note: format!(
                "readyz during {ready_down:?}, after {ready_up:?}; healthz during {health_down:?}; first write stored {} after the database's return; failures other than writes' 503 from the stop to 2 s after the return: {outside}; the stop itself took {:.2} s",
                recovered.map_or("never".into(), |s| format!("{s:.2} s")),
                (stopped - from).as_secs_f64(),
            ),
        });
        reports.last().map(Report::print);
    }

    // Mixed load on SQLite: this build, and the one given with --before.
    let mut builds = vec![("this build", because.clone())];
    if let Some(b) = before {
        builds.push(("--before", b));
    }
    let mut mixed = Vec::new();
    for (label, bin) in &builds {
        let db = sqlite(&dir, "mixed");
        let one = Replica::start(bin, &free_port()?, &args(&db))?;
        let replicas = Arc::new(Mutex::new(vec![one.addr.clone()]));
        let start = Instant::now();
        let load = Load::start(replicas, 8, Duration::ZERO, "mixed", start);
        std::thread::sleep(Duration::from_secs(15));
        let (outcomes, _) = load.finish();
        let end = start.elapsed();
        let ok = |write: bool| {
            outcomes
                .iter()
                .filter(|o| o.write == write && o.status == Some(200))
                .count() as f64
                / end.as_secs_f64()
        };
        let line = format!(
            "mixed 90/10, 8 clients (SQLite), {label:<10}  recommend {:>6.0}/s p99 {:>6.2} ms; event batches {:>5.0}/s p99 {:>6.2} ms; failed {}",
            ok(false),
            p99(&outcomes, Duration::ZERO, end, false),
            ok(true),
            p99(&outcomes, Duration::ZERO, end, true),
            outcomes
                .iter()
                .filter(|o| o.status != Some(200))
                .count()
        );
        println!("{line}");
        mixed.push(line);
    }
    if let Some((cluster, _)) = &pg {
        let _ = cluster.stop();
    }

    println!("\nsummary:");
    for r in &reports {
        r.print();
    }
    for m in &mixed {
        println!("{m}");
    }
    let lost: usize = reports.iter().map(|r| r.acked - r.found.min(r.acked)).sum();
    if lost > 0 {
        bail!("{lost} acknowledged events were not found afterwards");
    }
    Ok(())
}
