//! Command-line arguments, parsed in two stages: clap turns flags into raw
//! values here, and the methods here turn them into validated library
//! options, naming the flag when a value is wrong. Every flag is checked in
//! this module, before any data is read. A leaf module: it imports nothing
//! from the rest of the crate.

use anyhow::{anyhow, bail, Context};
use because_core::{Cutoff, SplitKind, SplitMethod, DEFAULT_SHARE};
use because_data::clean::FilterOptions;
use because_data::time::TimeUnit;
use because_data::{ReadOptions, ReadSettings};
use because_eval::experiment::{candidates, Final, Grid, Metric, Search, Values};
use because_explain::fidelity::FidelityOptions;
use because_models::ModelSpec;
use because_service::{SequenceEvent, ServiceError, Subject};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// because: an explainable recommender system.
#[derive(Parser, Debug)]
#[command(name = "because", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// No progress bars (they are shown only when standard error is a terminal).
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Show more: a line per training epoch, with its loss and time.
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Generate the built-in demo data and run everything that exists on it.
    Demo(DemoArgs),
    /// Read and clean a log, then describe it with statistics and figures.
    Eda(EdaArgs),
    /// Read, clean and filter a log, and write the cleaned log and its report.
    Clean(CleanArgs),
    /// Split a log into train, validation and test files without leakage.
    Split(SplitArgs),
    /// Write synthetic data with a planted structure.
    Generate(GenerateArgs),
    /// Train a model on all of a log and save it as a model folder.
    Train(TrainArgs),
    /// Split, train and compare models with full-ranking metrics.
    Evaluate(EvaluateArgs),
    /// Search hyperparameters on validation data, then report test numbers.
    Tune(TuneArgs),
    /// Recommend items for a user, an ad-hoc history, or everybody.
    Recommend(RecommendArgs),
    /// Items similar to an item.
    Similar(SimilarArgs),
    /// Explain why a model recommends an item to a user or for a history.
    Explain(ExplainArgs),
    /// Measure how faithful a model's explanations are.
    ExplainEval(ExplainEvalArgs),
    /// List the model kinds with their parameters, defaults and capabilities.
    Models,
    /// Serve a model folder over HTTP: recommend, explain, similar items.
    Serve(ServeArgs),
    /// Run a whole study described in an experiment file (TOML): data,
    /// cleaning, split, models with their grids, metrics and outputs.
    Run(RunArgs),
}

