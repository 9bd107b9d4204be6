//! What each subcommand does.

use crate::args::{CleanArgs, Cli, Command, DataArgs, DemoArgs, EdaArgs, GenerateArgs, SplitArgs};
use anyhow::Context;
use because_core::{Split, SplitReport, Vocab, DEFAULT_SESSION_TIMEOUT_MS};
use because_data::clean::{apply_filters, FilterOptions};
use because_data::eda::{describe, Eda};
use because_data::features::{read_features, Features};
use because_data::synth::{write_files, Size, SynthConfig};
use because_data::{
    extension, read_interactions, write_interactions, CleanReport, EventWeights, Loaded,
    ReadOptions,
};
use because_report::{eda_figures, save_figures, Report};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Demo(a) => demo(&a),
        Command::Eda(a) => eda(&a),
        Command::Clean(a) => clean(&a),
        Command::Split(a) => split(&a),
        Command::Generate(a) => generate(&a),
        Command::Train(a) => crate::modeling::train(&a),
        Command::Evaluate(a) => crate::modeling::evaluate(&a),
        Command::Tune(a) => crate::modeling::tune(&a),
        Command::Recommend(a) => crate::using::recommend(&a),
        Command::Similar(a) => crate::using::similar(&a),
        Command::Explain(a) => crate::using::explain(&a),
        Command::ExplainEval(a) => crate::modeling::explain_eval(&a),
        Command::Serve(a) => serve(&a),
        Command::Run(a) => crate::experiment::run(&a.file, a.out.as_deref()),
        Command::Models => {
            models();
            Ok(())
        }
    }
}

/// `because serve`.
fn serve(args: &crate::args::ServeArgs) -> anyhow::Result<()> {
    let a = args.settings()?;
    let key = match &a.api_key_file {
        Some(p) => {
            let k = std::fs::read_to_string(p)
                .with_context(|| format!("--api-key-file: cannot read {}", p.display()))?
                .trim()
                .to_string();
            if k.len() < 16 {
                anyhow::bail!("--api-key-file: the key must be at least 16 characters");
            }
            Some(k)
        }
        None => None,
    };
    let keyed = key.is_some();
    if a.protect_reads && !keyed {
        anyhow::bail!("--protect-reads: give the key with --api-key-file");
    }
    let mut state = because_server::State::open(a.model.clone(), key, a.database.clone())?
        .protect_reads(a.protect_reads);
    if let Some(ctx) = a.context.clone() {
        state = state.with_context(ctx).map_err(crate::using::flags)?;
    }
    let listener = std::net::TcpListener::bind(a.listen)
        .with_context(|| format!("--listen: cannot listen on {}", a.listen))?;
    println!(
        "serving {} ({}) on http://{}{}",
        a.model.display(),
        state.model().info().spec,
        listener.local_addr()?,
        if keyed {
            ""
        } else {
            " (no API key: writes and admin routes are closed; give --api-key-file)"
        }
    );
    use std::io::Write;
    std::io::stdout().flush()?;
    because_server::run(state, listener, args.watch)?;
    Ok(())
}

/// `because models`: the registry, as people read it.
fn models() {
    for e in because_models::registry::kinds() {
        println!("{:<10} {}", e.name, e.about);
        let params: Vec<String> = e
            .defaults()
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::Null => format!("{k} (optional)"),
                serde_json::Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect();
        println!("{:<10} parameters: {}", "", params.join(", "));
        println!("{:<10} can: {}", "", e.capabilities.names().join(", "));
    }
}

pub(crate) fn create_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}

pub(crate) fn write_json(path: &Path, value: &impl serde::Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    because_data::write_atomic(path, |w| std::io::Write::write_all(w, text.as_bytes()))?;
    Ok(())
}

/// Reads, cleans and filters, printing the report.
pub(crate) fn load(data: &DataArgs) -> anyhow::Result<(Loaded, ReadOptions)> {
    let (read, filters) = data.options()?;
    let loaded = load_with(&data.data, &read, &filters)?;
    Ok((loaded, read))
}

