use super::*;

/// A catalogue with structure, as trained factors have: items around
/// `topics` directions, with norms that vary (popular items are longer).
fn catalogue(n: usize, dim: usize, topics: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let centres: Vec<f32> = (0..topics * dim).map(|_| rng.normal() as f32).collect();
    let mut out = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let t = rng.below(topics as u64) as usize;
        let scale = 0.5 + rng.exponential(0.5) as f32;
        for d in 0..dim {
            out.push(scale * (centres[t * dim + d] + 0.6 * rng.normal() as f32));
        }
    }
    out
}

fn exact(items: &[f32], dim: usize, q: &[f32], k: usize) -> Vec<u32> {
    let mut best = Best::new(k);
    for (i, r) in items.chunks_exact(dim).enumerate() {
        best.push(i as u32, dot(q, r));
    }
    best.into_sorted().iter().map(|s| s.item).collect()
}

fn recall(index: &Ivf, items: &[f32], dim: usize, queries: &[f32]) -> f64 {
    let mut hit = 0usize;
    let mut all = 0usize;
    for q in queries.chunks_exact(dim) {
        let want = exact(items, dim, q, 10);
        let got: Vec<u32> = index
            .search(q, 10, Metric::InnerProduct, None, &|_| false)
            .iter()
            .map(|s| s.item)
            .collect();
        hit += want.iter().filter(|i| got.contains(i)).count();
        all += want.len();
    }
    hit as f64 / all as f64
}

#[test]
fn calibrated_recall_holds_on_new_queries_and_scanning_everything_is_exact() {
    let (n, dim) = (20_000, 16);
    let items = catalogue(n, dim, 40, 1);
    let v = ItemVectors::dense(&items, dim);
    let mut index = Ivf::build(&v, &IvfParams::default());
    assert_eq!(index.lists(), 283);
    let train_q = catalogue(300, dim, 40, 2);
    let c = index.calibrate(&train_q, &[], 10, 0.99, Metric::InnerProduct);
    assert!(c.recall >= 0.99, "{c:?}");
    // A broken index (lists in the wrong order, items in the wrong list)
    // cannot reach this while scanning a small share of the lists.
    assert!(c.probe * 4 < index.lists(), "{c:?}");
    let test_q = catalogue(200, dim, 40, 3);
    let r = recall(&index, &items, dim, &test_q);
    assert!(
        r >= 0.97,
        "recall on held-out queries {r} at probe {}",
        c.probe
    );
    // With every list scanned the search is exact.
    for q in test_q.chunks_exact(dim).take(20) {
        let got: Vec<u32> = index
            .search(q, 10, Metric::InnerProduct, Some(index.lists()), &|_| false)
            .iter()
            .map(|s| s.item)
            .collect();
        assert_eq!(got, exact(&items, dim, q, 10));
    }
}

#[test]
fn scores_are_exact_inner_products_and_skipped_items_never_return() {
    let (n, dim) = (3_000, 8);
    let items = catalogue(n, dim, 10, 4);
    let bias: Vec<f32> = (0..n).map(|i| (i % 7) as f32 * 0.1).collect();
    let v = ItemVectors {
        data: &items,
        dim,
        stride: dim,
        bias: Some(&bias),
    };
    let index = Ivf::build(&v, &IvfParams::default());
    assert_eq!(index.dim(), dim + 1);
    let mut q = catalogue(1, dim, 10, 5);
    q.push(1.0);
    let got = index.search(&q, 50, Metric::InnerProduct, Some(8), &|i| i % 2 == 0);
    assert_eq!(got.len(), 50);
    for w in got.windows(2) {
        assert!(w[0].score >= w[1].score);
    }
    for s in &got {
        assert!(s.item % 2 == 1);
        let r = &items[s.item as usize * dim..(s.item as usize + 1) * dim];
        let want = dot(&q[..dim], r) + bias[s.item as usize];
        assert!(
            (s.score - want).abs() <= 1e-4 * (1.0 + want.abs()),
            "{} vs {want}",
            s.score
        );
    }
}

#[test]
fn what_is_built_does_not_depend_on_the_number_of_threads() {
    let (n, dim) = (9_000, 12);
    let items = catalogue(n, dim, 20, 6);
    let v = ItemVectors::dense(&items, dim);
    let build = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| Ivf::build(&v, &IvfParams::default()).into_parts())
    };
    assert_eq!(build(1), build(3));
}

#[test]
fn parts_round_trip_and_inconsistent_parts_are_refused() {
    let (n, dim) = (1_000, 4);
    let items = catalogue(n, dim, 5, 7);
    let v = ItemVectors::dense(&items, dim);
    let index = Ivf::build(&v, &IvfParams::default());
    let back = Ivf::from_parts(index.clone().into_parts(), n).unwrap();
    let q = [0.3, -1.0, 0.5, 2.0];
    assert_eq!(
        back.search(&q, 5, Metric::InnerProduct, None, &|_| false),
        index.search(&q, 5, Metric::InnerProduct, None, &|_| false)
    );
    assert!(Ivf::from_parts(index.clone().into_parts(), n + 1).is_err());
    let mut twice = index.clone().into_parts();
    twice.ids[1] = twice.ids[0];
    assert!(Ivf::from_parts(twice, n)
        .unwrap_err()
        .0
        .contains("two lists"));
}

#[test]
fn cosine_search_finds_similar_items() {
    let (n, dim) = (10_000, 16);
    let items = catalogue(n, dim, 30, 8);
    let v = ItemVectors::dense(&items, dim);
    let mut index = Ivf::build(&v, &IvfParams::default());
    let queries: Vec<f32> = items[..200 * dim].to_vec();
    let c = index.calibrate(&queries, &[], 10, 0.99, Metric::Cosine(dim));
    assert!(c.recall >= 0.99 && c.probe < index.lists() / 2, "{c:?}");
}
