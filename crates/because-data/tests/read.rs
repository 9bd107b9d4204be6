//! Reading every supported format, and one test per class of bad input:
//! each asserts that the problem names its file, line and column and that
//! read = kept + dropped.

use because_core::DuplicatePolicy;
use because_data::{
    read_interactions, write_interactions, ColumnSpec, Error, Loaded, ReadOptions, Reason,
};
use std::io::Write;
use std::path::{Path, PathBuf};

fn write(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

/// The log as external-ID rows, so that logs with different index orders compare.
fn rows(l: &Loaded) -> Vec<(String, String, String, i64, Option<String>)> {
    let d = &l.dataset;
    let mut v: Vec<_> = d
        .interactions
        .iter()
        .map(|r| {
            let ev = r.event.map(|e| d.event_names[e as usize].clone());
            (
                d.users.id(r.user).to_string(),
                d.items.id(r.item).to_string(),
                r.value.to_string(),
                r.time,
                ev,
            )
        })
        .collect();
    v.sort();
    v
}

fn read(path: &Path) -> Loaded {
    read_interactions(path, &ReadOptions::default()).unwrap()
}

fn strict(path: &Path) -> String {
    let opts = ReadOptions {
        strict: true,
        ..Default::default()
    };
    match read_interactions(path, &opts) {
        Err(e @ Error::BadRow(_)) => e.to_string(),
        other => panic!("expected a bad-row error, got {other:?}"),
    }
}

/// Reads `body` (after a standard header) and checks the one dropped row.
fn check_bad(
    body: &str,
    opts: ReadOptions,
    reason: Reason,
    line: usize,
    column: Option<(usize, &str)>,
    strict_msg: &str,
) {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "log.csv",
        format!("user_id,item_id,rating,timestamp\n{body}").as_bytes(),
    );
    let l = read_interactions(&p, &opts).unwrap();
    let r = &l.report;
    assert!(r.balances(), "{r:?}");
    assert_eq!(r.dropped.get(reason.key()), Some(&1), "{r:?}");
    let ex = r.examples.iter().find(|e| e.reason == reason).unwrap();
    assert_eq!(ex.line, line);
    assert_eq!(ex.column.as_ref().map(|(k, n)| (*k, n.as_str())), column);
    assert!(ex.file.ends_with("log.csv"));
    let msg = read_interactions(
        &p,
        &ReadOptions {
            strict: true,
            ..opts
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        msg.contains("log.csv:") && msg.contains(strict_msg),
        "{msg}"
    );
    if let Some((k, _)) = column {
        assert!(msg.contains(&format!("column {k}")), "{msg}");
    }
}

const GOOD: &str = "1,10,4,881250949\n2,11,3,881250950\n";

#[test]
fn wrong_field_count() {
    check_bad(
        &format!("{GOOD}3,12,5\n"),
        ReadOptions::default(),
        Reason::WrongFieldCount,
        4,
        None,
        "expected 4 fields, found 3",
    );
}

#[test]
fn empty_ids() {
    check_bad(
        &format!("{GOOD} ,12,5,881250951\n"),
        ReadOptions::default(),
        Reason::EmptyUserId,
        4,
        Some((1, "user_id")),
        "empty user ID",
    );
    check_bad(
        &format!("{GOOD}3,,5,881250951\n"),
        ReadOptions::default(),
        Reason::EmptyItemId,
        4,
        Some((2, "item_id")),
        "empty item ID",
    );
}

#[test]
fn bad_and_non_finite_ratings() {
    check_bad(
        &format!("3,12,abc,881250951\n{GOOD}"),
        ReadOptions::default(),
        Reason::BadRating,
        2,
        Some((3, "rating")),
        "\"abc\" is not a number",
    );
    check_bad(
        &format!("{GOOD}3,12,NaN,881250951\n"),
        ReadOptions::default(),
        Reason::BadRating,
        4,
        Some((3, "rating")),
        "not finite",
    );
    check_bad(
        &format!("{GOOD}3,12,inf,881250951\n"),
        ReadOptions::default(),
        Reason::BadRating,
        4,
        Some((3, "rating")),
        "not finite",
    );
}

#[test]
fn rating_out_of_declared_range() {
    let opts = ReadOptions {
        rating_range: Some((1.0, 5.0)),
        ..Default::default()
    };
    check_bad(
        &format!("{GOOD}3,12,9,881250951\n"),
        opts,
        Reason::RatingOutOfRange,
        4,
        Some((3, "rating")),
        "outside [1, 5]",
    );
}

#[test]
fn unparsable_timestamp() {
    check_bad(
        &format!("{GOOD}3,12,5,yesterday\n"),
        ReadOptions::default(),
        Reason::BadTimestamp,
        4,
        Some((4, "timestamp")),
        "\"yesterday\"",
    );
}

#[test]
fn invalid_utf8() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "log.csv", b"user,item\n1,10\n\xff\xfe,11\n");
    let l = read(&p);
    assert_eq!(l.report.dropped["invalid_utf8"], 1);
    assert!(strict(&p).contains("log.csv:3: column 1 (user)"));
}

