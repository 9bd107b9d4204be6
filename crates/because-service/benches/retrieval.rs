//! `cargo bench -p because-service --bench retrieval [-- --items N --users N --out DIR]`
//! (without `--bench`, as `cargo test --all-targets` runs it: 3,000 items
//! and users, in a temporary folder):
//! approximate retrieval on a large catalogue (the Rust side of `cargo
//! xtask bench retrieval`).
//!
//! An ALS model of 64 factors over a generated catalogue (1M items and 1M
//! users by default): item vectors around 256 topics with heavy-tailed
//! norms (popular items are longer), users mixing one or two topics, three
//! training items each. The model folder is saved with its index, then
//! opened as `because serve` opens it, and the bench reports the index's
//! build time, peak memory and size, the recall@10 of served lists against
//! exact scoring for users the calibration never saw, similar items'
//! recall, and single-request latency (p50, p99) of recommend and of
//! recommend + explain, approximate and exact. JSON to `DIR/retrieval.json`.

use because_core::rng::Rng;
use because_core::Interactions;
use because_models::index::{build_for, IndexPolicy};
use because_models::persist::{self, Meta};
use because_models::{Als, AlsParams, Model};
use because_service::{ModelHandle, RecommendRequest, SimilarRequest};
use std::path::PathBuf;
use std::time::Instant;

