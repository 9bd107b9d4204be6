//! Figures and the self-contained HTML report.
//!
//! # Brief overview
//!
//! * [`eda_figures`] turns an [`Eda`] into figures; [`comparison_figure`],
//!   [`tuning_figure`], [`deletion_figure`], [`reach_figure`] and
//!   [`embedding_map`] draw experiments from plain numbers; [`save_figures`]
//!   writes them as PNG and SVG.
//! * [`figures`] draws what the libraries return (a comparison, a tuning
//!   run, attention, embeddings, an explanation), and [`data_sections`]
//!   writes the cleaning and exploration sections of a report.
//! * [`Report`] collects sections (text, tables, figures) and writes one HTML
//!   file with the SVGs inlined, so it can be mailed or opened offline.
//!
//! ```
//! use because_report::Report;
//! let mut r = Report::new("Demo");
//! r.section("Data").paragraph("3 users & 2 items").table(&["metric", "value"], &[vec!["users".into(), "3".into()]]);
//! let html = r.to_html();
//! assert!(html.contains("3 users &amp; 2 items"));
//! ```
#![deny(missing_docs)]

pub mod demo;
mod experiment;
pub mod figures;

pub use experiment::{
    attention_figure, comparison_figure, deletion_figure, embedding_map, reach_figure,
    training_figure, tuning_figure, validation_figure,
};

use because_data::eda::Eda;
use because_plot::{Bars, Figure, Lines, Series};
use std::path::{Path, PathBuf};

/// Errors of writing figures and reports.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A figure could not be drawn.
    #[error(transparent)]
    Plot(#[from] because_plot::Error),
    /// A file could not be written.
    #[error(transparent)]
    Data(#[from] because_data::Error),
    /// A model could not recommend or explain.
    #[error(transparent)]
    Core(#[from] because_core::Error),
}

/// Result with the report [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn log_bin_label(lo: u64) -> String {
    if lo == 1 {
        "1".into()
    } else {
        format!("{}-{}", lo, 2 * lo - 1)
    }
}

/// The report's sections on a log: what cleaning kept and dropped, step by
/// step, then the exploration's summary with its SVG `figures`, and the
/// genre-like column of the item features, if any.
pub fn data_sections(
    r: &mut Report,
    clean: &because_data::CleanReport,
    eda: &Eda,
    figures: &[PathBuf],
    items: Option<&because_data::features::Features>,
) {
    r.section("Cleaning").pre(&clean.summary());
    let steps: Vec<Vec<String>> = clean
        .steps
        .iter()
        .map(|s| vec![s.name.clone(), s.before.to_string(), s.after.to_string()])
        .collect();
    r.table(&["step", "before", "after"], &steps);
    r.section("Exploration").pre(&eda.summary());
    if let Some(g) = items.and_then(|f| f.genre_like()) {
        r.paragraph(&format!(
            "Item feature {:?} has {} levels.",
            g.name,
            g.levels.len()
        ));
    }
    for p in figures
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "svg"))
    {
        r.svg_file(p);
    }
}

