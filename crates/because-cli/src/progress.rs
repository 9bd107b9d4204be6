//! Progress on standard error: bars while a person watches (stderr is a
//! terminal and `--quiet` is not given), plain lines with `-v`, nothing
//! otherwise. Libraries never print; they report through the epoch
//! observer, and this module shows what they report.

use because_core::Epoch;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::ops::ControlFlow;
use std::sync::OnceLock;
use std::time::Duration;

#[derive(Clone, Copy, Debug)]
struct Settings {
    bars: bool,
    verbose: u8,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

/// Sets how progress is shown, once per process (later calls are ignored).
pub fn init(quiet: bool, verbose: u8) {
    let _ = SETTINGS.set(Settings {
        bars: !quiet && std::io::stderr().is_terminal(),
        verbose: if quiet { 0 } else { verbose },
    });
}

fn settings() -> Settings {
    *SETTINGS.get_or_init(|| Settings {
        bars: false,
        verbose: 0,
    })
}

/// Whether `-v` was given.
pub fn verbose() -> bool {
    settings().verbose > 0
}

fn hidden_unless_bars(pb: ProgressBar) -> ProgressBar {
    if !settings().bars {
        pb.set_draw_target(ProgressDrawTarget::hidden());
    }
    pb
}

/// A spinner with elapsed time, for work of unknown length (reading a file).
pub fn spinner(message: impl Into<String>) -> ProgressBar {
    let pb = hidden_unless_bars(ProgressBar::new_spinner());
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    pb.set_message(message.into());
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

/// A bar over `len` steps (users, configurations).
pub fn bar(len: u64, message: impl Into<String>) -> ProgressBar {
    let pb = hidden_unless_bars(ProgressBar::new(len));
    pb.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} [{elapsed} < {eta}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(message.into());
    pb
}

/// Shows training epochs: a bar with the loss where the model reports one,
/// and with `-v` a line per epoch. Wraps `inner`, which decides whether to
/// stop (early stopping).
pub struct Epochs {
    pb: ProgressBar,
    label: String,
}

impl Epochs {
    /// Training `label`.
    pub fn new(label: impl Into<String>) -> Epochs {
        let label = label.into();
        Epochs {
            pb: bar(0, format!("training {label}")),
            label,
        }
    }

    /// Shows `e`.
    pub fn show(&self, e: &Epoch<'_>) {
        self.pb.set_length(e.of as u64);
        self.pb.set_position(e.epoch as u64);
        if let Some(loss) = e.loss {
            self.pb
                .set_message(format!("training {} (loss {loss:.4})", self.label));
        }
        if verbose() {
            let loss = e.loss.map(|l| format!(", loss {l:.5}")).unwrap_or_default();
            self.pb.suspend(|| {
                eprintln!(
                    "  {}: epoch {}/{}{loss}, {:.2}s",
                    self.label,
                    e.epoch,
                    e.of,
                    e.elapsed.as_secs_f64()
                )
            });
        }
    }

    /// An observer that shows every epoch and never stops training.
    pub fn observer(&self) -> impl FnMut(&Epoch<'_>) -> ControlFlow<()> + '_ {
        |e| {
            self.show(e);
            ControlFlow::Continue(())
        }
    }
}

impl Drop for Epochs {
    fn drop(&mut self) {
        self.pb.finish_and_clear();
    }
}
