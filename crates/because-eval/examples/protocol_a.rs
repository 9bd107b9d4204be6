//! Protocol A on MovieLens-100k: per-user temporal 80/10/10, every rating an
//! interaction, full ranking, test profiles include validation interactions.
//! With `PROTOCOL_B` set: RecBole's random per-user 80/10/10 instead.
//! Prints validation and test NDCG@10 / Recall@10 for the given model specs.
//!
//! `cargo run --release -p because-eval --example protocol_a -- DIR SPEC...`

use because_core::{Part, Split, SplitMethod};
use because_data::{read_interactions, ReadOptions};
use because_eval::{evaluate, Protocol};
use because_models::ModelSpec;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = std::path::PathBuf::from(&args[0]);
    let l = read_interactions(&dir.join("ratings.csv"), &ReadOptions::default()).unwrap();
    let x = l.dataset.interactions.clone().with_constant_values(1.0);
    let method = if std::env::var_os("PROTOCOL_B").is_some() {
        SplitMethod::Random {
            validation: 0.1,
            test: 0.1,
            per_user: true,
        }
    } else {
        SplitMethod::UserTemporal {
            validation: 0.1,
            test: 0.1,
        }
    };
    let s = Split::new(&x, method, 42, true).unwrap();
    let (train, val, test) = (
        s.part(&x, Part::Train),
        s.part(&x, Part::Validation),
        s.part(&x, Part::Test),
    );
    for spec in &args[1..] {
        let t = std::time::Instant::now();
        let m = spec.parse::<ModelSpec>().unwrap().fit(&train).unwrap();
        let fit = t.elapsed().as_secs_f64();
        let v = evaluate(&m, &val, &Protocol::new(vec![10])).unwrap();
        let fold_in = std::env::var_os("MASK_ONLY").is_none();
        let te = evaluate(
            &m,
            &test,
            &Protocol {
                ks: vec![10],
                extra_history: Some(&val),
                fold_in,
                ..Protocol::new(Vec::new())
            },
        )
        .unwrap();
        println!(
            "{spec:50} val ndcg {:.4} recall {:.4} | test ndcg {:.4} recall {:.4} | fit {fit:.2}s",
            v.mean("ndcg@10").unwrap(),
            v.mean("recall@10").unwrap(),
            te.mean("ndcg@10").unwrap(),
            te.mean("recall@10").unwrap()
        );
    }
}
