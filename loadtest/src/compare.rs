//! `loadtest compare`: every model through every scenario, one command, one report.
//!
//! The matrix is targets × scenarios × variants. A target is a zoo model compare starts itself
//! (`--models`, every name `zoo --list-models` prints by default), a running server
//! (`--target NAME=URL`, as the docker comparison does), or the nginx baseline. Started servers
//! get a fresh process for each scenario, so no scenario inherits another's connections, memory
//! or damage; they run on the server CPUs, and this process (the generator) on the client CPUs.
//!
//! Each cell is measured by [`scenarios::run_cell`] with the `run` engine in this process. After
//! each scenario `results.json` is written again, so an interrupted or crashed comparison keeps
//! what it measured; at the end `report.md` and the charts are rendered from it
//! ([`markdown`](crate::markdown), [`charts`](crate::charts)). A model that cannot start, dies,
//! or fails a scenario stays in the results with the reason.

use crate::cli::{Baseline, CompareArgs};
use crate::launch::{ModelSpec, Server};
use crate::results::{Cell, Machine, Results, Setup, Status, TargetInfo, Versions, SCHEMA};
use crate::scenarios::{self, Endpoint, Scenario, Settings};
use crate::target::Target;
use crate::{charts, markdown, sys};
use indicatif::{ProgressBar, ProgressStyle};
use std::error::Error;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Open files compare asks for: c10k's crowd, its active load and everything else.
const FD_WANTED: u64 = 1 << 20;

/// c10k's idle connections, as `Settings` will have them.
fn settings_idle(args: &CompareArgs) -> usize {
    args.idle
        .map_or(if args.quick { 2000 } else { 10_000 }, |n| n as usize)
}

/// What compare measures.
enum Kind {
    /// A zoo model, started for each scenario.
    Model(ModelSpec),
    /// A running server.
    Running(Target),
    /// nginx, started for each scenario it can serve.
    Nginx(PathBuf),
}

