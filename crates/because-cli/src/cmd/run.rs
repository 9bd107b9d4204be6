//! `because run experiment.toml`: a whole study described in a file. The
//! file is parsed here (as flags are in `args.rs`); the study itself is
//! `because_eval::experiment::study`.

use crate::args::{ExperimentData, ReadArgs, SplitFlags};
use crate::io::{create_dir, load_with, prepare, write_json};
use crate::{print, progress};
use anyhow::{anyhow, bail, Context};
use because_eval::experiment::study::{self, StudyModel};
use because_eval::experiment::{deploy, EvaluationFile, Final, Grid, Metric, Parts, Setup, Values};
use because_models::index::IndexPolicy;
use because_models::{persist, ModelSpec};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// An experiment file. Unknown keys are errors that name the key and line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentFile {
    /// A name for the study.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Where the data is.
    pub data: DataSection,
    /// How to read and clean it: the reading flags, named with `_`.
    #[serde(default = "ReadArgs::defaults")]
    pub read: ReadArgs,
    /// How to split it: the split flags, named with `_` (not with given parts).
    #[serde(default = "SplitFlags::defaults")]
    pub split: SplitFlags,
    /// How models are compared.
    #[serde(default)]
    pub evaluation: EvaluationSection,
    /// The models, each with an optional grid.
    #[serde(rename = "model")]
    pub models: Vec<ModelSection>,
    /// Where results go.
    #[serde(default)]
    pub output: OutputSection,
    /// Written into the resolved file: what the study ran on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
}

/// `[data]`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// One log, split by `[split]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Or the parts as files: training...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train: Option<PathBuf>,
    /// ...validation...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<PathBuf>,
    /// ...and test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<PathBuf>,
    /// Item features (titles, genres, categories).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<PathBuf>,
    /// A categorical column of the item features: the study runs once per
    /// level, on the interactions with items of that level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_by: Option<String>,
}

impl DataSection {
    /// Every path of the section.
    fn paths_mut(&mut self) -> [&mut Option<PathBuf>; 5] {
        [
            &mut self.path,
            &mut self.train,
            &mut self.validation,
            &mut self.test,
            &mut self.items,
        ]
    }
}

fn default_ks() -> Vec<usize> {
    vec![10]
}

fn default_metric() -> String {
    "ndcg@10".into()
}

/// `[evaluation]`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationSection {
    /// Cut-offs of the metrics.
    #[serde(default = "default_ks")]
    pub k: Vec<usize>,
    /// What each model's grid is searched by, on validation; the best
    /// model is chosen by it too.
    #[serde(default = "default_metric")]
    pub metric: String,
    /// How test numbers use validation: `fold-in` or `refit`.
    #[serde(default, rename = "final")]
    pub final_mode: Final,
    /// Training values: `auto`, `binary` or `as-is`.
    #[serde(default)]
    pub values: Values,
}

impl Default for EvaluationSection {
    fn default() -> Self {
        EvaluationSection {
            k: default_ks(),
            metric: default_metric(),
            final_mode: Final::default(),
            values: Values::default(),
        }
    }
}

fn one() -> usize {
    1
}

/// One `[[model]]`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// The model with fixed parameters (`als:iterations=10`).
    pub spec: String,
    /// Values to try per parameter (`{ factors = [32, 64] }`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub grid: BTreeMap<String, Vec<toml::Value>>,
    /// Try this many random configurations of the grid instead of all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random: Option<usize>,
    /// Stop an iterative model after this many checks without a gain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_stopping: Option<usize>,
    /// Epochs between early-stopping checks.
    #[serde(default = "one")]
    pub check_every: usize,
}

fn default_dir() -> PathBuf {
    PathBuf::from("because-out/run")
}

/// `[output]`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSection {
    /// The folder (relative to the experiment file).
    #[serde(default = "default_dir")]
    pub dir: PathBuf,
    /// When the model to deploy gets an approximate-retrieval index
    /// (`never`, `auto` or `always`; as `--index`).
    #[serde(default)]
    pub index: IndexPolicy,
}

impl Default for OutputSection {
    fn default() -> Self {
        OutputSection {
            dir: default_dir(),
            index: IndexPolicy::default(),
        }
    }
}

/// `[provenance]`, written by `because run` into the resolved file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// The program version that ran the study.
    pub because_version: String,
    /// A fingerprint of every interaction read (after cleaning).
    pub data_fingerprint: String,
    /// The experiment file it was resolved from.
    pub resolved_from: PathBuf,
}

/// What the file says once checked: models, grids and metric.
struct Plan {
    models: Vec<StudyModel>,
    metric: Metric,
    ks: Vec<usize>,
}

fn value_text(v: &toml::Value) -> anyhow::Result<String> {
    Ok(match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        other => bail!("{other} is not a parameter value"),
    })
}