/// Arguments of `because serve`. Each setting comes from its flag, else its
/// environment variable, else the `--config` file (TOML with the same keys,
/// `_` for `-`), else its default.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// A model folder written by `train`, `tune` or `run`.
    #[arg(long, env = "BECAUSE_MODEL")]
    pub model: Option<PathBuf>,
    /// The address to listen on (default 127.0.0.1:8080; port 0 picks a free port).
    #[arg(long, env = "BECAUSE_LISTEN")]
    pub listen: Option<std::net::SocketAddr>,
    /// A file of the API keys that writes and admin routes need (and read
    /// routes, with --protect-reads): one per line, `KEY` or `NAME KEY`,
    /// each at least 16 characters. Read again when it changes (rotation
    /// without a restart).
    #[arg(long, env = "BECAUSE_API_KEY_FILE")]
    pub api_key_file: Option<PathBuf>,
    /// A file of keys that open the read routes only (with
    /// --protect-reads), in the same form; read again when it changes.
    #[arg(long, env = "BECAUSE_READ_KEY_FILE")]
    pub read_key_file: Option<PathBuf>,
    /// Requests per second each client may make (a client is the key it
    /// gives, else its address); beyond it, 429 with Retry-After. Probes
    /// and metrics are not limited. Off by default.
    #[arg(long, env = "BECAUSE_RATE_LIMIT")]
    pub rate_limit: Option<f64>,
    /// Requests a client may make at once after being idle (default: one
    /// second's worth of --rate-limit).
    #[arg(long, env = "BECAUSE_RATE_BURST")]
    pub rate_burst: Option<f64>,
    /// An origin whose pages may call the API from a browser
    /// (`https://shop.example.com`, or `*` for any); repeat for several,
    /// or separate them with commas. CORS is off without it.
    #[arg(long, env = "BECAUSE_CORS_ORIGIN", value_delimiter = ',')]
    pub cors_origin: Vec<String>,
    /// Seconds to go on answering after SIGTERM with /readyz failing,
    /// before the listener closes: longer than the load balancer's health
    /// check interval, so that it stops sending first (default 0). Requests
    /// in flight then finish, for at most 15 s.
    #[arg(long, env = "BECAUSE_SHUTDOWN_DELAY")]
    pub shutdown_delay: Option<f64>,
    /// Where feedback events are stored: `sqlite:PATH` (or a path) or
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE` (default:
    /// MODEL.events.sqlite beside the model folder).
    #[arg(long, env = "BECAUSE_DATABASE")]
    pub database: Option<String>,
    /// A TOML file with any of the settings above.
    #[arg(long, env = "BECAUSE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Reload the model when the folder changes (a new model written into
    /// it, or a `current` link pointed at another folder), checked every second.
    #[arg(long, env = "BECAUSE_WATCH")]
    pub watch: bool,
    /// Read routes need the API key too (recommendations, explanations,
    /// similar items, model information); probes, metrics and the API
    /// document stay open.
    #[arg(long, env = "BECAUSE_PROTECT_READS")]
    pub protect_reads: bool,
    /// Score every item for every request, even where the model folder has
    /// an approximate-retrieval index (by default its candidates are
    /// scored, each exactly by the model).
    #[arg(long, env = "BECAUSE_EXACT")]
    pub exact: bool,
    /// What explanations and the dashboard may draw on besides the model
    /// (read again at each reload).
    #[command(flatten)]
    pub sources: ExplainSources,
}

/// The `--config` file of `because serve`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// The model folder.
    pub model: Option<PathBuf>,
    /// The address to listen on.
    pub listen: Option<std::net::SocketAddr>,
    /// The API key file.
    pub api_key_file: Option<PathBuf>,
    /// The read-key file.
    pub read_key_file: Option<PathBuf>,
    /// Requests per second per client.
    pub rate_limit: Option<f64>,
    /// Burst per client.
    pub rate_burst: Option<f64>,
    /// Origins allowed to call from a browser.
    #[serde(default)]
    pub cors_origin: Vec<String>,
    /// Seconds answering after SIGTERM before the listener closes.
    pub shutdown_delay: Option<f64>,
    /// The event database (a SQLite path is relative to this file).
    pub database: Option<String>,
    /// Whether read routes need the API key.
    #[serde(default)]
    pub protect_reads: bool,
    /// Item features (relative to this file).
    pub items: Option<PathBuf>,
    /// User features (relative to this file).
    pub users: Option<PathBuf>,
    /// The raw event log (relative to this file).
    pub events: Option<PathBuf>,
}

/// Settings of `because serve`, resolved.
#[derive(Debug)]
pub struct ServeSettings {
    /// The model folder.
    pub model: PathBuf,
    /// The address to listen on.
    pub listen: std::net::SocketAddr,
    /// The API key files.
    pub keys: because_server::KeyFiles,
    /// The rate limit per client.
    pub rate_limit: Option<because_server::RateLimit>,
    /// Origins allowed to call from a browser.
    pub cors_origin: Vec<String>,
    /// Time answering after SIGTERM before the listener closes.
    pub shutdown_delay: std::time::Duration,
    /// The event database.
    pub database: Option<because_events::Database>,
    /// Whether read routes need the API key.
    pub protect_reads: bool,
    /// Explanation context, when any file is given.
    pub context: Option<because_service::ContextOptions>,
}

impl ServeArgs {
    /// Flags and environment first, then the config file, then defaults.
    pub fn settings(&self) -> anyhow::Result<ServeSettings> {
        let (file, base) = match &self.config {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("--config: cannot read {}", p.display()))?;
                let c: ServeConfig =
                    toml::from_str(&text).map_err(|e| anyhow!("--config {}: {e}", p.display()))?;
                (c, p.parent().map(PathBuf::from).unwrap_or_default())
            }
            None => (ServeConfig::default(), PathBuf::new()),
        };
        let rel = |p: Option<PathBuf>| p.map(|p| base.join(p));
        Ok(ServeSettings {
            model: self
                .model
                .clone()
                .or_else(|| rel(file.model))
                .ok_or_else(|| {
                    anyhow!(
                        "--model: give the model folder (or BECAUSE_MODEL, or model in --config)"
                    )
                })?,
            listen: self
                .listen
                .or(file.listen)
                .unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 8080))),
            keys: because_server::KeyFiles {
                write: self.api_key_file.clone().or_else(|| rel(file.api_key_file)),
                read: self
                    .read_key_file
                    .clone()
                    .or_else(|| rel(file.read_key_file)),
            },
            rate_limit: match self.rate_limit.or(file.rate_limit) {
                Some(r) => Some(
                    because_server::RateLimit::new(r, self.rate_burst.or(file.rate_burst))
                        .map_err(|e| anyhow!(e))?,
                ),
                None if self.rate_burst.or(file.rate_burst).is_some() => {
                    bail!("--rate-burst: give --rate-limit too")
                }
                None => None,
            },
            cors_origin: if self.cors_origin.is_empty() {
                file.cors_origin
            } else {
                self.cors_origin.clone()
            },
            shutdown_delay: match self.shutdown_delay.or(file.shutdown_delay) {
                None => std::time::Duration::ZERO,
                Some(s) if s.is_finite() && (0.0..=600.0).contains(&s) => {
                    std::time::Duration::from_secs_f64(s)
                }
                Some(s) => bail!("--shutdown-delay: {s} is not a number of seconds from 0 to 600"),
            },
            database: match (&self.database, file.database) {
                (Some(d), _) => Some(because_events::Database::parse(d)?),
                (None, Some(d)) => Some(match because_events::Database::parse(&d)? {
                    because_events::Database::Sqlite(p) => {
                        because_events::Database::Sqlite(base.join(p))
                    }
                    pg => pg,
                }),
                (None, None) => None,
            },
            protect_reads: self.protect_reads || file.protect_reads,
            context: {
                let src = &self.sources;
                let items = src.items.clone().or_else(|| rel(file.items));
                let users = src.users.clone().or_else(|| rel(file.users));
                let events = src.events.clone().or_else(|| rel(file.events));
                (items.is_some() || users.is_some() || events.is_some()).then(|| {
                    because_service::ContextOptions {
                        items,
                        users,
                        events,
                        trend_days: src.trend_days,
                        ..Default::default()
                    }
                })
            },
        })
    }
}

/// Arguments of `because run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The experiment file (see `examples/movielens.toml`).
    pub file: PathBuf,
    /// Output folder, instead of the file's `[output] dir`.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// When the saved model gets an approximate-retrieval index (for models
    /// with inner-product scores, as `because models` marks them): `auto`
    /// from 50,000 items, `always` or `never`. `serve` answers from it;
    /// `recommend` and `similar` with --approximate.
    /// (Overrides the file's `[output] index`.)
    #[arg(long)]
    pub index: Option<because_models::index::IndexPolicy>,
}

/// Help text of `--model` flags: every registered kind and its parameters.
fn model_help() -> String {
    format!(
        "The model, as `kind` or `kind:key=value,...`. Kinds and parameters (with defaults):\n{}",
        because_models::registry::help()
    )
}

/// Where the data is and how to read it.
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// The interaction log (CSV, TSV, u.data, ratings.dat, JSON Lines or Parquet; .gz allowed).
    #[arg(long)]
    pub data: PathBuf,
    /// How to read it.
    #[command(flatten)]
    pub read: ReadArgs,
}

impl DataArgs {
    /// Validated reading and filtering options.
    pub fn options(&self) -> anyhow::Result<(ReadOptions, FilterOptions)> {
        self.read.options()
    }
}

/// The data of `evaluate` and `tune`: one log to split, or its parts as files.
#[derive(Args, Debug, Clone)]
pub struct ExperimentData {
    /// The interaction log (CSV, TSV, u.data, ratings.dat, JSON Lines or
    /// Parquet; .gz allowed), split by --method.
    #[arg(long, required_unless_present = "train", conflicts_with = "train")]
    pub data: Option<PathBuf>,
    /// The training part as a file, instead of --data and a split method:
    /// --validation and --test then name the validation and test files,
    /// read the same way and mapped to one vocabulary (training's first).
    #[arg(
        long,
        requires_all = ["validation", "test"],
        conflicts_with_all = ["method", "per_user", "validation_start", "test_start"]
    )]
    pub train: Option<PathBuf>,
    /// How to read it.
    #[command(flatten)]
    pub read: ReadArgs,
}

