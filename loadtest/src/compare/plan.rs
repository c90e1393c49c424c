//! The plan of a comparison, from the command line: the targets (subjects), the settings every
//! cell shares, the list of cells in the order they run, and the CPUs of server and client.

use crate::cli::CompareArgs;
use crate::compare::launch::ModelSpec;
use crate::compare::results::TargetInfo;
use crate::compare::scenario::{Scenario, Settings};
use crate::compare::twins::TwinSpec;
use crate::sys;
use crate::target::Target;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// c10k's idle connections, as `Settings` will have them.
pub fn settings_idle(args: &CompareArgs) -> usize {
    args.idle
        .map_or(if args.quick { 2000 } else { 10_000 }, |n| n as usize)
}

/// The settings every cell shares, from `args` and the generator's thread count.
pub fn settings(args: &CompareArgs, threads: usize) -> Settings {
    Settings {
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
        anatomy: !args.no_anatomy,
    }
}

/// What compare measures.
#[derive(Clone)]
pub enum Kind {
    /// A zoo model, started for each scenario.
    Model(ModelSpec),
    /// A Python original (peers/python), started for each scenario as a model is.
    Twin(TwinSpec),
    /// A running server.
    Running(Target),
    /// nginx, started for each scenario it can serve.
    Nginx(PathBuf),
    /// A target measured through a reverse proxy (`--behind`): nginx at this path, started in
    /// front of it for each scenario.
    Behind(Box<Kind>, PathBuf),
}

/// A target of the comparison, with its name in the tables.
pub struct Subject {
    /// The name in the tables.
    pub name: String,
    /// What it is.
    pub kind: Kind,
}

/// One cell of the plan.
pub struct Planned {
    /// Its place in the plan.
    pub index: usize,
    /// Which round it belongs to (0-based).
    pub round: u32,
    /// The target's name.
    pub subject: String,
    /// The scenario.
    pub scenario: Scenario,
    /// The variant, e.g. `c=64`.
    pub variant: String,
    /// The main load's connections.
    pub connections: usize,
    /// How long it should take.
    pub estimate: Duration,
}

/// The order in which round `round` of `rounds` goes through `targets` targets, as indices: each
/// round starts a further `targets / rounds` along and wraps, so that no target is always the
/// first measured or the last. A noisy machine drifts over minutes: with one fixed order the
/// targets at the end of every round would meet the drift at the same distance from the baseline
/// at the start, and their medians would carry it. The first round keeps the given order.
pub fn round_order(targets: usize, round: u32, rounds: u32) -> impl Iterator<Item = usize> {
    let rounds = rounds.max(1) as usize;
    let start = round as usize % rounds * targets / rounds;
    (0..targets).map(move |i| (start + i) % targets)
}

/// Every cell of the comparison in the order they run: round, target (each round in its
/// [`round_order`]), scenario, variant.
pub fn plan_cells(
    subjects: &[Subject],
    scenarios: &[Scenario],
    s: &Settings,
    rounds: u32,
) -> Vec<Planned> {
    let mut plan = Vec::new();
    for round in 0..rounds {
        for subject in round_order(subjects.len(), round, rounds).map(|i| &subjects[i]) {
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

/// What results.json says of a target.
pub fn target_info(s: &Subject) -> TargetInfo {
    match &s.kind {
        Kind::Model(spec) => TargetInfo {
            name: s.name.clone(),
            kind: "model".to_string(),
            model: Some(spec.model.clone()),
            args: spec.args.clone(),
            url: None,
            proxy: None,
            mirrors: Vec::new(),
        },
        Kind::Twin(spec) => TargetInfo {
            name: s.name.clone(),
            kind: "original".to_string(),
            model: Some(spec.twin.name.clone()),
            args: spec
                .settings
                .iter()
                .flat_map(|(k, v)| [format!("--{k}"), v.clone()])
                .collect(),
            url: None,
            proxy: None,
            mirrors: spec.twin.mirrors.clone(),
        },
        Kind::Running(target) => TargetInfo {
            name: s.name.clone(),
            kind: "target".to_string(),
            model: None,
            args: Vec::new(),
            url: Some(target.url.clone()),
            proxy: None,
            mirrors: Vec::new(),
        },
        Kind::Behind(direct, nginx) => {
            let mut info = target_info(&Subject {
                name: s.name.clone(),
                kind: (**direct).clone(),
            });
            info.kind = "behind".to_string();
            info.proxy = Some(nginx.display().to_string());
            info
        }
        Kind::Nginx(path) => TargetInfo {
            name: s.name.clone(),
            kind: "baseline".to_string(),
            model: None,
            args: vec![path.display().to_string()],
            url: None,
            proxy: None,
            mirrors: Vec::new(),
        },
    }
}

/// The scenarios of `--scenarios`, in the catalogue's order.
pub fn parse_scenarios(list: &str) -> Result<Vec<Scenario>, String> {
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
pub fn model_list(zoo: &Path, list: &str) -> Result<Vec<ModelSpec>, String> {
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
pub struct Cpus {
    /// The servers' CPUs.
    pub server: Option<Vec<usize>>,
    /// The generator's CPUs.
    pub client: Option<Vec<usize>>,
}

/// The server and client CPUs: as given, or halves of this process's CPUs when compare starts
/// the servers. Against running targets the server is not ours to pin, and the client keeps
/// what it inherited (a container's cpuset) unless told otherwise.
pub fn plan_cpus(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_round_starts_further_along_and_covers_every_target_once() {
        let order = |round, rounds| round_order(5, round, rounds).collect::<Vec<_>>();
        assert_eq!(order(0, 1), [0, 1, 2, 3, 4]);
        assert_eq!(order(0, 3), [0, 1, 2, 3, 4]);
        assert_eq!(order(1, 3), [1, 2, 3, 4, 0]);
        assert_eq!(order(2, 3), [3, 4, 0, 1, 2]);
        // Fifteen targets in three rounds: each is first, in the middle and near the end once.
        let firsts: Vec<usize> = (0..3)
            .map(|r| round_order(15, r, 3).next().unwrap())
            .collect();
        assert_eq!(firsts, [0, 5, 10]);
        for r in 0..3 {
            let mut all: Vec<usize> = round_order(15, r, 3).collect();
            all.sort_unstable();
            assert_eq!(all, (0..15).collect::<Vec<_>>());
        }
        assert_eq!(round_order(0, 1, 3).count(), 0);
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
}