/// The EDA figures, each with its file stem.
pub fn eda_figures(eda: &Eda) -> Vec<(&'static str, Figure)> {
    let mut figs = Vec::new();
    let hist = |title: &str, x: &str, y: &str, h: &because_data::eda::LogHistogram| {
        Figure::Bars(Bars {
            title: title.into(),
            x_label: x.into(),
            y_label: y.into(),
            labels: h.lower.iter().map(|&l| log_bin_label(l)).collect(),
            values: h.counts.iter().map(|&c| c as f64).collect(),
            log_y: true,
        })
    };
    figs.push((
        "user_activity",
        hist(
            "Interactions per user",
            "interactions (log-2 bins)",
            "users (log scale)",
            &eda.user_histogram,
        ),
    ));
    figs.push((
        "item_popularity",
        hist(
            "Interactions per item",
            "interactions (log-2 bins)",
            "items (log scale)",
            &eda.item_histogram,
        ),
    ));
    let tail = &eda.long_tail;
    let n = tail.sorted_counts.len();
    // At most ~400 points, evenly spaced on a log scale of rank.
    let mut points = Vec::new();
    let mut last = 0usize;
    for k in 0..400 {
        let r = ((n as f64).powf(k as f64 / 399.0)).round() as usize;
        if r > last && r <= n {
            points.push((r as f64, tail.sorted_counts[r - 1] as f64));
            last = r;
        }
    }
    figs.push((
        "long_tail",
        Figure::Lines(Lines {
            title: format!("Item popularity long tail (Gini {:.3})", tail.gini),
            x_label: "item rank".into(),
            y_label: "interactions".into(),
            series: vec![Series {
                name: "items".into(),
                points,
            }],
            log_x: true,
            log_y: true,
            x_ticks: None,
        }),
    ));
    if let Some(r) = &eda.ratings {
        figs.push((
            "ratings",
            Figure::Bars(Bars {
                title: "Rating distribution".into(),
                x_label: "rating".into(),
                y_label: "interactions".into(),
                labels: r.iter().map(|(v, _)| v.to_string()).collect(),
                values: r.iter().map(|&(_, c)| c as f64).collect(),
                log_y: false,
            }),
        ));
    }
    if let Some(a) = &eda.activity {
        figs.push((
            "activity_over_time",
            Figure::Lines(Lines {
                title: format!("Interactions per {}", a.bucket),
                x_label: a.bucket.into(),
                y_label: "interactions".into(),
                series: vec![Series {
                    name: "interactions".into(),
                    points: a
                        .counts
                        .iter()
                        .enumerate()
                        .map(|(k, &c)| (k as f64, c as f64))
                        .collect(),
                }],
                log_x: false,
                log_y: false,
                x_ticks: Some(a.labels.clone()),
            }),
        ));
    }
    if let Some(s) = &eda.sessions {
        let mut labels: Vec<String> = (1..=s.length_counts.len()).map(|l| l.to_string()).collect();
        if let Some(last) = labels.last_mut() {
            *last = format!("{last}+");
        }
        figs.push((
            "session_lengths",
            Figure::Bars(Bars {
                title: format!(
                    "Session lengths ({} min inactivity timeout)",
                    s.timeout_minutes
                ),
                x_label: "interactions in session".into(),
                y_label: "sessions (log scale)".into(),
                labels,
                values: s.length_counts.iter().map(|&c| c as f64).collect(),
                log_y: true,
            }),
        ));
    }
    if let Some(f) = &eda.funnel {
        figs.push((
            "funnel",
            Figure::Bars(Bars {
                title: "Funnel: user-item pairs reaching each stage".into(),
                x_label: "stage".into(),
                y_label: "pairs".into(),
                labels: f.iter().map(|s| s.event.clone()).collect(),
                values: f.iter().map(|s| s.pairs as f64).collect(),
                log_y: false,
            }),
        ));
    }
    figs
}

/// Writes figures as PNG and SVG into `dir`; returns the paths written.
pub fn save_figures(figs: &[(&str, Figure)], dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| because_data::Error::Io {
        path: dir.to_path_buf(),
        source: e,
    })?;
    let mut out = Vec::new();
    for (stem, fig) in figs {
        out.extend(because_plot::save(fig, dir, stem)?);
    }
    Ok(out)
}

/// Escapes text for HTML.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A self-contained HTML report.
#[derive(Clone, Debug, Default)]
pub struct Report {
    title: String,
    body: String,
}