struct Subject {
    name: String,
    kind: Kind,
}

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
        let nginx = find_nginx(args.nginx.as_deref())?;
        versions.nginx = tool_version(&nginx, "-v");
        subjects.push(Subject {
            name: "nginx".to_string(),
            kind: Kind::Nginx(nginx),
        });
    }
    match &zoo {
        Some(zoo) => {
            versions.zoo = tool_version(zoo, "--version");
            for spec in model_list(zoo, &args.models)? {
                subjects.push(Subject {
                    name: spec.name.clone(),
                    kind: Kind::Model(spec),
                });
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
        Ok(limit) if limit < (settings_idle(args) + 1024) as u64 => notes.push(format!(
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
    let settings = Settings {
        duration: args
            .duration
            .unwrap_or(Duration::from_millis(if args.quick { 1000 } else { 5000 })),
        warmup: args
            .warmup
            .unwrap_or(Duration::from_millis(if args.quick { 250 } else { 1000 })),
        threads,
        concurrency: args.concurrency.clone().map(|n| n.0).unwrap_or_else(|| {
            if args.quick {
                vec![1, 64, 1024]
            } else {
                vec![1, 16, 64, 256, 1024]
            }
        }),
        idle: settings_idle(args),
        slow_clients: args
            .slow_clients
            .map_or(if args.quick { 200 } else { 500 }, |n| n as usize),
        sample_period: Duration::from_millis(if args.quick { 100 } else { 250 }),
    };

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
            notes,
            rounds: args.rounds,
        },
        scenarios: scenarios.iter().map(|s| s.info(&settings)).collect(),
        targets: subjects.iter().map(target_info).collect(),
        cells: Vec::new(),
    };

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
    let turns = (0..args.rounds)
        .flat_map(|r| subjects.iter().map(move |s| (r, s)))
        .flat_map(|(r, s)| scenarios.iter().map(move |&sc| (r, s, sc)));
    for (round, subject, scenario) in turns {
        let cells: Vec<&Planned> = plan
            .iter()
            .filter(|c| c.round == round && c.subject == subject.name)
            .filter(|c| c.scenario == scenario)
            .collect();
        if cells.is_empty() {
            continue;
        }
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
        "compare: {} cells, {failed} failed; report: {}",
        results.cells.len(),
        out.join("report.md").display()
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
    eprintln!("report: {}", dir.join("report.md").display());
    Ok(())
}

/// Writes report.md, report.html and the charts; a chart that cannot be drawn is said in the report.
fn render(dir: &Path, results: &Results) -> Result<(), Box<dyn Error>> {
    let charts = charts::render_all(dir, results);
    for problem in &charts.problems {
        eprintln!("warning: {problem}");
    }
    let text = markdown::render(results, &charts);
    let path = dir.join("report.md");
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    crate::html::write(dir, results)?;
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

/// Each cell once, its rounds folded into one: the round with the median req/s, carrying every
/// round's req/s. A cell that failed in any round is reported by its first failed round, so a
/// failure is never voted away; rounds skipped by an interrupt do not count. Cells keep the order
/// of their first round.
fn median_rounds(measured: &[Cell], rounds: u32) -> Vec<Cell> {
    if rounds <= 1 {
        return measured.to_vec();
    }
    let same = |a: &Cell, b: &Cell| {
        a.target == b.target && a.scenario == b.scenario && a.variant == b.variant
    };
    let mut out: Vec<Cell> = Vec::new();
    for first in measured {
        if out.iter().any(|c| same(c, first)) {
            continue;
        }
        // Rounds an interrupt skipped say nothing, unless no round ran at all.
        let ran: Vec<&Cell> = measured
            .iter()
            .filter(|c| same(c, first) && c.status != Status::Skipped)
            .collect();
        let all = if ran.is_empty() { vec![first] } else { ran };
        let rps = |c: &Cell| c.headline.as_ref().map_or(0.0, |h| h.requests_per_s);
        let chosen = match all.iter().find(|c| c.status != Status::Ok) {
            Some(failed) => *failed,
            None => {
                let mut by_rps = all.clone();
                by_rps.sort_by(|a, b| rps(a).total_cmp(&rps(b)));
                by_rps[by_rps.len() / 2]
            }
        };
        let mut cell = chosen.clone();
        cell.rounds_rps = all.iter().map(|c| rps(c)).collect();
        out.push(cell);
    }
    out
}

/// One cell of the plan.
struct Planned {
    index: usize,
    /// Which round it belongs to (0-based).
    round: u32,
    subject: String,
    scenario: Scenario,
    variant: String,
    connections: usize,
    estimate: Duration,
}

fn plan_cells(
    subjects: &[Subject],
    scenarios: &[Scenario],
    s: &Settings,
    rounds: u32,
) -> Vec<Planned> {
    let mut plan = Vec::new();
    for round in 0..rounds {
        for subject in subjects {
            for &scenario in scenarios {
                if matches!(subject.kind, Kind::Nginx(_)) && !scenario.baseline_applies() {
                    continue;
                }
                for (variant, connections) in scenario.variants(s) {
                    plan.push(Planned {
                        index: plan.len(),
                        round,
                        subject: subject.name.clone(),
                        scenario,
                        variant,
                        connections,
                        estimate: scenario.estimate(s),
                    });
                }
            }
        }
    }
    plan
}

/// Starts the server (if compare owns it), runs the scenario's cells, stops the server.
#[allow(clippy::too_many_arguments)]
fn run_scenario(
    subject: &Subject,
    scenario: Scenario,
    cells: &[&Planned],
    settings: &Settings,
    server_cpus: Option<&[usize]>,
    zoo: Option<&Path>,
    log: &Path,
    interrupted: &AtomicBool,
    progress: &mut Progress,
    out: &mut Vec<Cell>,
) {
    let started = match &subject.kind {
        Kind::Model(spec) => match zoo {
            Some(zoo) => {
                Server::start_zoo(zoo, spec, &scenario.server_args(), server_cpus, log).map(Some)
            }
            None => Err("no zoo binary".to_string()),
        },
        Kind::Nginx(nginx) => Server::start_nginx(nginx, server_cpus, log).map(Some),
        Kind::Running(_) => Ok(None),
    };
    let mut server = match started {
        Ok(server) => server,
        Err(reason) => {
            for c in cells {
                let mut cell = skipped(c, &format!("could not start: {reason}"));
                cell.status = Status::Failed;
                progress.done(c, Some(&cell));
                out.push(cell);
            }
            return;
        }
    };
    let endpoint = match (&subject.kind, &server) {
        (Kind::Running(target), _) => match target.resolve() {
            Ok(addr) => Ok(Endpoint {
                name: subject.name.clone(),
                addr,
                authority: target.authority.clone(),
                base: target.path.trim_end_matches('/').to_string(),
                pid: None,
                zoo: true,
            }),
            Err(e) => Err(format!("{}: {e}", target.url)),
        },
        (kind, Some(server)) => Ok(Endpoint {
            name: subject.name.clone(),
            addr: server.addr,
            authority: server.addr.to_string(),
            base: String::new(),
            pid: Some(server.pid),
            zoo: matches!(kind, Kind::Model(_)),
        }),
        (_, None) => Err("no server".to_string()),
    };
    let command = server.as_ref().map(|s| s.command.clone());
    let first = out.len();
    for c in cells {
        if interrupted.load(Ordering::Relaxed) {
            let cell = skipped(c, "interrupted");
            progress.done(c, Some(&cell));
            out.push(cell);
            continue;
        }
        let died = server.as_mut().and_then(Server::exited);
        let mut cell = match (&endpoint, died) {
            (_, Some(reason)) => {
                let mut cell = skipped(c, &reason);
                cell.status = Status::Failed;
                cell
            }
            (Err(reason), None) => {
                let mut cell = skipped(c, reason);
                cell.status = Status::Failed;
                cell
            }
            (Ok(ep), None) => {
                progress.begin(c);
                let started = Instant::now();
                let mut on_tick = |tick: crate::run::Tick| progress.tick(c, started, tick);
                let mut cell = scenarios::run_cell(
                    scenario,
                    &c.variant,
                    c.connections,
                    ep,
                    settings,
                    interrupted,
                    &mut on_tick,
                );
                if interrupted.load(Ordering::Relaxed) {
                    mark_interrupted(&mut cell);
                }
                if let Some(reason) = server.as_mut().and_then(Server::exited) {
                    cell.status = Status::Failed;
                    cell.reason = Some(match cell.reason.take() {
                        Some(old) => format!("{reason}; {old}"),
                        None => reason,
                    });
                }
                cell
            }
        };
        cell.server_command = command.clone();
        progress.done(c, Some(&cell));
        out.push(cell);
    }
    if let Some(server) = server {
        let stopped = server.stop();
        if !stopped.clean {
            for cell in &mut out[first..] {
                cell.server_exit = Some(stopped.how.clone());
            }
        }
    }
}

/// A cell cut short by Ctrl-C: with nothing measured it was skipped; otherwise its figures
/// stand, covering the part that ran.
fn mark_interrupted(cell: &mut Cell) {
    let measured = cell.headline.as_ref().is_some_and(|h| h.requests > 0);
    if measured {
        cell.reason = Some(match cell.reason.take() {
            Some(r) => format!("interrupted, the figures cover the part that ran; {r}"),
            None => "interrupted, the figures cover the part that ran".to_string(),
        });
    } else {
        cell.status = Status::Skipped;
        cell.reason = Some("interrupted".to_string());
    }
}

fn skipped(c: &Planned, reason: &str) -> Cell {
    let mut cell = Cell::empty(
        c.subject.clone(),
        c.scenario.name(),
        c.variant.clone(),
        c.connections,
        Status::Skipped,
        c.scenario.ideal_rps(),
    );
    cell.reason = Some(reason.to_string());
    cell
}

fn target_info(s: &Subject) -> TargetInfo {
    match &s.kind {
        Kind::Model(spec) => TargetInfo {
            name: s.name.clone(),
            kind: "model".to_string(),
            model: Some(spec.model.clone()),
            args: spec.args.clone(),
            url: None,
        },
        Kind::Running(target) => TargetInfo {
            name: s.name.clone(),
            kind: "target".to_string(),
            model: None,
            args: Vec::new(),
            url: Some(target.url.clone()),
        },
        Kind::Nginx(path) => TargetInfo {
            name: s.name.clone(),
            kind: "baseline".to_string(),
            model: None,
            args: vec![path.display().to_string()],
            url: None,
        },
    }
}

fn parse_scenarios(list: &str) -> Result<Vec<Scenario>, String> {
    if list.trim() == "all" {
        return Ok(Scenario::ALL.to_vec());
    }
    let mut chosen = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let Some(scenario) = Scenario::parse(name) else {
            let known: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
            return Err(format!(
                "--scenarios: no scenario '{name}'; there are {}",
                known.join(", ")
            ));
        };
        if !chosen.contains(&scenario) {
            chosen.push(scenario);
        }
    }
    if chosen.is_empty() {
        return Err("--scenarios: name at least one".to_string());
    }
    // The report reads best in the catalogue's order, whatever order they were given in.
    chosen.sort_by_key(|s| Scenario::ALL.iter().position(|x| x == s));
    Ok(chosen)
}

/// The models of `--models`: `all` asks zoo which it has, now.
fn model_list(zoo: &Path, list: &str) -> Result<Vec<ModelSpec>, String> {
    let names: Vec<String> = if list.trim() == "all" {
        let out = Command::new(zoo)
            .arg("--list-models")
            .output()
            .map_err(|e| format!("{} --list-models: {e}", zoo.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{} --list-models failed: {}",
                zoo.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    } else {
        list.split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect()
    };
    if names.is_empty() {
        return Err("--models: no model to run".to_string());
    }
    names
        .iter()
        .map(|n| ModelSpec::parse(n).map_err(|e| format!("--models: {e}")))
        .collect()
}

/// Where the servers and the generator run; `None` is not pinned.
struct Cpus {
    server: Option<Vec<usize>>,
    client: Option<Vec<usize>>,
}

/// The server and client CPUs: as given, or halves of this process's CPUs when compare starts
/// the servers. Against running targets the server is not ours to pin, and the client keeps
/// what it inherited (a container's cpuset) unless told otherwise.
fn plan_cpus(
    args: &CompareArgs,
    start_mode: bool,
    notes: &mut Vec<String>,
) -> Result<Cpus, String> {
    let allowed = sys::allowed_cpus().map_err(|e| format!("sched_getaffinity: {e}"))?;
    let given_server = args.server_cpus.clone().map(|n| n.0);
    let given_client = args.client_cpus.clone().map(|n| n.0);
    for (flag, cpus) in [
        ("--server-cpus", &given_server),
        ("--client-cpus", &given_client),
    ] {
        if let Some(bad) = cpus.iter().flatten().find(|c| !allowed.contains(c)) {
            return Err(format!(
                "{flag}: CPU {bad} is not among this process's CPUs {allowed:?}"
            ));
        }
    }
    if !start_mode {
        if given_server.is_some() {
            notes.push("--server-cpus has no effect on running targets".to_string());
        }
        return Ok(Cpus {
            server: None,
            client: given_client,
        });
    }
    let half = allowed.len() / 2;
    let server = given_server.or_else(|| (half > 0).then(|| allowed[..half].to_vec()));
    let client = given_client.or_else(|| (half > 0).then(|| allowed[half..].to_vec()));
    if server.is_none() || client.is_none() {
        notes.push(format!(
            "only {} CPU: server and generator share it, so every figure includes the \
             generator's own cost",
            allowed.len()
        ));
    }
    if let (Some(s), Some(c)) = (&server, &client) {
        if s.iter().any(|cpu| c.contains(cpu)) {
            notes.push(format!(
                "server CPUs {s:?} and client CPUs {c:?} overlap: they compete for them"
            ));
        }
    }
    Ok(Cpus { server, client })
}

/// zoo: as given, next to this program (the same cargo target directory), or on PATH.
fn find_zoo(given: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(path) = given {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(format!("--zoo {}: no such file", path.display()))
        };
    }
    let beside = std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name("zoo"));
    beside
        .into_iter()
        .chain(on_path("zoo"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            "no zoo binary next to loadtest or on PATH: build it (cargo build --release \
             -p servers) or pass --zoo PATH"
                .to_string()
        })
}

fn find_nginx(given: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(path) = given {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(format!("--nginx {}: no such file", path.display()))
        };
    }
    std::iter::once(PathBuf::from("/usr/sbin/nginx"))
        .chain(on_path("nginx"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            "--baseline nginx: nginx is not installed (Debian/Ubuntu: apt-get install \
             nginx-light) or pass --nginx PATH"
                .to_string()
        })
}

fn on_path(name: &str) -> Vec<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(name)).collect())
        .unwrap_or_default()
}

