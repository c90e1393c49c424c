//! The crowds of c10k and slowloris, and the two cells measured beside them: [`idle`] holds
//! thousands of idle keep-alive connections, [`slowloris`] trickles heads that never end.

pub mod idle;
pub mod slowloris;

use crate::compare::anatomy::WarmUp;
use crate::compare::results::{Cell, IdleFigures, Status};
use crate::compare::sampling::{self, Samplers};
use crate::compare::scenario::cell::{
    finish_cell, load, put_anatomy, run_loads, scrape, start_anatomy, Endpoint, OnTick,
};
use crate::compare::scenario::{
    Settings, ACTIVE_CONNECTIONS, NORMAL_RATE, NORMAL_SLOTS, TRICKLE_MS,
};
use idle::IdleCrowd;
use slowloris::Slowloris;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// c10k: open the idle crowd, measure the active load beside it, count what survived.
pub fn run_c10k(
    cell: &mut Cell,
    ep: &Endpoint,
    s: &Settings,
    interrupted: &AtomicBool,
    on_tick: OnTick<'_>,
) -> Result<(), String> {
    let rss = |pid: Option<u32>| pid.and_then(sampling::sample_tree);
    let pss = |pid: Option<u32>| pid.and_then(sampling::pss_tree);
    // A server not running here reports its own resident memory, when it does.
    let series = |ep: &Endpoint| {
        ep.pid
            .is_none()
            .then(|| scrape(ep).and_then(Result::ok)?.process)
            .flatten()
            .map(|p| p.resident_bytes)
    };
    let before = rss(ep.pid);
    let pss_before = pss(ep.pid);
    let series_before = series(ep);
    // Ten thousand connects at 256 in flight take a second or two; a model that holds them up
    // gets a generous bound before it counts as failed.
    let deadline = Duration::from_secs(10) + Duration::from_millis(3 * s.idle as u64);
    let mut crowd = IdleCrowd::open(
        ep.addr,
        &ep.authority,
        &ep.path("/plaintext"),
        s.idle,
        Duration::from_secs(5),
        deadline,
        interrupted,
    )
    .map_err(|e| format!("opening the idle connections: {e}"))?;
    // The kernel frees and the server settles its per-connection state shortly after the
    // last answer; measure memory when it has.
    std::thread::sleep(Duration::from_millis(200));
    let with_idle = rss(ep.pid);
    let pss_with_idle = pss(ep.pid);
    let series_with_idle = series(ep);
    let opened = crowd.stats().clone();
    let idle = opened.idle;
    let loads = vec![(
        "main",
        load(
            ep,
            s,
            "GET",
            "/plaintext",
            &[],
            ACTIVE_CONNECTIONS,
            false,
            5,
        )?,
    )];
    let counters_before = scrape(ep);
    let counting = start_anatomy(ep, s);
    let sampler = Samplers::start(ep.pid, ep.proxy_pid, s.warmup, s.sample_period);
    let measured = run_loads(loads, interrupted, on_tick);
    let usage = sampler.finish();
    let still_open = crowd.still_open();
    drop(crowd);
    let results = match measured {
        Ok(results) => results,
        Err(e) => {
            // perf is stopped either way: it must not outlive the cell.
            counting.map(WarmUp::finish);
            return Err(e);
        }
    };
    let counters_after = scrape(ep);
    finish_cell(
        cell,
        ep,
        results,
        usage,
        counters_before,
        counters_after,
        counting.as_ref(),
    );
    put_anatomy(cell, counting);
    let rss_before = before.map(|b| b.rss_bytes).or(series_before);
    let rss_with_idle = with_idle.map(|w| w.rss_bytes).or(series_with_idle);
    let per_connection = match (rss_before, rss_with_idle) {
        (Some(b), Some(w)) if idle > 0 => Some((w as f64 - b as f64) / idle as f64),
        _ => None,
    };
    let pss_per_connection = match (pss_before, pss_with_idle) {
        (Some(b), Some(w)) if idle > 0 => Some((w as f64 - b as f64) / idle as f64),
        _ => None,
    };
    cell.idle = Some(IdleFigures {
        rss_before_kb: rss_before.map(|b| b / 1024),
        rss_with_idle_kb: rss_with_idle.map(|w| w / 1024),
        rss_per_connection_bytes: per_connection,
        pss_before_kb: pss_before.map(|b| b / 1024),
        pss_with_idle_kb: pss_with_idle.map(|w| w / 1024),
        pss_per_connection_bytes: pss_per_connection,
        threads_with_idle: with_idle.map(|w| w.threads),
        still_open_after: still_open,
        open: opened.clone(),
    });
    let mut notes = Vec::new();
    if opened.failed > 0 {
        let mut why = Vec::new();
        if opened.not_kept_alive > 0 {
            why.push(format!(
                "{} closed by the server after their answer: no keep-alive",
                opened.not_kept_alive
            ));
        }
        if opened.non_2xx > 0 {
            why.push(format!("{} answered other than 2xx", opened.non_2xx));
        }
        notes.push(format!(
            "{} of {} idle connections failed to open{}",
            opened.failed,
            opened.wanted,
            if why.is_empty() {
                String::new()
            } else {
                format!(" ({})", why.join("; "))
            }
        ));
    }
    if still_open < idle {
        notes.push(format!(
            "the server closed {} of {idle} idle connections during the load",
            idle - still_open
        ));
    }
    if !notes.is_empty() {
        cell.reason = Some(notes.join("; "));
    }
    // A model that could hold fewer than nine in ten of the idle crowd failed the scenario,
    // whatever the active clients saw.
    if (idle as f64) < 0.9 * s.idle as f64 {
        cell.status = Status::Failed;
        let held = format!("held only {idle} of {} idle connections", s.idle);
        cell.reason = Some(match cell.reason.take() {
            Some(notes) => format!("{held}: {notes}"),
            None => held,
        });
    }
    Ok(())
}

/// slowloris: start the slow crowd, measure the normal client beside it, stop the crowd.
pub fn run_slowloris(
    cell: &mut Cell,
    ep: &Endpoint,
    s: &Settings,
    interrupted: &AtomicBool,
    on_tick: OnTick<'_>,
) -> Result<(), String> {
    let mut normal = load(ep, s, "GET", "/plaintext", &[], NORMAL_SLOTS, true, 2)?;
    normal.rate = Some(NORMAL_RATE);
    // Read the counter before the crowd arrives: a starved server could not answer it after.
    let counters_before = scrape(ep);
    let crowd = Slowloris::start(
        ep.addr,
        &ep.authority,
        &ep.path("/plaintext"),
        s.slow_clients,
        Duration::from_millis(TRICKLE_MS),
    );
    crowd.wait_connected(s.slow_clients as u64, Duration::from_secs(3));
    let counting = start_anatomy(ep, s);
    let sampler = Samplers::start(ep.pid, ep.proxy_pid, s.warmup, s.sample_period);
    let measured = run_loads(vec![("main", normal)], interrupted, on_tick);
    let usage = sampler.finish();
    let slow = crowd.stop();
    let results = match measured {
        Ok(results) => results,
        Err(e) => {
            // perf is stopped either way: it must not outlive the cell.
            counting.map(WarmUp::finish);
            return Err(e);
        }
    };
    // The server needs a moment to notice the crowd has gone before it can answer again.
    std::thread::sleep(Duration::from_millis(100));
    let counters_after = scrape(ep);
    finish_cell(
        cell,
        ep,
        results,
        usage,
        counters_before,
        counters_after,
        counting.as_ref(),
    );
    put_anatomy(cell, counting);
    cell.slow = Some(slow?);
    Ok(())
}