/// The data of `explain-eval`: one log, or parts given as files (the model
/// is then trained on the training part).
#[derive(Args, Debug, Clone)]
pub struct FidelityData {
    /// The interaction log (CSV, TSV, u.data, ratings.dat, JSON Lines or Parquet; .gz allowed).
    #[arg(long, required_unless_present = "train", conflicts_with = "train")]
    pub data: Option<PathBuf>,
    /// The training part as a file, instead of --data (with --validation and --test).
    #[arg(long, requires_all = ["validation", "test"])]
    pub train: Option<PathBuf>,
    /// The validation part as a file (with --train).
    #[arg(long, requires = "train")]
    pub validation: Option<PathBuf>,
    /// The test part as a file (with --train).
    #[arg(long, requires = "train")]
    pub test: Option<PathBuf>,
    /// How to read it.
    #[command(flatten)]
    pub read: ReadArgs,
}

/// How to read a log, and which filters to apply. An experiment file's
/// `[read]` table holds the same settings, named as the flags with `_`.
#[derive(Args, Debug, Clone, Serialize, Deserialize)]
#[serde(default = "ReadArgs::defaults", deny_unknown_fields)]
pub struct ReadArgs {
    /// The format, when the file name does not tell (csv, tsv, jsonl, parquet).
    #[arg(long)]
    pub format: Option<String>,
    /// Field delimiter of delimited text (detected when absent; `tab` for a tab).
    #[arg(long)]
    pub delimiter: Option<String>,
    /// The first line is data, not a header.
    #[arg(long, conflicts_with = "header")]
    pub no_header: bool,
    /// The first line is a header.
    #[arg(long)]
    pub header: bool,
    /// User ID column (name or 1-based position).
    #[arg(long)]
    pub user_col: Option<String>,
    /// Item ID column.
    #[arg(long)]
    pub item_col: Option<String>,
    /// Rating column.
    #[arg(long)]
    pub rating_col: Option<String>,
    /// Time column.
    #[arg(long)]
    pub time_col: Option<String>,
    /// Event type column.
    #[arg(long)]
    pub event_col: Option<String>,
    /// Ignore any rating column (implicit feedback).
    #[arg(long)]
    pub no_rating: bool,
    /// Valid ratings, as `LO,HI`; others are dropped.
    #[arg(long)]
    pub rating_range: Option<String>,
    /// Event weights, as `view=1,addtocart=3,transaction=5`.
    #[arg(long)]
    pub event_weights: Option<String>,
    /// Repeated user-item pairs: auto (max for event logs, last otherwise), keep, sum, max, first, last.
    #[arg(long, default_value = "auto")]
    pub duplicates: String,
    /// Stop at the first bad row instead of dropping it.
    #[arg(long)]
    pub strict: bool,
    /// Unit of numeric times.
    #[arg(long, value_enum, default_value_t = TimeUnitArg::Auto)]
    pub time_unit: TimeUnitArg,
    /// Keep interactions with value at least this, as implicit feedback (value 1).
    #[arg(long)]
    pub binarize: Option<f32>,
    /// Drop users with fewer interactions.
    #[arg(long)]
    pub min_user_interactions: Option<u32>,
    /// Drop users with more interactions.
    #[arg(long)]
    pub max_user_interactions: Option<u32>,
    /// Drop items with fewer interactions.
    #[arg(long)]
    pub min_item_interactions: Option<u32>,
    /// Drop items with more interactions.
    #[arg(long)]
    pub max_item_interactions: Option<u32>,
    /// Iterated k-core: `K` for users and items, or `KU,KI`.
    #[arg(long)]
    pub kcore: Option<String>,
}

/// Units of numeric times.
#[derive(ValueEnum, Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeUnitArg {
    /// Seconds below 1e11, milliseconds above.
    Auto,
    /// Seconds.
    S,
    /// Milliseconds.
    Ms,
}

/// Parses no flags at all: the defaults clap gives, in one place.
#[derive(Parser)]
struct DefaultsOf {
    #[command(flatten)]
    read: ReadArgs,
    #[command(flatten)]
    split: SplitFlags,
}

impl ReadArgs {
    /// The defaults of the flags.
    pub fn defaults() -> ReadArgs {
        DefaultsOf::parse_from(["because"]).read
    }

    /// The settings as the libraries read them.
    pub fn settings(&self) -> ReadSettings {
        ReadSettings {
            format: self.format.clone(),
            delimiter: self.delimiter.clone(),
            no_header: self.no_header,
            header: self.header,
            user_col: self.user_col.clone(),
            item_col: self.item_col.clone(),
            rating_col: self.rating_col.clone(),
            time_col: self.time_col.clone(),
            event_col: self.event_col.clone(),
            no_rating: self.no_rating,
            rating_range: self.rating_range.clone(),
            event_weights: self.event_weights.clone(),
            duplicates: self.duplicates.clone(),
            strict: self.strict,
            time_unit: match self.time_unit {
                TimeUnitArg::Auto => "auto",
                TimeUnitArg::S => "s",
                TimeUnitArg::Ms => "ms",
            }
            .into(),
            binarize: self.binarize,
            min_user_interactions: self.min_user_interactions,
            max_user_interactions: self.max_user_interactions,
            min_item_interactions: self.min_item_interactions,
            max_item_interactions: self.max_item_interactions,
            kcore: self.kcore.clone(),
        }
    }

    /// Validated reading and filtering options; a bad value names its flag.
    pub fn options(&self) -> anyhow::Result<(ReadOptions, FilterOptions)> {
        self.settings().options().map_err(|e| match e {
            because_data::Error::InvalidParam { name, reason } => {
                anyhow!("--{}: {reason}", name.replace('_', "-"))
            }
            other => anyhow!("{other}").context("filter flags"),
        })
    }
}