/// The first line a tool prints for its version (nginx prints it on stderr).
fn tool_version(tool: &Path, flag: &str) -> Option<String> {
    let out = Command::new(tool).arg(flag).output().ok()?;
    let text = [out.stdout, out.stderr].concat();
    String::from_utf8_lossy(&text)
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string)
}

fn machine() -> Machine {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| {
            let (key, value) = l.split_once(':')?;
            matches!(key.trim(), "model name" | "Hardware" | "cpu model")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".to_string());
    let cpus_online = crate::cli::parse_cpu_list(read("/sys/devices/system/cpu/online").trim())
        .map_or(0, |l| l.len());
    let memory_kb = read("/proc/meminfo")
        .lines()
        .find_map(|l| {
            l.strip_prefix("MemTotal:")?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0);
    Machine {
        cpu_model,
        cpus_online,
        cpus_allowed: sys::allowed_cpus().unwrap_or_default(),
        kernel: format!(
            "{} {}",
            read("/proc/sys/kernel/ostype").trim(),
            read("/proc/sys/kernel/osrelease").trim()
        ),
        memory_kb,
        hostname: read("/proc/sys/kernel/hostname").trim().to_string(),
    }
}

/// `20250102T030405Z`: sorts by time and is safe in a path.
fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .replace(['-', ':'], "")
}

fn file_name(name: &str) -> String {
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

/// `1m 20s`, `45s`.
fn format_eta(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// Which cell is running, how far it is, and how long the rest will take: a bar on a
/// terminal, a line per finished cell otherwise (CI logs, docker).
struct Progress {
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
    fn new(plan: &[Planned]) -> Progress {
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

    fn begin(&mut self, c: &Planned) {
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

    fn tick(&self, c: &Planned, started: Instant, tick: crate::run::Tick) {
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

    fn done(&mut self, c: &Planned, cell: Option<&Cell>) {
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

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(target: &str, rps: f64, status: Status) -> Cell {
        let mut c = Cell::empty(target.into(), "plaintext", "c=64".into(), 64, status, None);
        c.headline = Some(crate::results::Headline {
            requests_per_s: rps,
            ..Default::default()
        });
        c
    }

    #[test]
    fn rounds_fold_into_the_median_and_a_failure_is_kept() {
        let measured = vec![
            round("a", 300.0, Status::Ok),
            round("b", 10.0, Status::Ok),
            round("a", 100.0, Status::Ok),
            round("b", 20.0, Status::Failed),
            round("a", 200.0, Status::Ok),
            round("b", 30.0, Status::Skipped),
        ];
        let cells = median_rounds(&measured, 3);
        assert_eq!(cells.len(), 2);
        assert_eq!(cells[0].target, "a");
        assert_eq!(cells[0].headline.as_ref().unwrap().requests_per_s, 200.0);
        assert_eq!(cells[0].rounds_rps, [300.0, 100.0, 200.0]);
        // b failed in one round: that round is what the report shows; the skipped one is left out.
        assert_eq!(cells[1].status, Status::Failed);
        assert_eq!(cells[1].rounds_rps, [10.0, 20.0]);
        // One round: the cells as measured.
        assert_eq!(median_rounds(&measured[..2], 1).len(), 2);
    }

    #[test]
    fn scenarios_parse_in_catalogue_order() {
        let s = parse_scenarios("upload, plaintext,upload").expect("valid");
        assert_eq!(s, vec![Scenario::Plaintext, Scenario::Upload]);
        assert_eq!(
            parse_scenarios("all").expect("all").len(),
            Scenario::ALL.len()
        );
        let err = parse_scenarios("plaintext,nope").expect_err("unknown");
        assert!(err.contains("nope") && err.contains("slowloris"), "{err}");
    }

    #[test]
    fn names_and_times_are_safe_and_short() {
        assert_eq!(file_name("tokio:threads=1"), "tokio_threads_1");
        assert_eq!(format_eta(Duration::from_secs(80)), "1m 20s");
        assert_eq!(format_eta(Duration::from_secs(7)), "7s");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(timestamp(t), "20231114T221320Z");
    }
}
