//! The registry's contract: a model defined outside the models crate (here,
//! a first-order Markov chain over each user's items in time order) is one
//! type plus one `register` call, and then gets the conformance suite,
//! model folders, CLI training and recommendation, and a clean
//! "unsupported" from the explainers, with no other file touched.

use because_core::testing::{block_data, check_recommender};
use because_core::{
    Capabilities, CsrMatrix, EpochObserver, Error, Interactions, Query, Recommender, Result,
    Sequence,
};
use because_models::persist::{self, Meta, PersistError, TensorsIn, TensorsOut};
use because_models::{register, ModelKind, ModelSpec, Train, Validate};
use serde::{Deserialize, Serialize};

/// Scores the items that followed the subject's latest item, plus a
/// popularity prior weighted by `smoothing`.
#[derive(Clone, Debug)]
struct Markov {
    params: MarkovParams,
    train: Train,
    /// Row `i`: how often each item came right after `i`.
    next: CsrMatrix,
    /// Each user's latest item (`u32::MAX` for none).
    last: Vec<u32>,
    popularity: Vec<f32>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct MarkovParams {
    smoothing: f32,
}

impl Validate for MarkovParams {
    fn validate(&self) -> Result<()> {
        if !(self.smoothing >= 0.0) {
            return Err(Error::param("smoothing", "must be non-negative"));
        }
        Ok(())
    }
}

fn popularity(train: &Train) -> Vec<f32> {
    let n = train.ui.nnz().max(1) as f32;
    (0..train.iu.n_rows())
        .map(|i| train.iu.row_indices(i).len() as f32 / n)
        .collect()
}

impl ModelKind for Markov {
    const NAME: &'static str = "markov";
    const ABOUT: &'static str = "first-order Markov chain over items in time order";
    const CAPABILITIES: Capabilities = Capabilities {
        ordered_sequences: true,
        fold_in: true,
        ..Capabilities::NONE
    };
    const EXAMPLE: &'static str = "smoothing=0.5";
    type Params = MarkovParams;

    fn fit(
        p: &MarkovParams,
        x: &Interactions,
        _: usize,
        _: &mut EpochObserver<'_>,
    ) -> Result<Self> {
        let mut pairs = Vec::new();
        let mut last = vec![u32::MAX; x.n_users()];
        for u in 0..x.n_users() as u32 {
            let items = x.user_sequence(u).items;
            for w in items.windows(2) {
                pairs.push((w[0], w[1], 1.0, 0));
            }
            if let Some(&l) = items.last() {
                last[u as usize] = l;
            }
        }
        let n = x.n_items();
        let next = CsrMatrix::from_interactions(&Interactions::from_tuples(n, n, pairs)?);
        let train = Train::new(x);
        Ok(Markov {
            popularity: popularity(&train),
            params: p.clone(),
            train,
            next,
            last,
        })
    }
    fn params(&self) -> MarkovParams {
        self.params.clone()
    }
    fn train(&self) -> &Train {
        &self.train
    }
    fn save(&self, out: &mut TensorsOut) {
        out.csr("next", &self.next);
        out.u32("last", &self.last, &[self.last.len()]);
    }
    fn load(
        params: MarkovParams,
        train: Train,
        t: &TensorsIn<'_>,
    ) -> std::result::Result<Self, PersistError> {
        let n = train.ui.n_cols();
        Ok(Markov {
            next: t.csr("next", n, n)?,
            last: t.u32("last", &[train.ui.n_rows()])?,
            popularity: popularity(&train),
            params,
            train,
        })
    }
}

impl Recommender for Markov {
    fn kind(&self) -> &'static str {
        "markov"
    }
    fn n_users(&self) -> usize {
        self.train.ui.n_rows()
    }
    fn n_items(&self) -> usize {
        self.train.ui.n_cols()
    }
    fn history(&self, user: u32) -> (&[u32], &[f32]) {
        (self.train.items(user), self.train.values(user))
    }
    fn score_into(&self, query: &Query<'_>, out: &mut [f32]) -> Result<()> {
        for (o, &p) in out.iter_mut().zip(&self.popularity) {
            *o = self.params.smoothing * p;
        }
        // The latest item of a user or a sequence; every item of an unordered history.
        let from: Vec<u32> = match *query {
            Query::User(u) => vec![self.last[u as usize]],
            Query::Sequence(Sequence { items, .. }) => items.last().copied().into_iter().collect(),
            Query::History { items, .. } => items.to_vec(),
        };
        for i in from.into_iter().filter(|&i| i != u32::MAX) {
            let row = i as usize;
            for (&j, &c) in self
                .next
                .row_indices(row)
                .iter()
                .zip(self.next.row_data(row))
            {
                out[j as usize] += c;
            }
        }
        Ok(())
    }
}