/// Arguments of `because eda`.
#[derive(Args, Debug)]
pub struct EdaArgs {
    /// The data.
    #[command(flatten)]
    pub data: DataArgs,
    /// Item features (titles, genres, ...).
    #[arg(long)]
    pub items: Option<PathBuf>,
    /// User features.
    #[arg(long)]
    pub users: Option<PathBuf>,
    /// Inactivity gap that ends a session, in minutes.
    #[arg(long, default_value_t = 30.0)]
    pub session_timeout: f64,
    /// Output folder.
    #[arg(long, default_value = "because-out/eda")]
    pub out: PathBuf,
}

/// Arguments of `because clean`.
#[derive(Args, Debug)]
pub struct CleanArgs {
    /// The data.
    #[command(flatten)]
    pub data: DataArgs,
    /// Only load, then print `seconds rows structure_bytes` (for `cargo xtask bench load`).
    #[arg(long, hide = true)]
    pub bench: bool,
    /// Output folder.
    #[arg(long, default_value = "because-out/clean")]
    pub out: PathBuf,
}

/// Split methods.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MethodArg {
    /// Random shares of all interactions (or of each user's, with --per-user).
    Random,
    /// Global temporal cutoffs (shares of time-ordered interactions, or --validation-start/--test-start).
    Temporal,
    /// Each user's most recent shares.
    UserTemporal,
    /// Each user's last interaction to test, the one before to validation.
    LeaveLastOut,
    /// Disjoint held-out users with fold-in and scored parts.
    HeldOutUsers,
}

/// How to split, shared by `split`, `evaluate` and `tune` (and an
/// experiment file's `[split]` table).
#[derive(Args, Debug, Clone, Serialize, Deserialize)]
#[serde(default = "SplitFlags::defaults", deny_unknown_fields)]
pub struct SplitFlags {
    /// How to split.
    #[arg(long, value_enum, default_value_t = MethodArg::UserTemporal)]
    pub method: MethodArg,
    /// Share for validation (of interactions, or of users for
    /// held-out-users; 0.1 when absent). For `evaluate` and `tune` with
    /// --train: the validation file.
    #[arg(long, value_name = "SHARE|FILE")]
    pub validation: Option<String>,
    /// Share for test (0.1 when absent). For `evaluate` and `tune` with
    /// --train: the test file.
    #[arg(long, value_name = "SHARE|FILE")]
    pub test: Option<String>,
    /// Random split: take the shares of each user's interactions.
    #[arg(long)]
    pub per_user: bool,
    /// Temporal split: validation starts at this time (epoch or ISO 8601).
    #[arg(long, requires = "test_start")]
    pub validation_start: Option<String>,
    /// Temporal split: test starts at this time.
    #[arg(long, requires = "validation_start")]
    pub test_start: Option<String>,
    /// Held-out users: share of each one's most recent interactions that is scored.
    #[arg(long, default_value_t = 0.2)]
    pub target: f64,
    /// Seed for random splits (and sampled negatives, random search).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// Arguments of `because split`.
#[derive(Args, Debug)]
pub struct SplitArgs {
    /// The data.
    #[command(flatten)]
    pub data: DataArgs,
    /// The split.
    #[command(flatten)]
    pub split: SplitFlags,
    /// Output folder.
    #[arg(long, default_value = "because-out/split")]
    pub out: PathBuf,
}

impl From<MethodArg> for SplitKind {
    fn from(m: MethodArg) -> SplitKind {
        match m {
            MethodArg::Random => SplitKind::Random,
            MethodArg::Temporal => SplitKind::Temporal,
            MethodArg::UserTemporal => SplitKind::UserTemporal,
            MethodArg::LeaveLastOut => SplitKind::LeaveLastOut,
            MethodArg::HeldOutUsers => SplitKind::HeldOutUsers,
        }
    }
}

impl SplitFlags {
    /// The defaults of the flags.
    pub fn defaults() -> SplitFlags {
        DefaultsOf::parse_from(["because"]).split
    }

    /// The validated split method.
    pub fn method(&self) -> anyhow::Result<SplitMethod> {
        let time = |flag: &str, s: &str| {
            because_data::time::parse_time(s, TimeUnit::Auto)
                .map(|t| t.0)
                .ok_or_else(|| {
                    anyhow!("--{flag}: {s:?} is not epoch seconds, milliseconds or ISO 8601")
                })
        };
        let share = |flag: &str, given: &Option<String>| -> anyhow::Result<f64> {
            match given {
                None => Ok(DEFAULT_SHARE),
                Some(s) => s.trim().parse::<f64>().map_err(|_| {
                    anyhow!(
                        "--{flag}: {s:?} is not a share of the data; to evaluate or tune on parts given as files, pass --train with --validation and --test"
                    )
                }),
            }
        };
        let (validation, test) = (
            share("validation", &self.validation)?,
            share("test", &self.test)?,
        );
        let mut m = SplitMethod::of_kind(self.method.into(), validation, test);
        match &mut m {
            SplitMethod::Random { per_user, .. } => *per_user = self.per_user,
            SplitMethod::GlobalTemporal(cutoff) => {
                if let (Some(v), Some(t)) = (&self.validation_start, &self.test_start) {
                    *cutoff = Cutoff::Time {
                        validation_start: time("validation-start", v)?,
                        test_start: time("test-start", t)?,
                    };
                }
            }
            SplitMethod::HeldOutUsers { target, .. } => *target = self.target,
            SplitMethod::UserTemporal { .. } | SplitMethod::LeaveLastOut => {}
        }
        m.validate()
            .map_err(|e| anyhow!("{e}").context("split flags"))?;
        Ok(m)
    }
}

/// Interaction values for training.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValuesArg {
    /// Binary for rating data (every rating is an interaction), event weights for event logs.
    Auto,
    /// Every interaction counts 1.
    Binary,
    /// Ratings or event weights as they are.
    AsIs,
}

impl From<ValuesArg> for Values {
    fn from(v: ValuesArg) -> Values {
        match v {
            ValuesArg::Auto => Values::Auto,
            ValuesArg::Binary => Values::Binary,
            ValuesArg::AsIs => Values::AsIs,
        }
    }
}

/// How the final test numbers use the validation interactions.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinalArg {
    /// Keep the model trained on train; fold validation interactions into test profiles.
    FoldIn,
    /// Refit the chosen configuration on train + validation.
    Refit,
}

