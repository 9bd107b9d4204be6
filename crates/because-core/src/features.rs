//! Features of users or items, encoded for models.
//!
//! A [`FeatureTable`] turns each entity's feature values into weighted
//! *tokens*: one token per level of a categorical column (weight 1), one per
//! level of a multi-valued column (weight 1/n over the entity's n levels, so
//! a film with three genres weighs as much as one with one), and two per
//! numeric column: the value standardized by the column's mean and standard
//! deviation, and the value's quantile bucket as a level (`age=25–31`), so
//! that a model can learn effects that are not linear in the value. A
//! missing value has no token. Models learn one vector per
//! token; explanations name tokens as `column=level` or `column`.
//!
//! [`SideInfo`] is what fitting receives beside the interactions: the user
//! and item tables, each aligned with the dataset's vocabulary.

use crate::{CsrMatrix, Error, Result};
use std::collections::HashMap;
use std::sync::Arc;

/// What a feature column holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnKind {
    /// One level per entity.
    Categorical,
    /// Several levels per entity.
    MultiCategorical,
    /// A number per entity.
    Numeric,
}

/// One encoded column.
#[derive(Clone, Debug, PartialEq)]
pub struct TableColumn {
    /// The column's name in the feature file.
    pub name: String,
    /// What it holds.
    pub kind: ColumnKind,
    /// Numeric columns: the mean the values were centred on.
    pub mean: f32,
    /// Numeric columns: the standard deviation they were divided by.
    pub scale: f32,
    /// Numeric columns: the cut points between quantile buckets, ascending
    /// (a value `x` is in bucket `#{edges ≤ x}`).
    pub edges: Vec<f32>,
}

/// Quantile buckets of a numeric column.
pub const NUMERIC_BUCKETS: usize = 5;

/// The bucket of `x` given ascending cut points.
fn bucket(edges: &[f32], x: f32) -> usize {
    edges.partition_point(|&e| e <= x)
}

/// A bucket's level: its range, as `lo–hi` (open ends as `<hi` and `≥lo`).
fn bucket_label(edges: &[f32], b: usize) -> String {
    let num = |v: f32| {
        let t = format!("{v:.4}");
        let t = t.trim_end_matches('0').trim_end_matches('.');
        t.to_string()
    };
    match (b.checked_sub(1).map(|k| edges[k]), edges.get(b)) {
        (None, Some(&hi)) => format!("<{}", num(hi)),
        (Some(lo), None) => format!("≥{}", num(lo)),
        (Some(lo), Some(&hi)) => format!("{}–{}", num(lo), num(hi)),
        (None, None) => "all".to_string(),
    }
}

/// One token: a level of a categorical column, or a numeric column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// Index into [`FeatureTable::columns`].
    pub column: u32,
    /// The level (empty for a numeric column).
    pub level: String,
}

/// Feature values of users or items as weighted tokens, one row per entity.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureTable {
    /// The columns.
    pub columns: Vec<TableColumn>,
    /// The tokens, by index.
    pub tokens: Vec<Token>,
    /// Entities × tokens: each entity's tokens and weights.
    pub rows: CsrMatrix,
}

/// A raw column, before encoding: per entity, levels or a number.
#[derive(Clone, Debug)]
pub enum RawColumn {
    /// Per entity, its level (`None`: missing).
    Categorical(Vec<Option<String>>),
    /// Per entity, its levels (empty: missing).
    MultiCategorical(Vec<Vec<String>>),
    /// Per entity, its value (`None`: missing).
    Numeric(Vec<Option<f32>>),
}

