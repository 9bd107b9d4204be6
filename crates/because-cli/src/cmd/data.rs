//! `because eda`, `clean`, `split` and `generate`: the log, explored,
//! cleaned, split and generated.

use crate::args::{CleanArgs, EdaArgs, GenerateArgs, SplitArgs};
use crate::io::{create_dir, explore, load, optional_features, write_json, write_split};
use crate::print;
use because_data::synth::{write_files, Size, SynthConfig};
use because_data::{extension, read_interactions, write_interactions};
use because_report::{data_sections, Report};
use std::time::Instant;

/// `because eda`.
pub fn eda(a: &EdaArgs) -> anyhow::Result<()> {
    let timeout = a.session_timeout_ms()?;
    let (loaded, read) = load(&a.data)?;
    let items = optional_features(a.items.as_deref(), &loaded.dataset.items, true)?;
    let _users = optional_features(a.users.as_deref(), &loaded.dataset.users, false)?;
    create_dir(&a.out)?;
    write_json(&a.out.join("clean_report.json"), &loaded.report)?;
    let out = explore(&loaded, &read.event_weights, timeout, &a.out)?;
    println!();
    print!("{}", out.eda.summary());
    if let Some(f) = &items {
        let top = loaded.dataset.interactions.most_popular(5);
        let id = |i: u32| loaded.dataset.items.id(i).to_string();
        println!("most popular: {}", print::titles(&top, f, &id));
    }
    let mut r = Report::new(&format!("because eda: {}", a.data.data.display()));
    data_sections(
        &mut r,
        &loaded.report,
        &out.eda,
        &out.figures,
        items.as_ref(),
    );
    r.write(&a.out.join("report.html"))?;
    println!(
        "\nwrote {}/eda.json, clean_report.json, report.html and {} figures in {}/figures",
        a.out.display(),
        out.figures.len(),
        a.out.display()
    );
    Ok(())
}

/// `because clean`.
pub fn clean(a: &CleanArgs) -> anyhow::Result<()> {
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

/// `because split`.
pub fn split(a: &SplitArgs) -> anyhow::Result<()> {
    let method = a.split.method()?;
    let (loaded, _) = load(&a.data)?;
    let split = loaded.split(method, a.split.seed)?;
    println!("split {method} (seed {}):", a.split.seed);
    print::split(&split.file.report);
    let paths = write_split(&split, &a.out)?;
    write_json(&a.out.join("clean_report.json"), &loaded.report)?;
    for p in paths {
        println!("wrote {}", p.display());
    }
    Ok(())
}

/// `because generate`.
pub fn generate(a: &GenerateArgs) -> anyhow::Result<()> {
    let size: Size = a.size.parse()?;
    if a.ratings && SynthConfig::sized(size).shape == because_data::synth::Shape::Retail {
        anyhow::bail!("--ratings: the retail shape has events, not ratings");
    }
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