#[test]
fn an_outside_model_gets_everything_from_one_registration() {
    register::<Markov>().unwrap();
    // Registering again is harmless.
    register::<Markov>().unwrap();
    assert!(because_models::registry::names().contains(&"markov"));

    // Conformance, through a spec as any user would write it.
    let x = block_data(40, 30, 8, 7);
    let model = "markov:smoothing=0.5"
        .parse::<ModelSpec>()
        .unwrap()
        .fit(&x)
        .unwrap();
    check_recommender(&model, &x);
    // What it declares (ordered sequences, fold-in, nothing else) is true.
    because_models::testing::check_capabilities(&model, &x);
    // Order matters: a sequence is scored from its latest item.
    let (a, b) = (x.user_items(0)[0], x.user_items(0)[1]);
    let forward = model
        .scores(&Query::Sequence(Sequence {
            items: &[a, b],
            values: &[1.0, 1.0],
            times: None,
            events: None,
        }))
        .unwrap();
    let backward = model
        .scores(&Query::Sequence(Sequence {
            items: &[b, a],
            values: &[1.0, 1.0],
            times: None,
            events: None,
        }))
        .unwrap();
    assert_ne!(forward, backward);
    // Validation at the registry's boundary names the key.
    let e = "markov:smoothing=-1"
        .parse::<ModelSpec>()
        .unwrap()
        .resolve()
        .unwrap_err();
    assert!(e.to_string().contains("`smoothing`"), "{e}");

    // Model folders.
    let dir = tempfile::tempdir().unwrap();
    let meta = Meta {
        user_ids: (0..40).map(|u| format!("u{u}")).collect(),
        item_ids: (0..30).map(|i| format!("i{i}")).collect(),
        ..Meta::default()
    };
    persist::save(&model, &meta, &dir.path().join("m")).unwrap();
    let back = persist::load(&dir.path().join("m")).unwrap();
    assert_eq!(back.model.spec(), model.spec());
    for u in 0..40 {
        assert_eq!(
            back.model.scores(&Query::User(u)).unwrap(),
            model.scores(&Query::User(u)).unwrap()
        );
    }

    // The command line trains, recommends and explains it.
    let cfg = because_data::synth::SynthConfig::sized(because_data::synth::Size::Tiny);
    let files = because_data::synth::write_files(&cfg, &dir.path().join("data")).unwrap();
    let folder = dir.path().join("cli-model");
    let (data, out) = (
        files.interactions.to_str().unwrap(),
        folder.to_str().unwrap(),
    );
    because_cli::run_args([
        "because",
        "train",
        "--data",
        data,
        "--model",
        "markov:smoothing=0.1",
        "--out",
        out,
    ])
    .unwrap();
    let loaded = persist::load(&folder).unwrap();
    assert_eq!(loaded.model.kind(), "markov");
    because_cli::run_args(["because", "recommend", "--model", out, "--user", "1"]).unwrap();
    // The service behind `recommend` serves it as any other model.
    let handle = because_service::ModelHandle::open(&folder).unwrap();
    let recs = handle
        .recommend(&because_service::RecommendRequest::user("1", 5))
        .unwrap();
    assert!(recs.fallback.is_none() && recs.items.len() == 5);
    assert!(recs.model.starts_with("markov:"), "{}", recs.model);
    assert!(!handle.info().capabilities.exact_decomposition);
    let item = loaded.meta.item_ids[0].clone();
    let e = because_cli::run_args([
        "because", "explain", "--model", out, "--user", "1", "--item", &item,
    ])
    .unwrap_err();
    assert!(
        format!("{e:#}").contains("not supported by the markov model"),
        "{e:#}"
    );
    let e = because_cli::run_args([
        "because",
        "explain-eval",
        "--data",
        data,
        "--model",
        "markov",
        "--users",
        "10",
        "--out",
        dir.path().join("fidelity").to_str().unwrap(),
    ])
    .unwrap_err();
    assert!(
        format!("{e:#}").contains("not supported by the markov model"),
        "{e:#}"
    );
}
