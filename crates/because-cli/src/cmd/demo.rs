//! `because demo`: generated data through everything that exists, shown.
//! The protocol (split, models, choice, deployment) is
//! `because_eval::experiment::demo`; this module runs it on generated data
//! and shows what came of it.

use crate::args::{DemoArgs, ReadArgs};
use crate::io::{create_dir, explore, load_with, optional_features, write_json, write_split};
use crate::print;
use because_core::{Recommender, DEFAULT_SESSION_TIMEOUT_MS};
use because_data::clean::FilterOptions;
use because_data::features::{side_info, Features};
use because_data::synth::{write_files, Size, SynthConfig};
use because_eval::experiment::demo;
use because_explain::reasons::Evidence;
use because_report::demo::{featured_section, models_section, sequential_section, Sample, Titles};
use because_report::{data_sections, deletion_figure, figures, save_figures, Report};
use because_service::{read_log, user_columns, Context, ExplainRequest, ModelHandle, Subject};
use std::path::{Path, PathBuf};

/// `because demo`.
pub fn run(a: &DemoArgs) -> anyhow::Result<()> {
    let size: Size = a.size.parse()?;
    let out = &a.out;
    create_dir(out)?;
    println!("== 1. generating demo data ({size:?}, seed {})", a.seed);
    let cfg = SynthConfig {
        noise: 0.002,
        seed: a.seed,
        ..SynthConfig::sized(size)
    };
    let files = write_files(&cfg, &out.join("data"))?;
    println!(
        "   {} rows of view / addtocart / transaction events ({} deliberately malformed, to show the cleaning report)",
        files.rows, files.bad_rows
    );
    println!(
        "\n== 2. reading and cleaning {}",
        files.interactions.display()
    );
    let (read, _) = ReadArgs::defaults().options()?;
    let filters = FilterOptions {
        kcore: Some((2, 2)),
        ..Default::default()
    };
    let loaded = load_with(&files.interactions, &read, &filters)?;
    write_json(&out.join("clean_report.json"), &loaded.report)?;
    let items = optional_features(Some(&files.items), &loaded.dataset.items, true)?;
    let user_features = optional_features(Some(&files.users), &loaded.dataset.users, false)?;

    println!("\n== 3. exploring");
    let explored = explore(
        &loaded,
        &read.event_weights,
        DEFAULT_SESSION_TIMEOUT_MS,
        &out.join("eda"),
    )?;
    print!("{}", explored.eda.summary());
    if let Some(f) = &items {
        let top = loaded.dataset.interactions.most_popular(3);
        let id = |i: u32| loaded.dataset.items.id(i).to_string();
        println!("most popular: {}", print::titles(&top, f, &id));
    }

    println!("\n== 4. splitting ({}, seed {})", demo::SPLIT, a.seed);
    let split = loaded.split(demo::SPLIT, a.seed)?;
    let split_report = &split.file.report;
    print::split(split_report);
    let split_paths = write_split(&split, &out.join("split"))?;

    println!("\n== 5. training and comparing models (full ranking, validation folded into test profiles)");
    let models = out.join("models");
    create_dir(&models)?;
    let titles = items.as_ref().map(|f| f.titles()).unwrap_or_default();
    let outcome = demo::run(
        &loaded.dataset,
        a.seed,
        side_info(items.as_ref(), user_features.as_ref())?,
        titles.clone(),
        &|n| read.event_weights.weight(n),
        &models.join("best"),
        &mut |t| {
            println!(
                "  {:<36} fitted in {:.2}s, validation nDCG@10 {:.4}",
                t.spec.to_string(),
                t.fit_seconds,
                t.validation.mean("ndcg@10").unwrap_or(f64::NAN)
            )
        },
    )?;
    let c = &outcome.comparison;
    print::trials(&c.trials, 10);
    println!("best on {}: {}", c.selected_by, c.best_trial().spec);
    write_json(&models.join("evaluation.json"), &outcome.evaluation)?;
    save_figures(
        &[("comparison", figures::comparison(c, 10))],
        &models.join("figures"),
    )?;
    let shown = Titles::new(&outcome, titles);

    println!("\n== 6. recommending");
    // Explanations also draw on the raw event log (funnel stages, the latest
    // session) and the user features.
    let (log, funnel) = read_log(&files.interactions, &read)?;
    let trend =
        because_explain::reasons::Trend::from_log(&log, &loaded.dataset.items, 30 * 86_400_000);
    let context = Context {
        trend,
        items: items.clone(),
        users: user_features.as_ref().map(user_columns).unwrap_or_default(),
        log: Some(log),
        funnel,
    };
    let handle = ModelHandle::new(
        outcome.deployed.model.clone(),
        outcome.deployed.meta.clone(),
    )?
    .with_context(context);
    let samples = recommend(&handle, &models)?;

    println!("\n== 7. explaining: fidelity and the global view");
    let fidelity = explain(&handle, items.as_ref(), &models)?;

    let mut r = Report::new("because demo");
    r.paragraph(&format!(
        "Synthetic data with planted tastes and sequels: {} users, {} items, seed {}.",
        cfg.n_users, cfg.n_items, a.seed
    ));
    data_sections(
        &mut r,
        &loaded.report,
        &explored.eda,
        &explored.figures,
        items.as_ref(),
    );
    r.section("Split");
    let rows: Vec<Vec<String>> = split_report
        .interactions
        .iter()
        .zip(&split_report.users)
        .map(|((p, n), (_, u))| vec![p.name().to_string(), n.to_string(), u.to_string()])
        .collect();
    r.table(&["part", "interactions", "users"], &rows);
    r.paragraph(&format!(
        "Leakage check: {} validation or test pairs appear in train.",
        split_report.leaked_pairs
    ));
    models_section(&mut r, &outcome, &samples);
    sequential_section(&mut r, &outcome, &shown, &models.join("figures"))?;
    featured_section(&mut r, &outcome, &shown)?;
    if let Some((rows, paths)) = &fidelity {
        r.section("Explanations: fidelity and the global view");
        r.paragraph("Removing the items an explanation names must hurt the recommendation far more than removing random history items; counterfactuals are verified by re-scoring.");
        r.table(&["measure", "value"], rows);
        for p in paths
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "svg"))
        {
            r.svg_file(p);
        }
    }
    r.write(&out.join("report.html"))?;

    let model_dir = models.join("best");
    println!("\n== where everything went");
    println!("   data:          {}", out.join("data").display());
    println!(
        "   clean report:  {}",
        out.join("clean_report.json").display()
    );
    println!(
        "   EDA:           {} ({} figures in {})",
        out.join("eda/eda.json").display(),
        explored.figures.len(),
        out.join("eda/figures").display()
    );
    for p in &split_paths {
        println!("   split:         {}", p.display());
    }
    println!(
        "   comparison:    {}",
        models.join("evaluation.json").display()
    );
    println!("   best model:    {}", model_dir.display());
    println!(
        "   recommendations: {}",
        models.join("recommendations.json").display()
    );
    println!("   HTML report:   {}", out.join("report.html").display());
    println!(
        "\nserve the best model over HTTP, with its dashboard at http://127.0.0.1:8080/, with:\n   because serve --model {} --items {} --users {} --events {}",
        model_dir.display(),
        files.items.display(),
        files.users.display(),
        files.interactions.display()
    );
    Ok(())
}

