//! Files in and out: reading logs, parts and feature files (printing what
//! was read, kept and dropped), and writing JSON and split files. Uses only
//! the leaf modules `args`, `print` and `progress`.

use crate::args::{DataArgs, ExperimentData, ReadArgs, SplitFlags};
use crate::{print, progress};
use anyhow::{anyhow, bail, Context};
use because_core::Vocab;
use because_data::clean::{apply_filters, FilterOptions};
use because_data::eda::{describe, Eda};
use because_data::features::{read_features, Features};
use because_data::{
    extension, read_interactions, write_interactions, EventWeights, Loaded, ReadOptions, SplitLog,
};
use because_eval::experiment::{Parts, Values};
use because_report::{eda_figures, save_figures};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Creates `dir` and its parents.
pub fn create_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}

/// Writes `value` as pretty JSON, atomically.
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    because_data::write_atomic(path, |w| std::io::Write::write_all(w, text.as_bytes()))?;
    Ok(())
}

/// Reads, cleans and filters, printing the report.
pub fn load(data: &DataArgs) -> anyhow::Result<(Loaded, ReadOptions)> {
    let (read, filters) = data.options()?;
    let loaded = load_with(&data.data, &read, &filters)?;
    Ok((loaded, read))
}

/// Reads, cleans and filters `path`, printing the report.
pub fn load_with(
    path: &Path,
    read: &ReadOptions,
    filters: &FilterOptions,
) -> anyhow::Result<Loaded> {
    let start = Instant::now();
    let spinner = progress::spinner(format!("reading {}", path.display()));
    let loaded = read_interactions(path, read)?;
    spinner.set_message("cleaning and filtering");
    let loaded = apply_filters(loaded, filters)?;
    spinner.finish_and_clear();
    print::loaded(&loaded);
    println!("  read in {:.2}s", start.elapsed().as_secs_f64());
    Ok(loaded)
}

/// Reads a feature file for `vocab` (of items, or of users), printing how
/// it matched.
pub fn optional_features(
    path: Option<&Path>,
    vocab: &Vocab,
    items: bool,
) -> anyhow::Result<Option<Features>> {
    let Some(p) = path else { return Ok(None) };
    let f = read_features(p, vocab, None)?;
    print::features_report(
        &f.report,
        vocab.len(),
        if items { "items" } else { "users" },
    );
    Ok(Some(f))
}

/// Reads each part given as a file with the same options (printing each
/// one's cleaning report); filters apply to one log before splitting, so
/// they are refused here.
fn read_given(files: [&Path; 3], read: &ReadArgs) -> anyhow::Result<[Loaded; 3]> {
    let (options, filters) = read.options()?;
    if filters != FilterOptions::default() {
        bail!("--train: filters (--binarize, --kcore, --min-*/--max-*) apply to one log before it is split; filter the log, split it, and give the parts");
    }
    let mut out = Vec::with_capacity(3);
    for f in files {
        out.push(load_with(f, &options, &filters)?);
    }
    out.try_into()
        .map_err(|_| anyhow!("internal error: three parts expected"))
}

/// The parts given as three files, in one vocabulary.
pub fn given_parts(files: [&Path; 3], read: &ReadArgs, values: Values) -> anyhow::Result<Parts> {
    let [t, v, s] = read_given(files, read)?;
    let name = |p: &Path| p.display().to_string();
    Ok(Parts::given(
        (&name(files[0]), &t.dataset),
        (&name(files[1]), &v.dataset),
        (&name(files[2]), &s.dataset),
        values,
    )?)
}

/// The parts of `evaluate` and `tune`: `--data` split by the split flags,
/// or the files given with `--train`, `--validation` and `--test`.
pub fn prepare(data: &ExperimentData, flags: &SplitFlags, values: Values) -> anyhow::Result<Parts> {
    let parts = match (&data.data, &data.train) {
        (Some(path), None) => {
            let method = flags.method()?;
            let (read, filters) = data.read.options()?;
            let loaded = load_with(path, &read, &filters)?;
            Parts::split(&loaded.dataset, method, flags.seed, values)?
        }
        (None, Some(train)) => {
            let (Some(validation), Some(test)) = (&flags.validation, &flags.test) else {
                bail!("--train needs --validation and --test files");
            };
            given_parts(
                [train.as_path(), Path::new(validation), Path::new(test)],
                &data.read,
                values,
            )?
        }
        _ => bail!("give either --data (and a split method) or --train, --validation and --test"),
    };
    print::parts(&parts);
    Ok(parts)
}

/// Writes each non-empty part of `split` as a log in `out`, in the format the log
/// was read in, and `split_report.json`.
pub fn write_split(split: &SplitLog, out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    create_dir(out)?;
    let mut paths = Vec::new();
    for (part, loaded) in split
        .parts
        .iter()
        .filter(|(_, l)| !l.dataset.interactions.is_empty())
    {
        let ext = extension(&loaded.source);
        let path = out.join(format!("{}.{ext}", part.name()));
        write_interactions(
            &path,
            &loaded.dataset,
            &loaded.dataset.interactions,
            &loaded.source,
        )?;
        paths.push(path);
    }
    write_json(&out.join("split_report.json"), &split.file)?;
    Ok(paths)
}

/// What exploring a log wrote.
pub struct Explored {
    /// The statistics.
    pub eda: Eda,
    /// The figures (PNG and SVG).
    pub figures: Vec<PathBuf>,
}

/// Describes `loaded` and writes `eda.json` and the figures into `out`.
pub fn explore(
    loaded: &Loaded,
    weights: &EventWeights,
    timeout_ms: i64,
    out: &Path,
) -> anyhow::Result<Explored> {
    let eda = describe(&loaded.dataset, weights, timeout_ms);
    create_dir(out)?;
    write_json(&out.join("eda.json"), &eda)?;
    let figures = save_figures(&eda_figures(&eda), &out.join("figures"))?;
    Ok(Explored { eda, figures })
}