impl FeatureTable {
    /// Encodes `columns` (name and values, each with one entry per entity
    /// of `n` entities). Numeric columns are standardized with their mean
    /// and standard deviation over the entities that have a value.
    pub fn encode(n: usize, columns: &[(String, RawColumn)]) -> Result<FeatureTable> {
        let mut out_columns = Vec::with_capacity(columns.len());
        let mut tokens: Vec<Token> = Vec::new();
        let mut rows: Vec<Vec<(u32, f32)>> = vec![Vec::new(); n];
        for (c, (name, raw)) in columns.iter().enumerate() {
            let len = match raw {
                RawColumn::Categorical(v) => v.len(),
                RawColumn::MultiCategorical(v) => v.len(),
                RawColumn::Numeric(v) => v.len(),
            };
            if len != n {
                return Err(Error::param(
                    name.clone(),
                    format!("has {len} values for {n} entities"),
                ));
            }
            let c32 = c as u32;
            let mut index: HashMap<String, u32> = HashMap::new();
            let mut token_of = |level: &str, tokens: &mut Vec<Token>| -> u32 {
                *index.entry(level.to_string()).or_insert_with(|| {
                    tokens.push(Token {
                        column: c32,
                        level: level.to_string(),
                    });
                    (tokens.len() - 1) as u32
                })
            };
            let (kind, mean, scale, edges) = match raw {
                RawColumn::Categorical(v) => {
                    for (e, level) in v.iter().enumerate() {
                        if let Some(l) = level.as_deref() {
                            rows[e].push((token_of(l, &mut tokens), 1.0));
                        }
                    }
                    (ColumnKind::Categorical, 0.0, 1.0, Vec::new())
                }
                RawColumn::MultiCategorical(v) => {
                    for (e, levels) in v.iter().enumerate() {
                        let w = 1.0 / levels.len().max(1) as f32;
                        for l in levels {
                            rows[e].push((token_of(l, &mut tokens), w));
                        }
                    }
                    (ColumnKind::MultiCategorical, 0.0, 1.0, Vec::new())
                }
                RawColumn::Numeric(v) => {
                    let mut present: Vec<f64> = v
                        .iter()
                        .flatten()
                        .filter(|x| x.is_finite())
                        .map(|&x| f64::from(x))
                        .collect();
                    let count = present.len().max(1) as f64;
                    let mean = present.iter().sum::<f64>() / count;
                    let var = present.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / count;
                    let scale = if var > 0.0 { var.sqrt() } else { 1.0 };
                    present.sort_by(f64::total_cmp);
                    let mut edges: Vec<f32> = (1..NUMERIC_BUCKETS)
                        .filter_map(|q| present.get(q * present.len() / NUMERIC_BUCKETS))
                        .map(|&x| x as f32)
                        .collect();
                    edges.dedup();
                    // A cut at the smallest value would leave its bucket empty.
                    edges.retain(|&e| present.first().is_some_and(|&m| f64::from(e) > m));
                    let t = token_of("", &mut tokens);
                    let buckets: Vec<u32> = (0..=edges.len())
                        .map(|b| token_of(&bucket_label(&edges, b), &mut tokens))
                        .collect();
                    for (e, x) in v.iter().enumerate() {
                        if let Some(x) = x.filter(|x| x.is_finite()) {
                            rows[e].push((t, ((f64::from(x) - mean) / scale) as f32));
                            rows[e].push((buckets[bucket(&edges, x)], 1.0));
                        }
                    }
                    (ColumnKind::Numeric, mean as f32, scale as f32, edges)
                }
            };
            out_columns.push(TableColumn {
                name: name.clone(),
                kind,
                mean,
                scale,
                edges,
            });
        }
        Ok(FeatureTable {
            columns: out_columns,
            rows: rows_to_csr(&rows, tokens.len()),
            tokens,
        })
    }

    /// How many entities.
    pub fn len(&self) -> usize {
        self.rows.n_rows()
    }

    /// Whether there are no entities.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many tokens.
    pub fn n_tokens(&self) -> usize {
        self.tokens.len()
    }

    /// Entity `e`'s tokens and weights.
    pub fn row(&self, e: u32) -> (&[u32], &[f32]) {
        let e = e as usize;
        if e >= self.len() {
            return (&[], &[]);
        }
        (self.rows.row_indices(e), self.rows.row_data(e))
    }

    /// Token `t`'s name: `column=level`, or the column's name for a number.
    pub fn token_name(&self, t: u32) -> String {
        let Some(tok) = self.tokens.get(t as usize) else {
            return format!("token {t}");
        };
        let column = &self.columns[tok.column as usize].name;
        if tok.level.is_empty() {
            column.clone()
        } else {
            format!("{column}={}", tok.level)
        }
    }