impl Report {
    /// An empty report.
    pub fn new(title: &str) -> Report {
        Report {
            title: title.into(),
            body: String::new(),
        }
    }
    /// Starts a section.
    pub fn section(&mut self, heading: &str) -> &mut Report {
        self.body += &format!("<h2>{}</h2>\n", escape(heading));
        self
    }
    /// Adds a paragraph of text.
    pub fn paragraph(&mut self, text: &str) -> &mut Report {
        self.body += &format!("<p>{}</p>\n", escape(text));
        self
    }
    /// Adds preformatted text.
    pub fn pre(&mut self, text: &str) -> &mut Report {
        self.body += &format!("<pre>{}</pre>\n", escape(text));
        self
    }
    /// Adds a table.
    pub fn table(&mut self, header: &[&str], rows: &[Vec<String>]) -> &mut Report {
        self.body += "<table><thead><tr>";
        for h in header {
            self.body += &format!("<th>{}</th>", escape(h));
        }
        self.body += "</tr></thead><tbody>\n";
        for r in rows {
            self.body += "<tr>";
            for c in r {
                self.body += &format!("<td>{}</td>", escape(c));
            }
            self.body += "</tr>\n";
        }
        self.body += "</tbody></table>\n";
        self
    }
    /// Inlines an SVG file written by [`save_figures`].
    pub fn svg_file(&mut self, path: &Path) -> &mut Report {
        match std::fs::read_to_string(path) {
            Ok(svg) => {
                let start = svg.find("<svg").unwrap_or(0);
                self.body += &format!("<figure>{}</figure>\n", &svg[start..]);
            }
            Err(e) => {
                self.body += &format!(
                    "<p class=\"error\">missing figure {}: {}</p>\n",
                    escape(&path.display().to_string()),
                    escape(&e.to_string())
                )
            }
        }
        self
    }
    /// The whole document.
    pub fn to_html(&self) -> String {
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\n<style>\
body{{font-family:system-ui,sans-serif;max-width:1040px;margin:2em auto;color:#222;padding:0 1em}}\
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 10px;text-align:left}}\
th{{background:#f3f3f3}}pre{{background:#f7f7f7;padding:1em;overflow-x:auto}}figure{{margin:1em 0}}svg{{max-width:100%;height:auto}}\
</style></head><body>\n<h1>{t}</h1>\n{b}</body></html>\n",
            t = escape(&self.title),
            b = self.body
        )
    }
    /// Writes the report atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        let html = self.to_html();
        because_data::write_atomic(path, |w| std::io::Write::write_all(w, html.as_bytes()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use because_core::{Columns, Dataset, Interactions, Vocab};
    use because_data::synth::{generate, Size, SynthConfig, EVENTS};

    fn tiny_dataset() -> Dataset {
        let d = generate(&SynthConfig::sized(Size::Tiny)).unwrap();
        let cols = Columns {
            users: d.users.clone(),
            items: d.items.clone(),
            values: vec![1.0; d.items.len()],
            times: d.times.clone(),
            events: d.events.clone(),
        };
        Dataset {
            users: Vocab::from_ids((1..=d.config.n_users).map(|u| u.to_string())),
            items: Vocab::from_ids((1..=d.config.n_items).map(|i| i.to_string())),
            interactions: Interactions::from_columns(d.config.n_users, d.config.n_items, cols)
                .unwrap(),
            event_names: EVENTS.iter().map(|s| s.to_string()).collect(),
            has_time: true,
            has_ratings: false,
        }
    }

    #[test]
    fn eda_figures_for_generated_data() {
        let eda = because_data::eda::describe(&tiny_dataset(), &Default::default(), 30 * 60_000);
        let figs = eda_figures(&eda);
        let stems: Vec<&str> = figs.iter().map(|f| f.0).collect();
        assert!(
            stems.contains(&"funnel")
                && stems.contains(&"session_lengths")
                && stems.contains(&"long_tail")
        );
        let dir = tempfile::tempdir().unwrap();
        let paths = save_figures(&figs, dir.path()).unwrap();
        assert_eq!(paths.len(), 2 * figs.len());
        let mut r = Report::new("EDA");
        r.section("Figures");
        for p in paths
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "svg"))
        {
            r.svg_file(p);
        }
        r.write(&dir.path().join("report.html")).unwrap();
        assert!(std::fs::read_to_string(dir.path().join("report.html"))
            .unwrap()
            .contains("<svg"));
    }
}
