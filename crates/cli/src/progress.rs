//! Progress of long commands (import, export, verify, rebuild, a long
//! catch-up) on standard error: a bar with count, rate and time left on a
//! terminal; plain lines, at most one a second, when `--progress` asks for
//! them off a terminal; nothing otherwise, so piped output stays clean.

use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

static ASKED: AtomicBool = AtomicBool::new(false);

/// Records `--progress`: plain progress lines even when standard error is
/// not a terminal.
pub fn set_asked(asked: bool) {
    ASKED.store(asked, Ordering::Relaxed);
}

/// One long task's progress.
pub struct Reporter {
    what: &'static str,
    unit: &'static str,
    bar: Option<indicatif::ProgressBar>,
    lines: bool,
    started: Instant,
    last_line: Option<Instant>,
}

impl Reporter {
    /// A reporter for `what` ("import"), counting `unit`s ("events").
    pub fn new(what: &'static str, unit: &'static str) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let bar = terminal.then(|| {
            let bar = indicatif::ProgressBar::new(0);
            // At most 80 columns: a 24-wide bar, counts, a whole rate.
            let template = format!(
                "{what} {{bar:24}} {{human_pos}}/{{human_len}} {unit}  {{rate}}  eta {{eta}}"
            );
            let style = indicatif::ProgressStyle::with_template(&template)
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .with_key(
                    "rate",
                    |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = write!(w, "{}/s", whole(state.per_sec()));
                    },
                );
            bar.set_style(style);
            bar
        });
        Self {
            what,
            unit,
            bar,
            lines: !terminal && ASKED.load(Ordering::Relaxed),
            started: Instant::now(),
            last_line: None,
        }
    }

    /// `done` of `total` units so far.
    pub fn update(&mut self, done: u64, total: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(total);
            bar.set_position(done);
            return;
        }
        let due = self
            .last_line
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(1));
        if self.lines && (due || done >= total) {
            let seconds = self.started.elapsed().as_secs_f64().max(1e-3);
            #[allow(clippy::cast_precision_loss)]
            let rate = done as f64 / seconds;
            eprintln!(
                "{}: {done} of {total} {}, {}/s",
                self.what,
                self.unit,
                whole(rate)
            );
            self.last_line = Some(Instant::now());
        }
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// A rate as a person reads it: whole units with thousands separators.
fn whole(rate: f64) -> String {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let n = rate.max(0.0).round() as u64;
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn rates_are_whole_with_separators() {
        assert_eq!(super::whole(140_025.196_1), "140,025");
        assert_eq!(super::whole(999.4), "999");
        assert_eq!(super::whole(1_000_000.0), "1,000,000");
    }
}