    /// Encodes values given as text by column name (for an entity outside
    /// the table, such as a new user): levels of categorical columns,
    /// levels separated by `|` for multi-valued ones, numbers for numeric
    /// ones. Unknown columns are an error naming them; unknown levels have
    /// no token (the model has learned nothing about them).
    pub fn encode_one(&self, values: &[(String, String)]) -> Result<Vec<(u32, f32)>> {
        let mut out = Vec::new();
        for (name, text) in values {
            let Some(c) = self.columns.iter().position(|c| &c.name == name) else {
                return Err(Error::param(
                    name.clone(),
                    format!(
                        "not a feature column (the model knows {})",
                        self.columns
                            .iter()
                            .map(|c| c.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            };
            let col = &self.columns[c];
            let find = |level: &str| {
                self.tokens
                    .iter()
                    .position(|t| t.column == c as u32 && t.level == level)
                    .map(|t| t as u32)
            };
            match col.kind {
                ColumnKind::Categorical => out.extend(find(text.trim()).map(|t| (t, 1.0))),
                ColumnKind::MultiCategorical => {
                    let levels: Vec<&str> = text
                        .split('|')
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .collect();
                    let w = 1.0 / levels.len().max(1) as f32;
                    out.extend(levels.iter().filter_map(|l| find(l)).map(|t| (t, w)));
                }
                ColumnKind::Numeric => {
                    let x: f32 = text.trim().parse().map_err(|_| {
                        Error::param(name.clone(), format!("{text:?} is not a number"))
                    })?;
                    if let Some(t) = find("") {
                        out.push((t, (x - col.mean) / col.scale));
                    }
                    if let Some(t) = find(&bucket_label(&col.edges, bucket(&col.edges, x))) {
                        out.push((t, 1.0));
                    }
                }
            }
        }
        Ok(out)
    }
}

fn rows_to_csr(rows: &[Vec<(u32, f32)>], cols: usize) -> CsrMatrix {
    let mut indptr = Vec::with_capacity(rows.len() + 1);
    let (mut indices, mut data) = (Vec::new(), Vec::new());
    indptr.push(0);
    for r in rows {
        let mut r = r.clone();
        r.sort_by_key(|&(t, _)| t);
        r.dedup_by_key(|&mut (t, _)| t);
        for (t, w) in r {
            indices.push(t);
            data.push(w);
        }
        indptr.push(indices.len());
    }
    CsrMatrix::from_parts(rows.len(), cols, indptr, indices, data)
        .expect("rows built in order with sorted columns")
}

/// User and item features given to fitting, each aligned with the
/// dataset's vocabulary (row `u` is user `u`). Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct SideInfo {
    /// User features.
    pub users: Option<Arc<FeatureTable>>,
    /// Item features.
    pub items: Option<Arc<FeatureTable>>,
}

impl SideInfo {
    /// No features.
    pub fn none() -> SideInfo {
        SideInfo::default()
    }
    /// Whether neither table is given.
    pub fn is_empty(&self) -> bool {
        self.users.is_none() && self.items.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> FeatureTable {
        FeatureTable::encode(
            3,
            &[
                (
                    "gender".into(),
                    RawColumn::Categorical(vec![Some("F".into()), None, Some("M".into())]),
                ),
                (
                    "genres".into(),
                    RawColumn::MultiCategorical(vec![
                        vec!["Drama".into(), "War".into()],
                        vec!["Drama".into()],
                        vec![],
                    ]),
                ),
                (
                    "age".into(),
                    RawColumn::Numeric(vec![Some(20.0), Some(40.0), None]),
                ),
            ],
        )
        .unwrap()
    }

    #[test]
    fn tokens_weigh_levels_and_standardize_numbers() {
        let t = table();
        assert_eq!(t.len(), 3);
        // gender F, M; genres Drama, War; age and its two buckets.
        assert_eq!(t.n_tokens(), 7);
        let (tok, w) = t.row(0);
        let named: Vec<(String, f32)> = tok
            .iter()
            .map(|&i| t.token_name(i))
            .zip(w.iter().copied())
            .collect();
        assert_eq!(
            named,
            vec![
                ("gender=F".to_string(), 1.0),
                ("genres=Drama".to_string(), 0.5),
                ("genres=War".to_string(), 0.5),
                ("age".to_string(), -1.0),
                ("age=<40".to_string(), 1.0),
            ]
        );
        assert_eq!(t.token_name(t.row(1).0[2]), "age=≥40");
        // Missing values have no token.
        assert_eq!(t.row(2).0.len(), 1);
        assert_eq!(t.row(7).0.len(), 0);
    }

    #[test]
    fn one_entity_is_encoded_like_the_table() {
        let t = table();
        let one = t
            .encode_one(&[
                ("gender".into(), "F".into()),
                ("genres".into(), "Drama|War".into()),
                ("age".into(), "20".into()),
            ])
            .unwrap();
        let (tok, w) = t.row(0);
        let want: Vec<(u32, f32)> = tok.iter().copied().zip(w.iter().copied()).collect();
        assert_eq!(one, want);
        // An unknown level has no token; an unknown column is an error naming it.
        assert!(t
            .encode_one(&[("gender".into(), "X".into())])
            .unwrap()
            .is_empty());
        let e = t.encode_one(&[("shoe".into(), "9".into())]).unwrap_err();
        assert!(e.to_string().contains("shoe"), "{e}");
        let e = t.encode_one(&[("age".into(), "old".into())]).unwrap_err();
        assert!(e.to_string().contains("age"), "{e}");
    }
}