pub(crate) fn load_with(
    path: &Path,
    read: &ReadOptions,
    filters: &FilterOptions,
) -> anyhow::Result<Loaded> {
    let start = Instant::now();
    let spinner = crate::progress::spinner(format!("reading {}", path.display()));
    let loaded = read_interactions(path, read)?;
    spinner.set_message("cleaning and filtering");
    let loaded = apply_filters(loaded, filters)?;
    spinner.finish_and_clear();
    print_loaded(&loaded);
    println!("  read in {:.2}s", start.elapsed().as_secs_f64());
    Ok(loaded)
}

/// Prints what was read, kept and dropped, step by step.
pub(crate) fn print_loaded(loaded: &Loaded) {
    print!("{}", loaded.report.summary());
    for step in loaded.report.steps.iter().skip(1) {
        println!(
            "  step {:<28} {:>10} -> {:>10}",
            step.name, step.before, step.after
        );
    }
    println!(
        "  {} users, {} items, {} interactions",
        loaded.dataset.users.len(),
        loaded.dataset.items.len(),
        loaded.dataset.interactions.len(),
    );
}

/// Reads a feature file for `vocab` (of items, or of users), printing how
/// it matched.
pub(crate) fn optional_features(
    path: Option<&Path>,
    vocab: &Vocab,
    items: bool,
) -> anyhow::Result<Option<Features>> {
    let Some(p) = path else { return Ok(None) };
    let f = read_features(p, vocab, None)?;
    let r = &f.report;
    println!(
        "{}: {} rows, {} matched, {} for unknown IDs, {} malformed, {} repeated IDs; {} of {} {} have no row",
        r.file,
        r.rows_read,
        r.matched,
        r.unmatched,
        r.malformed,
        r.duplicates,
        r.missing,
        vocab.len(),
        if items { "items" } else { "users" }
    );
    Ok(Some(f))
}

struct EdaOutput {
    eda: Eda,
    figures: Vec<PathBuf>,
}

fn run_eda(
    loaded: &Loaded,
    weights: &EventWeights,
    timeout_ms: i64,
    out: &Path,
) -> anyhow::Result<EdaOutput> {
    let eda = describe(&loaded.dataset, weights, timeout_ms);
    create_dir(out)?;
    write_json(&out.join("eda.json"), &eda)?;
    let figures = save_figures(&eda_figures(&eda), &out.join("figures"))?;
    Ok(EdaOutput { eda, figures })
}

fn report_sections(r: &mut Report, clean: &CleanReport, eda: &EdaOutput, items: Option<&Features>) {
    r.section("Cleaning").pre(&clean.summary());
    let steps: Vec<Vec<String>> = clean
        .steps
        .iter()
        .map(|s| vec![s.name.clone(), s.before.to_string(), s.after.to_string()])
        .collect();
    r.table(&["step", "before", "after"], &steps);
    r.section("Exploration").pre(&eda.eda.summary());
    if let Some(f) = items {
        if let Some(g) = f.genre_like() {
            r.paragraph(&format!(
                "Item feature {:?} has {} levels.",
                g.name,
                g.levels.len()
            ));
        }
    }
    for p in eda
        .figures
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "svg"))
    {
        r.svg_file(p);
    }
}

fn eda(a: &EdaArgs) -> anyhow::Result<()> {
    let (loaded, read) = load(&a.data)?;
    let items = optional_features(a.items.as_deref(), &loaded.dataset.items, true)?;
    let _users = optional_features(a.users.as_deref(), &loaded.dataset.users, false)?;
    if !(a.session_timeout > 0.0) {
        anyhow::bail!("--session-timeout: must be positive minutes");
    }
    let timeout = (a.session_timeout * 60_000.0) as i64;
    create_dir(&a.out)?;
    write_json(&a.out.join("clean_report.json"), &loaded.report)?;
    let out = run_eda(&loaded, &read.event_weights, timeout, &a.out)?;
    println!();
    print!("{}", out.eda.summary());
    if let Some(f) = &items {
        let top: Vec<String> = top_items(&loaded, 5)
            .iter()
            .map(|&i| f.title(i).unwrap_or(loaded.dataset.items.id(i)).to_string())
            .collect();
        println!("most popular: {}", top.join("; "));
    }
    let mut r = Report::new(&format!("because eda: {}", a.data.data.display()));
    report_sections(&mut r, &loaded.report, &out, items.as_ref());
    r.write(&a.out.join("report.html"))?;
    println!(
        "\nwrote {}/eda.json, clean_report.json, report.html and {} figures in {}/figures",
        a.out.display(),
        out.figures.len(),
        a.out.display()
    );
    Ok(())
}