impl ExperimentFile {
    /// Reads and parses `path`; paths inside are made relative to its folder.
    pub fn read(path: &Path) -> anyhow::Result<ExperimentFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut file: ExperimentFile =
            toml::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for q in file.data.paths_mut().into_iter().flatten() {
            *q = base.join(&*q);
        }
        file.output.dir = base.join(&file.output.dir);
        Ok(file)
    }

    fn plan(&self) -> anyhow::Result<Plan> {
        if self.models.is_empty() {
            bail!("model: give at least one [[model]]");
        }
        if self.evaluation.k.is_empty() || self.evaluation.k.contains(&0) {
            bail!("evaluation.k: give positive cut-offs");
        }
        let metric: Metric = self
            .evaluation
            .metric
            .parse()
            .map_err(|e| anyhow!("evaluation.metric: {e}"))?;
        let mut models = Vec::new();
        for (n, m) in self.models.iter().enumerate() {
            let at = format!("model {} ({})", n + 1, m.spec);
            let spec: ModelSpec = m.spec.parse().map_err(|e| anyhow!("{at}: spec: {e}"))?;
            let grid = if m.grid.is_empty() {
                None
            } else {
                let mut axes = Vec::new();
                for (key, values) in &m.grid {
                    let texts = values
                        .iter()
                        .map(value_text)
                        .collect::<anyhow::Result<Vec<_>>>()
                        .map_err(|e| anyhow!("{at}: grid.{key}: {e}"))?;
                    axes.push(format!("{key}={}", texts.join(",")));
                }
                Some(Grid::parse(&axes).map_err(|e| anyhow!("{at}: grid: {e}"))?)
            };
            if m.check_every == 0 || m.early_stopping == Some(0) || m.random == Some(0) {
                bail!("{at}: check_every, early_stopping and random must be at least 1");
            }
            let model = StudyModel {
                spec,
                grid,
                random: m.random,
                early_stopping: m.early_stopping,
                check_every: m.check_every,
            };
            // Every value is checked before any data is read.
            match &model.grid {
                Some(g) => {
                    let search = match m.random {
                        Some(n) => because_eval::experiment::Search::Random {
                            n,
                            seed: self.split.seed,
                        },
                        None => because_eval::experiment::Search::Grid,
                    };
                    because_eval::experiment::candidates(&model.spec, g, search)
                        .map_err(|e| anyhow!("{at}: {e}"))?;
                }
                None => {
                    model.spec.resolve().map_err(|e| anyhow!("{at}: {e}"))?;
                }
            }
            models.push(model);
        }
        Ok(Plan {
            models,
            metric,
            ks: self.evaluation.k.clone(),
        })
    }
}

/// One study's results, for the summary across partitions.
#[derive(Serialize)]
struct PartitionRow {
    partition: String,
    users: usize,
    items: usize,
    interactions: usize,
    best: String,
    selected_by: String,
    validation: Option<f64>,
    test: Option<f64>,
}

/// Runs the study on `parts`, writing into `out`; returns its summary row.
fn run_one(
    parts: &Parts,
    read: &ReadArgs,
    plan: &Plan,
    evaluation: &EvaluationSection,
    seed: u64,
    out: &Path,
    index: IndexPolicy,
) -> anyhow::Result<PartitionRow> {
    let setup = Setup {
        ks: plan.ks.clone(),
        final_mode: evaluation.final_mode,
        seed,
        ..Setup::new(plan.ks.clone())
    };
    let bar = progress::spinner("fitting");
    let outcome = study::run(
        parts,
        &plan.models,
        &plan.metric,
        &setup,
        seed,
        &mut |spec, final_fit| {
            bar.set_message(if final_fit {
                format!("evaluating {spec} on test")
            } else {
                format!("tuning: tried {spec}")
            });
        },
    )?;
    bar.finish_and_clear();
    let c = &outcome.compared.comparison;
    for t in &outcome.tunings {
        println!(
            "tuned {}: chose {} (validation {} {:.4})",
            t.trials[0].spec.kind,
            t.chosen_spec(),
            t.options.metric,
            t.trials[t.chosen].validation
        );
    }
    print::trials(&c.trials, setup.headline_k());
    let best = c.best_trial();
    println!("best on {}: {}", c.selected_by, best.spec);
    create_dir(out)?;
    let weights = read.options()?.0.event_weights;
    let deployed = deploy(
        parts,
        &outcome.choice,
        Vec::new(),
        &|n| weights.weight(n),
        &out.join("model"),
        "model",
        index,
    )?;
    if let Some(i) = &deployed.index {
        print::index(i);
    }
    let mut file = EvaluationFile::study(parts, &setup, &outcome);
    file.production = Some(deployed.production.clone());
    write_json(&out.join("evaluation.json"), &file)?;
    println!(
        "the model to deploy, {} refitted on all {} interactions, is in {}",
        best.spec,
        deployed.production.interactions,
        out.join("model").display()
    );
    let key = plan.metric.to_string();
    Ok(PartitionRow {
        partition: String::new(),
        users: parts.users.len(),
        items: parts.items.len(),
        interactions: parts.training().all.len(),
        best: best.spec.to_string(),
        selected_by: c.selected_by.clone(),
        validation: best.validation.mean(&key),
        test: best.test.mean(&key),
    })
}