const FACTORS: usize = 64;
const TOPICS: usize = 256;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// Peak and current resident memory of this process, in MB.
fn memory() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn percentile(ms: &mut [f64], p: f64) -> f64 {
    ms.sort_by(f64::total_cmp);
    ms[((ms.len() as f64 - 1.0) * p).round() as usize]
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this
    // without it, as a quick smoke test on a small catalogue.
    let bench = std::env::args().any(|a| a == "--bench");
    let size = if bench { 1_000_000 } else { 3_000 };
    let n_items: usize = arg("--items").map_or(size, |v| v.parse().unwrap());
    let n_users: usize = arg("--users").map_or(size, |v| v.parse().unwrap());
    let out = match arg("--out") {
        Some(o) => PathBuf::from(o),
        None if bench => PathBuf::from("target/bench-retrieval"),
        None => {
            std::env::temp_dir().join(format!("because-retrieval-smoke-{}", std::process::id()))
        }
    };
    let mut rng = Rng::new(42);
    let t = Instant::now();
    let centres: Vec<f32> = (0..TOPICS * FACTORS)
        .map(|_| rng.normal() as f32 * 0.3)
        .collect();
    let mut topic_items: Vec<Vec<u32>> = vec![Vec::new(); TOPICS];
    let mut items = Vec::with_capacity(n_items * FACTORS);
    for i in 0..n_items {
        let topic = rng.below(TOPICS as u64) as usize;
        topic_items[topic].push(i as u32);
        let scale = (0.4 * rng.normal()).exp() as f32;
        for d in 0..FACTORS {
            items.push(scale * (centres[topic * FACTORS + d] + 0.15 * rng.normal() as f32));
        }
    }
    let mut users = Vec::with_capacity(n_users * FACTORS);
    let mut rows = Vec::with_capacity(n_users * 3);
    for u in 0..n_users {
        let (a, b) = (
            rng.below(TOPICS as u64) as usize,
            rng.below(TOPICS as u64) as usize,
        );
        let w = rng.next_f32();
        for d in 0..FACTORS {
            users.push(
                w * centres[a * FACTORS + d]
                    + (1.0 - w) * centres[b * FACTORS + d]
                    + 0.1 * rng.normal() as f32,
            );
        }
        for k in 0..3 {
            let pool = &topic_items[if k == 2 { b } else { a }];
            if !pool.is_empty() {
                let i = pool[rng.below(pool.len() as u64) as usize];
                rows.push((u as u32, i, 1.0f32, k as i64));
            }
        }
    }
    let x = Interactions::from_tuples(n_users, n_items, rows)?;
    let als = Als::from_factors(
        AlsParams {
            factors: FACTORS,
            ..AlsParams::default()
        },
        &x,
        users,
        items,
    )?;
    let model = Model::new(als)?;
    let meta = Meta {
        user_ids: (0..n_users).map(|u| format!("u{u}")).collect(),
        item_ids: (0..n_items).map(|i| format!("i{i}")).collect(),
        ..Meta::default()
    };
    println!(
        "generated {n_items} items x {n_users} users x {FACTORS} factors in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    std::fs::create_dir_all(&out)?;
    let dir = out.join("model");
    persist::save(&model, &meta, &dir)?;
    // The peak from here on: Linux resets VmHWM to the current size.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let (_, before) = memory();
    let t = Instant::now();
    let info = build_for(&model, &dir, IndexPolicy::Always)?.expect("an index for ALS");
    let build_s = t.elapsed().as_secs_f64();
    let (peak, _) = memory();
    let embeddings_mb = (n_items * FACTORS * 4) as f64 / 1e6;
    println!(
        "index: {} lists, probe {} (similar {}), built and saved in {build_s:.1}s; {:.0} MB ({:.2}x the item vectors' {embeddings_mb:.0} MB); peak memory {:.0} MB above the {:.0} MB before; calibration recall@10 {:.4}",
        info.lists,
        info.probe,
        info.probe_similar,
        info.bytes as f64 / 1e6,
        info.bytes as f64 / 1e6 / embeddings_mb,
        peak - before,
        before,
        info.recall_at_10
    );
    drop(model);
    let t = Instant::now();
    let exact = ModelHandle::open(&dir)?;
    let open_s = t.elapsed().as_secs_f64();
    let approx = exact.approximate(true);
    assert!(approx.retrieval().approximate, "{:?}", approx.retrieval());
    // Users the calibration did not see are as likely as any: random ones.
    let mut pick = Rng::new(7);
    let sample: Vec<String> = (0..1000)
        .map(|_| format!("u{}", pick.below(n_users as u64)))
        .collect();
    let request = |u: &str, explain: bool| RecommendRequest {
        explain,
        ..RecommendRequest::user(u, 10)
    };
    let timed = |h: &ModelHandle,
                 explain: bool,
                 n: usize|
     -> anyhow::Result<(Vec<Vec<String>>, Vec<f64>)> {
        let mut lists = Vec::new();
        let mut ms = Vec::new();
        for u in sample.iter().take(n) {
            let t = Instant::now();
            let r = h.recommend(&request(u, explain))?;
            ms.push(t.elapsed().as_secs_f64() * 1e3);
            lists.push(r.items.iter().map(|i| i.item.clone()).collect());
        }
        Ok((lists, ms))
    };
    let (got, mut approx_ms) = timed(&approx, false, 1000)?;
    let (want, mut exact_ms) = timed(&exact, false, 200)?;
    let hits: usize = got
        .iter()
        .zip(&want)
        .map(|(g, w)| w.iter().filter(|i| g.contains(i)).count())
        .sum();
    let recall = hits as f64 / want.iter().map(Vec::len).sum::<usize>() as f64;
    let (_, mut approx_explain_ms) = timed(&approx, true, 300)?;
    let (_, mut exact_explain_ms) = timed(&exact, true, 100)?;
    let mut sim_hits = 0usize;
    let mut sim_ms = Vec::new();
    for k in 0..100 {
        let req = SimilarRequest {
            item: format!("i{}", (k * 9973) % n_items),
            k: 10,
        };
        let t = Instant::now();
        let a = approx.similar(&req)?;
        sim_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let e = exact.similar(&req)?;
        sim_hits += e
            .items
            .iter()
            .filter(|x| a.items.iter().any(|y| y.item == x.item))
            .count();
    }
    let row = |name: &str, ms: &mut Vec<f64>| {
        let (p50, p99) = (percentile(ms, 0.5), percentile(ms, 0.99));
        println!(
            "{name:<34} p50 {p50:>8.3} ms   p99 {p99:>8.3} ms   ({} requests)",
            ms.len()
        );
        serde_json::json!({ "p50_ms": p50, "p99_ms": p99, "requests": ms.len() })
    };
    println!("opened the folder (checksums, index) in {open_s:.2}s");
    println!("recall@10 of served lists against exact scoring: {recall:.4} (200 random users)");
    println!(
        "similar items recall@10: {:.4} (100 items)",
        sim_hits as f64 / 1000.0
    );
    let report = serde_json::json!({
        "items": n_items,
        "users": n_users,
        "factors": FACTORS,
        "index": info,
        "build_seconds": build_s,
        "build_peak_mb_above_before": peak - before,
        "embeddings_mb": embeddings_mb,
        "open_seconds": open_s,
        "recall_at_10": recall,
        "similar_recall_at_10": sim_hits as f64 / 1000.0,
        "recommend_approximate": row("recommend, approximate", &mut approx_ms),
        "recommend_exact": row("recommend, exact", &mut exact_ms),
        "recommend_explain_approximate": row("recommend + explain, approximate", &mut approx_explain_ms),
        "recommend_explain_exact": row("recommend + explain, exact", &mut exact_explain_ms),
        "similar_approximate": row("similar, approximate", &mut sim_ms),
    });
    std::fs::write(
        out.join("retrieval.json"),
        serde_json::to_vec_pretty(&report)?,
    )?;
    println!("wrote {}", out.join("retrieval.json").display());
    if !bench {
        // The smoke test checks what the bench measures, then cleans up.
        assert!(recall >= 0.9, "recall@10 {recall}");
        std::fs::remove_dir_all(&out)?;
    }
    Ok(())
}
