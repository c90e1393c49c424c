//! `loadtest compare --quick` end to end, on real zoo servers: three models through a few
//! scenarios, then the files it wrote are checked: figures in results.json for every model and
//! scenario, the tables in report.md, the charts, and that every cell's count of responses
//! agrees with the server's own `zoo_requests_total`.
//!
//! The zoo binary comes from the same cargo target directory as this test. `cargo test
//! --workspace` (what `make test` runs) has built it already, because the servers package has
//! integration tests of its own; `cargo test -p loadtest` has not, so the test runs `cargo build
//! -p servers --bin zoo` for the profile it was built with. Cargo releases its build lock before
//! it runs tests, so this does not wait on the outer cargo, and it is a no-op when zoo is fresh.
//! `ZOO_BIN=/path/to/zoo` skips the build.

mod support;

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{zoo, TempDir};

/// The scenarios of this test: one of each kind of load, quick enough for CI.
const SCENARIOS: [&str; 6] = [
    "plaintext",
    "pipelined",
    "io-wait",
    "churn",
    "upload",
    "slowloris",
];
/// The whole comparison must end well within this (it takes about a minute in a debug build).
const LIMIT: Duration = Duration::from_secs(240);

/// thread and pool, and a third model: whatever else `zoo --list-models` offers, or else a
/// variant of pool with more threads (a spec compare runs as a model of its own).
fn three_models(zoo: &Path) -> Vec<String> {
    let out = Command::new(zoo)
        .arg("--list-models")
        .output()
        .expect("zoo --list-models");
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    let names: Vec<&str> = listed.lines().map(str::trim).collect();
    assert!(
        names.contains(&"thread") && names.contains(&"pool"),
        "{names:?}"
    );
    // The third must be quick through io-wait's 1000 connections: prefer a non-blocking model.
    let preferred = [
        "epoll",
        "tokio",
        "poll",
        "smol",
        "async-std",
        "coroutine",
        "uring",
    ];
    let third = preferred
        .iter()
        .find(|m| names.contains(m))
        .map(|m| m.to_string())
        .or_else(|| {
            names
                .iter()
                .find(|m| !["thread", "pool", "fork", "prefork", "select"].contains(m))
                .map(|m| m.to_string())
        })
        .unwrap_or_else(|| "pool:threads=16".to_string());
    vec!["thread".to_string(), "pool".to_string(), third]
}

/// Runs `loadtest ARGS`, killing it if it outlives [`LIMIT`].
fn loadtest(args: &[&str]) -> (bool, String) {
    let log = TempDir::new("compare-log");
    let err_path = log.path("stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("start loadtest");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "loadtest {args:?} ran over {LIMIT:?}:\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (
        status.success(),
        std::fs::read_to_string(&err_path).unwrap_or_default(),
    )
}

/// Runs `compare --quick` of `models` on plaintext at `connections`, with `extra` arguments,
/// into `out`.
fn quick_plaintext(
    zoo: &Path,
    models: &str,
    connections: &str,
    extra: &[&str],
    out: &Path,
) -> (bool, String) {
    let mut args = vec![
        "compare",
        "--quick",
        "--zoo",
        zoo.to_str().expect("utf-8 path"),
        "--models",
        models,
        "--scenarios",
        "plaintext",
        "--concurrency",
        connections,
        "--out",
        out.to_str().expect("utf-8 path"),
    ];
    args.extend_from_slice(extra);
    loadtest(&args)
}

/// A short run: 300 ms measured, no warm-up.
const SHORT: [&str; 4] = ["--duration", "300ms", "--warmup", "0s"];

/// The results.json compare wrote into `out`.
fn results_json(out: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).expect("results.json"))
        .expect("valid JSON")
}

fn non_empty(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(!bytes.is_empty(), "{} is empty", path.display());
    bytes
}

