//! Writing interactions back in the shape they were read: same format,
//! delimiter, column names and time format. Files are written to a temporary
//! name and renamed into place, so a reader never sees half a file.

use crate::read::parquet::{write_parquet, OutColumns};
use crate::read::{Format, SourceInfo};
use crate::time::{format_time, TimeFormat};
use crate::{Error, Result};
use because_core::{Dataset, Interactions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Writes `path` atomically: `f` writes into a temporary file beside it,
/// which is synced and renamed over `path`.
pub fn write_atomic(
    path: &Path,
    f: impl FnOnce(&mut BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<()> {
    let tmp = tmp_path(path);
    let run = || -> std::io::Result<()> {
        let file = std::fs::File::create(&tmp)?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        f(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    run().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".tmp{}", std::process::id()));
    path.with_file_name(name)
}

/// The file extension for data written like `source`.
pub fn extension(source: &SourceInfo) -> &'static str {
    match source.format {
        Format::Parquet => "parquet",
        Format::Jsonl => "jsonl",
        Format::Delimited => match source.delimiter.as_deref() {
            Some("\t") => "tsv",
            Some("::") => "dat",
            _ => "csv",
        },
    }
}

fn quote_csv(field: &str, delim: &str) -> String {
    if delim.len() == 1
        && (field.contains(delim)
            || field.contains('"')
            || field.contains('\n')
            || field.contains('\r'))
    {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

/// Writes `x` (in `dataset`'s index space) to `path` in the shape of `source`.
pub fn write_interactions(
    path: &Path,
    dataset: &Dataset,
    x: &Interactions,
    source: &SourceInfo,
) -> Result<()> {
    let names: [Option<&str>; 5] = std::array::from_fn(|r| source.role_names[r].as_deref());
    let has_rating = names[2].is_some();
    let has_time = names[3].is_some();
    let has_event = names[4].is_some() && x.events().is_some();
    let users = x.users();
    let time_text = |t: i64| format_time(t, source.time_format);
    let event_name = |e: u8| {
        dataset
            .event_names
            .get(e as usize)
            .map(String::as_str)
            .unwrap_or("")
    };
    match source.format {
        Format::Parquet => {
            let tmp = tmp_path(path);
            let cols = OutColumns {
                names,
                users: users.iter().map(|&u| dataset.users.id(u)).collect(),
                items: x.items().iter().map(|&i| dataset.items.id(i)).collect(),
                values: has_rating.then(|| x.values().iter().map(|&v| v as f64).collect()),
                times: has_time.then(|| {
                    x.times()
                        .iter()
                        .map(|&t| {
                            if source.time_format == TimeFormat::Millis {
                                t
                            } else {
                                t / 1000
                            }
                        })
                        .collect()
                }),
                events: has_event.then(|| {
                    x.events()
                        .unwrap_or(&[])
                        .iter()
                        .map(|&e| event_name(e))
                        .collect()
                }),
            };
            write_parquet(&tmp, &cols)?;
            std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
        }
        Format::Jsonl => write_atomic(path, |w| {
            for (k, &u) in users.iter().enumerate() {
                let mut obj = serde_json::Map::new();
                obj.insert(
                    names[0].unwrap_or("user_id").into(),
                    dataset.users.id(u).into(),
                );
                obj.insert(
                    names[1].unwrap_or("item_id").into(),
                    dataset.items.id(x.items()[k]).into(),
                );
                if has_rating {
                    obj.insert(
                        names[2].unwrap_or("rating").into(),
                        serde_json::json!(x.values()[k]),
                    );
                }
                if has_time {
                    let t = x.times()[k];
                    let v = match source.time_format {
                        TimeFormat::Iso => serde_json::Value::from(time_text(t)),
                        TimeFormat::Millis => serde_json::Value::from(t),
                        TimeFormat::Seconds => serde_json::Value::from(t / 1000),
                    };
                    obj.insert(names[3].unwrap_or("timestamp").into(), v);
                }
                if has_event {
                    obj.insert(
                        names[4].unwrap_or("event").into(),
                        event_name(x.events().unwrap_or(&[])[k]).into(),
                    );
                }
                serde_json::to_writer(&mut *w, &obj)?;
                w.write_all(b"\n")?;
            }
            Ok(())
        }),
        Format::Delimited => {
            let delim = source.delimiter.clone().unwrap_or_else(|| ",".into());
            write_atomic(path, |w| {
                let present: Vec<usize> = (0..5)
                    .filter(|&r| names[r].is_some() && (r != 4 || has_event))
                    .collect();
                if source.has_header {
                    let header: Vec<String> = present
                        .iter()
                        .map(|&r| quote_csv(names[r].unwrap_or(""), &delim))
                        .collect();
                    writeln!(w, "{}", header.join(&delim))?;
                }
                let mut fields = Vec::with_capacity(5);
                for (k, &u) in users.iter().enumerate() {
                    fields.clear();
                    for &r in &present {
                        fields.push(match r {
                            0 => quote_csv(dataset.users.id(u), &delim),
                            1 => quote_csv(dataset.items.id(x.items()[k]), &delim),
                            2 => x.values()[k].to_string(),
                            3 => time_text(x.times()[k]),
                            _ => quote_csv(event_name(x.events().unwrap_or(&[])[k]), &delim),
                        });
                    }
                    writeln!(w, "{}", fields.join(&delim))?;
                }
                Ok(())
            })
        }
    }
}