/// Every user's top 10, written beside the model, and a few users shown
/// and explained, through the service `recommend` and `explain` use.
fn recommend(handle: &ModelHandle, out: &Path) -> anyhow::Result<Vec<Sample>> {
    let all = handle.recommend_all(10)?;
    write_json(&out.join("recommendations.json"), &all)?;
    let title = |id: &str| -> String {
        handle
            .items()
            .get(id)
            .and_then(|i| handle.title(i))
            .unwrap_or(id)
            .to_string()
    };
    let model = handle.model();
    let mut samples = Vec::new();
    let mut explained = Vec::new();
    for u in 0..3.min(model.n_users() as u32) {
        let user = handle.users().id(u).to_string();
        let hist = model.history(u).0;
        let recent: Vec<String> = hist
            .iter()
            .rev()
            .take(3)
            .map(|&i| title(handle.items().id(i)))
            .collect();
        let recs = &all.users[&user];
        let top: Vec<String> = recs.iter().take(5).map(|r| title(&r.item)).collect();
        println!(
            "user {user}: has {}, e.g. {}\n   -> {}",
            hist.len(),
            recent.join("; "),
            top.join("; ")
        );
        // Why the first recommendation: every reason the model and the data support.
        let (mut why, mut more, mut without) = (None, Vec::new(), None);
        if let Some(first) = recs.first() {
            let request = ExplainRequest {
                subject: Subject::User { user: user.clone() },
                item: first.item.clone(),
                n: 10,
                method: None,
            };
            if let Ok(r) = handle.explain(&request) {
                let e = r.explanation;
                println!("   why {}:", title(&first.item));
                for l in print::explanation_lines(&e) {
                    println!("      {l}");
                }
                why = Some(e.narrative.clone());
                for r in e.reasons.iter().skip(1) {
                    match r.evidence {
                        Evidence::Counterfactual { verified: true, .. } => {
                            without = Some(r.sentence.clone())
                        }
                        Evidence::Counterfactual { .. } => {}
                        _ if !e.narrative.contains(&r.sentence) => more.push(r.sentence.clone()),
                        _ => {}
                    }
                }
                explained.push(e);
            }
        }
        samples.push(Sample {
            user,
            recent,
            top,
            why,
            more,
            without,
        });
    }
    write_json(&out.join("explanations.json"), &explained)?;
    println!(
        "wrote top-10 for {} users to {}, and {} explained in {}",
        all.users.len(),
        out.join("recommendations.json").display(),
        explained.len(),
        out.join("explanations.json").display()
    );
    Ok(samples)
}

