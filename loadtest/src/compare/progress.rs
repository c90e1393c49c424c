//! The progress of a comparison on stderr.

use crate::compare::markdown;
use crate::compare::plan::Planned;
use crate::compare::results::Cell;
use crate::format::format_eta;
use crate::run::Tick;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Which cell is running, how far it is, and how long the rest will take: a bar on a
/// terminal, a line per finished cell otherwise (CI logs, docker).
pub struct Progress {
    bar: Option<ProgressBar>,
    estimates: Vec<Duration>,
    total: usize,
    finished: usize,
    began: Instant,
    /// Estimated time of the cells finished so far: the ratio to the time they really took
    /// corrects the estimate of the rest.
    estimated_done: Duration,
}

impl Progress {
    /// A display for the cells of `plan`.
    pub fn new(plan: &[Planned]) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(plan.len() as u64);
            // A constant template: it parses.
            if let Ok(style) =
                ProgressStyle::with_template("{spinner} [{bar:24}] {pos}/{len} {wide_msg}")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            bar,
            estimates: plan.iter().map(|c| c.estimate).collect(),
            total: plan.len(),
            finished: 0,
            began: Instant::now(),
            estimated_done: Duration::ZERO,
        }
    }

    fn left(&self, current: usize, into: Duration) -> Duration {
        let rest: Duration = self.estimates[current..].iter().sum::<Duration>();
        let rest = rest.saturating_sub(into.min(self.estimates[current]));
        if self.estimated_done.is_zero() {
            return rest;
        }
        let pace = self.began.elapsed().as_secs_f64() / self.estimated_done.as_secs_f64();
        rest.mul_f64(pace.clamp(0.5, 4.0))
    }

    /// Cell `c` starts.
    pub fn begin(&mut self, c: &Planned) {
        if let Some(bar) = &self.bar {
            bar.set_position(c.index as u64);
            bar.set_message(format!(
                "{} · {} {} · starting · ~{} left",
                c.subject,
                c.scenario.name(),
                c.variant,
                format_eta(self.left(c.index, Duration::ZERO))
            ));
        }
    }

    /// Cell `c` is `tick` into its run.
    pub fn tick(&self, c: &Planned, started: Instant, tick: Tick) {
        let Some(bar) = &self.bar else {
            return;
        };
        let into = started.elapsed();
        bar.set_message(format!(
            "{} · {} {} · {:.1}/{:.1}s · {} done · ~{} left",
            c.subject,
            c.scenario.name(),
            c.variant,
            tick.elapsed.as_secs_f64(),
            c.estimate.as_secs_f64(),
            tick.done,
            format_eta(self.left(c.index, into))
        ));
    }

    /// Cell `c` is over: measured (`cell`) or skipped (`None`).
    pub fn done(&mut self, c: &Planned, cell: Option<&Cell>) {
        self.finished += 1;
        self.estimated_done += c.estimate;
        let line = match cell {
            Some(cell) => format!(
                "[{}/{}] {} {} {}: {}",
                self.finished,
                self.total,
                c.subject,
                c.scenario.name(),
                c.variant,
                markdown::one_line(cell)
            ),
            None => format!(
                "[{}/{}] {} {} {}: skipped",
                self.finished,
                self.total,
                c.subject,
                c.scenario.name(),
                c.variant
            ),
        };
        match &self.bar {
            Some(bar) => {
                bar.println(line);
                bar.set_position(self.finished as u64);
            }
            None => eprintln!("{line}"),
        }
    }

    /// The comparison is over.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
