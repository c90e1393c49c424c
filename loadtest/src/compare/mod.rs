//! `loadtest compare`: every model through every scenario, one command, one report.
//!
//! The matrix is targets × scenarios × variants. A target is a zoo model compare starts itself
//! (`--models`, every name `zoo --list-models` prints by default), a running server
//! (`--target NAME=URL`, as the docker comparison does), or the nginx baseline; with `--behind
//! nginx` each of them once more through a reverse proxy, as `NAME+nginx`. Started servers
//! get a fresh process for each scenario, so no scenario inherits another's connections, memory
//! or damage; they run on the server CPUs, and this process (the generator) on the client CPUs.
//!
//! Each cell is measured by [`scenario::cell::run_cell`] with the `run` engine in this process.
//! After each scenario `results.json` is written again, so an interrupted or crashed comparison
//! keeps what it measured; at the end `report.md` and the charts are rendered from it
//! ([`markdown`], [`charts`]). A model that cannot start, dies, or fails a scenario stays in the
//! results with the reason.
//!
//! - [`plan`]: the targets, the settings, the cells and the CPUs, from the command line.
//! - [`running`]: one scenario on one target: start, measure each cell, stop; rounds folded.
//! - [`progress`]: the bar or the line per cell, with the time left.
//! - [`machine`]: the machine, the tools and their versions, found before the run.
//! - [`scenario`]: the catalogue of scenarios; [`scenario::cell`] measures one cell.
//! - [`crowds`]: c10k's idle connections and slowloris' slow clients.
//! - [`launch`]: starting and stopping zoo and nginx, pinned, with their stderr kept.
//! - [`twins`]: the Python originals of peers/python, started like models (`--twins`).
//! - [`proxy`]: `--behind nginx`, each target measured again through a reverse proxy.
//! - [`sampling`]: CPU time and memory of a server's whole process tree, from /proc.
//! - [`probe`]: single requests beside the load: `/metrics`, readiness.
//! - [`results`]: `results.json` (schema `zoo-compare/1`).
//! - [`markdown`]: `report.md`: the setup, a table per scenario, the checks and failures.
//! - [`reading`]: the plain-words reading of each table, computed from its figures.
//! - [`charts`]: SVG and PNG charts with plotters.
//! - [`palette`]: the series colours both the charts and report.html use.

pub mod anatomy;
pub mod charts;
pub mod crowds;
pub mod html;
pub mod launch;
pub mod machine;
pub mod markdown;
pub mod palette;
pub mod plan;
pub mod prices;
pub mod probe;
pub mod progress;
pub mod proxy;
pub mod reading;
pub mod results;
pub mod running;
pub mod sampling;
pub mod scenario;
pub mod twins;

use crate::cli::{Baseline, Behind, CompareArgs};
use crate::format::format_eta;
use crate::sys;
use machine::{find_nginx, find_zoo, machine, timestamp, tool_version};
use plan::{
    model_list, parse_scenarios, plan_cells, plan_cpus, settings, target_info, Cpus, Kind, Planned,
    Subject,
};
use progress::Progress;
use results::{Results, Setup, Status, Versions, SCHEMA};
use running::{median_rounds, run_scenario, skipped};
use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

/// Open files compare asks for: c10k's crowd, its active load and everything else.
const FD_WANTED: u64 = 1 << 20;

