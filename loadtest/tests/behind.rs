//! `loadtest compare` against what is deployed: running targets it cannot see in /proc, whose
//! CPU and memory come from their own `process_*` series, and `--behind nginx`, every model
//! measured again through a real nginx reverse proxy. Real zoo processes, a real Python server,
//! a real nginx (`/usr/sbin/nginx`).

mod support;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use support::{exclusive, zoo, TempDir};

/// A server this test started, killed when dropped.
struct Running {
    child: Child,
    port: u16,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `zoo --model=MODEL` on a port of its own, once its ready line has named it.
fn start_zoo(model: &str) -> Running {
    let mut child = Command::new(zoo())
        .args([&format!("--model={model}"), "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start zoo");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    let mut reader = BufReader::new(stdout);
    reader.read_line(&mut line).expect("ready line");
    // The rest of stdout is drained so zoo never blocks on it.
    std::thread::spawn(move || for _ in reader.lines() {});
    let port = line
        .split_whitespace()
        .find_map(|w| w.rsplit_once(':')?.1.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("no port in zoo's ready line {line:?}"));
    Running { child, port }
}

/// A keep-alive HTTP/1.1 server in Python that answers every GET `Hello, World!` and has no
/// `/metrics`: a target without process series.
fn start_python() -> Running {
    let script = r#"
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = b"Hello, World!"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("port line");
    let port = line.trim().parse().expect("a port");
    Running { child, port }
}

/// Runs `loadtest compare ARGS --out OUT` and returns results.json and report.md.
fn compare(args: &[&str], out: &Path) -> (Value, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .arg("compare")
        .args(args)
        .arg("--out")
        .arg(out)
        .stdin(Stdio::null())
        .output()
        .expect("run loadtest compare");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "loadtest compare failed:\n{stderr}"
    );
    let text = std::fs::read_to_string(out.join("results.json")).expect("results.json");
    let report = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    (serde_json::from_str(&text).expect("valid JSON"), report)
}

fn cells<'a>(results: &'a Value, target: &str, scenario: &str) -> Vec<&'a Value> {
    results["cells"]
        .as_array()
        .expect("cells")
        .iter()
        .filter(|c| c["target"] == target && c["scenario"] == scenario)
        .collect()
}

/// The table row of `target` in the section that starts with `heading`.
fn row<'a>(report: &'a str, heading: &str, target: &str) -> Vec<&'a str> {
    let section = &report[report.find(heading).unwrap_or_else(|| panic!("{heading}"))..];
    let line = section
        .lines()
        .find(|l| l.starts_with(&format!("| {target} |")))
        .unwrap_or_else(|| panic!("no row of {target} under {heading}:\n{section}"));
    line.split('|').map(str::trim).collect()
}

#[test]
fn running_targets_report_their_own_cost_from_process_series() {
    let _one = exclusive();
    let zoo = start_zoo("pool");
    let python = start_python();
    let dir = TempDir::new("series");
    let (zoo_target, py_target) = (
        format!("zoo=http://127.0.0.1:{}", zoo.port),
        format!("py=http://127.0.0.1:{}", python.port),
    );
    let (results, report) = compare(
        &[
            "--target",
            &zoo_target,
            "--target",
            &py_target,
            "--scenarios",
            "plaintext",
            "--concurrency",
            "8",
            "--duration",
            "1s",
            "--warmup",
            "200ms",
        ],
        &dir.path("out"),
    );
    assert_eq!(results["setup"]["mode"], "target");
    let z = cells(&results, "zoo", "plaintext");
    assert_eq!(z.len(), 1);
    let server = &z[0]["server"];
    assert_eq!(server["source"], "process-series", "{server}");
    let cpu = server["cpu_us_per_request"].as_f64().expect("CPU µs/req");
    assert!(cpu > 0.0 && cpu < 100_000.0, "{cpu}");
    assert!(server["usage"]["cpu_s"].as_f64().expect("cpu_s") > 0.0);
    let rss = server["usage"]["rss_peak_kb"].as_u64().expect("RSS");
    assert!(
        rss > 1024,
        "zoo's resident memory is more than 1 MiB: {rss} KiB"
    );
    assert_eq!(z[0]["metrics"]["agrees"], true, "{}", z[0]["metrics"]);

    let p = cells(&results, "py", "plaintext");
    assert_eq!(p.len(), 1);
    assert_eq!(p[0]["status"], "ok", "{}", p[0]["reason"]);
    assert!(p[0]["server"].is_null(), "no series, no figures: {}", p[0]);

    // The table: the marked figures of zoo, the dashes of the Python server, the line under it.
    let head = row(&report, "## plaintext", "model");
    let at = |name: &str| head.iter().position(|h| *h == name).expect(name);
    let (cpu_col, rss_col) = (at("CPU µs/req"), at("RSS"));
    let zoo_row = row(&report, "## plaintext", "zoo");
    assert!(zoo_row[cpu_col].ends_with('ˢ'), "{zoo_row:?}");
    assert!(zoo_row[rss_col].ends_with("MiBˢ"), "{zoo_row:?}");
    let py_row = row(&report, "## plaintext", "py");
    assert_eq!((py_row[cpu_col], py_row[rss_col]), ("—", "—"), "{py_row:?}");
    assert!(
        report.contains("ˢ from the server's own process_* series"),
        "{report}"
    );
}