#[test]
fn quick_compare_of_three_models() {
    let _one = support::exclusive();
    let zoo = zoo();
    let models = three_models(&zoo);
    let dir = TempDir::new("compare");
    let out = dir.path("out");
    let (models_arg, scenarios_arg) = (models.join(","), SCENARIOS.join(","));
    let args = [
        "compare",
        "--quick",
        "--zoo",
        zoo.to_str().expect("utf-8 path"),
        "--models",
        &models_arg,
        "--scenarios",
        &scenarios_arg,
        "--concurrency",
        "1,64",
        "--duration",
        "1s",
        "--warmup",
        "200ms",
        "--slow-clients",
        "100",
        "--out",
        out.to_str().expect("utf-8 path"),
    ];
    let (ok, stderr) = loadtest(&args);
    assert!(ok, "loadtest compare failed:\n{stderr}");

    // results.json: a cell with figures for every model, scenario and variant.
    let text = std::fs::read_to_string(out.join("results.json")).expect("results.json");
    let results: Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(results["schema"], "zoo-compare/1");
    assert!(results["machine"]["cpu_model"].is_string());
    assert!(results["machine"]["kernel"].is_string());
    assert!(results["versions"]["zoo"].is_string());
    let cells = results["cells"].as_array().expect("cells");
    let variants = |scenario: &str| match scenario {
        "plaintext" | "pipelined" | "upload" => 2,
        _ => 1,
    };
    for model in &models {
        for scenario in SCENARIOS {
            let mine: Vec<&Value> = cells
                .iter()
                .filter(|c| c["target"] == model.as_str() && c["scenario"] == scenario)
                .collect();
            assert_eq!(mine.len(), variants(scenario), "{model} {scenario}");
            for c in mine {
                assert_eq!(
                    c["status"], "ok",
                    "{model} {scenario} {}: {}\n{stderr}",
                    c["variant"], c["reason"]
                );
                let rps = c["headline"]["requests_per_s"].as_f64().unwrap_or(0.0);
                assert!(rps > 0.0, "{model} {scenario}: no throughput");
                assert!(
                    c["server"]["usage"]["cpu_s"].as_f64().is_some(),
                    "{model} {scenario}: the server was sampled"
                );
                assert!(c["server"]["usage"]["rss_peak_kb"].as_u64().unwrap_or(0) > 0);
                let loads = c["loads"].as_array().expect("loads");
                assert!(
                    loads[0]["report"]["latency"]["histogram"]
                        .as_str()
                        .is_some_and(|h| h.starts_with("HISTFAA")),
                    "every load keeps its whole histogram"
                );
                // The server's own count of requests agrees with what the client received.
                let m = &c["metrics"];
                assert_eq!(
                    m["agrees"],
                    true,
                    "{model} {scenario} {}: client {} (errors {}), server {} ({})",
                    c["variant"],
                    m["client_responses"],
                    m["client_errors"],
                    m["server_requests"],
                    m["note"]
                );
                assert!(m["server_requests"].as_u64().unwrap_or(0) > 0);
            }
        }
    }
    let slow = cells
        .iter()
        .find(|c| c["scenario"] == "slowloris")
        .expect("a slowloris cell");
    assert_eq!(slow["slow"]["clients"], 100);
    assert!(slow["slow"]["connects"].as_u64().unwrap_or(0) >= 100);

    // report.md: a table per scenario naming every model, and the /metrics section.
    let report = String::from_utf8(non_empty(&out.join("report.md"))).expect("utf-8");
    for scenario in SCENARIOS {
        let at = report
            .find(&format!("\n## {scenario}\n"))
            .unwrap_or_else(|| panic!("report.md has no section {scenario}:\n{report}"));
        let section = &report[at..];
        let section = &section[..section[4..].find("\n## ").map_or(section.len(), |e| e + 4)];
        assert!(section.contains("| model |"), "{scenario}: no table");
        assert!(section.contains("**Reading.**"), "{scenario}: no reading");
        for model in &models {
            assert!(
                section.contains(&format!("| {model} |")),
                "{scenario}: no row for {model}"
            );
        }
    }
    assert!(report.contains("## Counts against the server's /metrics"));
    assert!(!report.contains("**Disagreements:**"), "{report}");

    // The charts, as SVG and PNG.
    for stem in [
        "plaintext-throughput",
        "plaintext-latency",
        "pipelined-throughput",
        "io-wait-latency",
        "upload-chunked-latency",
        "slowloris-latency",
    ] {
        let svg = non_empty(&out.join("charts").join(format!("{stem}.svg")));
        assert!(svg.starts_with(b"<svg"), "{stem}.svg is SVG");
        let png = non_empty(&out.join("charts").join(format!("{stem}.png")));
        assert!(png.starts_with(b"\x89PNG"), "{stem}.png is PNG");
        assert!(
            report.contains(&format!("charts/{stem}.png")),
            "report.md shows {stem}"
        );
    }

    // `loadtest report DIR` renders the same report again from results.json alone.
    std::fs::remove_file(out.join("report.md")).expect("remove report.md");
    std::fs::remove_dir_all(out.join("charts")).expect("remove charts");
    let (ok, stderr) = loadtest(&["report", out.to_str().expect("utf-8 path")]);
    assert!(ok, "loadtest report failed:\n{stderr}");
    assert_eq!(
        std::fs::read_to_string(out.join("report.md")).expect("report.md again"),
        report
    );
    non_empty(&out.join("charts").join("plaintext-throughput.png"));

    // The docker flow's checker reads the same file (skipped where Python is missing).
    let checker = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docker/check-results.py");
    if let Ok(out_check) = Command::new("python3")
        .arg(&checker)
        .arg(out.join("results.json"))
        .args(&models)
        .output()
    {
        assert!(
            out_check.status.success(),
            "check-results.py: {}{}",
            String::from_utf8_lossy(&out_check.stdout),
            String::from_utf8_lossy(&out_check.stderr)
        );
    }
}