/// Runs the comparison `args` describes.
pub fn compare(args: &CompareArgs) -> Result<(), Box<dyn Error>> {
    let started = SystemTime::now();
    let scenarios = parse_scenarios(&args.scenarios)?;
    let start_mode = args.targets.is_empty();
    let zoo = if start_mode {
        Some(find_zoo(args.zoo.as_deref())?)
    } else {
        None
    };
    let mut subjects = Vec::new();
    let mut versions = Versions {
        loadtest: env!("CARGO_PKG_VERSION").to_string(),
        ..Versions::default()
    };
    if let Some(Baseline::Nginx) = args.baseline {
        let nginx = find_nginx(args.nginx.as_deref(), "--baseline nginx")?;
        versions.nginx = tool_version(&nginx, "-v");
        subjects.push(Subject {
            name: "nginx".to_string(),
            kind: Kind::Nginx(nginx),
        });
    }
    match &zoo {
        Some(zoo) => {
            versions.zoo = tool_version(zoo, "--version");
            let (originals, models): (Vec<_>, Vec<_>) = model_list(zoo, &args.models)?
                .into_iter()
                .partition(|spec| spec.model.starts_with(twins::PREFIX));
            for spec in &models {
                subjects.push(Subject {
                    name: spec.name.clone(),
                    kind: Kind::Model(spec.clone()),
                });
            }
            if args.twins || !originals.is_empty() {
                // Checked before any cell runs: a missing virtualenv is an error, never a
                // silent drop of the originals.
                let venv = args
                    .twins_venv
                    .clone()
                    .or_else(|| std::env::var_os(twins::VENV_ENV).map(PathBuf::from));
                let catalogue = twins::Catalogue::load(zoo, venv.as_deref())?;
                versions.python = tool_version(&catalogue.python, "--version");
                let mut chosen = originals
                    .iter()
                    .map(|spec| catalogue.spec(spec))
                    .collect::<Result<Vec<_>, _>>()?;
                if args.twins {
                    for twin in catalogue.originals_of(&models) {
                        if chosen.iter().all(|t| t.name != twin.name) {
                            chosen.push(twin);
                        }
                    }
                }
                for twin in chosen {
                    subjects.push(Subject {
                        name: twin.name.clone(),
                        kind: Kind::Twin(twin),
                    });
                }
            }
        }
        None => {
            for (name, target) in &args.targets {
                subjects.push(Subject {
                    name: name.clone(),
                    kind: Kind::Running(target.clone()),
                });
            }
        }
    }
    if let Some(Behind::Nginx) = args.behind {
        let nginx = find_nginx(args.nginx.as_deref(), "--behind nginx")?;
        versions.nginx = tool_version(&nginx, "-v");
        subjects = subjects
            .into_iter()
            .flat_map(|s| {
                let behind = match &s.kind {
                    Kind::Nginx(_) => None,
                    kind => Some(Subject {
                        name: proxy::behind_name(&s.name),
                        kind: Kind::Behind(Box::new(kind.clone()), nginx.clone()),
                    }),
                };
                std::iter::once(s).chain(behind)
            })
            .collect();
    }
    let mut names: Vec<&str> = subjects.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("'{}' is named twice: every target needs its own name", w[0]).into());
    }

    let mut notes = Vec::new();
    let Cpus {
        server: server_cpus,
        client: client_cpus,
    } = plan_cpus(args, start_mode, &mut notes)?;
    if let Some(cpus) = &client_cpus {
        sys::pin_current_thread(cpus).map_err(|e| format!("--client-cpus {cpus:?}: {e}"))?;
    }
    // c10k holds ten thousand sockets at once: take as many descriptors as the hard limit
    // allows (an unlimited hard limit is not a valid soft one, hence the cap).
    match sys::raise_fd_limit(FD_WANTED) {
        Ok(limit) if limit < (plan::settings_idle(args) + 1024) as u64 => notes.push(format!(
            "the open-file limit is {limit}: c10k's idle connections may not all open \
             (raise it with ulimit -n)"
        )),
        Ok(_) => {}
        Err(e) => notes.push(format!("could not raise the open-file limit: {e}")),
    }
    let threads = client_cpus.as_ref().map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        Vec::len,
    );
    let settings = settings(args, threads);

    let out = match &args.out {
        Some(dir) => dir.clone(),
        None => PathBuf::from("results").join(timestamp(started)),
    };
    std::fs::create_dir_all(out.join("logs"))
        .map_err(|e| format!("--out {}: {e}", out.display()))?;

    let interrupted = Arc::new(AtomicBool::new(false));
    // First Ctrl-C: finish the cell (it stops early), skip the rest, write what was measured.
    // A second one exits at once.
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&interrupted))?;
        signal_hook::flag::register(signal, Arc::clone(&interrupted))?;
    }

    let mut results = Results {
        schema: SCHEMA.to_string(),
        started: humantime::format_rfc3339_seconds(started).to_string(),
        finished: String::new(),
        command: std::env::args().collect(),
        interrupted: false,
        machine: machine(),
        versions,
        setup: Setup {
            mode: if start_mode { "start" } else { "target" }.to_string(),
            quick: args.quick,
            server_cpus: server_cpus.clone(),
            client_cpus: client_cpus.clone(),
            generator_threads: threads,
            duration_s: settings.duration.as_secs_f64(),
            warmup_s: settings.warmup.as_secs_f64(),
            concurrency: settings.concurrency.clone(),
            idle_connections: settings.idle,
            slow_clients: settings.slow_clients,
            zoo: zoo.as_ref().map(|z| z.display().to_string()),
            baseline: args.baseline.map(|_| "nginx".to_string()),
            behind: args.behind.map(|_| proxy::PROXY.to_string()),
            notes,
            rounds: args.rounds,
            anatomy_off: if !start_mode {
                Some(
                    "target mode: the servers run elsewhere, so perf and /proc cannot see them"
                        .to_string(),
                )
            } else if args.no_anatomy {
                Some("turned off with --no-anatomy".to_string())
            } else {
                None
            },
        },
        scenarios: scenarios.iter().map(|s| s.info(&settings)).collect(),
        targets: subjects.iter().map(target_info).collect(),
        cells: Vec::new(),
    };
    // The kernel's prices, on the CPU the servers run on: they turn the anatomy's counts into
    // time. Only where the servers run here.
    if start_mode {
        let cpu = server_cpus
            .as_ref()
            .and_then(|c| c.first().copied())
            .or_else(|| sys::allowed_cpus().ok().and_then(|c| c.first().copied()));
        // The ring has as many threads as a thread per connection has where the anatomy is read.
        let ring = results::headline_concurrency(&settings.concurrency).unwrap_or(0);
        match prices::measure(cpu, ring) {
            Ok(p) => results.machine.prices = Some(p),
            Err(e) => results
                .setup
                .notes
                .push(format!("the kernel's prices were not measured: {e}")),
        }
    }

    let plan = plan_cells(&subjects, &scenarios, &settings, args.rounds);
    let mut progress = Progress::new(&plan);
    eprintln!(
        "compare: {} target{}, {} scenario{}, {} cells, about {} (results in {})",
        subjects.len(),
        if subjects.len() == 1 { "" } else { "s" },
        scenarios.len(),
        if scenarios.len() == 1 { "" } else { "s" },
        plan.len(),
        format_eta(plan.iter().map(|c| c.estimate).sum()),
        out.display()
    );
    let mut measured = Vec::new();
    // The plan's order is the run's: one turn per round, target and scenario, with its variants.
    let same_turn = |a: &Planned, b: &Planned| {
        (a.round, &a.subject, a.scenario) == (b.round, &b.subject, b.scenario)
    };
    for turn in plan.chunk_by(same_turn) {
        let (round, scenario) = (turn[0].round, turn[0].scenario);
        let Some(subject) = subjects.iter().find(|s| s.name == turn[0].subject) else {
            continue;
        };
        let cells: Vec<&Planned> = turn.iter().collect();
        if interrupted.load(Ordering::Relaxed) {
            for c in cells {
                measured.push(skipped(c, "interrupted"));
                progress.done(c, None);
            }
            continue;
        }
        let log = out.join("logs").join(format!(
            "{}-{}{}.log",
            file_name(&subject.name),
            scenario.name(),
            if args.rounds > 1 {
                format!("-round{}", round + 1)
            } else {
                String::new()
            }
        ));
        run_scenario(
            subject,
            scenario,
            &cells,
            &settings,
            server_cpus.as_deref(),
            zoo.as_deref(),
            &log,
            &interrupted,
            &mut progress,
            &mut measured,
        );
        results.cells = median_rounds(&measured, args.rounds);
        results.finished = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        results.interrupted = interrupted.load(Ordering::Relaxed);
        write_results(&out, &results)?;
    }
    results.cells = median_rounds(&measured, args.rounds);
    progress.finish();
    results.finished = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    results.interrupted = interrupted.load(Ordering::Relaxed);
    write_results(&out, &results)?;
    render(&out, &results)?;
    let failed = results
        .cells
        .iter()
        .filter(|c| c.status == Status::Failed)
        .count();
    eprintln!(
        "compare: {} cells, {failed} failed; report: {} and {}",
        results.cells.len(),
        out.join("report.md").display(),
        out.join("report.html").display()
    );
    Ok(())
}