fn top_items(loaded: &Loaded, k: usize) -> Vec<u32> {
    let counts = loaded.dataset.interactions.item_counts();
    let mut order: Vec<u32> = (0..counts.len() as u32).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(counts[i as usize]));
    order.truncate(k);
    order
}

fn clean(a: &CleanArgs) -> anyhow::Result<()> {
    if a.bench {
        let (read, _) = a.data.options()?;
        let start = Instant::now();
        let loaded = read_interactions(&a.data.data, &read)?;
        let x = &loaded.dataset.interactions;
        println!(
            "{:.3} {} {}",
            start.elapsed().as_secs_f64(),
            x.len(),
            x.heap_bytes()
        );
        return Ok(());
    }
    let (loaded, _) = load(&a.data)?;
    create_dir(&a.out)?;
    let path = a.out.join(format!("clean.{}", extension(&loaded.source)));
    write_interactions(
        &path,
        &loaded.dataset,
        &loaded.dataset.interactions,
        &loaded.source,
    )?;
    write_json(&a.out.join("clean_report.json"), &loaded.report)?;
    println!(
        "wrote {} and {}",
        path.display(),
        a.out.join("clean_report.json").display()
    );
    Ok(())
}

fn print_split(r: &SplitReport) {
    for ((part, n), (_, users)) in r.interactions.iter().zip(&r.users) {
        println!(
            "  {:<18} {:>10} interactions  {:>8} users",
            part.name(),
            n,
            users
        );
    }
    println!(
        "  unknown to train: {} users and {} items in validation, {} users and {} items in test",
        r.unknown_users_validation,
        r.unknown_items_validation,
        r.unknown_users_test,
        r.unknown_items_test
    );
    println!(
        "  leakage check: {} validation/test pairs also in train; {} repeats moved to keep pairs together",
        r.leaked_pairs, r.moved_for_pair_consistency
    );
}

fn write_split(loaded: &Loaded, split: &Split, out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    create_dir(out)?;
    let ext = extension(&loaded.source);
    let mut paths = Vec::new();
    for part in split.nonempty_parts() {
        let path = out.join(format!("{}.{ext}", part.name()));
        write_interactions(
            &path,
            &loaded.dataset,
            &split.part(&loaded.dataset.interactions, part),
            &loaded.source,
        )?;
        paths.push(path);
    }
    Ok(paths)
}

fn split(a: &SplitArgs) -> anyhow::Result<()> {
    let method = a.split.method()?;
    let (loaded, _) = load(&a.data)?;
    let s = Split::new(
        &loaded.dataset.interactions,
        method,
        a.split.seed,
        loaded.dataset.has_time,
    )?;
    let report = s.report(&loaded.dataset.interactions);
    println!("split {method:?} (seed {}):", a.split.seed);
    print_split(&report);
    let paths = write_split(&loaded, &s, &a.out)?;
    write_json(
        &a.out.join("split_report.json"),
        &serde_json::json!({ "method": format!("{method:?}"), "seed": a.split.seed, "report": report }),
    )?;
    write_json(&a.out.join("clean_report.json"), &loaded.report)?;
    for p in paths {
        println!("wrote {}", p.display());
    }
    Ok(())
}

fn generate(a: &GenerateArgs) -> anyhow::Result<()> {
    let size: Size = a.size.parse()?;
    let cfg = SynthConfig {
        ratings: a.ratings,
        events: !a.no_events,
        noise: a.noise,
        seed: a.seed,
        ..SynthConfig::sized(size)
    };
    let start = Instant::now();
    let files = write_files(&cfg, &a.out)?;
    println!(
        "wrote {} rows ({} deliberately bad) to {} in {:.1}s, with {}, {} and {}",
        files.rows,
        files.bad_rows,
        files.interactions.display(),
        start.elapsed().as_secs_f64(),
        files.items.display(),
        files.users.display(),
        files.planted.display()
    );
    Ok(())
}

