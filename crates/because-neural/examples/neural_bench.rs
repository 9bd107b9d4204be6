//! Speed and memory of the sequential models, for the closing figures of
//! the neural-models issue (a benchmark, not a test):
//!
//! * SASRec (2 layers, 2 heads, d = 64, L = 50, full softmax) seconds per
//!   epoch on MovieLens-100k (`BECAUSE_ML100K`), and GRU4Rec's;
//! * on a MovieLens-20M-shaped catalogue (27,000 items): one user's
//!   recommendations with SASRec, and an occlusion explanation over 50
//!   history items; peak resident memory.
//!
//! `cargo run -p because-neural --example neural_bench` (the dev profile
//! optimizes this crate and its dependencies).

use because_core::{Interactions, Query, Recommender, Request};
use because_models::ModelSpec;
use std::time::Instant;

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn epoch_seconds(spec: &str, x: &Interactions, epochs: usize) -> f64 {
    let spec: ModelSpec = format!("{spec},epochs={epochs}").parse().unwrap();
    let start = Instant::now();
    spec.fit(x).unwrap();
    start.elapsed().as_secs_f64() / epochs as f64
}

fn main() {
    because_neural::register().unwrap();
    let threads = rayon::current_num_threads();
    if let Some(dir) = because_data::testing::ml100k_dir() {
        let l =
            because_data::read_interactions(&dir.join("ratings.csv"), &Default::default()).unwrap();
        let x = l.dataset.interactions.with_constant_values(1.0);
        for spec in [
            "sasrec:dim=64,layers=2,heads=2,max_len=50",
            "gru4rec:dim=64",
        ] {
            let s = epoch_seconds(spec, &x, 3);
            println!("{spec}: {s:.2} s per epoch on all of MovieLens-100k ({threads} threads)");
        }
    } else {
        println!("set BECAUSE_ML100K for the MovieLens-100k epoch times");
    }
    // A MovieLens-20M-shaped catalogue: 27,000 items, 2,000 users of 60.
    let (users, items, per) = (2_000usize, 27_000usize, 60usize);
    let mut rng = because_core::rng::Rng::new(1);
    let rows: Vec<(u32, u32, f32, i64)> = (0..users)
        .flat_map(|u| (0..per).map(move |t| (u, t)))
        .map(|(u, t)| {
            let item = (rng.next_f64().powi(3) * items as f64) as u32;
            (u as u32, item.min(items as u32 - 1), 1.0, t as i64)
        })
        .collect();
    let x = Interactions::from_tuples(users, items, rows).unwrap();
    let start = Instant::now();
    let model = "sasrec:dim=64,layers=2,heads=2,max_len=50,epochs=1"
        .parse::<ModelSpec>()
        .unwrap()
        .fit(&x)
        .unwrap();
    println!(
        "sasrec on {items} items: one epoch over {} interactions in {:.1} s",
        x.len(),
        start.elapsed().as_secs_f64()
    );
    let mut times = Vec::new();
    for u in 0..200u32 {
        let t = Instant::now();
        let r = model.recommend(&Request::new(Query::User(u), 10)).unwrap();
        times.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(r.len(), 10);
    }
    println!(
        "sasrec recommend, one user, {items} items: median {:.2} ms",
        median(times)
    );
    let mut times = Vec::new();
    for u in 0..20u32 {
        let (h, v) = model.history(u);
        let (h, v) = (&h[h.len() - 50..], &v[v.len() - 50..]);
        let target = model
            .recommend(&Request::new(
                Query::History {
                    items: h,
                    values: v,
                },
                1,
            ))
            .unwrap()[0]
            .item;
        let t = Instant::now();
        let e =
            because_explain::explain_by(&model, h, v, target, because_explain::Method::Occlusion)
                .unwrap();
        times.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(e.contributions.len(), 50);
    }
    println!(
        "sasrec occlusion over 50 history items: median {:.2} ms",
        median(times)
    );
    println!("peak resident memory: {:.0} MB", peak_rss_mb());
}
