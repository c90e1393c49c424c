//! `loadtest run` against a real nginx, started by each test on a socket it bound itself. What
//! loadtest counts is checked against what nginx logged.

mod support;

use serde_json::Value;
use std::collections::HashSet;
use support::{exclusive, loadtest_raw, loadtest_run, Nginx, TempDir, ENGINES};

#[test]
fn request_count_matches_the_access_log() {
    let _one = exclusive();
    let mut nginx = Nginx::start();
    let run = loadtest_run(&["-c", "8", "-t", "2", "-d", "1s", &nginx.url("/hello")]);
    let log = nginx.stop_and_read_log();
    let requests = run.count("/requests");
    assert!(requests > 100, "{requests} requests in a second is too few");
    assert_eq!(
        requests,
        log.len() as u64,
        "every response loadtest counted was logged, and no more"
    );
    assert_eq!(run.count("/responses/2xx"), requests);
    assert_eq!(run.count("/errors/total"), 0);
    assert!(log
        .iter()
        .all(|l| l.status == 200 && l.request == "GET /hello HTTP/1.1"));
    // nginx closed each connection after 100 requests: loadtest reconnected without an error.
    assert!(log.iter().any(|l| l.connection_requests == 100));
    let per_second: u64 = run.json["intervals"]
        .as_array()
        .expect("intervals")
        .iter()
        .map(|i| i["requests"].as_u64().expect("count"))
        .sum();
    assert_eq!(per_second, requests, "the seconds add up to the total");
    assert_eq!(run.count("/latency/count"), requests);
}

#[test]
fn n_requests_are_exactly_n() {
    let _one = exclusive();
    for engine in ENGINES {
        let mut nginx = Nginx::start();
        let url = nginx.url("/hello");
        let run = loadtest_run(&["--engine", engine, "-c", "7", "-t", "2", "-n", "2000", &url]);
        let log = nginx.stop_and_read_log();
        assert_eq!(run.count("/requests"), 2000, "{engine}");
        assert_eq!(log.len(), 2000, "{engine}");
        assert_eq!(run.count("/sent"), 2000, "{engine}");
    }
}

#[test]
fn pipelined_requests_survive_the_server_closing() {
    let _one = exclusive();
    for engine in ENGINES {
        let mut nginx = Nginx::start();
        let url = nginx.url("/p");
        let args = [
            "--engine",
            engine,
            "-c",
            "4",
            "-t",
            "1",
            "--pipeline",
            "8",
            "-n",
            "3000",
        ];
        let run = loadtest_run(&[&args[..], &[&url]].concat());
        let log = nginx.stop_and_read_log();
        assert_eq!(run.count("/requests"), 3000, "{engine}");
        assert_eq!(
            log.len(),
            3000,
            "{engine}: nginx answered each request once"
        );
        assert_eq!(run.count("/errors/total"), 0, "{engine}");
        // At request 100 nginx closes with more requests already written behind it.
        assert!(
            run.count("/retried") > 0,
            "{engine}: requests behind a closing response are sent again"
        );
    }
}

#[test]
fn server_errors_are_counted_as_5xx() {
    let _one = exclusive();
    let mut nginx = Nginx::start();
    let run = loadtest_run(&["-c", "4", "-t", "1", "-n", "300", &nginx.url("/fail")]);
    let log = nginx.stop_and_read_log();
    assert_eq!(run.count("/responses/5xx"), 300);
    assert_eq!(run.count("/responses/2xx"), 0);
    assert_eq!(
        run.count("/requests"),
        300,
        "a 500 is a response, not a failed request"
    );
    assert_eq!(run.count("/errors/total"), 0);
    assert!(log.iter().all(|l| l.status == 500));
    assert!(run.stdout().contains("5xx 300"), "{}", run.stdout());
}

