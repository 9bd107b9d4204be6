//! Model training and evaluation speed, one mode per process so that peak
//! memory can be measured per mode (`cargo xtask bench models` runs it and
//! the same steps with implicit, side by side).
//!
//! `cargo bench -p because-eval --bench models -- MODE TRAIN.csv [TEST.csv] [N]`
//! with MODE `als` (N iterations), `bpr` (N epochs) or `eval` (top-10 for all
//! test users plus metrics, for an ALS model). Prints `seconds-per-unit` first.

use because_data::{read_interactions, ReadOptions};
use because_eval::{evaluate, Protocol};
use because_models::{AlsParams, BprParams};
use std::path::Path;
use std::time::Instant;

fn load(path: &str) -> because_data::Loaded {
    let opts = ReadOptions {
        ignore_rating: true,
        ..Default::default()
    };
    read_interactions(Path::new(path), &opts).expect("readable data")
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.len() < 2 {
        eprintln!("usage: models MODE TRAIN.csv [TEST.csv] [N]");
        return;
    }
    let train = load(&args[1]);
    let x = train.dataset.interactions.clone().with_constant_values(1.0);
    match args[0].as_str() {
        "als" => {
            let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3);
            let start = Instant::now();
            // When each iteration ended, to say where the time goes.
            let mut ends = Vec::new();
            let m = AlsParams {
                factors: 64,
                iterations: n,
                ..Default::default()
            }
            .fit_observed(&x, &mut |e: &because_core::Epoch<'_>| {
                ends.push(e.elapsed.as_secs_f64());
                std::ops::ControlFlow::Continue(())
            })
            .expect("fit");
            let s = start.elapsed().as_secs_f64();
            // The first iteration also builds the item-user matrix and
            // draws the initial factors; the last also solves every user
            // exactly (in place of conjugate-gradient steps).
            let at = |k: usize| ends.get(k).copied().unwrap_or(0.0);
            let first = at(0);
            let middle = if n > 2 {
                (at(n - 2) - first) / (n - 2) as f64
            } else {
                f64::NAN
            };
            let last = s - at(n.saturating_sub(2));
            println!(
                "{:.4} als seconds/iteration over {n} iterations ({} users, {} items, {} nnz): \
                 first (with setup) {first:.3} s, then {middle:.3} s each, \
                 last (users solved exactly) {last:.3} s",
                s / n as f64,
                x.n_users(),
                x.n_items(),
                x.len(),
            );
            drop(m);
        }
        "bpr" => {
            let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
            let start = Instant::now();
            let _m = BprParams {
                factors: 64,
                epochs: n,
                learning_rate: 0.01,
                ..Default::default()
            }
            .fit(&x)
            .expect("fit");
            println!(
                "{:.4} bpr seconds/epoch over {n} epochs",
                start.elapsed().as_secs_f64() / n as f64
            );
        }
        "eval" => {
            // The test file is read with the training vocabularies so indices agree.
            let test_path = args.get(2).expect("TEST.csv");
            let test = load(test_path);
            let mut cols = because_core::Columns::default();
            for r in test.dataset.interactions.iter() {
                let (Some(u), Some(i)) = (
                    train.dataset.users.get(test.dataset.users.id(r.user)),
                    train.dataset.items.get(test.dataset.items.id(r.item)),
                ) else {
                    continue;
                };
                cols.push(u, i, 1.0, r.time, None);
            }
            let t = because_core::Interactions::from_columns(x.n_users(), x.n_items(), cols)
                .expect("test");
            let m = AlsParams {
                factors: 64,
                iterations: 3,
                ..Default::default()
            }
            .fit(&x)
            .expect("fit");
            let start = Instant::now();
            let e = evaluate(&m, &t, &Protocol::new(vec![10])).expect("evaluate");
            println!(
                "{:.4} eval seconds for {} users (ndcg@10 {:.4}, precision@10 {:.4})",
                start.elapsed().as_secs_f64(),
                e.users,
                e.mean("ndcg@10").unwrap_or(0.0),
                e.mean("precision@10").unwrap_or(0.0)
            );
        }
        "explain" => {
            // Recommend alone vs recommend + explain the whole top 10, and a
            // verified counterfactual for the top 1, for ALS with 64 factors.
            let m = because_models::Model::new(
                AlsParams {
                    factors: 64,
                    iterations: 3,
                    ..Default::default()
                }
                .fit(&x)
                .expect("fit"),
            )
            .expect("a registered kind");
            let users: Vec<u32> = (0..x.n_users() as u32)
                .step_by((x.n_users() / 200).max(1))
                .take(200)
                .collect();
            use because_core::{Query, Recommender, Request};
            let start = Instant::now();
            for &u in &users {
                let _ = m
                    .recommend(&Request::new(Query::User(u), 10))
                    .expect("recommend");
            }
            let rec = start.elapsed().as_secs_f64() / users.len() as f64;
            let start = Instant::now();
            for &u in &users {
                let r = m
                    .recommend(&Request::new(Query::User(u), 10))
                    .expect("recommend");
                let (items, values) = m.history(u);
                let targets: Vec<u32> = r.iter().map(|s| s.item).collect();
                let _ =
                    because_explain::explain_many(&m, items, values, &targets).expect("explain");
            }
            let both = start.elapsed().as_secs_f64() / users.len() as f64;
            let start = Instant::now();
            let mut verified = 0;
            for &u in &users {
                let (items, values) = m.history(u);
                let r = m
                    .recommend(&Request::new(Query::History { items, values }, 1))
                    .expect("recommend");
                let e = because_explain::explain(&m, items, values, r[0].item).expect("explain");
                if because_explain::counterfactual(&m, items, values, &e, 10, 5)
                    .expect("counterfactual")
                    .verified
                {
                    verified += 1;
                }
            }
            let cf = start.elapsed().as_secs_f64() / users.len() as f64;
            println!(
                "{:.2} explain ratio: recommend {:.2} ms, recommend + explain top 10 {:.2} ms per user; counterfactual search {:.1} ms per top-1 ({verified}/{} verified)",
                both / rec,
                rec * 1e3,
                both * 1e3,
                cf * 1e3,
                users.len()
            );
        }
        other => eprintln!("unknown mode {other}"),
    }
}