/// A folder name for a partition's level.
fn folder_name(level: &str) -> String {
    let s: String = level
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "_".into()
    } else {
        s
    }
}

/// `because run`.
pub fn run(path: &Path, out: Option<&Path>, index: Option<IndexPolicy>) -> anyhow::Result<()> {
    let mut file = ExperimentFile::read(path)?;
    if let Some(o) = out {
        file.output.dir = o.to_path_buf();
    }
    if let Some(i) = index {
        file.output.index = i;
    }
    let plan = file.plan()?;
    let out = file.output.dir.clone();
    let seed = file.split.seed;
    let values = file.evaluation.values;
    let d = &file.data;
    let (fingerprint, rows) = match (&d.path, &d.train, &d.partition_by) {
        (Some(log), None, Some(column)) => {
            let items = d.items.as_ref().ok_or_else(|| {
                anyhow!(
                    "data.partition_by: needs data.items, the item features that hold {column:?}"
                )
            })?;
            let (read, filters) = file.read.options()?;
            let loaded = load_with(log, &read, &filters)?;
            let features =
                because_data::features::read_features(items, &loaded.dataset.items, None)?;
            let partitions = because_data::features::partition(&loaded.dataset, &features, column)?;
            let method = file.split.method()?;
            let mut rows = Vec::new();
            for (level, dataset) in &partitions {
                println!(
                    "\n== partition {column} = {level}: {} interactions",
                    dataset.interactions.len()
                );
                let parts = match Parts::split(dataset, method, seed, values) {
                    Ok(p) => p,
                    Err(e) => {
                        println!("skipped: {e}");
                        continue;
                    }
                };
                let dir = out.join("partitions").join(folder_name(level));
                let mut row = run_one(
                    &parts,
                    &file.read,
                    &plan,
                    &file.evaluation,
                    seed,
                    &dir,
                    file.output.index,
                )?;
                row.partition = level.clone();
                rows.push(row);
            }
            if rows.is_empty() {
                bail!("data.partition_by: no level of {column:?} had enough data for a study");
            }
            (persist::fingerprint(&loaded.dataset.interactions), rows)
        }
        (_, _, Some(_)) => {
            bail!("data.partition_by: needs one log in data.path, split by [split]")
        }
        (path, train, None) => {
            let data = ExperimentData {
                data: path.clone(),
                train: train.clone(),
                read: file.read.clone(),
            };
            let mut flags = file.split.clone();
            if train.is_some() {
                let (Some(v), Some(t)) = (&d.validation, &d.test) else {
                    bail!("data.train: needs data.validation and data.test");
                };
                flags.validation = Some(v.display().to_string());
                flags.test = Some(t.display().to_string());
            }
            let parts = prepare(&data, &flags, values)?;
            let row = run_one(
                &parts,
                &file.read,
                &plan,
                &file.evaluation,
                seed,
                &out,
                file.output.index,
            )?;
            (persist::fingerprint(&parts.training().all), vec![row])
        }
    };
    if file.data.partition_by.is_some() {
        println!(
            "\n{:<24} {:>7} {:>7} {:>9}  {:<40} {:>9} {:>9}",
            "partition", "users", "items", "inter.", "best", "val", "test"
        );
        for r in &rows {
            println!(
                "{:<24} {:>7} {:>7} {:>9}  {:<40} {:>9.4} {:>9.4}",
                r.partition,
                r.users,
                r.items,
                r.interactions,
                r.best,
                r.validation.unwrap_or(f64::NAN),
                r.test.unwrap_or(f64::NAN)
            );
        }
        write_json(&out.join("partitions.json"), &rows)?;
    }
    // The resolved study: every default filled in, paths made absolute,
    // and what it ran on, so that it can be rerun exactly.
    if let Some(p) = &file.provenance {
        if p.data_fingerprint != fingerprint {
            println!(
                "note: the data differs from the data this file was resolved from ({} then, {fingerprint} now)",
                p.data_fingerprint
            );
        }
    }
    file.provenance = Some(Provenance {
        because_version: env!("CARGO_PKG_VERSION").to_string(),
        data_fingerprint: fingerprint,
        resolved_from: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
    });
    absolute_paths(&mut file);
    let text = toml::to_string_pretty(&file)?;
    create_dir(&out)?;
    let resolved = out.join("experiment.resolved.toml");
    because_data::write_atomic(&resolved, |w| std::io::Write::write_all(w, text.as_bytes()))?;
    println!(
        "\nwrote the results and {} (rerun it with `because run {}`)",
        resolved.display(),
        resolved.display()
    );
    Ok(())
}

fn absolute_paths(file: &mut ExperimentFile) {
    for q in file.data.paths_mut().into_iter().flatten() {
        *q = std::path::absolute(&*q).unwrap_or_else(|_| q.clone());
    }
    file.output.dir = std::path::absolute(&file.output.dir).unwrap_or(file.output.dir.clone());
}