impl From<FinalArg> for Final {
    fn from(f: FinalArg) -> Final {
        match f {
            FinalArg::FoldIn => Final::FoldIn,
            FinalArg::Refit => Final::Refit,
        }
    }
}

/// Arguments of `because train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// The interaction log (CSV, TSV, u.data, ratings.dat, JSON Lines or
    /// Parquet; .gz allowed). With --database, optional: the stored events
    /// are added to it.
    #[arg(long, required_unless_present = "database")]
    pub data: Option<PathBuf>,
    /// How to read it (and how to weigh stored events' types).
    #[command(flatten)]
    pub read: ReadArgs,
    /// Train on the feedback events `because serve` stored in this database
    /// (`sqlite:PATH` or `postgres://...`), with --data's log when given.
    /// An event's value is its own, else its type's --event-weights weight.
    #[arg(long)]
    pub database: Option<String>,
    /// The model, as `kind` or `kind:key=value,...` (`because models` lists the kinds).
    #[arg(long, long_help = model_help(), default_value = "ease")]
    pub model: String,
    /// Interaction values.
    #[arg(long, value_enum, default_value_t = ValuesArg::Auto)]
    pub values: ValuesArg,
    /// Item features with titles (kept in the model for readable output);
    /// models that read features (twotower) learn from their columns.
    #[arg(long)]
    pub items: Option<PathBuf>,
    /// User features, for models that read them (twotower).
    #[arg(long)]
    pub users: Option<PathBuf>,
    /// Early stopping for iterative models (als, bpr, sasrec, gru4rec, ...)
    /// whose --model leaves the epochs to their default: the latest
    /// interaction of up to 5,000 users (a seeded sample) is held out, the
    /// model trains on the rest until this many checks in a row bring no
    /// better NDCG@10 on them (better by more than one standard error of
    /// the paired per-user difference), and is then refitted on every interaction
    /// for the best check's epochs (recorded in the model's metrics); `off`
    /// trains the default epochs on everything at once. An explicit epoch
    /// count (`sasrec:epochs=30`) is always trained as given.
    #[arg(long, default_value = "3")]
    pub early_stopping: Patience,
    /// Epochs between early-stopping checks.
    #[arg(long, default_value_t = 1)]
    pub check_every: usize,
    /// Output model folder.
    #[arg(long, default_value = "because-out/model")]
    pub out: PathBuf,
    /// When the saved model gets an approximate-retrieval index (for models
    /// with inner-product scores, as `because models` marks them): `auto`
    /// from 50,000 items, `always` or `never`. `serve` answers from it;
    /// `recommend` and `similar` with --approximate.
    #[arg(long, default_value = "auto")]
    pub index: because_models::index::IndexPolicy,
}

/// `--early-stopping`: checks without a gain before stopping, or `off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Patience(pub Option<usize>);

impl std::str::FromStr for Patience {
    type Err = String;
    fn from_str(s: &str) -> Result<Patience, String> {
        match s.trim() {
            "off" | "no" | "none" => Ok(Patience(None)),
            n => match n.parse::<usize>() {
                Ok(p) if p >= 1 => Ok(Patience(Some(p))),
                _ => Err(format!(
                    "{s:?} is neither a number of checks (at least 1) nor `off`"
                )),
            },
        }
    }
}

impl TrainArgs {
    /// Early stopping as asked.
    pub fn early_stopping(
        &self,
    ) -> anyhow::Result<Option<because_eval::experiment::EarlyStopping>> {
        let Some(patience) = self.early_stopping.0 else {
            return Ok(None);
        };
        if self.check_every == 0 {
            anyhow::bail!("--check-every: must be at least 1");
        }
        Ok(Some(because_eval::experiment::EarlyStopping {
            patience,
            check_every: self.check_every,
            ..Default::default()
        }))
    }
}

/// Arguments of `because evaluate`.
#[derive(Args, Debug)]
pub struct EvaluateArgs {
    /// The data.
    #[command(flatten)]
    pub data: ExperimentData,
    /// The split.
    #[command(flatten)]
    pub split: SplitFlags,
    /// Models to compare, comma-separated (`pop,itemknn,ease,svd,als,bpr`; parameters as `als:factors=32,regularization=5`; `because models` lists the kinds).
    #[arg(long, long_help = model_help(), default_value = "pop,itemknn,ease,svd,als,bpr")]
    pub models: String,
    /// Cut-offs.
    #[arg(long, default_value = "5,10,20")]
    pub k: String,
    /// Interaction values.
    #[arg(long, value_enum, default_value_t = ValuesArg::Auto)]
    pub values: ValuesArg,
    /// How the test numbers use validation interactions.
    #[arg(long = "final", value_enum, default_value_t = FinalArg::FoldIn)]
    pub final_mode: FinalArg,
    /// Evaluate on anonymous sessions, by the next-item protocol of
    /// session-based recommendation: the log is cut into sessions (at gaps
    /// longer than --session-timeout), the latest-ending --test share of
    /// sessions is replayed event by event (after each prefix, every item
    /// is ranked for it and the next event's item is the target), the
    /// --validation share before them chooses the best model, and models
    /// train on the rest, each session an anonymous user. Reports
    /// hitrate@k (= recall@k), mrr@k and ndcg@k per prediction.
    #[arg(long, conflicts_with_all = ["train", "method", "per_user", "validation_start", "test_start"])]
    pub sessions: bool,
    /// With --sessions: the inactivity gap that ends a session, in minutes
    /// (0: each user ID is one session, for logs whose user column holds
    /// session IDs).
    #[arg(long, default_value_t = 30.0, requires = "sessions")]
    pub session_timeout: f64,
    /// Item features: their genres or categories give intra-list
    /// diversity, and models that read features (twotower) learn from them.
    #[arg(long)]
    pub items: Option<PathBuf>,
    /// User features, for results per group (with --slice-by) and for
    /// models that read features.
    #[arg(long)]
    pub users: Option<PathBuf>,
    /// A user-feature column to report results by (gender, country, ...).
    #[arg(long, requires = "users")]
    pub slice_by: Option<String>,
    /// SAMPLED evaluation: rank test items among this many random unseen
    /// items instead of all items. Not comparable with full ranking.
    #[arg(long)]
    pub sampled_negatives: Option<usize>,
    /// Output folder.
    #[arg(long, default_value = "because-out/evaluate")]
    pub out: PathBuf,
    /// Test what `serve` answers: models whose scores are inner products
    /// get an approximate-retrieval index (as `--index always` saves),
    /// their test lists come from it, and the recall of its lists against
    /// exact scoring is reported. Validation still scores every item.
    #[arg(long)]
    pub approximate: bool,
}

