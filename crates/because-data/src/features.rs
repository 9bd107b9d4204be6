//! User and item features: categorical, numeric and multi-valued columns
//! (such as `genres` split on `|`), joined to a dataset's vocabulary by ID.
//! Item titles are kept for human-readable output.

use crate::delim::{next_record, ChunkReader, Dialect, Record};
use crate::read::{normalize_name, open_maybe_gzip, sniff_delimiter};
use crate::{Error, Result};
use because_core::Vocab;
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;

/// What a feature column holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureKind {
    /// One level per entity.
    Categorical,
    /// A number per entity.
    Numeric,
    /// Several levels per entity (separated by `|`).
    MultiCategorical,
}

/// One feature column, aligned with the dataset's vocabulary.
#[derive(Clone, Debug, Serialize)]
pub struct FeatureColumn {
    /// Column name.
    pub name: String,
    /// Kind.
    pub kind: FeatureKind,
    /// Level names of categorical columns.
    pub levels: Vec<String>,
    /// Values of numeric columns, per entity (`None`: missing).
    #[serde(skip)]
    pub numeric: Vec<Option<f32>>,
    /// Level codes of categorical columns, per entity (empty: missing).
    #[serde(skip)]
    pub codes: Vec<Vec<u32>>,
}

impl FeatureColumn {
    /// Each entity's value as text (a number, or its first level), to
    /// group entities by; `None` where missing.
    pub fn labels(&self) -> Vec<Option<String>> {
        match self.kind {
            FeatureKind::Numeric => self
                .numeric
                .iter()
                .map(|v| v.map(|v| v.to_string()))
                .collect(),
            _ => self
                .codes
                .iter()
                .map(|c| c.first().map(|&l| self.levels[l as usize].clone()))
                .collect(),
        }
    }
}

/// How the feature file matched the dataset.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FeatureReport {
    /// The file.
    pub file: String,
    /// Data rows read.
    pub rows_read: usize,
    /// Rows whose ID is in the dataset.
    pub matched: usize,
    /// Rows whose ID is not in the dataset (ignored).
    pub unmatched: usize,
    /// Rows with an empty ID or the wrong number of fields (ignored).
    pub malformed: usize,
    /// Rows repeating an ID already seen (ignored; the first row wins).
    pub duplicates: usize,
    /// Dataset entities with no feature row.
    pub missing: usize,
}

/// Features of the users or items of a dataset.
#[derive(Clone, Debug, Serialize)]
pub struct Features {
    /// The ID column's name.
    pub id_column: String,
    /// Titles (item files with a title or name column).
    #[serde(skip)]
    pub titles: Option<Vec<Option<String>>>,
    /// Feature columns.
    pub columns: Vec<FeatureColumn>,
    /// How the file matched.
    pub report: FeatureReport,
}

impl Features {
    /// The title of entity `i`, if known.
    pub fn title(&self, i: u32) -> Option<&str> {
        self.titles.as_ref()?.get(i as usize)?.as_deref()
    }
    /// The column named `name`.
    pub fn column(&self, name: &str) -> Option<&FeatureColumn> {
        self.columns.iter().find(|c| c.name == name)
    }
    /// The columns encoded as weighted tokens for models (see
    /// [`because_core::features`]), one row per entity of the vocabulary.
    pub fn table(&self) -> because_core::Result<because_core::FeatureTable> {
        use because_core::features::RawColumn;
        let n = self.report.matched + self.report.missing;
        let raw: Vec<(String, RawColumn)> = self
            .columns
            .iter()
            .map(|c| {
                let level = |codes: &[u32]| -> Vec<String> {
                    codes
                        .iter()
                        .map(|&l| c.levels[l as usize].clone())
                        .collect()
                };
                let r = match c.kind {
                    FeatureKind::Numeric => RawColumn::Numeric(c.numeric.clone()),
                    FeatureKind::Categorical => RawColumn::Categorical(
                        c.codes
                            .iter()
                            .map(|k| level(k).into_iter().next())
                            .collect(),
                    ),
                    FeatureKind::MultiCategorical => {
                        RawColumn::MultiCategorical(c.codes.iter().map(|k| level(k)).collect())
                    }
                };
                (c.name.clone(), r)
            })
            .collect();
        because_core::FeatureTable::encode(n, &raw)
    }

    /// Every entity's title in index order (`""` where it has none), or
    /// nothing when the file has no title column.
    pub fn titles(&self) -> Vec<String> {
        match &self.titles {
            Some(t) => t.iter().map(|t| t.clone().unwrap_or_default()).collect(),
            None => Vec::new(),
        }
    }

    /// The first multi-valued or categorical column whose name suggests genres
    /// or categories, else the first categorical column.
    pub fn genre_like(&self) -> Option<&FeatureColumn> {
        let cat = |c: &&FeatureColumn| c.kind != FeatureKind::Numeric;
        self.columns
            .iter()
            .filter(cat)
            .find(|c| {
                matches!(
                    normalize_name(&c.name).as_str(),
                    "genres" | "genre" | "categories" | "category" | "tags"
                )
            })
            .or_else(|| self.columns.iter().find(cat))
    }
}