fn demo(a: &DemoArgs) -> anyhow::Result<()> {
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
    let read = ReadOptions::default();
    let filters = FilterOptions {
        kcore: Some((2, 2)),
        ..Default::default()
    };
    let loaded = load_with(&files.interactions, &read, &filters)?;
    write_json(&out.join("clean_report.json"), &loaded.report)?;
    let items = optional_features(Some(&files.items), &loaded.dataset.items, true)?;
    let user_features = optional_features(Some(&files.users), &loaded.dataset.users, false)?;

    println!("\n== 3. exploring");
    let eda_out = run_eda(
        &loaded,
        &read.event_weights,
        DEFAULT_SESSION_TIMEOUT_MS,
        &out.join("eda"),
    )?;
    print!("{}", eda_out.eda.summary());
    if let Some(f) = &items {
        let top: Vec<String> = top_items(&loaded, 3)
            .iter()
            .map(|&i| f.title(i).unwrap_or("?").to_string())
            .collect();
        println!("most popular: {}", top.join("; "));
    }

    println!(
        "\n== 4. splitting (per-user temporal 80/10/10, seed {})",
        a.seed
    );
    let method = because_core::SplitMethod::UserTemporal {
        validation: 0.1,
        test: 0.1,
    };
    let s = Split::new(&loaded.dataset.interactions, method, a.seed, true)?;
    let split_report = s.report(&loaded.dataset.interactions);
    print_split(&split_report);
    let split_paths = write_split(&loaded, &s, &out.join("split"))?;
    write_json(&out.join("split").join("split_report.json"), &split_report)?;

    println!("\n== 5. training and comparing models (full ranking, validation folded into test profiles)");
    let source = because_eval::experiment::Source::Split {
        method: format!("{method:?}"),
        seed: a.seed,
    };
    let comparison = crate::modeling::compare_demo(
        &loaded,
        &s,
        source,
        items.as_ref(),
        user_features.as_ref(),
        &out.join("models"),
    )?;
    println!("\n== 6. recommending");
    // Explanations also draw on the raw event log (funnel stages, the latest
    // session) and the user features.
    let (log, funnel) = crate::using::read_log(&files.interactions, &read)?;
    let trend =
        because_explain::reasons::Trend::from_log(&log, &loaded.dataset.items, 30 * 86_400_000);
    let sources = crate::using::Sources {
        trend,
        items: items.clone(),
        users: user_features
            .as_ref()
            .map(crate::using::user_columns)
            .unwrap_or_default(),
        log: Some(log),
        funnel,
    };
    let recs =
        crate::modeling::recommend_demo(&loaded, &comparison, &sources, &out.join("models"))?;
    println!("\n== 7. explaining: fidelity and the global view");
    let fidelity =
        crate::modeling::explain_demo(&loaded, &comparison, items.as_ref(), &out.join("models"))?;

    let mut r = Report::new("because demo");
    r.paragraph(&format!(
        "Synthetic data with planted tastes and sequels: {} users, {} items, seed {}.",
        cfg.n_users, cfg.n_items, a.seed
    ));
    report_sections(&mut r, &loaded.report, &eda_out, items.as_ref());
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
    crate::modeling::report_demo(&mut r, &comparison, &recs);
    crate::modeling::sequential_demo(&mut r, &comparison, &out.join("models/figures"))?;
    crate::modeling::featured_demo(&mut r, &comparison)?;
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

    println!("\n== where everything went");
    println!("   data:          {}", out.join("data").display());
    println!(
        "   clean report:  {}",
        out.join("clean_report.json").display()
    );
    println!(
        "   EDA:           {} ({} figures in {})",
        out.join("eda/eda.json").display(),
        eda_out.figures.len(),
        out.join("eda/figures").display()
    );
    for p in &split_paths {
        println!("   split:         {}", p.display());
    }
    println!(
        "   comparison:    {}",
        out.join("models/evaluation.json").display()
    );
    println!("   best model:    {}", comparison.model_dir.display());
    println!(
        "   recommendations: {}",
        out.join("models/recommendations.json").display()
    );
    println!("   HTML report:   {}", out.join("report.html").display());
    println!(
        "\nserve the best model over HTTP, with its dashboard at http://127.0.0.1:8080/, with:\n   because serve --model {} --items {} --users {} --events {}",
        comparison.model_dir.display(),
        files.items.display(),
        files.users.display(),
        files.interactions.display()
    );
    Ok(())
}