#[test]
fn close_mode_opens_one_connection_per_request() {
    let _one = exclusive();
    let mut nginx = Nginx::start();
    let run = loadtest_run(&[
        "-c",
        "4",
        "-t",
        "2",
        "--close",
        "-n",
        "200",
        &nginx.url("/c"),
    ]);
    let log = nginx.stop_and_read_log();
    assert_eq!(run.count("/requests"), 200);
    assert_eq!(log.len(), 200);
    let connections: HashSet<u64> = log.iter().map(|l| l.connection).collect();
    assert_eq!(
        connections.len(),
        200,
        "every request came on its own connection"
    );
    assert!(log.iter().all(|l| l.connection_requests == 1));
    assert_eq!(run.json["config"]["close"], Value::Bool(true));
}

#[test]
fn open_loop_holds_the_rate_and_reports_both_latencies() {
    let _one = exclusive();
    let mut nginx = Nginx::start();
    let run = loadtest_run(&[
        "-c",
        "4",
        "-t",
        "2",
        "-R",
        "500",
        "-d",
        "2s",
        &nginx.url("/r"),
    ]);
    let log = nginx.stop_and_read_log();
    let requests = run.count("/requests") as f64;
    assert!(
        (requests - 1000.0).abs() <= 20.0,
        "asked 500/s for 2 s, got {requests}"
    );
    assert_eq!(log.len() as f64, requests);
    assert!((run.num("/open_loop/achieved_rate") - 500.0).abs() <= 10.0);
    assert_eq!(run.num("/open_loop/rate"), 500.0);
    assert_eq!(run.json["latency_corrected"], Value::Bool(true));
    assert_eq!(run.count("/service_time/count") as f64, requests);
    // Latency counts from the intended send, service time from the actual one, which is later.
    assert!(run.count("/latency/percentiles/50") >= run.count("/service_time/percentiles/50"));
    assert!(run.count("/latency/max") >= run.count("/service_time/max"));
    let out = run.stdout();
    assert!(
        out.contains("open loop at 500 req/s") && out.contains("Service"),
        "{out}"
    );
}

#[test]
fn warmup_is_excluded_from_every_figure() {
    let _one = exclusive();
    let mut nginx = Nginx::start();
    let run = loadtest_run(&[
        "-c",
        "2",
        "-t",
        "1",
        "--warmup",
        "500ms",
        "-d",
        "1s",
        &nginx.url("/w"),
    ]);
    let log = nginx.stop_and_read_log();
    let requests = run.count("/requests");
    assert!(requests > 0);
    assert!(
        (log.len() as u64) > requests + requests / 10,
        "nginx saw the warm-up ({}), loadtest counted only the measured part ({requests})",
        log.len()
    );
    assert_eq!(run.count("/latency/count"), requests);
    assert_eq!(run.num("/duration_s"), 1.0);
    assert_eq!(run.num("/config/warmup_s"), 0.5);
    let seconds: Vec<u64> = run.json["intervals"]
        .as_array()
        .expect("intervals")
        .iter()
        .map(|i| i["second"].as_u64().expect("second"))
        .collect();
    assert_eq!(
        seconds,
        vec![0],
        "one measured second, counted from the end of the warm-up"
    );
}

#[test]
fn head_post_and_headers_go_on_the_wire() {
    let _one = exclusive();
    let mut nginx = Nginx::start();
    let dir = TempDir::new("body");
    let body = dir.path("body.txt");
    std::fs::write(&body, "x".repeat(1000)).expect("write body");
    let body_arg = format!("@{}", body.display());
    let head = loadtest_run(&[
        "-c",
        "2",
        "-t",
        "1",
        "-n",
        "50",
        "-m",
        "HEAD",
        &nginx.url("/h"),
    ]);
    let post = loadtest_run(&[
        "-c",
        "2",
        "-t",
        "1",
        "-n",
        "50",
        "-m",
        "POST",
        "--body",
        &body_arg,
        "-H",
        "X-Test: yes",
        &nginx.url("/p"),
    ]);
    let log = nginx.stop_and_read_log();
    assert_eq!(
        head.count("/responses/2xx"),
        50,
        "HEAD answers are read without a body"
    );
    assert_eq!(head.count("/errors/total"), 0);
    assert_eq!(post.count("/responses/2xx"), 50);
    let posts: Vec<_> = log
        .iter()
        .filter(|l| l.request.starts_with("POST"))
        .collect();
    assert_eq!(posts.len(), 50);
    assert!(
        posts
            .iter()
            .all(|l| l.x_test == "yes" && l.content_length == "1000"),
        "{posts:?}"
    );
    // Had the body not followed its head, nginx would have read the next request as body.
    assert!(posts.iter().any(|l| l.connection_requests > 1));
    assert_eq!(
        log.iter().filter(|l| l.request.starts_with("HEAD")).count(),
        50
    );
}

