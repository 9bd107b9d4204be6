//! Every model passes the same conformance suite and survives a save/load round trip.

use because_core::testing::{block_data, check_recommender};
use because_core::{Query, Recommender, Request};
use because_models::persist::{self, Meta};
use because_models::{registry, Model, ModelSpec};

/// Every registered kind with its small example configuration, plus
/// variants whose code paths differ.
fn specs() -> Vec<String> {
    let mut s: Vec<String> = registry::kinds()
        .iter()
        .map(|e| format!("{}:{}", e.name, e.example))
        .collect();
    s.extend(
        [
            "pop",
            "itemknn:weighting=bm25",
            "als:factors=8,iterations=3,solver=cholesky",
            "als:factors=8,iterations=3,regularization=0.5,regularization_scaling=count",
            "bpr:factors=8,epochs=10,loss=warp",
        ]
        .map(String::from),
    );
    s
}

#[test]
fn every_model_conforms() {
    let x = block_data(40, 30, 8, 7);
    for spec in specs() {
        let model = spec
            .parse::<ModelSpec>()
            .unwrap()
            .fit(&x)
            .unwrap_or_else(|e| panic!("{spec}: {e}"));
        check_recommender(&model, &x);
    }
}

#[test]
fn declared_capabilities_are_true() {
    let x = block_data(40, 30, 8, 7);
    for entry in registry::kinds() {
        let spec = format!("{}:{}", entry.name, entry.example);
        let model = spec.parse::<ModelSpec>().unwrap().fit(&x).unwrap();
        because_models::testing::check_capabilities(&model, &x);
    }
}

#[test]
fn one_model_gives_one_ranking() {
    let x = block_data(40, 30, 8, 7);
    for spec in specs() {
        let model = spec.parse::<ModelSpec>().unwrap().fit(&x).unwrap();
        because_models::testing::check_one_ranking(&model, &x);
    }
}

#[test]
fn help_lists_every_kind_with_its_defaults() {
    let help = registry::help();
    for e in registry::kinds() {
        assert!(help.contains(e.name), "{help}");
        for k in e.keys() {
            assert!(help.contains(k), "{}: {k}", e.name);
        }
    }
    assert!(help.contains("lambda=500"), "{help}");
}

#[test]
fn every_model_round_trips_through_a_folder() {
    let x = block_data(40, 30, 8, 7);
    let dir = tempfile::tempdir().unwrap();
    for spec in specs() {
        let model = spec.parse::<ModelSpec>().unwrap().fit(&x).unwrap();
        let path = dir.path().join(spec.replace([':', ',', '='], "_"));
        let meta = Meta {
            user_ids: (0..40).map(|u| format!("u{u}")).collect(),
            item_ids: (0..30).map(|i| format!("i{i}")).collect(),
            data_fingerprint: persist::fingerprint(&x),
            metrics: persist::Metrics {
                validation: Some(0.5),
                losses: vec![2.0, f64::NAN, 1.0],
                ..Default::default()
            },
            item_titles: Vec::new(),
            events: vec![persist::EventType {
                name: "view".into(),
                weight: 1.0,
            }],
        };
        persist::save(&model, &meta, &path).unwrap();
        let back = persist::load(&path).unwrap_or_else(|e| panic!("{spec}: {e}"));
        assert_eq!(back.model.spec(), model.spec(), "{spec}");
        assert_eq!(back.meta.item_ids, meta.item_ids);
        assert_eq!(back.meta.events, meta.events);
        assert_eq!(back.meta.metrics.validation, Some(0.5));
        assert_eq!(back.meta.metrics.losses.len(), 3);
        assert!(back.meta.metrics.losses[1].is_nan());
        for u in 0..40 {
            let q = Request::new(Query::User(u), 10);
            assert_eq!(
                back.model.recommend(&q).unwrap(),
                model.recommend(&q).unwrap(),
                "{spec}: user {u}"
            );
        }
    }
}

/// An EASE model of `users × items` block data, saved in a new folder.
fn saved_ease(users: usize, items: usize) -> (Model, tempfile::TempDir) {
    let x = block_data(users, items, 4, 1);
    let model = "ease:lambda=5"
        .parse::<ModelSpec>()
        .unwrap()
        .fit(&x)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let meta = Meta {
        user_ids: (0..users).map(|u| u.to_string()).collect(),
        item_ids: (0..items).map(|i| i.to_string()).collect(),
        ..Default::default()
    };
    persist::save(&model, &meta, dir.path()).unwrap();
    (model, dir)
}