/// Names of the ID column of a feature file: `id`, or any name of a user
/// or item column of a log.
fn id_names() -> impl Iterator<Item = &'static str> {
    std::iter::once("id")
        .chain(crate::read::CANDIDATES[crate::read::USER].iter().copied())
        .chain(crate::read::CANDIDATES[crate::read::ITEM].iter().copied())
}
const TITLE_NAMES: [&str; 5] = ["title", "name", "movietitle", "productname", "itemname"];
const MULTI_NAMES: [&str; 5] = ["genres", "genre", "tags", "categories", "category"];

/// The features fitting reads (for the kinds that read them), encoded from
/// the item and user feature files given; a file without feature columns
/// gives none.
pub fn side_info(
    items: Option<&Features>,
    users: Option<&Features>,
) -> because_core::Result<because_core::SideInfo> {
    let table = |f: Option<&Features>| -> because_core::Result<_> {
        Ok(match f {
            Some(f) if !f.columns.is_empty() => Some(std::sync::Arc::new(f.table()?)),
            _ => None,
        })
    };
    Ok(because_core::SideInfo {
        users: table(users)?,
        items: table(items)?,
    })
}

/// Reads a delimited feature file (CSV, TSV, MovieLens `movies.dat`) and
/// aligns it with `vocab`. Text that is not UTF-8 (older MovieLens files are
/// Latin-1) is decoded lossily.
pub fn read_features(path: &Path, vocab: &Vocab, id_column: Option<&str>) -> Result<Features> {
    let (stream, _) = open_maybe_gzip(path)?;
    let mut reader = ChunkReader::new(stream, Vec::new(), 1, true, 4 << 20);
    let mut data = Vec::new();
    while let Some(c) = reader.next_chunk().map_err(|e| Error::io(path, e))? {
        data.extend_from_slice(&c.data);
    }
    if data.starts_with(b"\xEF\xBB\xBF") {
        data.drain(..3);
    }
    if data.iter().all(|c| c.is_ascii_whitespace()) {
        return Err(Error::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    let first_end = data.iter().position(|&c| c == b'\n').unwrap_or(data.len());
    let dialect = Dialect::new(&sniff_delimiter(&data[..first_end]));
    let mut pos = 0;
    let mut rec = Record::default();
    let text = |rec: &Record, k: usize| {
        String::from_utf8_lossy(rec.field(&data, k))
            .trim()
            .to_string()
    };
    next_record(&data, &mut pos, &dialect, &mut rec);
    let first: Vec<String> = (0..rec.len()).map(|k| text(&rec, k)).collect();
    let headerless = first
        .first()
        .is_some_and(|f| vocab.get(f).is_some() || f.parse::<f64>().is_ok());
    let header: Vec<String> = if headerless {
        pos = 0;
        match first.len() {
            3 => vec!["id".into(), "title".into(), "genres".into()],
            n => (0..n)
                .map(|k| {
                    if k == 0 {
                        "id".to_string()
                    } else {
                        format!("column{}", k + 1)
                    }
                })
                .collect(),
        }
    } else {
        first
    };
    let norm: Vec<String> = header.iter().map(|h| normalize_name(h)).collect();
    let id_col = match id_column {
        Some(want) => header
            .iter()
            .position(|h| h == want)
            .or_else(|| norm.iter().position(|h| *h == normalize_name(want))),
        None => id_names()
            .find_map(|c| norm.iter().position(|h| h == c))
            .or(Some(0)),
    }
    .ok_or_else(|| Error::MissingColumn {
        path: path.to_path_buf(),
        role: "id",
        wanted: id_column.map(str::to_string),
        available: header.clone(),
    })?;
    let title_col = TITLE_NAMES
        .iter()
        .find_map(|c| norm.iter().position(|h| h == c))
        .filter(|&c| c != id_col);
    let n = vocab.len();
    let mut report = FeatureReport {
        file: path.display().to_string(),
        ..Default::default()
    };
    let mut raw: Vec<Option<Vec<String>>> = vec![None; n];
    while next_record(&data, &mut pos, &dialect, &mut rec) {
        if rec.is_blank(&data) {
            continue;
        }
        report.rows_read += 1;
        let id = if rec.len() == header.len() {
            text(&rec, id_col)
        } else {
            String::new()
        };
        if id.is_empty() {
            report.malformed += 1;
            continue;
        }
        match vocab.get(&id) {
            None => report.unmatched += 1,
            Some(i) if raw[i as usize].is_some() => report.duplicates += 1,
            Some(i) => {
                report.matched += 1;
                raw[i as usize] = Some((0..rec.len()).map(|k| text(&rec, k)).collect());
            }
        }
    }
    report.missing = raw.iter().filter(|r| r.is_none()).count();
    let titles = title_col.map(|c| {
        raw.iter()
            .map(|r| r.as_ref().map(|f| f[c].clone()).filter(|t| !t.is_empty()))
            .collect()
    });
    let mut columns = Vec::new();
    for c in 0..header.len() {
        if c == id_col || Some(c) == title_col {
            continue;
        }
        let values: Vec<Option<&str>> = raw
            .iter()
            .map(|r| r.as_ref().map(|f| f[c].as_str()).filter(|v| !v.is_empty()))
            .collect();
        let multi = MULTI_NAMES.contains(&norm[c].as_str())
            || values.iter().flatten().any(|v| v.contains('|'));
        let numeric = !multi
            && values
                .iter()
                .flatten()
                .all(|v| v.parse::<f64>().is_ok_and(f64::is_finite))
            && values.iter().any(Option::is_some);
        let mut col = FeatureColumn {
            name: header[c].clone(),
            kind: if multi {
                FeatureKind::MultiCategorical
            } else if numeric {
                FeatureKind::Numeric
            } else {
                FeatureKind::Categorical
            },
            levels: Vec::new(),
            numeric: Vec::new(),
            codes: Vec::new(),
        };
        if numeric {
            col.numeric = values
                .iter()
                .map(|v| v.and_then(|v| v.parse().ok()))
                .collect();
        } else {
            let mut index: HashMap<String, u32> = HashMap::new();
            col.codes = values
                .iter()
                .map(|v| {
                    let parts: Vec<&str> = match v {
                        None => vec![],
                        Some(v) if multi => v
                            .split('|')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .collect(),
                        Some(v) => vec![v],
                    };
                    parts
                        .into_iter()
                        .map(|p| {
                            *index.entry(p.to_string()).or_insert_with(|| {
                                col.levels.push(p.to_string());
                                col.levels.len() as u32 - 1
                            })
                        })
                        .collect()
                })
                .collect();
        }
        columns.push(col);
    }
    Ok(Features {
        id_column: header[id_col].clone(),
        titles,
        columns,
        report,
    })
}

/// The interactions of `dataset` split by a categorical item feature: one
/// dataset per level of `column` (of `features`, read for the dataset's
/// items), holding the interactions with items of that level, in the
/// order of the levels. An item with several levels is in each of their
/// partitions; items without a level are in none. Levels with no
/// interaction are left out.
pub fn partition(
    dataset: &because_core::Dataset,
    features: &Features,
    column: &str,
) -> Result<Vec<(String, because_core::Dataset)>> {
    let Some(c) = features.columns.iter().find(|c| c.name == column) else {
        return Err(Error::param(
            "partition_by",
            format!(
                "the item features have no column {column:?} (they have {})",
                features
                    .columns
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    };
    if c.kind == FeatureKind::Numeric {
        return Err(Error::param(
            "partition_by",
            format!("{column:?} is numeric; partitions need a categorical column"),
        ));
    }
    let items = dataset.interactions.items();
    let mut out = Vec::new();
    for (level, name) in c.levels.iter().enumerate() {
        let keep: Vec<bool> = items
            .iter()
            .map(|&i| {
                c.codes
                    .get(i as usize)
                    .is_some_and(|codes| codes.contains(&(level as u32)))
            })
            .collect();
        if keep.iter().any(|&k| k) {
            out.push((name.clone(), dataset.retain(&keep)));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_titles_and_matching() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("items.csv");
        std::fs::write(
            &p,
            "item_id,title,genres,year,studio\n1,\"Alien (1979)\",Horror|Sci-Fi,1979,Fox\n2,Aliens (1986),Action|Sci-Fi,1986,Fox\n9,Unknown,Drama,2000,X\n2,Dup,Drama,1,Y\n",
        )
        .unwrap();
        let vocab = Vocab::from_ids(["1", "2", "3"]);
        let f = read_features(&p, &vocab, None).unwrap();
        assert_eq!(f.title(0), Some("Alien (1979)"));
        assert_eq!(f.title(2), None);
        let g = f.column("genres").unwrap();
        assert_eq!(g.kind, FeatureKind::MultiCategorical);
        assert_eq!(g.codes[0].len(), 2);
        assert_eq!(g.levels[g.codes[1][0] as usize], "Action");
        assert_eq!(f.column("year").unwrap().kind, FeatureKind::Numeric);
        assert_eq!(f.column("studio").unwrap().kind, FeatureKind::Categorical);
        assert_eq!(
            f.report,
            FeatureReport {
                file: p.display().to_string(),
                rows_read: 4,
                matched: 2,
                unmatched: 1,
                malformed: 0,
                duplicates: 1,
                missing: 1
            }
        );
        assert_eq!(f.genre_like().unwrap().name, "genres");
    }

    #[test]
    fn movielens_dat_without_header() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("movies.dat");
        std::fs::write(
            &p,
            b"1::Toy Story (1995)::Animation|Children's|Comedy\n2::Caf\xe9 (1995)::Drama\n",
        )
        .unwrap();
        let f = read_features(&p, &Vocab::from_ids(["1", "2"]), None).unwrap();
        assert_eq!(f.title(0), Some("Toy Story (1995)"));
        assert!(f.title(1).unwrap().starts_with("Caf"));
        assert_eq!(f.column("genres").unwrap().levels.len(), 4);
    }
}