#[test]
fn quoted_newline_keeps_line_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "log.csv",
        b"user,item,rating\n\"a\nb\",1,5\nc,2,x\n",
    );
    let l = read(&p);
    assert_eq!(l.dataset.users.id(0), "a\nb");
    assert_eq!(l.report.examples[0].line, 4);
}

#[test]
fn file_level_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let missing =
        read_interactions(&dir.path().join("nope.csv"), &ReadOptions::default()).unwrap_err();
    assert!(
        matches!(missing, Error::Io { .. }) && missing.to_string().contains("nope.csv"),
        "{missing}"
    );
    let empty = write(dir.path(), "empty.csv", b"");
    let e = read_interactions(&empty, &ReadOptions::default()).unwrap_err();
    assert!(
        e.to_string().contains("empty.csv: the file is empty"),
        "{e}"
    );
    let header = write(dir.path(), "header.csv", b"user_id,item_id,rating\n");
    let e = read_interactions(&header, &ReadOptions::default()).unwrap_err();
    assert!(e.to_string().contains("header but no data rows"), "{e}");
    let nocol = write(dir.path(), "nocol.csv", b"who,what\n1,2\n");
    let e = read_interactions(&nocol, &ReadOptions::default()).unwrap_err();
    assert!(
        e.to_string()
            .contains("no user column; columns are: who, what"),
        "{e}"
    );
    let opts = ReadOptions {
        columns: ColumnSpec {
            item: Some("sku".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let e = read_interactions(&write(dir.path(), "c.csv", b"user,item\n1,2\n"), &opts).unwrap_err();
    assert!(
        e.to_string().contains("no item column named \"sku\""),
        "{e}"
    );
    let all_bad = write(dir.path(), "bad.csv", b"user,item,rating\n1,2,x\n");
    let e = read_interactions(&all_bad, &ReadOptions::default()).unwrap_err();
    assert!(
        e.to_string().contains("no usable rows") && e.to_string().contains("bad.csv:2"),
        "{e}"
    );
}

#[test]
fn duplicate_policies_count_merged_rows() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "d.csv",
        b"user,item,rating,ts\n1,a,2,10\n1,a,5,20\n1,a,3,30\n1,b,1,5\n",
    );
    for (policy, value) in [
        (DuplicatePolicy::Sum, 10.0),
        (DuplicatePolicy::Max, 5.0),
        (DuplicatePolicy::First, 2.0),
        (DuplicatePolicy::Last, 3.0),
    ] {
        let l = read_interactions(
            &p,
            &ReadOptions {
                duplicates: Some(policy),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(l.report.dropped["duplicate"], 2);
        assert!(l.report.balances());
        let x = &l.dataset.interactions;
        let k = x
            .user_items(0)
            .iter()
            .position(|&i| l.dataset.items.id(i) == "a")
            .unwrap();
        assert_eq!(x.user_values(0)[k], value, "{policy:?}");
    }
    let keep = read_interactions(
        &p,
        &ReadOptions {
            duplicates: Some(DuplicatePolicy::Keep),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(keep.dataset.interactions.len(), 4);
}

#[test]
fn formats_and_encodings() {
    let dir = tempfile::tempdir().unwrap();
    // u.data: tab-separated, no header, MovieLens column order.
    let u = read(&write(
        dir.path(),
        "u.data",
        b"196\t242\t3\t881250949\n186\t302\t3\t891717742\n",
    ));
    assert_eq!((u.dataset.users.len(), u.dataset.items.len()), (2, 2));
    assert!(u.dataset.has_ratings && u.dataset.has_time && !u.source.has_header);
    // ratings.dat: '::' separated.
    let d = read(&write(
        dir.path(),
        "ratings.dat",
        b"1::1193::5::978300760\n1::661::3::978302109\n",
    ));
    assert_eq!(d.source.delimiter.as_deref(), Some("::"));
    assert_eq!(d.dataset.items.id(1), "661");
    // BOM, CRLF, semicolons, quoted fields, ISO times, string and huge IDs.
    let c = read(&write(
        dir.path(),
        "x.csv",
        "\u{feff}userId;movieId;score;event_time\r\n\"u;1\";123456789012345678901234567890;4.5;2015-06-01T12:00:00Z\r\nu2;m2;3;2015-06-02\r\n".as_bytes(),
    ));
    assert_eq!(c.dataset.users.id(0), "u;1");
    assert_eq!(c.dataset.items.id(0), "123456789012345678901234567890");
    assert_eq!(c.dataset.interactions.user_times(0)[0], 1_433_160_000_000);
    assert_eq!(c.source.time_format, because_data::time::TimeFormat::Iso);
    // gzip, detected by content.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"user,item\n1,2\n3,4\n").unwrap();
    let g = read(&write(dir.path(), "log.csv.gz", &gz.finish().unwrap()));
    assert!(g.source.gzip);
    assert_eq!(g.dataset.interactions.len(), 2);
    assert!(!g.dataset.has_time);
    // JSON Lines with numeric and string IDs, and a malformed line.
    let j = read(&write(
        dir.path(),
        "e.jsonl",
        b"{\"visitorid\": 257597, \"itemid\": \"355908\", \"event\": \"view\", \"timestamp\": 1433221332117}\n{oops\n\n{\"visitorid\": 257597, \"itemid\": 248676, \"event\": \"transaction\", \"timestamp\": 1433224214164}\n",
    ));
    assert_eq!(j.report.dropped["malformed_json"], 1);
    assert_eq!(j.report.examples[0].line, 2);
    assert_eq!(j.report.blank_lines, 1);
    assert_eq!(j.dataset.users.id(0), "257597");
    assert_eq!(j.dataset.interactions.user_values(0), &[1.0, 5.0]);
    assert_eq!(j.dataset.event_names, vec!["view", "transaction"]);
}

#[test]
fn event_weights_are_values_without_ratings() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "ev.csv", b"timestamp,visitorid,event,itemid\n1433221332117,1,view,5\n1433221332118,1,addtocart,6\n1433221332119,1,odd,7\n");
    let l = read(&p);
    assert_eq!(l.dataset.interactions.user_values(0), &[1.0, 3.0, 1.0]);
    let opts = ReadOptions {
        event_weights: because_data::EventWeights::parse("view=0.5,odd=2").unwrap(),
        ..Default::default()
    };
    let l = read_interactions(&p, &opts).unwrap();
    assert_eq!(l.dataset.interactions.user_values(0), &[0.5, 3.0, 2.0]);
    let e = because_data::EventWeights::parse("view=abc").unwrap_err();
    assert!(e.to_string().contains("`event-weights`"), "{e}");
}

#[test]
fn parts_round_trip_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let inputs: [(&str, &[u8]); 4] = [
        ("a.csv", b"user_id,item_id,rating,timestamp\n1,10,4,881250949\n2,11,3.5,881250950\n1,12,2,881250951\n"),
        ("a.tsv", b"user\titem\ttimestamp\tevent\n1\t10\t1433221332117\tview\n2\t11\t1433221332118\taddtocart\n"),
        ("a.dat", b"1::10::4::881250949\n2::11::3::881250950\n"),
        ("a.jsonl", b"{\"user\": \"x\", \"item\": \"y\", \"time\": \"2020-01-01T00:00:00Z\"}\n"),
    ];
    for (name, body) in inputs {
        let l = read(&write(dir.path(), name, body));
        let ext = because_data::extension(&l.source);
        let out = dir.path().join(format!("out_{name}.{ext}"));
        write_interactions(&out, &l.dataset, &l.dataset.interactions, &l.source).unwrap();
        let back = read_interactions(
            &out,
            &ReadOptions {
                has_header: Some(l.source.has_header),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(rows(&back), rows(&l), "{name}");
        // And through Parquet.
        let mut src = l.source.clone();
        src.format = because_data::Format::Parquet;
        let pq = dir.path().join(format!("out_{name}.parquet"));
        write_interactions(&pq, &l.dataset, &l.dataset.interactions, &src).unwrap();
        let back = read(&pq);
        let mut expected = rows(&l);
        if !l.dataset.has_ratings {
            // Without a rating column the value is recomputed from the event (or 1).
            expected
                .iter_mut()
                .zip(rows(&back))
                .for_each(|(e, b)| e.2 = b.2);
        }
        assert_eq!(rows(&back), expected, "{name} parquet");
    }
}

#[test]
fn counts_add_up_on_generated_noisy_data() {
    use because_data::synth::{write_files, Size, SynthConfig};
    let dir = tempfile::tempdir().unwrap();
    let cfg = SynthConfig {
        noise: 0.05,
        ratings: true,
        ..SynthConfig::sized(Size::Tiny)
    };
    let files = write_files(&cfg, dir.path()).unwrap();
    let l = read_interactions(
        &files.interactions,
        &ReadOptions {
            duplicates: Some(DuplicatePolicy::Keep),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(l.report.rows_read, files.rows);
    assert_eq!(l.report.total_dropped(), files.bad_rows);
    assert!(l.report.balances());
    // Thread count does not change the result.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let one = pool.install(|| {
        read_interactions(
            &files.interactions,
            &ReadOptions {
                duplicates: Some(DuplicatePolicy::Keep),
                ..Default::default()
            },
        )
        .unwrap()
    });
    assert_eq!(one.dataset.interactions, l.dataset.interactions);
}