/// Arguments of `because tune`.
#[derive(Args, Debug)]
pub struct TuneArgs {
    /// The data.
    #[command(flatten)]
    pub data: ExperimentData,
    /// The split.
    #[command(flatten)]
    pub split: SplitFlags,
    /// The model kind, optionally with fixed parameters (`als:iterations=10`).
    #[arg(long, long_help = model_help())]
    pub model: String,
    /// A parameter and its candidate values, `key=v1,v2,...`; repeat for more parameters.
    #[arg(long, required = true)]
    pub grid: Vec<String>,
    /// Try this many random configurations from the grid instead of all of them.
    #[arg(long)]
    pub random: Option<usize>,
    /// Early stopping for iterative models (als, bpr): stop a configuration
    /// after this many checks without a better validation score (better by
    /// more than one standard error of the paired per-user difference), and
    /// keep the best epoch count.
    #[arg(long)]
    pub early_stopping: Option<usize>,
    /// Epochs between early-stopping checks for BPR (ALS checks every iteration).
    #[arg(long, default_value_t = 10)]
    pub check_every: usize,
    /// Selection metric on validation.
    #[arg(long, default_value = "ndcg@10")]
    pub metric: String,
    /// Interaction values.
    #[arg(long, value_enum, default_value_t = ValuesArg::Auto)]
    pub values: ValuesArg,
    /// How the test numbers use validation interactions.
    #[arg(long = "final", value_enum, default_value_t = FinalArg::Refit)]
    pub final_mode: FinalArg,
    /// Item features, for models that read them (twotower).
    #[arg(long)]
    pub items: Option<PathBuf>,
    /// User features, for models that read them.
    #[arg(long)]
    pub users: Option<PathBuf>,
    /// Output folder: evaluation.json, a figure per parameter, and in
    /// model/ the model to deploy (the chosen configuration refitted on all
    /// the data given: train, validation and test).
    #[arg(long, default_value = "because-out/tune")]
    pub out: PathBuf,
    /// When the saved model gets an approximate-retrieval index (for models
    /// with inner-product scores, as `because models` marks them): `auto`
    /// from 50,000 items, `always` or `never`. `serve` answers from it;
    /// `recommend` and `similar` with --approximate.
    #[arg(long, default_value = "auto")]
    pub index: because_models::index::IndexPolicy,
}

/// Arguments of `because recommend`.
#[derive(Args, Debug)]
pub struct RecommendArgs {
    /// A model folder written by `because train`.
    #[arg(long)]
    pub model: PathBuf,
    /// A user ID (unknown users get popular items, and are told so).
    #[arg(long, conflicts_with_all = ["history", "sequence", "all"])]
    pub user: Option<String>,
    /// An ad-hoc history: item IDs, comma-separated.
    #[arg(long, conflicts_with_all = ["sequence", "all"])]
    pub history: Option<String>,
    /// A session or recent activity in time order, oldest first: item IDs,
    /// comma-separated. Sequential models (sasrec) read the order; the
    /// others score it as a history.
    #[arg(long, conflicts_with = "all")]
    pub sequence: Option<String>,
    /// The subject's user features, `column=value,...` (`age=25,gender=F`),
    /// for models that read features (twotower): a new user gets
    /// recommendations from them and any --history.
    #[arg(long, conflicts_with = "all")]
    pub user_features: Option<String>,
    /// Every user, into a JSON file.
    #[arg(long)]
    pub all: bool,
    /// How many items.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Where `--all` writes (default: recommendations.json beside the model).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Explain each recommendation (exact contributions, typed reasons, narrative).
    #[arg(long)]
    pub explain: bool,
    /// With --explain, also find each item's counterfactual (the history
    /// items without which it leaves the list), verified by re-ranking.
    #[arg(long, requires = "explain")]
    pub counterfactuals: bool,
    /// With --explain, the explanation method, as `explain --explain-method`.
    #[arg(long, requires = "explain")]
    pub explain_method: Option<because_explain::Method>,
    /// What the explanations may draw on besides the model.
    #[command(flatten)]
    pub sources: ExplainSources,
    /// Print the recommendations as JSON (the service's `Recommendations`).
    #[arg(long, conflicts_with = "all")]
    pub json: bool,
    /// Find the top items through the model folder's approximate-retrieval
    /// index, as `serve` does (each candidate scored exactly by the model),
    /// instead of scoring every item; without an index, every item is scored.
    #[arg(long, conflicts_with = "all")]
    pub approximate: bool,
}

/// Evidence explanations may draw on besides the model.
#[derive(Args, Debug)]
pub struct ExplainSources {
    /// Item features (titles, genres): genres the item shares with the
    /// history items behind it are mentioned.
    #[arg(long)]
    pub items: Option<PathBuf>,
    /// User features (age, country...): a feature whose holders choose the
    /// item unusually often is mentioned (groups of at least 5 people).
    #[arg(long)]
    pub users: Option<PathBuf>,
    /// The raw event log the model was trained from (columns detected as
    /// for `train`): the furthest funnel stage reached on the supporting
    /// items ("you added it to your cart") and the latest session.
    #[arg(long)]
    pub events: Option<PathBuf>,
    /// With `--events`: items chosen at least 1.5 times their usual rate in
    /// this many days before the log's latest event are called trending.
    #[arg(long, default_value_t = 30.0)]
    pub trend_days: f64,
}

