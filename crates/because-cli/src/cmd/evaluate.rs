//! `because evaluate`: models split, trained and compared with full ranking.

use crate::args::{EvaluateArgs, Evaluation};
use crate::io::{create_dir, optional_features, prepare, write_json};
use crate::{print, progress};
use anyhow::anyhow;
use because_data::features::side_info;
use because_eval::experiment::{
    compare, compare_sessions, EvaluationFile, Groups, SessionParts, Setup,
};
use because_report::{figures, save_figures, Report};

/// `because evaluate`.
pub fn run(a: &EvaluateArgs) -> anyhow::Result<()> {
    if a.sessions {
        return sessions(a);
    }
    let Evaluation { specs, ks } = a.checked()?;
    let mut parts = prepare(&a.data, &a.split, a.values.into())?;
    // Item categories (genres) for intra-list diversity.
    let item_features = optional_features(a.items.as_deref(), &parts.items, true)?;
    let user_features = optional_features(a.users.as_deref(), &parts.users, false)?;
    parts.side = side_info(item_features.as_ref(), user_features.as_ref())?;
    let categories: Option<&[Vec<u32>]> = item_features
        .as_ref()
        .and_then(|f| f.genre_like())
        .map(|c| c.codes.as_slice());
    let groups: Option<Vec<Option<String>>> = match (&a.users, &a.slice_by) {
        (Some(path), Some(col)) => {
            let f = because_data::features::read_features(path, &parts.users, None)?;
            let c = f.column(col).ok_or_else(|| {
                anyhow!(
                    "--slice-by: {path:?} has no column {col:?}; it has {}",
                    f.columns
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
            Some(c.labels())
        }
        _ => None,
    };
    if let Some(n) = a.sampled_negatives {
        println!("SAMPLED EVALUATION: test items ranked among {n} random unseen items per user; not comparable with full ranking");
    }
    let setup = Setup {
        ks: ks.clone(),
        final_mode: a.final_mode.into(),
        item_categories: categories,
        sampled_negatives: a.sampled_negatives,
        seed: a.split.seed,
        approximate: a.approximate,
    };
    let k = setup.headline_k();
    let groups = match (&groups, &a.slice_by) {
        (Some(g), Some(name)) => Some(Groups { name, of_user: g }),
        _ => None,
    };
    let bar = progress::bar(specs.len() as u64, "models fitted and evaluated");
    let compared = compare(&parts, &specs, &setup, groups, &mut |t, _| {
        bar.suspend(|| {
            println!(
                "  {:<36} fitted in {:.2}s, validation nDCG@{k} {:.4}",
                t.spec.to_string(),
                t.fit_seconds,
                t.validation.mean(&format!("ndcg@{k}")).unwrap_or(0.0)
            )
        });
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    let c = &compared.comparison;
    print::trials(&c.trials, k);
    println!(
        "({}; full ranking over {} items, seen items excluded)",
        setup.final_mode.note(),
        parts.items.len()
    );
    for t in &c.trials {
        if let Some(r) = t.retrieval {
            println!(
                "approximate retrieval, {}: test numbers from its index ({} lists, {} scanned); its lists hold {:.4} of the exact top {}",
                t.spec, r.lists, r.probe, r.recall, r.k
            );
        }
        if let Some(r) = t.rating_errors {
            println!(
                "rating prediction, {}: test RMSE {:.4}, MAE {:.4}",
                t.spec, r.rmse, r.mae
            );
        }
    }
    print::comparison(c, a.slice_by.as_deref());
    if categories.is_some() {
        println!("\nintra-list diversity (genres) at {k}:");
        for t in &c.trials {
            println!(
                "  {:<36} {:.4}",
                t.spec.to_string(),
                t.test.mean(&format!("ild@{k}")).unwrap_or(f64::NAN)
            );
        }
    }
    create_dir(&a.out)?;
    let file = EvaluationFile::new("evaluate", &parts, &setup, c);
    write_json(&a.out.join("evaluation.json"), &file)?;
    let figs = save_figures(
        &[("comparison", figures::comparison(c, k))],
        &a.out.join("figures"),
    )?;
    let title = match (&a.data.data, &a.data.train) {
        (Some(d), _) => d.display().to_string(),
        (_, Some(t)) => format!("{} and its validation and test parts", t.display()),
        _ => String::new(),
    };
    let mut report = Report::new(&format!("because evaluate: {title}"));
    report
        .section("Model comparison")
        .paragraph(setup.final_mode.note())
        .paragraph(&format!(
            "Best on {}: {}.",
            c.selected_by,
            c.best_trial().spec
        ));
    report.table(&print::REPORT_HEADER, &print::report_rows(&c.trials, k));
    if let Some(svg) = figs
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "svg"))
    {
        report.svg_file(svg);
    }
    report.write(&a.out.join("report.html"))?;
    println!(
        "\nwrote {}, {} and {}",
        a.out.join("evaluation.json").display(),
        a.out.join("figures/comparison.png").display(),
        a.out.join("report.html").display()
    );
    Ok(())
}

/// `because evaluate --sessions`: the next-item protocol over anonymous
/// sessions.
fn sessions(a: &EvaluateArgs) -> anyhow::Result<()> {
    let Evaluation { specs, ks } = a.checked()?;
    let path = a
        .data
        .data
        .as_deref()
        .ok_or_else(|| anyhow!("--sessions: give the log with --data"))?;
    let share = |flag: &str, v: &Option<String>| -> anyhow::Result<f64> {
        match v {
            None => Ok(0.1),
            Some(s) => s
                .parse::<f64>()
                .map_err(|_| anyhow!("--{flag}: with --sessions, a share of sessions, not {s:?}")),
        }
    };
    let (validation, test) = (
        share("validation", &a.split.validation)?,
        share("test", &a.split.test)?,
    );
    if !(a.session_timeout >= 0.0) {
        anyhow::bail!("--session-timeout: must be 0 or positive minutes");
    }
    let (read, filters) = a.data.read.options()?;
    let loaded = crate::io::load_with(path, &read, &filters)?;
    let d = &loaded.dataset;
    let timeout_ms = (a.session_timeout * 60_000.0) as i64;
    let parts = SessionParts::split(d, timeout_ms, validation, test)?;
    print::session_report(&parts.report);
    let bar = progress::bar(specs.len() as u64, "models fitted and replayed");
    let c = compare_sessions(&parts, &specs, &ks, &mut |t| {
        bar.suspend(|| {
            println!(
                "  {:<36} fitted in {:.2}s, validation nDCG@{} {:.4}",
                t.spec,
                t.fit_seconds,
                ks[0],
                t.validation
                    .metrics
                    .get(&format!("ndcg@{}", ks[0]))
                    .copied()
                    .unwrap_or(f64::NAN)
            )
        });
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    print::session_comparison(&c);
    create_dir(&a.out)?;
    let out = a.out.join("sessions.json");
    write_json(&out, &c)?;
    println!("\nwrote {}", out.display());
    Ok(())
}