/// The demo's fidelity table and the figures written for it.
type FidelityTable = (Vec<Vec<String>>, Vec<PathBuf>);

/// The explanation step: the fidelity of the deployed model's explanations
/// and the global view, as a served model measures them, printed, saved
/// and returned for the report.
fn explain(
    handle: &ModelHandle,
    items: Option<&Features>,
    out: &Path,
) -> anyhow::Result<Option<FidelityTable>> {
    let measured = handle.fidelity();
    let Some(mut s) = measured.summary else {
        println!(
            "   ({} does not explain: {})",
            measured.model,
            measured.unavailable.unwrap_or_default()
        );
        return Ok(None);
    };
    let Some(global) = s.global.take() else {
        anyhow::bail!("internal error: the fidelity summary has no global view");
    };
    let max_size = because_explain::fidelity::FidelityOptions::default().max_size;
    let rows = vec![
        vec![
            "recommendations explained".into(),
            s.recommendations.to_string(),
        ],
        vec![
            format!("rank drop removing the {} items named", s.k),
            format!("{:.2}", s.deletion_rank_drop_named.mean),
        ],
        vec![
            format!("rank drop removing {} random history items", s.k),
            format!("{:.2}", s.deletion_rank_drop_random.mean),
        ],
        vec![
            format!(
                "verified counterfactual (at most {max_size} items, out of the top {})",
                s.n
            ),
            format!("{:.0}%", 100.0 * s.counterfactual_validity.mean),
        ],
        vec![
            "explanation coverage".into(),
            format!("{:.0}%", 100.0 * s.explanation_coverage.mean),
        ],
        vec![
            "top 1% of items: share of recommendations".into(),
            format!(
                "{:.1}%",
                100.0 * global.popularity_bias.top1_share_of_recommendations
            ),
        ],
        vec![
            "top 1% of items: share of interactions".into(),
            format!(
                "{:.1}%",
                100.0 * global.popularity_bias.top1_share_of_interactions
            ),
        ],
        vec![
            "genres behind the reasons".into(),
            global
                .feature_drivers
                .iter()
                .take(4)
                .map(|(g, n)| format!("{g} ({n})"))
                .collect::<Vec<_>>()
                .join(", "),
        ],
    ];
    for r in &rows {
        println!("   {:<62} {}", r[0], r[1]);
    }
    if let Some(ts) = &global.themes {
        if items.and_then(|f| f.genre_like()).is_some() {
            for t in ts.iter().take(4) {
                println!(
                    "   theme {}: {} [{}]",
                    t.dimension,
                    t.top_items.join("; "),
                    t.dominant
                        .iter()
                        .map(|(l, n)| format!("{l} {n}/5"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
    }
    let mut figs = vec![(
        "deletion",
        deletion_figure(
            s.k,
            s.deletion_rank_drop_named.mean,
            s.deletion_rank_drop_random.mean,
        ),
    )];
    let genres = items.and_then(|f| f.genre_like());
    if let Some(map) = figures::embedding(handle.model(), genres) {
        figs.push(("embedding_map", map));
    }
    let paths = save_figures(&figs, &out.join("figures"))?;
    s.global = Some(global);
    write_json(&out.join("fidelity.json"), &s)?;
    Ok(Some((rows, paths)))
}