/// The documented example in README.md and a real document have the same fields, all the way
/// down (arrays compared by their first element).
#[test]
fn json_has_the_documented_fields() {
    let _one = exclusive();
    let mut nginx = Nginx::start();
    let run = loadtest_run(&[
        "-c",
        "2",
        "-t",
        "2",
        "-R",
        "200",
        "-d",
        "1s",
        &nginx.url("/j"),
    ]);
    nginx.stop_and_read_log();
    let readme = include_str!("../README.md");
    let start = readme.find("```json\n").expect("README has a JSON example") + 8;
    let end = start + readme[start..].find("```").expect("closed JSON block");
    let documented: Value = serde_json::from_str(&readme[start..end]).expect("example parses");
    assert_eq!(run.json["schema"], "zoo-loadtest/1");
    let (mut want, mut got) = (Vec::new(), Vec::new());
    field_paths(&documented, "", &mut want);
    field_paths(&run.json, "", &mut got);
    assert_eq!(got, want, "JSON fields differ from the README example");
    let histogram = run.json["latency"]["histogram"]
        .as_str()
        .expect("histogram");
    assert!(
        histogram.starts_with("HISTFAA"),
        "V2 compressed, base64: {histogram}"
    );
    for p in ["50", "90", "99", "99.9", "99.99"] {
        assert!(
            run.json["latency"]["percentiles"][p].is_u64(),
            "percentile {p}"
        );
    }
}

/// Every field path of `v`, sorted; null and scalar leaves alike.
fn field_paths(v: &Value, prefix: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let path = format!("{prefix}/{k}");
                out.push(path.clone());
                field_paths(child, &path, out);
            }
        }
        Value::Array(items) => {
            if let Some(first) = items.first() {
                field_paths(first, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
    out.sort();
    out.dedup();
}

#[test]
fn hlog_merge_round_trips_the_count() {
    let _one = exclusive();
    let mut nginx = Nginx::start();
    let dir = TempDir::new("hlog");
    let a = dir.path("a.hlog");
    let b = dir.path("b.hlog");
    let a_str = a.to_str().expect("utf-8 path");
    let b_str = b.to_str().expect("utf-8 path");
    let closed = loadtest_run(&[
        "-c",
        "4",
        "-t",
        "1",
        "-n",
        "1500",
        "--hlog",
        a_str,
        &nginx.url("/a"),
    ]);
    let open = loadtest_run(&[
        "-c",
        "2",
        "-t",
        "1",
        "-R",
        "400",
        "-d",
        "1s",
        "--hlog",
        b_str,
        &nginx.url("/b"),
    ]);
    nginx.stop_and_read_log();
    let total = closed.count("/requests") + open.count("/requests");
    assert_eq!(closed.count("/requests"), 1500);

    let merged = loadtest_raw(&["merge", a_str, b_str, "--json", "-"]);
    assert!(
        merged.status.success(),
        "{}",
        String::from_utf8_lossy(&merged.stderr)
    );
    let json: Value = serde_json::from_slice(&merged.stdout).expect("merge --json - is JSON");
    assert_eq!(json["requests"].as_u64(), Some(total));
    assert_eq!(json["logs"].as_u64(), Some(2));
    // Only the open-loop log has service-time lines.
    assert_eq!(
        json["service_time"]["count"].as_u64(),
        open.json["service_time"]["count"].as_u64()
    );
    let max = json["latency"]["max"].as_u64().expect("max");
    let run_max = closed.count("/latency/max").max(open.count("/latency/max"));
    assert_eq!(
        max, run_max,
        "the merged maximum is the largest of the runs'"
    );

    let text = loadtest_raw(&["merge", a_str, a_str]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(stdout.contains("Requests: 3000"), "{stdout}");
}