/// Arguments of `because explain-eval`.
#[derive(Args, Debug)]
pub struct ExplainEvalArgs {
    /// The data.
    #[command(flatten)]
    pub data: FidelityData,
    /// The model to train and explain (`because models` lists the kinds).
    #[arg(long, long_help = model_help(), default_value = "ease")]
    pub model: String,
    /// Users sampled (evenly) for the measurements.
    #[arg(long, default_value_t = FidelityOptions::default().users)]
    pub users: usize,
    /// Recommendations per user: the list length, and the k of "out of the top k".
    #[arg(long, default_value_t = FidelityOptions::default().n)]
    pub k: usize,
    /// History items removed in the deletion test (the named ones against as many random ones).
    #[arg(long, default_value_t = FidelityOptions::default().k)]
    pub remove: usize,
    /// Interaction values.
    #[arg(long, value_enum, default_value_t = ValuesArg::Auto)]
    pub values: ValuesArg,
    /// Seed (the stability check trains a second time with seed + 1).
    #[arg(long, default_value_t = FidelityOptions::default().seed)]
    pub seed: u64,
    /// Item features (titles and genres for the global view).
    #[arg(long)]
    pub items: Option<PathBuf>,
    /// Output folder.
    #[arg(long, default_value = "because-out/explain-eval")]
    pub out: PathBuf,
}

/// Arguments of `because explain`.
#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// A model folder.
    #[arg(long)]
    pub model: PathBuf,
    /// A user ID.
    #[arg(long, conflicts_with_all = ["history", "sequence"])]
    pub user: Option<String>,
    /// An ad-hoc history: item IDs, comma-separated.
    #[arg(long, conflicts_with = "sequence")]
    pub history: Option<String>,
    /// A sequence in time order, oldest first: item IDs, comma-separated.
    #[arg(long)]
    pub sequence: Option<String>,
    /// The item to explain.
    #[arg(long)]
    pub item: String,
    /// The list length the counterfactual is about ("would not be in the top k").
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// The explanation method: exact, popularity, fused, integrated_gradients,
    /// occlusion, attention, attention_rollout, gradient_input or similarity
    /// (`-` may stand for `_`). By default the model's most faithful one;
    /// `because models` and the model's info list the ones each model offers.
    #[arg(long)]
    pub explain_method: Option<because_explain::Method>,
    /// What the explanation may draw on besides the model.
    #[command(flatten)]
    pub sources: ExplainSources,
    /// Write figures here: the item's contributions, and a map of how the
    /// history drives the top recommendations.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Print the explanation as JSON (the service's `ExplainResponse`).
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `because similar`.
#[derive(Args, Debug)]
pub struct SimilarArgs {
    /// A model folder.
    #[arg(long)]
    pub model: PathBuf,
    /// An item ID.
    #[arg(long)]
    pub item: String,
    /// How many items.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Print the similar items as JSON (the service's `SimilarItems`).
    #[arg(long)]
    pub json: bool,
    /// Find the top items through the model folder's approximate-retrieval
    /// index, as `serve` does (each candidate scored exactly by the model),
    /// instead of scoring every item; without an index, every item is scored.
    #[arg(long)]
    pub approximate: bool,
}

/// Arguments of `because demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Size of the generated data: tiny, small, medium or ml20m.
    #[arg(long, default_value = "small")]
    pub size: String,
    /// Seed of the generator and the split.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output folder.
    #[arg(long, default_value = "because-out/demo")]
    pub out: PathBuf,
}

/// Arguments of `because generate`.
#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Size: tiny, small, medium or ml20m (users who each rate many
    /// films), or retail or retail-small (RetailRocket's shape: an online
    /// shop's visitors in short sessions, 97% views, items that tend to
    /// follow each other).
    #[arg(long, default_value = "small")]
    pub size: String,
    /// Write a 1-5 rating column (and times in seconds), MovieLens style.
    #[arg(long)]
    pub ratings: bool,
    /// Leave out the event column.
    #[arg(long)]
    pub no_events: bool,
    /// Share of deliberately malformed rows.
    #[arg(long, default_value_t = 0.0)]
    pub noise: f64,
    /// Seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output folder.
    #[arg(long, default_value = "because-out/generated")]
    pub out: PathBuf,
}

/// Splits `--models`: commas separate models, except inside one model's
/// `key=value` list (`als:factors=8,regularization=1,ease` is two models).
pub fn parse_models(s: &str) -> anyhow::Result<Vec<ModelSpec>> {
    let mut specs: Vec<String> = Vec::new();
    for tok in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        match specs.last_mut() {
            Some(last) if tok.contains('=') && !tok.contains(':') => {
                last.push(',');
                last.push_str(tok);
            }
            _ => specs.push(tok.to_string()),
        }
    }
    if specs.is_empty() {
        bail!("--models: no model given");
    }
    specs
        .iter()
        .map(|s| {
            let spec = s
                .parse::<ModelSpec>()
                .map_err(|e| anyhow!("--models: {e}"))?;
            spec.resolve()
                .map_err(|e| anyhow!("--models: {spec}: {e}"))?;
            Ok(spec)
        })
        .collect()
}

fn parse_ks(s: &str) -> anyhow::Result<Vec<usize>> {
    let ks: Vec<usize> = s
        .split(',')
        .map(|k| {
            k.trim()
                .parse::<usize>()
                .ok()
                .filter(|&k| k > 0)
                .ok_or_else(|| anyhow!("--k: {k:?} is not a positive integer"))
        })
        .collect::<anyhow::Result<_>>()?;
    if ks.is_empty() {
        bail!("--k: no cut-off given");
    }
    Ok(ks)
}

/// A service error in the words of the command line: fields become flags.
pub fn flags(e: ServiceError) -> anyhow::Error {
    match e {
        ServiceError::UnknownItem { id } => anyhow!("--item: {id} is unknown to the model"),
        // The request's `method` is the explanation method's flag.
        ServiceError::BadRequest {
            field: "method",
            reason,
        } => anyhow!("--explain-method: {reason}"),
        ServiceError::BadRequest { field, reason } => {
            anyhow!("--{}: {reason}", field.replace('_', "-"))
        }
        other => other.into(),
    }
}