/// `loadtest report DIR`: report.md and the charts again, from results.json.
pub fn report_again(dir: &Path) -> Result<(), Box<dyn Error>> {
    let path = dir.join("results.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let results: Results =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    if results.schema != SCHEMA {
        return Err(format!(
            "{}: schema {:?}, this loadtest reads {SCHEMA:?}",
            path.display(),
            results.schema
        )
        .into());
    }
    render(dir, &results)?;
    eprintln!(
        "report: {} and {}",
        dir.join("report.md").display(),
        dir.join("report.html").display()
    );
    Ok(())
}

/// Writes report.md, report.html and the charts; a chart that cannot be drawn is said in the
/// report.
fn render(dir: &Path, results: &Results) -> Result<(), Box<dyn Error>> {
    let charts = charts::render_all(dir, results);
    for problem in &charts.problems {
        eprintln!("warning: {problem}");
    }
    let text = markdown::render(results, &charts);
    let path = dir.join("report.md");
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    html::write(dir, results)?;
    Ok(())
}

fn write_results(dir: &Path, results: &Results) -> Result<(), Box<dyn Error>> {
    let path = dir.join("results.json");
    let tmp = dir.join("results.json.tmp");
    let text = serde_json::to_string_pretty(results)? + "\n";
    // Written aside and renamed, so a reader never sees half a file.
    std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(())
}

/// A name made safe for a file name: letters, digits and `-` kept, the rest `_`.
pub fn file_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_in_paths() {
        assert_eq!(file_name("tokio:threads=1"), "tokio_threads_1");
    }
}
