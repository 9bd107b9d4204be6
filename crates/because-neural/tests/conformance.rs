//! Every kind of this crate passes the registry's conformance checks.

use because_core::testing::block_data;
use because_core::Recommender;
use because_models::testing::{check_capabilities, check_one_ranking};
use because_models::{persist, ModelSpec};

/// A categorical user column and multi-valued and numeric item columns.
fn side_info(users: usize, items: usize) -> because_core::SideInfo {
    use because_core::features::RawColumn;
    use because_core::FeatureTable;
    let u = FeatureTable::encode(
        users,
        &[(
            "group".into(),
            RawColumn::Categorical((0..users).map(|u| Some(format!("g{}", u % 3))).collect()),
        )],
    )
    .unwrap();
    let i = FeatureTable::encode(
        items,
        &[
            (
                "genres".into(),
                RawColumn::MultiCategorical(
                    (0..items)
                        .map(|i| vec![format!("a{}", i % 4), format!("b{}", i % 5)])
                        .collect(),
                ),
            ),
            (
                "year".into(),
                RawColumn::Numeric((0..items).map(|i| Some(i as f32)).collect()),
            ),
        ],
    )
    .unwrap();
    because_core::SideInfo {
        users: Some(std::sync::Arc::new(u)),
        items: Some(std::sync::Arc::new(i)),
    }
}

#[test]
fn every_neural_kind_conforms_and_round_trips() {
    let kinds = because_neural::register().unwrap();
    assert!(kinds.len() >= 5, "{kinds:?}");
    let x = block_data(40, 30, 8, 7);
    let mut specs: Vec<String> = kinds
        .iter()
        .map(|k| {
            format!(
                "{k}:{}",
                because_models::registry::lookup(k).unwrap().example
            )
        })
        .collect();
    specs.push("item2vec:dim=8,epochs=3,scoring=cosine".into());
    specs.push("twotower:dim=8,hidden=8,epochs=2,batch_size=32,user_ids=true,min_support=1".into());
    // Features for the kinds that read them (ignored by the others).
    let side = side_info(x.n_users(), x.n_items());
    for text in &specs {
        let spec: ModelSpec = text.parse().unwrap();
        let kind = text.as_str();
        let model = spec
            .fit_with(&x, &side, 0, &mut because_core::no_observer())
            .unwrap();
        check_capabilities(&model, &x);
        check_one_ranking(&model, &x);
        // Deterministic for a seed.
        let again = spec
            .fit_with(&x, &side, 0, &mut because_core::no_observer())
            .unwrap();
        let q = because_core::Query::User(3);
        assert_eq!(
            model.scores(&q).unwrap(),
            again.scores(&q).unwrap(),
            "{kind}: not deterministic"
        );
        // Saved and loaded, it scores the same.
        let dir = tempfile::tempdir().unwrap();
        let meta = persist::Meta {
            user_ids: (0..x.n_users()).map(|u| format!("u{u}")).collect(),
            item_ids: (0..x.n_items()).map(|i| format!("i{i}")).collect(),
            ..Default::default()
        };
        persist::save(&model, &meta, dir.path()).unwrap();
        let loaded = persist::load(dir.path()).unwrap().model;
        for u in 0..5 {
            let q = because_core::Query::User(u);
            assert_eq!(
                model.scores(&q).unwrap(),
                loaded.scores(&q).unwrap(),
                "{kind}: reloaded"
            );
        }
    }
}

/// SASRec's sampled-negative loss (gBCE) trains to a finite loss that falls,
/// and a model so trained passes the same checks.
#[test]
fn sasrec_trains_with_gbce() {
    because_neural::register().unwrap();
    let x = block_data(40, 30, 8, 7);
    let p = because_neural::SasRecParams {
        dim: 16,
        layers: 1,
        heads: 2,
        ffn: 16,
        max_len: 8,
        epochs: 6,
        batch_size: 16,
        loss: because_neural::SeqLoss::Gbce,
        negatives: 8,
        learning_rate: 0.01,
        ..Default::default()
    };
    let m = p.fit(&x).unwrap();
    let l = m.losses();
    assert!(l.iter().all(|v| v.is_finite()), "{l:?}");
    assert!(l[l.len() - 1] < l[0], "gBCE loss does not fall: {l:?}");
    let spec: ModelSpec =
        "sasrec:dim=16,layers=1,heads=2,ffn=16,max_len=8,epochs=2,loss=gbce,negatives=8"
            .parse()
            .unwrap();
    let model = spec.fit(&x).unwrap();
    check_capabilities(&model, &x);
    check_one_ranking(&model, &x);
}

/// Sequences where item `i` is always followed by `i + 1` (mod `items`).
fn cycles(users: usize, items: usize) -> because_core::Interactions {
    because_core::Interactions::from_tuples(
        users,
        items,
        (0..users).flat_map(move |u| {
            let start = (u * 7) % items;
            (0..12).map(move |t| (u as u32, ((start + t) % items) as u32, 1.0, t as i64))
        }),
    )
    .unwrap()
}

