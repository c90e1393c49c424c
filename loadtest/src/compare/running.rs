//! One scenario on one target: start the server (when compare owns it), measure each cell,
//! stop it; a cell cut short by Ctrl-C or a server that died is said in the cell. Rounds of the
//! same cell are folded into their median here.

use crate::compare::launch::{NginxSite, Server};
use crate::compare::plan::{Kind, Planned, Subject};
use crate::compare::progress::Progress;
use crate::compare::proxy;
use crate::compare::results::{Cell, Status};
use crate::compare::scenario::cell::{self, Endpoint};
use crate::compare::scenario::{Scenario, Settings};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Each cell once, its rounds folded into one: the round with the median req/s, carrying every
/// round's req/s. A cell that failed in any round is reported by its first failed round, so a
/// failure is never voted away; rounds skipped by an interrupt do not count. Cells keep the order
/// of their first round.
pub fn median_rounds(measured: &[Cell], rounds: u32) -> Vec<Cell> {
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

/// Starts the server (if compare owns it), runs the scenario's cells, stops the server.
#[allow(clippy::too_many_arguments)]
pub fn run_scenario(
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
    let started = start(&subject.kind, scenario, server_cpus, zoo, log);
    let (mut server, mut proxy) = match started {
        Ok(servers) => servers,
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
    let endpoint = endpoint(subject, server.as_ref(), proxy.as_ref());
    let command = server.as_ref().map(|s| s.command.clone());
    let first = out.len();
    for c in cells {
        if interrupted.load(Ordering::Relaxed) {
            let cell = skipped(c, "interrupted");
            progress.done(c, Some(&cell));
            out.push(cell);
            continue;
        }
        let died = exited(&mut server, &mut proxy);
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
                let mut cell = cell::run_cell(
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
                if let Some(reason) = exited(&mut server, &mut proxy) {
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
    // The proxy goes first, so the server sees its connections close as in a deployment.
    let mut unclean = Vec::new();
    for (what, server) in [("proxy: ", proxy), ("", server)] {
        if let Some(server) = server {
            let stopped = server.stop();
            if !stopped.clean {
                unclean.push(format!("{what}{}", stopped.how));
            }
        }
    }
    if !unclean.is_empty() {
        for cell in &mut out[first..] {
            cell.server_exit = Some(unclean.join("; "));
        }
    }
}

/// The servers compare starts for `kind`: the server itself (none for a running target) and,
/// behind a proxy, the proxy in front of it.
fn start(
    kind: &Kind,
    scenario: Scenario,
    server_cpus: Option<&[usize]>,
    zoo: Option<&Path>,
    log: &Path,
) -> Result<(Option<Server>, Option<Server>), String> {
    match kind {
        Kind::Model(spec) => match zoo {
            Some(zoo) => Server::start_zoo(zoo, spec, &scenario.server_args(), server_cpus, log)
                .map(|s| (Some(s), None)),
            None => Err("no zoo binary".to_string()),
        },
        Kind::Twin(spec) => Server::start_twin(spec, &scenario.server_args(), server_cpus, log)
            .map(|s| (Some(s), None)),
        Kind::Nginx(nginx) => Server::start_nginx(nginx, &NginxSite::Baseline, server_cpus, log)
            .map(|s| (Some(s), None)),
        Kind::Running(_) => Ok((None, None)),
        Kind::Behind(direct, nginx) => {
            let (server, _) = start(direct, scenario, server_cpus, zoo, log)?;
            let upstream = match (&server, &**direct) {
                (Some(server), _) => server.addr,
                (None, Kind::Running(target)) => target
                    .resolve()
                    .map_err(|e| format!("{}: {e}", target.url))?,
                (None, _) => return Err("no server to proxy to".to_string()),
            };
            let proxy_log = log.with_extension("proxy.log");
            let proxy = proxy::start_proxy(nginx, upstream, server_cpus, &proxy_log)?;
            Ok((server, Some(proxy)))
        }
    }
}

/// Where the cells' load goes: the proxy when there is one, else the server or the target.
fn endpoint(
    subject: &Subject,
    server: Option<&Server>,
    proxy: Option<&Server>,
) -> Result<Endpoint, String> {
    let direct = match &subject.kind {
        Kind::Behind(direct, _) => &**direct,
        kind => kind,
    };
    let mut ep = match (direct, server) {
        (Kind::Running(target), _) => match target.resolve() {
            Ok(addr) => Endpoint {
                name: subject.name.clone(),
                addr,
                authority: target.authority.clone(),
                base: target.path.trim_end_matches('/').to_string(),
                pid: None,
                zoo: true,
                proxy_pid: None,
            },
            Err(e) => return Err(format!("{}: {e}", target.url)),
        },
        (kind, Some(server)) => Endpoint {
            name: subject.name.clone(),
            addr: server.addr,
            authority: server.addr.to_string(),
            base: String::new(),
            pid: Some(server.pid),
            // The originals count their requests in zoo's `/metrics` series too.
            zoo: matches!(kind, Kind::Model(_) | Kind::Twin(_)),
            proxy_pid: None,
        },
        (_, None) => return Err("no server".to_string()),
    };
    if let Some(proxy) = proxy {
        ep.addr = proxy.addr;
        ep.authority = proxy.addr.to_string();
        ep.proxy_pid = Some(proxy.pid);
    }
    Ok(ep)
}

/// Why the server or its proxy is gone, if one is.
fn exited(server: &mut Option<Server>, proxy: &mut Option<Server>) -> Option<String> {
    let server = server.as_mut().and_then(Server::exited);
    let proxy = proxy
        .as_mut()
        .and_then(Server::exited)
        .map(|why| format!("the proxy {why}"));
    server.or(proxy)
}

/// A cell cut short by Ctrl-C: with nothing measured it was skipped; otherwise its figures
/// stand, covering the part that ran.
pub fn mark_interrupted(cell: &mut Cell) {
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

/// A planned cell that was not measured, with the reason.
pub fn skipped(c: &Planned, reason: &str) -> Cell {
    let mut cell = Cell::empty(
        c.subject.clone(),
        c.scenario,
        c.variant.clone(),
        c.connections,
        Status::Skipped,
        c.scenario.ideal_rps(),
    );
    cell.reason = Some(reason.to_string());
    cell
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(target: &str, rps: f64, status: Status) -> Cell {
        let mut c = Cell::empty(
            target.into(),
            Scenario::Plaintext,
            "c=64".into(),
            64,
            status,
            None,
        );
        c.headline = Some(crate::compare::results::Headline {
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
}
