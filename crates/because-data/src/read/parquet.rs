//! Parquet input and output through the `parquet` crate's row API (no Arrow,
//! which would triple the build time).

use super::{resolve_layout, Builder, HeaderInfo, Part, ReadOptions};
use crate::time::{format_time, TimeFormat};
use crate::{Error, Result};
use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::record::Field;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

fn field_text(f: &Field) -> Option<String> {
    Some(match f {
        Field::Null => return None,
        Field::Str(s) => s.clone(),
        Field::Bytes(b) => String::from_utf8(b.data().to_vec()).ok()?,
        Field::TimestampMillis(ms) => format_time(*ms, TimeFormat::Iso),
        Field::TimestampMicros(us) => format_time(us.div_euclid(1000), TimeFormat::Iso),
        Field::Date(d) => format_time(*d as i64 * 86_400_000, TimeFormat::Iso),
        other => other.to_string().trim_matches('"').to_string(),
    })
}

pub(crate) fn read_parquet(
    path: &Path,
    opts: &ReadOptions,
    file_name: &str,
) -> Result<(Part, HeaderInfo)> {
    let bad = |e: parquet::errors::ParquetError| Error::Format {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    if file.metadata().map(|m| m.len()).unwrap_or(0) == 0 {
        return Err(Error::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    let reader = SerializedFileReader::new(file).map_err(bad)?;
    let schema = reader.metadata().file_metadata().schema_descr_ptr();
    let header: Vec<String> = schema
        .root_schema()
        .get_fields()
        .iter()
        .map(|f| f.name().to_string())
        .collect();
    let layout = resolve_layout(path, &header, true, &opts.columns, opts.ignore_rating)?;
    let mut b = Builder::new(&layout, opts, file_name, true);
    let mut texts: Vec<Option<String>> = vec![None; header.len()];
    for (k, row) in reader.get_row_iter(None).map_err(bad)?.enumerate() {
        let row = row.map_err(bad)?;
        texts.iter_mut().for_each(|t| *t = None);
        for (c, (_, field)) in row.get_column_iter().enumerate() {
            if c < texts.len() && layout.col.contains(&Some(c)) {
                texts[c] = field_text(field);
            }
        }
        let f = std::array::from_fn(|role| {
            layout.col[role].map(|c| Ok(texts[c].as_deref().unwrap_or("")))
        });
        b.row(k + 1, f);
    }
    let part = b.part;
    Ok((
        part,
        HeaderInfo {
            layout,
            has_header: true,
            delimiter: None,
        },
    ))
}

/// Columns of an interaction table to write.
pub(crate) struct OutColumns<'a> {
    pub names: [Option<&'a str>; 5],
    pub users: Vec<&'a str>,
    pub items: Vec<&'a str>,
    pub values: Option<Vec<f64>>,
    pub times: Option<Vec<i64>>,
    pub events: Option<Vec<&'a str>>,
}

pub(crate) fn write_parquet(path: &Path, cols: &OutColumns<'_>) -> Result<()> {
    let bad = |e: parquet::errors::ParquetError| Error::Format {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let name = |role: usize, default: &str| {
        cols.names[role]
            .unwrap_or(default)
            .replace(|c: char| !c.is_ascii_alphanumeric() && c != '_', "_")
    };
    let mut schema = format!(
        "message interactions {{ REQUIRED BYTE_ARRAY {} (UTF8); REQUIRED BYTE_ARRAY {} (UTF8);",
        name(0, "user_id"),
        name(1, "item_id")
    );
    if cols.values.is_some() {
        schema += &format!(" REQUIRED DOUBLE {};", name(2, "rating"));
    }
    if cols.times.is_some() {
        schema += &format!(" REQUIRED INT64 {};", name(3, "timestamp"));
    }
    if cols.events.is_some() {
        schema += &format!(" REQUIRED BYTE_ARRAY {} (UTF8);", name(4, "event"));
    }
    schema += " }";
    let schema = Arc::new(parquet::schema::parser::parse_message_type(&schema).map_err(bad)?);
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build(),
    );
    let file = File::create(path).map_err(|e| Error::io(path, e))?;
    let mut writer = SerializedFileWriter::new(file, schema, props).map_err(bad)?;
    let mut rg = writer.next_row_group().map_err(bad)?;
    let strings = |xs: &[&str]| {
        xs.iter()
            .map(|s| ByteArray::from(s.as_bytes().to_vec()))
            .collect::<Vec<_>>()
    };
    let write_bytes = |rg: &mut parquet::file::writer::SerializedRowGroupWriter<'_, File>,
                       xs: &[&str]|
     -> Result<()> {
        let mut col = rg.next_column().map_err(bad)?.ok_or_else(|| {
            bad(parquet::errors::ParquetError::General(
                "missing column".into(),
            ))
        })?;
        col.typed::<ByteArrayType>()
            .write_batch(&strings(xs), None, None)
            .map_err(bad)?;
        col.close().map_err(bad)
    };
    write_bytes(&mut rg, &cols.users)?;
    write_bytes(&mut rg, &cols.items)?;
    if let Some(v) = &cols.values {
        let mut col = rg.next_column().map_err(bad)?.ok_or_else(|| {
            bad(parquet::errors::ParquetError::General(
                "missing column".into(),
            ))
        })?;
        col.typed::<DoubleType>()
            .write_batch(v, None, None)
            .map_err(bad)?;
        col.close().map_err(bad)?;
    }
    if let Some(t) = &cols.times {
        let mut col = rg.next_column().map_err(bad)?.ok_or_else(|| {
            bad(parquet::errors::ParquetError::General(
                "missing column".into(),
            ))
        })?;
        col.typed::<Int64Type>()
            .write_batch(t, None, None)
            .map_err(bad)?;
        col.close().map_err(bad)?;
    }
    if let Some(e) = &cols.events {
        write_bytes(&mut rg, e)?;
    }
    rg.close().map_err(bad)?;
    writer.close().map_err(bad)?;
    Ok(())
}