/// nginx, or `None` (with a line saying so) where it is not installed and this is not CI.
fn nginx() -> Option<PathBuf> {
    let path = PathBuf::from("/usr/sbin/nginx");
    if path.is_file() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "nginx is not installed at /usr/sbin/nginx, and CI needs it (apt-get install nginx-light)"
    );
    eprintln!("skipped: nginx is not installed at /usr/sbin/nginx (apt-get install nginx-light)");
    None
}

#[test]
fn behind_nginx_prefork_serves_the_normal_client_under_slowloris() {
    let Some(nginx) = nginx() else {
        return;
    };
    let _one = exclusive();
    let zoo = zoo();
    let dir = TempDir::new("behind");
    let (results, report) = compare(
        &[
            "--quick",
            "--behind",
            "nginx",
            "--nginx",
            nginx.to_str().expect("utf-8 path"),
            "--zoo",
            zoo.to_str().expect("utf-8 path"),
            "--models",
            "prefork,epoll",
            "--scenarios",
            "plaintext,slowloris",
            "--concurrency",
            "1,64",
            "--duration",
            "1s",
            "--warmup",
            "200ms",
            "--slow-clients",
            "100",
        ],
        &dir.path("out"),
    );
    let names: Vec<&str> = results["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        ["prefork", "prefork+nginx", "epoll", "epoll+nginx"],
        "each model, then itself behind nginx"
    );
    assert_eq!(results["setup"]["behind"], "nginx");
    for model in ["prefork", "epoll"] {
        let behind = format!("{model}+nginx");
        let plain = cells(&results, &behind, "plaintext");
        assert_eq!(plain.len(), 2, "both concurrencies behind nginx");
        for c in &plain {
            assert_eq!(c["status"], "ok", "{}", c["reason"]);
            assert!(c["headline"]["requests"].as_u64().expect("requests") > 0);
            // The requests went through nginx to zoo: zoo counted each one the client got.
            assert_eq!(c["metrics"]["agrees"], true, "{}", c["metrics"]);
            let total = c["server"]["cpu_us_per_request"].as_f64().expect("CPU");
            let proxy = c["proxy"]["cpu_us_per_request"]
                .as_f64()
                .expect("proxy CPU");
            assert!(proxy > 0.0 && total > proxy, "{total} {proxy}");
            assert_eq!(c["server"]["source"], "proc");
        }
        assert_eq!(cells(&results, model, "plaintext").len(), 2);
        assert!(cells(&results, model, "plaintext")[0]["proxy"].is_null());
    }

    // slowloris: nginx holds the slow clients, prefork's workers only ever see whole requests.
    let slow = cells(&results, "prefork+nginx", "slowloris");
    assert_eq!(slow.len(), 1);
    let c = slow[0];
    assert_eq!(c["status"], "ok", "{}", c["reason"]);
    let h = &c["headline"];
    assert!(h["requests"].as_u64().expect("requests") > 0, "{h}");
    assert!(h["success_rate"].as_f64().expect("rate") >= 0.99, "{h}");
    assert_eq!(h["errors"], 0, "{h}");
    assert_eq!(c["metrics"]["agrees"], true, "{}", c["metrics"]);
    assert!(c["slow"]["clients"].as_u64().expect("slow clients") == 100);

    // The section: a row per model and cell, and the reading of slowloris from these figures.
    let section = &report[report.find("## Behind nginx").expect("the section")..];
    for needle in [
        "| prefork | plaintext | c=1 |",
        "| prefork | plaintext | c=64 |",
        "| prefork | slowloris |",
        "| epoll | plaintext | c=64 |",
        "Per request, the hop through nginx cost",
        "Under slowloris prefork served",
    ] {
        assert!(section.contains(needle), "{needle} missing:\n{section}");
    }
    let direct = cells(&results, "prefork", "slowloris")[0]["headline"]["success_rate"]
        .as_f64()
        .unwrap_or(0.0);
    if direct < 0.99 {
        assert!(
            section.contains("nginx held the slow clients' unfinished heads"),
            "{section}"
        );
    }
}
