//! What explanations draw on besides the model: item and user features and
//! the raw event log (funnel stages, the latest session, trends).

use crate::Result;
use because_core::{Dataset, DuplicatePolicy, Vocab};
use because_data::features::{read_features, FeatureKind, Features};
use because_data::{read_interactions, ReadOptions};
use because_explain::reasons::{Funnel, Trend, UserColumn};
use std::path::PathBuf;

/// Explanation context, read once.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// Item features (titles, genres), in the model's item order.
    pub items: Option<Features>,
    /// User features as explanation groups.
    pub users: Vec<UserColumn>,
    /// The raw event log, duplicates kept.
    pub log: Option<Dataset>,
    /// Funnel stages of the log's event types.
    pub funnel: Option<Funnel>,
    /// Items chosen more than usual lately.
    pub trend: Option<Trend>,
}

/// Where to read the context from.
#[derive(Clone, Debug)]
pub struct ContextOptions {
    /// Item features file.
    pub items: Option<PathBuf>,
    /// User features file.
    pub users: Option<PathBuf>,
    /// The raw event log.
    pub events: Option<PathBuf>,
    /// How to read the event log.
    pub read: ReadOptions,
    /// The window of trend reasons, in days.
    pub trend_days: f64,
}

impl Default for ContextOptions {
    fn default() -> Self {
        ContextOptions {
            items: None,
            users: None,
            events: None,
            read: ReadOptions::default(),
            trend_days: 30.0,
        }
    }
}

impl Context {
    /// Reads the files named in `opts` against the model's vocabularies.
    pub fn read(users: &Vocab, items: &Vocab, opts: &ContextOptions) -> Result<Context> {
        if !(opts.trend_days > 0.0 && opts.trend_days.is_finite()) {
            return Err(crate::bad(
                "trend_days",
                "must be a positive number of days",
            ));
        }
        let item_features = match &opts.items {
            Some(p) => Some(read_features(p, items, None)?),
            None => None,
        };
        let user_features = match &opts.users {
            Some(p) => user_columns(&read_features(p, users, None)?),
            None => Vec::new(),
        };
        let (log, funnel) = match &opts.events {
            Some(p) => {
                let (log, funnel) = read_log(p, &opts.read)?;
                (Some(log), funnel)
            }
            None => (None, None),
        };
        let trend = log
            .as_ref()
            .and_then(|l| Trend::from_log(l, items, (opts.trend_days * 86_400_000.0) as i64));
        Ok(Context {
            items: item_features,
            users: user_features,
            log,
            funnel,
            trend,
        })
    }
}

/// User features as explanation groups: categorical columns as they are,
/// numeric ones in quartiles.
pub fn user_columns(f: &Features) -> Vec<UserColumn> {
    f.columns
        .iter()
        .map(|c| match c.kind {
            FeatureKind::Numeric => UserColumn::numeric(&c.name, &c.numeric, 4),
            _ => UserColumn::categorical(
                &c.name,
                c.levels.clone(),
                c.codes.iter().map(|v| v.first().copied()).collect(),
            ),
        })
        .collect()
}

/// The raw event log (every event, duplicates kept) and its funnel, if it
/// has event types.
pub fn read_log(path: &std::path::Path, opts: &ReadOptions) -> Result<(Dataset, Option<Funnel>)> {
    let opts = ReadOptions {
        duplicates: Some(DuplicatePolicy::Keep),
        ..opts.clone()
    };
    let log = read_interactions(path, &opts)?.dataset;
    let funnel = (!log.event_names.is_empty()).then(|| Funnel {
        strength: log
            .event_names
            .iter()
            .map(|n| opts.event_weights.weight(n))
            .collect(),
        names: log.event_names.clone(),
    });
    Ok((log, funnel))
}