/// For how many items `i` the model ranks `i + 1` first after a sequence
/// ending in `i`.
fn next_first(m: &dyn because_core::Recommender, items: usize) -> usize {
    let mut right = 0;
    for i in 0..items {
        let seq: Vec<u32> = (0..4)
            .map(|t| ((i + items - 3 + t) % items) as u32)
            .collect();
        let ones = vec![1.0f32; seq.len()];
        let scores = m
            .scores(&because_core::Query::Sequence(because_core::Sequence {
                items: &seq,
                values: &ones,
                times: None,
                events: None,
            }))
            .unwrap();
        let best = (0..items)
            .max_by(|&a, &b| scores[a].total_cmp(&scores[b]))
            .unwrap();
        right += usize::from(best == (i + 1) % items);
    }
    right
}

/// The sampled softmax (negatives shared by the step, drawn by popularity,
/// the log-Q correction) learns what follows what: on sequences where item
/// `i` is always followed by `i + 1`, SASRec and GRU4Rec rank the next item
/// first for most items, though each step scores only 8 of the 40 items;
/// and the models so trained pass the same checks.
#[test]
fn sequential_models_learn_order_with_a_sampled_softmax() {
    because_neural::register().unwrap();
    let items = 40;
    let x = cycles(200, items);
    let sasrec = because_neural::SasRecParams {
        dim: 16,
        layers: 1,
        heads: 2,
        ffn: 32,
        max_len: 8,
        epochs: 12,
        batch_size: 32,
        loss: because_neural::SeqLoss::Sampled,
        negatives: 8,
        learning_rate: 0.01,
        dropout: 0.0,
        ..Default::default()
    }
    .fit(&x)
    .unwrap();
    let gru = because_neural::Gru4RecParams {
        dim: 16,
        epochs: 12,
        batch_size: 32,
        loss: because_neural::GruLoss::Sampled,
        negatives: 8,
        learning_rate: 0.02,
        dropout: 0.0,
        ..Default::default()
    }
    .fit(&x)
    .unwrap();
    for (name, l, m) in [
        (
            "sasrec",
            sasrec.losses().to_vec(),
            &sasrec as &dyn because_core::Recommender,
        ),
        ("gru4rec", gru.losses().to_vec(), &gru),
    ] {
        assert!(l.iter().all(|v| v.is_finite()), "{name}: {l:?}");
        assert!(
            l[l.len() - 1] < 0.5 * l[0],
            "{name}: the loss does not fall: {l:?}"
        );
        let right = next_first(m, items);
        assert!(
            right >= 32,
            "{name}: the next item is first for {right} of {items}"
        );
    }
    for text in [
        "sasrec:dim=16,layers=1,heads=2,ffn=16,max_len=8,epochs=2,loss=sampled,negatives=8",
        "gru4rec:dim=16,epochs=2,loss=sampled,negatives=8",
    ] {
        let model = text.parse::<ModelSpec>().unwrap().fit(&x).unwrap();
        check_capabilities(&model, &x);
        check_one_ranking(&model, &x);
    }
}

/// Training on shards is reproducible for a seed and a thread count, the
/// fitted spec records the count that ran (`threads=0`: every core), and a
/// bad count names its key.
#[test]
fn sharded_training_is_reproducible_and_records_its_threads() {
    because_neural::register().unwrap();
    let x = cycles(60, 20);
    for kind in [
        "sasrec:dim=8,layers=1,heads=2,ffn=8,max_len=6,negatives=8",
        "gru4rec:dim=8,negatives=8",
        "twotower:dim=8,hidden=8",
    ] {
        let scores = |threads: usize| {
            let spec = format!("{kind},epochs=2,batch_size=16,loss=sampled,threads={threads}");
            let m = spec.parse::<ModelSpec>().unwrap().fit(&x).unwrap();
            let mut out = vec![0.0f32; 20];
            m.score_into(&because_core::Query::User(3), &mut out)
                .unwrap();
            (m.spec().params["threads"].clone(), out)
        };
        let (a, b) = (scores(2), scores(2));
        assert_eq!(a, b, "{kind}: two fits on 2 threads differ");
        assert_eq!(a.0, "2");
        let all = scores(0).0.parse::<usize>().unwrap();
        assert!(all >= 1, "{kind}: threads=0 records {all}");
        let e = format!("{kind},threads=1000")
            .parse::<ModelSpec>()
            .unwrap()
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(e.contains("threads"), "{kind}: {e}");
    }
}

/// GRU4Rec's BPR-max loss over in-batch and sampled negatives trains to a
/// finite loss that falls, and the model passes the same checks.
#[test]
fn gru4rec_trains_with_bpr_max() {
    because_neural::register().unwrap();
    let x = block_data(40, 30, 8, 7);
    let p = because_neural::Gru4RecParams {
        dim: 8,
        epochs: 6,
        batch_size: 8,
        loss: because_neural::GruLoss::Bprmax,
        negatives: 8,
        learning_rate: 0.01,
        ..Default::default()
    };
    let m = p.fit(&x).unwrap();
    let l = m.losses();
    assert!(l.iter().all(|v| v.is_finite()), "{l:?}");
    assert!(l[l.len() - 1] < l[0], "BPR-max loss does not fall: {l:?}");
    let spec: ModelSpec = "gru4rec:dim=8,epochs=2,batch_size=8,loss=bprmax,negatives=8"
        .parse()
        .unwrap();
    let model = spec.fit(&x).unwrap();
    check_capabilities(&model, &x);
    check_one_ranking(&model, &x);
}