/// The anatomy of epoll's keep-alive plaintext request, counted by perf on the real server:
/// present (under CI perf must attach; elsewhere the reason it could not is said instead),
/// plausible, and its kinds add up to the total; `--no-anatomy` turns it off and says so.
#[test]
fn the_anatomy_of_a_request_is_counted() {
    let _one = support::exclusive();
    let zoo = zoo();
    let dir = TempDir::new("compare-anatomy");
    let run = |name: &str, extra: &[&str]| {
        let out = dir.path(name);
        let (ok, stderr) = quick_plaintext(&zoo, "epoll", "64", extra, &out);
        assert!(ok, "loadtest compare failed:\n{stderr}");
        let results = results_json(&out);
        let report = String::from_utf8(non_empty(&out.join("report.md"))).expect("utf-8");
        (out, results, report)
    };

    let (out, results, report) = run("counted", &[]);
    let cell = &results["cells"][0];
    assert_eq!(cell["status"], "ok", "{}", cell["reason"]);
    let a = &cell["anatomy"];
    assert!(a.is_object(), "no anatomy in the cell: {cell}");
    let at = report
        .find("\n## Anatomy of a request\n")
        .unwrap_or_else(|| panic!("no anatomy section:\n{report}"));
    let section = &report[at..];
    if let Some(why) = a["counts"]["unavailable"].as_str() {
        assert!(
            std::env::var("CI").ok().as_deref() != Some("true"),
            "under CI perf must count: {why}"
        );
        assert!(
            section.contains(why),
            "the reason is in the report: {section}"
        );
        eprintln!("perf unavailable here: {why}");
        return;
    }
    // Counted over the warm-up (a quarter second with --quick), divided by the server's own
    // count of the requests in that span: part of the cell's, whose check still agrees with the
    // client although the count's own two reads of /metrics fell inside it.
    assert_eq!(a["requests_from"], "server");
    let counted = a["requests"].as_u64().expect("requests");
    let in_cell = cell["metrics"]["server_requests"]
        .as_u64()
        .expect("server count");
    assert!(counted > 0 && counted < in_cell, "{counted} of {in_cell}");
    assert_eq!(cell["metrics"]["agrees"], true, "{}", cell["metrics"]);
    let wall = a["counts"]["wall_s"].as_f64().expect("wall_s");
    assert!((0.2..0.6).contains(&wall), "counted for {wall} s");
    // The machine's prices turn the counts into time.
    let prices = &results["machine"]["prices"];
    let syscall_ns = prices["syscall_ns"].as_f64().expect("syscall price");
    let handoff_ns = prices["handoff_ns"].as_f64().expect("hand-off price");
    assert!(syscall_ns > 0.0 && handoff_ns > syscall_ns, "{prices}");
    assert!(report.contains("Kernel prices"), "{report}");
    assert!(
        section.contains("Entering the kernel costs"),
        "the reading prices the trips: {section}"
    );
    let total = a["counts"]["syscalls"].as_u64().expect("a syscall count");
    let kinds: u64 = a["counts"]["by_kind"]
        .as_object()
        .expect("kinds")
        .values()
        .map(|v| v.as_u64().expect("a count"))
        .sum();
    assert_eq!(kinds, total, "the kinds add up to the total: {a}");
    let p = &a["per_request"];
    let per = p["syscalls"].as_f64().expect("syscalls per request");
    assert!(
        (0.5..=20.0).contains(&per),
        "epoll makes {per} syscalls per request"
    );
    let per_kinds: f64 = p["by_kind"]
        .as_object()
        .expect("kinds per request")
        .values()
        .filter_map(Value::as_f64)
        .sum();
    assert!((per_kinds - per).abs() < 1e-6, "{per_kinds} against {per}");
    // A keep-alive request is read and written at least once in a while by an event loop.
    assert!(p["by_kind"]["read"].as_f64().unwrap_or(0.0) > 0.1, "{p}");
    assert!(p["by_kind"]["write"].as_f64().unwrap_or(0.0) > 0.1, "{p}");
    assert!(p["context_switches"].as_f64().is_some(), "{p}");
    assert!(p["user_us"].as_f64().unwrap_or(0.0) + p["system_us"].as_f64().unwrap_or(0.0) > 0.0);
    assert!(section.contains("| epoll | "), "no epoll row: {section}");
    assert!(section.contains("**Reading.**"), "no reading: {section}");
    assert!(
        section.contains("charts/plaintext-anatomy.png"),
        "{section}"
    );
    let png = non_empty(&out.join("charts").join("plaintext-anatomy.png"));
    assert!(png.starts_with(b"\x89PNG"));

    let (_, results, report) = run("off", &["--no-anatomy"]);
    assert!(results["cells"][0]["anatomy"].is_null());
    assert_eq!(
        results["setup"]["anatomy_off"],
        "turned off with --no-anatomy"
    );
    assert!(
        report.contains("Not counted: turned off with --no-anatomy."),
        "{report}"
    );

    // The anatomy lives in the warm-up: without one it is not counted, and the report says why.
    let (_, results, _) = run("cold", &["--warmup", "0s"]);
    let why = results["cells"][0]["anatomy"]["counts"]["unavailable"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(why.contains("--warmup 0s"), "{}", results["cells"][0]);
}

#[test]
fn a_model_that_cannot_start_is_reported_not_dropped() {
    let _one = support::exclusive();
    let zoo = zoo();
    let dir = TempDir::new("compare-bad");
    let out = dir.path("out");
    let (ok, stderr) = quick_plaintext(&zoo, "no-such-model,pool", "4", &SHORT, &out);
    assert!(
        ok,
        "a failed model fails its cells, not the comparison:\n{stderr}"
    );
    let results = results_json(&out);
    let cells = results["cells"].as_array().expect("cells");
    let bad = cells
        .iter()
        .find(|c| c["target"] == "no-such-model")
        .expect("the failed model keeps its cell");
    assert_eq!(bad["status"], "failed");
    let reason = bad["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("could not start") && reason.contains("no-such-model"),
        "the reason quotes zoo's own message: {reason}"
    );
    let good = cells
        .iter()
        .find(|c| c["target"] == "pool")
        .expect("pool ran");
    assert_eq!(good["status"], "ok", "{}", good["reason"]);
    let report = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    assert!(
        report.contains("Could not start: no-such-model"),
        "{report}"
    );
}

#[test]
fn rounds_start_further_along_and_fold_into_one_cell_each() {
    let _one = support::exclusive();
    let zoo = zoo();
    let dir = TempDir::new("compare-rounds");
    let out = dir.path("out");
    let (ok, stderr) = quick_plaintext(
        &zoo,
        "thread,pool,epoll",
        "4",
        &[&SHORT[..], &["--rounds", "3"]].concat(),
        &out,
    );
    assert!(ok, "{stderr}");
    // The progress lines name each cell as it ends: `[i/9] target scenario variant: ...`.
    let ran: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with('[') && l.contains(" plaintext c=4"))
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(
        ran,
        [
            "thread", "pool", "epoll", // round 1 as given
            "pool", "epoll", "thread", // round 2 one along
            "epoll", "thread", "pool", // round 3 two along
        ],
        "{stderr}"
    );
    let results = results_json(&out);
    let cells = results["cells"].as_array().expect("cells");
    let targets: Vec<&str> = cells
        .iter()
        .map(|c| c["target"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        targets,
        ["thread", "pool", "epoll"],
        "the first round's order"
    );
    for c in cells {
        assert_eq!(c["status"], "ok", "{c}");
        let rounds = c["rounds_rps"].as_array().expect("rounds_rps");
        assert_eq!(rounds.len(), 3, "{c}");
        let median = c["headline"]["requests_per_s"].as_f64().expect("req/s");
        let mut figures: Vec<f64> = rounds.iter().filter_map(Value::as_f64).collect();
        figures.sort_by(f64::total_cmp);
        assert_eq!(median, figures[1], "the cell is its median round: {c}");
    }
}