/// Comma-separated item IDs.
fn ids(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// `--user`, `--history` or `--sequence` as a subject.
fn subject(
    user: Option<&str>,
    history: Option<&str>,
    sequence: Option<&str>,
) -> anyhow::Result<Subject> {
    match (user, history, sequence) {
        (Some(u), _, _) => Ok(Subject::User {
            user: u.to_string(),
        }),
        (None, Some(h), _) => Ok(Subject::History { history: ids(h) }),
        (None, None, Some(s)) => Ok(Subject::Sequence {
            sequence: ids(s)
                .into_iter()
                .map(|item| SequenceEvent {
                    item,
                    time: None,
                    event: None,
                    value: None,
                })
                .collect(),
        }),
        (None, None, None) => bail!("give --user, --history or --sequence"),
    }
}

/// `--model`: a kind with valid parameters.
fn model_flag(text: &str) -> anyhow::Result<ModelSpec> {
    let spec: ModelSpec = text.parse().map_err(|e| anyhow!("--model: {e}"))?;
    spec.resolve().map_err(|e| anyhow!("--model: {e}"))?;
    Ok(spec)
}

impl TrainArgs {
    /// The validated model.
    pub fn spec(&self) -> anyhow::Result<ModelSpec> {
        model_flag(&self.model)
    }
}

impl EdaArgs {
    /// The validated session timeout, in milliseconds.
    pub fn session_timeout_ms(&self) -> anyhow::Result<i64> {
        if !(self.session_timeout > 0.0) {
            bail!("--session-timeout: must be positive minutes");
        }
        Ok((self.session_timeout * 60_000.0) as i64)
    }
}

/// The validated flags of `because evaluate`.
pub struct Evaluation {
    /// The models.
    pub specs: Vec<ModelSpec>,
    /// The cut-offs.
    pub ks: Vec<usize>,
}

impl EvaluateArgs {
    /// The validated models, cut-offs and sampling.
    pub fn checked(&self) -> anyhow::Result<Evaluation> {
        if self.sampled_negatives == Some(0) {
            bail!("--sampled-negatives: must be at least 1");
        }
        Ok(Evaluation {
            specs: parse_models(&self.models)?,
            ks: parse_ks(&self.k)?,
        })
    }
}

/// The validated flags of `because tune`.
pub struct Tuning {
    /// The model with its fixed parameters.
    pub base: ModelSpec,
    /// The grid.
    pub grid: Grid,
    /// The selection metric.
    pub metric: Metric,
    /// All of the grid, or a random sample.
    pub search: Search,
    /// How many configurations will be tried.
    pub configurations: usize,
}

impl TuneArgs {
    /// The validated model, grid (every value checked), metric and search.
    pub fn checked(&self) -> anyhow::Result<Tuning> {
        let base = model_flag(&self.model)?;
        let grid = Grid::parse(&self.grid).map_err(|e| anyhow!("--grid: {e}"))?;
        let metric: Metric = self.metric.parse().map_err(|e| anyhow!("--metric: {e}"))?;
        if self.early_stopping == Some(0) || self.check_every == 0 {
            bail!("--early-stopping and --check-every must be at least 1");
        }
        if self.random == Some(0) {
            bail!("--random: must be at least 1");
        }
        let search = match self.random {
            Some(n) => Search::Random {
                n,
                seed: self.split.seed,
            },
            None => Search::Grid,
        };
        let configurations = candidates(&base, &grid, search)
            .map_err(|e| anyhow!("--grid: {e}"))?
            .len();
        Ok(Tuning {
            base,
            grid,
            metric,
            search,
            configurations,
        })
    }
}

impl ExplainEvalArgs {
    /// The validated model and measuring options.
    pub fn checked(&self) -> anyhow::Result<(ModelSpec, FidelityOptions)> {
        if self.k == 0 || self.remove == 0 || self.users == 0 {
            bail!("--k, --remove and --users must be at least 1");
        }
        Ok((
            model_flag(&self.model)?,
            FidelityOptions {
                users: self.users,
                n: self.k,
                k: self.remove,
                seed: self.seed,
                ..FidelityOptions::default()
            },
        ))
    }
}

impl RecommendArgs {
    /// The subject: a user, a history, a sequence, or features alone.
    pub fn subject(&self) -> anyhow::Result<Subject> {
        if self.user.is_none()
            && self.history.is_none()
            && self.sequence.is_none()
            && self.user_features.is_none()
        {
            bail!("give --user, --history, --sequence, --user-features or --all");
        }
        subject(
            self.user.as_deref(),
            // Features alone describe a new user with no history.
            self.history
                .as_deref()
                .or(self.user_features.as_ref().map(|_| "")),
            self.sequence.as_deref(),
        )
    }

    /// `--user-features` as columns and values.
    pub fn user_features(&self) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
        let mut out = std::collections::BTreeMap::new();
        for part in self
            .user_features
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| anyhow!("--user-features: {part:?} is not column=value"))?;
            out.insert(k.trim().to_string(), v.trim().to_string());
        }
        Ok(out)
    }
}

impl ExplainArgs {
    /// The subject: a user, a history or a sequence.
    pub fn subject(&self) -> anyhow::Result<Subject> {
        subject(
            self.user.as_deref(),
            self.history.as_deref(),
            self.sequence.as_deref(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn early_stopping_takes_a_patience_or_off() {
        assert_eq!("3".parse::<Patience>(), Ok(Patience(Some(3))));
        assert_eq!("off".parse::<Patience>(), Ok(Patience(None)));
        for bad in ["0", "-1", "soon"] {
            let e = bad.parse::<Patience>().unwrap_err();
            assert!(e.contains("`off`"), "{bad}: {e}");
        }
    }

    #[test]
    fn model_lists_split_between_models() {
        let specs = parse_models("pop, als:factors=8,regularization=1,ease:lambda=5,bpr").unwrap();
        let names: Vec<String> = specs.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            names,
            [
                "pop",
                "als:factors=8,regularization=1",
                "ease:lambda=5",
                "bpr"
            ]
        );
        assert!(parse_models("pop,nope")
            .unwrap_err()
            .to_string()
            .contains("unknown model"));
        // Values are checked before any data is read.
        let e = parse_models("pop,ease:lambda=abc").unwrap_err().to_string();
        assert!(e.contains("--models") && e.contains("`lambda`"), "{e}");
        assert!(parse_ks("5,0").is_err());
    }

    #[test]
    fn split_methods_are_named_as_the_library_names_them() {
        for m in MethodArg::value_variants() {
            let flag = m.to_possible_value().unwrap();
            assert_eq!(flag.get_name(), SplitKind::from(*m).name());
        }
        assert_eq!(MethodArg::value_variants().len(), SplitKind::ALL.len());
    }
}