#[test]
fn damaged_model_files_are_clear_errors() {
    let (_, dir) = saved_ease(20, 10);
    let tensors = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&tensors).unwrap();
    std::fs::write(&tensors, &bytes[..bytes.len() / 2]).unwrap();
    let e = persist::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("truncated"), "{e}");
    let mut flipped = bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0xFF;
    std::fs::write(&tensors, &flipped).unwrap();
    let e = persist::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("checksum mismatch"), "{e}");
    std::fs::write(&tensors, &bytes).unwrap();
    let manifest = dir.path().join("manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace("\"format_version\": 2", "\"format_version\": 99"),
    )
    .unwrap();
    let e = persist::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("format version 99 is not supported"), "{e}");
    std::fs::write(&manifest, &text[..text.len() / 2]).unwrap();
    let e = persist::load(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("manifest.json") && e.contains("truncated"),
        "{e}"
    );
    std::fs::write(&manifest, &text).unwrap();
    assert!(persist::load(dir.path()).is_ok());
    // A byte changed anywhere in the data, not only at the end.
    let mut flipped = bytes.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x01;
    std::fs::write(&tensors, &flipped).unwrap();
    let e = persist::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("checksum mismatch"), "{e}");
}

#[test]
fn model_files_are_standard_safetensors_opened_as_views() {
    let (model, dir) = saved_ease(30, 20);
    let bytes = std::fs::read(dir.path().join("model.safetensors")).unwrap();
    // The safetensors library reads the file, tensors as saved.
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let b = st.tensor("b").unwrap();
    assert_eq!(b.shape(), &[20, 20]);
    let ease = model.downcast::<because_models::Ease>().unwrap();
    let saved: Vec<f32> = b
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(&saved[..], &ease.matrix()[..]);
    // Loaded, the matrix is a view of the file, and scores are unchanged.
    let back = persist::load(dir.path()).unwrap();
    let loaded = back.model.downcast::<because_models::Ease>().unwrap();
    assert!(loaded.matrix().is_mapped());
    assert_eq!(loaded.matrix(), ease.matrix());
    // Folders of format version 1 (one checksum over the whole file) load.
    let manifest = dir.path().join("manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    m["format_version"] = 1.into();
    m["tensors"]["checksum"] = format!("{:016x}", persist::checksum(&bytes)).into();
    m["tensors"]
        .as_object_mut()
        .unwrap()
        .remove("checksum_block");
    std::fs::write(&manifest, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    let old = persist::load(dir.path()).unwrap();
    for u in 0..30 {
        let q = Request::new(Query::User(u), 5);
        assert_eq!(
            old.model.recommend(&q).unwrap(),
            model.recommend(&q).unwrap()
        );
    }
}

#[test]
fn fitting_is_deterministic_and_thread_independent() {
    let x = block_data(40, 30, 8, 3);
    for spec in [
        "als:factors=8,iterations=4",
        "bpr:factors=8,epochs=5",
        "svd:factors=6",
        "itemknn",
    ] {
        let s: ModelSpec = spec.parse().unwrap();
        let a = s.fit(&x).unwrap();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let b = pool.install(|| s.fit(&x).unwrap());
        for u in 0..40 {
            let sa = a.scores(&Query::User(u)).unwrap();
            let sb = b.scores(&Query::User(u)).unwrap();
            for (p, q) in sa.iter().zip(&sb) {
                assert!(
                    (p - q).abs() <= 1e-4 * (1.0 + p.abs()),
                    "{spec}: user {u}: {p} vs {q}"
                );
            }
        }
    }
}

#[test]
fn observers_see_every_epoch_and_can_stop_training() {
    let x = block_data(40, 30, 8, 3);
    for (spec, every, expected) in [
        ("als:factors=8,iterations=6", 1, vec![1, 2, 3]),
        ("bpr:factors=8,epochs=12", 4, vec![1, 2, 3, 4, 5, 6, 7, 8]),
        ("ease:lambda=5", 1, vec![1]),
        ("mf:factors=4,epochs=6", 2, vec![1, 2, 3, 4]),
    ] {
        let s: ModelSpec = spec.parse().unwrap();
        let mut seen = Vec::new();
        let stop_at = *expected.last().unwrap();
        let mut losses = Vec::new();
        let m = s
            .fit_observed(&x, every, &mut |e| {
                seen.push(e.epoch);
                losses.extend(e.loss);
                assert!(e.epoch <= e.of);
                if e.epoch % every.max(1) == 0 {
                    assert!(e.model.is_some(), "{spec}: snapshot at {}", e.epoch);
                }
                if e.epoch >= stop_at {
                    std::ops::ControlFlow::Break(())
                } else {
                    std::ops::ControlFlow::Continue(())
                }
            })
            .unwrap();
        assert_eq!(seen, expected, "{spec}");
        // A model that reports a loss reports it every epoch, and SGD on
        // squared error brings it down.
        if !losses.is_empty() {
            assert_eq!(losses.len(), seen.len(), "{spec}");
            assert!(losses.last() < losses.first(), "{spec}: {losses:?}");
        }
        // The stopped model equals a model trained for that many epochs.
        if let Some(key) = s.epoch_key() {
            let direct = s.clone().with(key, stop_at).fit(&x).unwrap();
            for u in 0..40 {
                assert_eq!(
                    m.scores(&Query::User(u)).unwrap(),
                    direct.scores(&Query::User(u)).unwrap(),
                    "{spec}"
                );
            }
        }
    }
}

#[test]
fn manifests_are_validated_as_fitting_is() {
    let x = block_data(20, 10, 4, 1);
    let dir = tempfile::tempdir().unwrap();
    let meta = Meta {
        user_ids: (0..20).map(|u| u.to_string()).collect(),
        item_ids: (0..10).map(|i| i.to_string()).collect(),
        ..Default::default()
    };
    let model = "als:factors=4,iterations=2"
        .parse::<ModelSpec>()
        .unwrap()
        .fit(&x)
        .unwrap();
    persist::save(&model, &meta, dir.path()).unwrap();
    let manifest = dir.path().join("manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    assert!(text.contains("\"solver\": \"cg\""), "{text}");
    // Folders written before parameters were typed hold them as text.
    let old = text
        .replace("\"factors\": 4", "\"factors\": \"4\"")
        .replace("\"regularization\": 0.01", "\"regularization\": \"0.01\"");
    std::fs::write(&manifest, &old).unwrap();
    assert_eq!(
        persist::load(dir.path()).unwrap().model.spec(),
        model.spec()
    );
    for (from, to, key) in [
        ("\"solver\": \"cg\"", "\"solver\": \"qr\"", "solver"),
        (
            "\"regularization\": 0.01",
            "\"regularization\": -1.0",
            "regularization",
        ),
        ("\"factors\": 4", "\"factors\": \"four\"", "factors"),
        ("\"seed\": 42", "\"sead\": 42", "sead"),
    ] {
        assert!(text.contains(from), "{from} in {text}");
        std::fs::write(&manifest, text.replace(from, to)).unwrap();
        let e = persist::load(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("manifest.json") && e.contains(&format!("`{key}`")),
            "{to}: {e}"
        );
    }
}

#[test]
fn an_als_model_rebuilt_from_its_factors_is_the_same_model() {
    // What importing factors trained elsewhere (Spark's ALS) relies on.
    let x = block_data(40, 30, 8, 7);
    let spec = "als:factors=6,iterations=4,regularization=0.3,regularization_scaling=count";
    let model = spec.parse::<ModelSpec>().unwrap().fit(&x).unwrap();
    let als = model.downcast::<because_models::Als>().unwrap();
    let f = als.params().factors;
    let users: Vec<f32> = (0..40).flat_map(|u| als.user_factors(u).to_vec()).collect();
    let items: Vec<f32> = (0..30).flat_map(|i| als.item_factors(i).to_vec()).collect();
    let rebuilt =
        because_models::Als::from_factors(als.params().clone(), &x, users, items).unwrap();
    let rebuilt = because_models::Model::new(rebuilt).unwrap();
    assert_eq!(rebuilt.spec(), model.spec());
    for u in 0..40 {
        assert_eq!(
            rebuilt.scores(&Query::User(u)).unwrap(),
            model.scores(&Query::User(u)).unwrap()
        );
    }
    because_models::testing::check_one_ranking(&rebuilt, &x);
    // Wrong shapes are refused, naming what is wrong.
    let bad = because_models::Als::from_factors(als.params().clone(), &x, vec![0.0; f], vec![]);
    assert!(bad.unwrap_err().to_string().contains("user factors"));
}
