//! Order matters on the retail shape: on the generated `retail-small` log
//! (RetailRocket's shape, each session's next view following the previous
//! item's planted successors half the time), SASRec and GRU4Rec, trained
//! with the sampled softmax, beat popularity and item-kNN by far, and the
//! same GRU4Rec trained on the same visitors with the order of their events
//! shuffled falls well behind: what they find is the order.
//!
//! Views only, each visitor's first view of an item, visitors with at
//! least three; leave-last-out; each test visitor's input is train +
//! validation in time order; full ranking, seen items excluded.

use because_core::rng::Rng;
use because_core::{DuplicatePolicy, Interactions, Part, Split, SplitMethod};
use because_data::synth::{generate, Size, SynthConfig};
use because_eval::{evaluate, Protocol};
use because_models::ModelSpec;

fn retail_small() -> Interactions {
    let d = generate(&SynthConfig::sized(Size::RetailSmall)).unwrap();
    let cfg = &d.config;
    let views = (0..d.items.len())
        .filter(|&k| d.events[k] == 0)
        .map(|k| (d.users[k], d.items[k], 1.0, d.times[k]));
    let (x, _) = Interactions::from_tuples(cfg.n_users, cfg.n_items, views)
        .unwrap()
        .dedup(DuplicatePolicy::First, &[]);
    let counts = x.user_counts();
    let keep: Vec<bool> = x.iter().map(|r| counts[r.user as usize] >= 3).collect();
    x.select(&keep)
}

/// `x` with each user's times permuted: the same items, no order.
fn shuffled(x: &Interactions) -> Interactions {
    let mut rng = Rng::new(7);
    let mut tuples = Vec::with_capacity(x.len());
    for u in 0..x.n_users() as u32 {
        let mut times = x.user_times(u).to_vec();
        rng.shuffle(&mut times);
        for (k, &i) in x.user_items(u).iter().enumerate() {
            tuples.push((u, i, 1.0, times[k]));
        }
    }
    Interactions::from_tuples(x.n_users(), x.n_items(), tuples).unwrap()
}

#[test]
fn sequential_models_find_the_order_on_the_retail_shape() {
    because_neural::register().unwrap();
    let x = retail_small();
    let s = Split::new(&x, SplitMethod::LeaveLastOut, 42, true).unwrap();
    let (train, val, test) = (
        s.part(&x, Part::Train),
        s.part(&x, Part::Validation),
        s.part(&x, Part::Test),
    );
    let protocol = Protocol {
        ks: vec![10],
        extra_history: Some(&val),
        fold_in: true,
        ..Protocol::new(Vec::new())
    };
    let ndcg = |spec: &str, on: &Interactions| {
        let m = spec.parse::<ModelSpec>().unwrap().fit(on).unwrap();
        let v = evaluate(&m, &test, &protocol)
            .unwrap()
            .mean("ndcg@10")
            .unwrap();
        eprintln!("{spec}: test NDCG@10 {v:.4}");
        v
    };
    let pop = ndcg("pop", &train);
    let knn = ndcg("itemknn", &train);
    let sasrec = ndcg("sasrec:epochs=6,learning_rate=0.003,loss=sampled", &train);
    let gru = ndcg("gru4rec:epochs=8,learning_rate=0.005,loss=sampled", &train);
    let gru_unordered = ndcg(
        "gru4rec:epochs=8,learning_rate=0.005,loss=sampled",
        &shuffled(&train),
    );
    for (name, v) in [("sasrec", sasrec), ("gru4rec", gru)] {
        assert!(v >= 3.0 * pop, "{name} {v:.4} < 3 × popularity {pop:.4}");
        assert!(v >= 1.5 * knn, "{name} {v:.4} < 1.5 × item-kNN {knn:.4}");
    }
    assert!(
        gru >= 1.3 * gru_unordered,
        "GRU4Rec {gru:.4} hardly beats itself trained without order {gru_unordered:.4}"
    );
}
