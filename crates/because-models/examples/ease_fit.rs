//! Fits EASE on a random log with a given catalogue size, for measuring the
//! fit's time and peak memory (run under `/usr/bin/time -v`):
//!
//! `cargo run --release -p because-models --example ease_fit -- ITEMS USERS PER_USER`

use because_core::rng::Rng;
use because_core::Interactions;
use because_models::EaseParams;

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("ITEMS USERS PER_USER"))
        .collect();
    let (items, users, per_user) = (args[0], args[1], args[2]);
    let mut rng = Rng::new(1);
    let mut rows = Vec::with_capacity(users * per_user);
    for u in 0..users as u32 {
        for k in 0..per_user {
            // Popularity skewed like real catalogues: the square of a uniform draw.
            let x = rng.next_f64();
            let i = ((x * x) * items as f64) as u32;
            rows.push((u, i.min(items as u32 - 1), 1.0, k as i64));
        }
    }
    let x = Interactions::from_tuples(users, items, rows).unwrap();
    let start = std::time::Instant::now();
    let m = EaseParams { lambda: 500.0 }.fit(&x).unwrap();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "EASE on {items} items, {} interactions: fit {secs:.1} s; B is {:.2} GB; w[0][1] {}",
        x.len(),
        (items * items * 4) as f64 / 1e9,
        m.weights(0)[1]
    );
}
