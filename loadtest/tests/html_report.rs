//! report.html in a real browser: a short `loadtest compare --quick` (two zoo models and the
//! nginx baseline through plaintext and upload, against the real `zoo` binary), then its
//! report.html opened in headless Chromium, driven over the DevTools protocol: every chart and
//! table is in the DOM, a legend click hides that series on every chart and a second shows it
//! again, a family button hides its models, a column heading sorts with the baseline pinned, a
//! point's tooltip shows, the anatomy's bars are stacked by kind as results.json splits them
//! (a segment per kind, as tall together as the total on the chart's axis, each with its own
//! tooltip; its legend of kinds hides one by click and shows it by Enter), the page fits a narrow
//! screen, print hides the toolbar, and nothing went to the console as an error. Reloaded with JavaScript off, the DOM still has the charts
//! and tables, and the points their titles. Screenshots stay in
//! `target/html-report-test/` (`report.png`, `report-narrow.png`).
//!
//! Chromium is Debian's `chromium` (or `$CHROMIUM`). Under `CI=true` its absence fails the
//! test; elsewhere the test says it skipped and passes.

mod support;

use base64::Engine as _;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};

/// The models of the run: one thread per connection and one event loop.
const MODELS: [&str; 2] = ["thread", "epoll"];
/// A sweep (throughput and latency charts, rows per connection count), c10k (a bar chart), and
/// a scenario of variants without the baseline.
const SCENARIOS: [&str; 3] = ["plaintext", "c10k", "upload"];

/// Chromium, or why there is none.
fn chromium() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return Ok(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            if dir.join(name).is_file() {
                return Ok(dir.join(name));
            }
        }
    }
    Err("no chromium on PATH (Debian: apt-get install chromium; or set CHROMIUM)".into())
}

/// Flags of every headless Chromium here (root needs --no-sandbox; a container has no GPU).
fn headless(bin: &Path, profile: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--window-size=1280,2000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    cmd
}

/// Chromium under the DevTools protocol, over one websocket to the browser, attached to a tab.
struct Browser {
    child: Child,
    ws: WebSocket<TcpStream>,
    next_id: u64,
    session: String,
    /// Events read while waiting for answers.
    events: Vec<Value>,
}

impl Browser {
    fn start(bin: &Path, profile: &Path) -> Browser {
        let mut child = headless(bin, profile)
            .args(["--remote-debugging-port=0", "about:blank"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        let url = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => match line.split_once("DevTools listening on ") {
                    Some((_, url)) => break url.trim().to_string(),
                    None => seen.push(line),
                },
                Err(_) => panic!("chromium printed no DevTools address:\n{}", seen.join("\n")),
            }
        };
        let addr = url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .expect("host:port")
            .to_string();
        let stream = TcpStream::connect(&addr).expect("connect to DevTools");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("read timeout");
        let (ws, _) = tungstenite::client(url.as_str(), stream).expect("DevTools handshake");
        let mut b = Browser {
            child,
            ws,
            next_id: 1,
            session: String::new(),
            events: Vec::new(),
        };
        let target = b.call("Target.createTarget", json!({"url": "about:blank"}));
        let attached = b.call(
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        b.session = attached["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_string();
        for domain in ["Runtime.enable", "Log.enable", "Page.enable"] {
            b.call(domain, json!({}));
        }
        b
    }

    /// Sends a command (to the tab once attached) and waits for its answer.
    fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            msg["sessionId"] = json!(self.session);
        }
        self.ws
            .send(Message::text(msg.to_string()))
            .unwrap_or_else(|e| panic!("{method}: {e}"));
        loop {
            let v = self.read();
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {}", v["error"]);
                return v["result"].clone();
            }
            self.events.push(v);
        }
    }

    fn read(&mut self) -> Value {
        loop {
            match self.ws.read().expect("a DevTools message") {
                Message::Text(t) => return serde_json::from_str(&t).expect("DevTools JSON"),
                _ => continue,
            }
        }
    }

    /// Waits for event `name` (one already read counts).
    fn wait_event(&mut self, name: &str) {
        if let Some(i) = self.events.iter().position(|e| e["method"] == name) {
            self.events.remove(i);
            return;
        }
        loop {
            let v = self.read();
            if v["method"] == name {
                return;
            }
            self.events.push(v);
        }
    }

    fn open(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url}));
        self.wait_event("Page.loadEventFired");
    }

    /// The value of a JavaScript expression in the page.
    fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true}),
        );
        assert!(
            r.get("exceptionDetails").is_none(),
            "{expr}: {}",
            r["exceptionDetails"]
        );
        r["result"]["value"].clone()
    }

    /// The centre of the element `selector_expr` evaluates to, scrolled into view.
    fn centre_of(&mut self, element_expr: &str) -> (f64, f64) {
        let at = self.eval(&format!(
            "(() => {{ const el = {element_expr}; el.scrollIntoView({{block: 'center'}}); \
             const r = el.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()"
        ));
        (at[0].as_f64().expect("x"), at[1].as_f64().expect("y"))
    }

    /// A real click, through the browser's input pipeline, on an element.
    fn click(&mut self, element_expr: &str) {
        let (x, y) = self.centre_of(element_expr);
        for kind in ["mouseMoved", "mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            );
        }
    }

    fn hover(&mut self, element_expr: &str) {
        let (x, y) = self.centre_of(element_expr);
        self.call(
            "Input.dispatchMouseEvent",
            json!({"type": "mouseMoved", "x": x, "y": y}),
        );
    }

    fn screenshot(&mut self, width: u32, height: u32, mobile: bool, path: &Path) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}),
        );
        self.eval("window.scrollTo(0, 0)");
        let shot = self.call("Page.captureScreenshot", json!({"format": "png"}));
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("png data"))
            .expect("base64 PNG");
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::write(path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    /// Errors the page raised or logged: uncaught exceptions, console.error, error log entries.
    fn errors(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| {
                e["method"] == "Runtime.exceptionThrown"
                    || (e["method"] == "Runtime.consoleAPICalled"
                        && matches!(e["params"]["type"].as_str(), Some("error" | "assert")))
                    || (e["method"] == "Log.entryAdded" && e["params"]["entry"]["level"] == "error")
            })
            .map(Value::to_string)
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How many series of `target` are displayed over all charts.
fn shown(b: &mut Browser, target: &str) -> u64 {
    b.eval(&format!(
        "Array.from(document.querySelectorAll('svg.chart g.series')).filter(g => \
         g.dataset.series === {} && getComputedStyle(g).display !== 'none').length",
        json!(target)
    ))
    .as_u64()
    .expect("a count")
}

/// The data-v of column `col` of a table's rows, null where it has none, and whether each row
/// is a baseline row.
fn column(b: &mut Browser, table: &str, col: usize) -> Vec<(bool, Option<f64>)> {
    let rows = b.eval(&format!(
        "Array.from(document.querySelectorAll('#{table} tbody tr')).map(r => \
         [r.classList.contains('baseline'), r.cells[{col}].dataset.v === undefined ? null : \
         Number(r.cells[{col}].dataset.v)])"
    ));
    rows.as_array()
        .expect("rows")
        .iter()
        .map(|r| (r[0].as_bool().expect("bool"), r[1].as_f64()))
        .collect()
}

/// Baseline rows first, then the values in order (`ascending` or not), rows without last.
fn check_sorted(rows: &[(bool, Option<f64>)], ascending: bool) {
    let pinned = rows.iter().take_while(|r| r.0).count();
    assert!(pinned > 0, "no baseline row on top: {rows:?}");
    assert!(
        rows[pinned..].iter().all(|r| !r.0),
        "baseline not pinned: {rows:?}"
    );
    let values: Vec<f64> = rows[pinned..].iter().map_while(|r| r.1).collect();
    assert!(values.len() > 1, "nothing to sort: {rows:?}");
    for pair in values.windows(2) {
        let ordered = if ascending {
            pair[0] <= pair[1]
        } else {
            pair[0] >= pair[1]
        };
        assert!(ordered, "not sorted (ascending {ascending}): {rows:?}");
    }
}

#[test]
fn report_html_in_a_browser() {
    let _one = support::exclusive();
    let chromium = match chromium() {
        Ok(path) => path,
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => panic!("CI: {why}"),
        Err(why) => {
            eprintln!("skipped: report.html browser test: {why}");
            return;
        }
    };
    let zoo = support::zoo();
    let keep = support::profile_dir()
        .parent()
        .expect("target dir")
        .join("html-report-test");
    let _ = std::fs::remove_dir_all(&keep);
    std::fs::create_dir_all(&keep).expect("create the output dir");
    let out = keep.join("run");

    let started = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args(["compare", "--quick", "--baseline", "nginx", "--zoo"])
        .arg(&zoo)
        .args([
            "--models",
            &MODELS.join(","),
            "--scenarios",
            &SCENARIOS.join(","),
        ])
        .args([
            "--concurrency",
            "1,64",
            "--duration",
            "500ms",
            "--warmup",
            "200ms",
            "--idle",
            "500",
        ])
        .arg("--out")
        .arg(&out)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(keep.join("compare.log")).expect("log file"))
        .status()
        .expect("run loadtest compare");
    let log = std::fs::read_to_string(keep.join("compare.log")).unwrap_or_default();
    assert!(status.success(), "loadtest compare failed:\n{log}");
    eprintln!("compare took {:.1?}", started.elapsed());

    let results: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("results.json")).expect("results.json"),
    )
    .expect("results.json parses");
    let cells = results["cells"].as_array().expect("cells");
    let page = out.join("report.html");
    let html = std::fs::read_to_string(&page).expect("compare wrote report.html");
    for outside in ["<link", "<img", "src=", "url(", "@import", "https:"] {
        assert!(
            !html.contains(outside),
            "report.html refers outside itself: {outside}"
        );
    }

    // Charts as report.md has them: plaintext's throughput and latency at 64, c10k's latency
    // and memory, upload's two, and the anatomy's bars where perf could count (it must under
    // CI, which the compare test checks).
    let counted = cells.iter().any(|c| !c["anatomy"].is_null());
    let mut expected_charts = vec![
        "chart-plaintext-throughput",
        "chart-plaintext-latency",
        "chart-c10k-latency",
        "chart-c10k-memory-per-connection",
        "chart-upload-content-length-latency",
        "chart-upload-chunked-latency",
    ];
    if counted {
        expected_charts.push("chart-plaintext-anatomy");
    }
    let profile = tempdir(&keep, "profile");
    let mut b = Browser::start(&chromium, &profile);
    let url = format!(
        "file://{}",
        page.canonicalize().expect("absolute").display()
    );
    b.open(&url);
    let ids = b.eval("Array.from(document.querySelectorAll('svg.chart')).map(s => s.id)");
    assert_eq!(ids, json!(expected_charts), "charts in the DOM");
    for scenario in SCENARIOS {
        let rows = b.eval(&format!(
            "document.querySelectorAll('#table-{scenario} tbody tr').length"
        ));
        let want = cells.iter().filter(|c| c["scenario"] == scenario).count();
        assert_eq!(rows, json!(want), "rows of table-{scenario}");
    }
    let legend = b.eval(
        "Array.from(document.querySelectorAll('#chart-plaintext-throughput .legend-entry'))\
         .map(e => e.dataset.series)",
    );
    assert_eq!(
        legend,
        json!(["nginx", "thread", "epoll"]),
        "legend of the sweep"
    );

    // The bars are painted, in their target's colour.
    let bars = b.eval(
        "Array.from(document.querySelectorAll('#chart-c10k-memory-per-connection rect.bar'))\
         .map(r => [getComputedStyle(r).fill, r.getBBox().height])",
    );
    let bars = bars.as_array().expect("bars");
    assert!(!bars.is_empty(), "no bars in the c10k memory chart");
    for bar in bars {
        let fill = bar[0].as_str().unwrap_or_default();
        assert!(
            fill.starts_with("rgb(") && fill != "rgb(255, 255, 255)",
            "a bar is not painted: {bars:?}"
        );
    }
    assert!(
        bars.iter().any(|bar| bar[1].as_f64() > Some(0.0)),
        "every bar is flat: {bars:?}"
    );

    // A legend click hides the series on every chart; another, on another chart, shows it.
    let charts = expected_charts.len() as u64;
    assert_eq!(shown(&mut b, "thread"), charts);
    let epoll = shown(&mut b, "epoll");
    b.click("document.querySelector('#chart-plaintext-throughput .legend-entry[data-series=\"thread\"]')");
    assert_eq!(
        shown(&mut b, "thread"),
        0,
        "thread still drawn after its legend click"
    );
    assert_eq!(shown(&mut b, "epoll"), epoll, "another series went too");
    let pressed = b.eval(
        "Array.from(document.querySelectorAll('.legend-entry[data-series=\"thread\"]'))\
         .map(e => e.getAttribute('aria-pressed'))",
    );
    // Every chart's legend names the targets but the anatomy's, which names kinds.
    let target_legends = expected_charts.len() - usize::from(counted);
    assert_eq!(pressed, json!(vec!["false"; target_legends]));
    b.click("document.querySelector('#chart-upload-chunked-latency .legend-entry[data-series=\"thread\"]')");
    assert_eq!(
        shown(&mut b, "thread"),
        charts,
        "a second click shows it again"
    );

    // The family button hides every IO model, and only them.
    b.click("document.querySelector('.toolbar button[data-family=\"io\"]')");
    assert_eq!(
        shown(&mut b, "epoll"),
        0,
        "IO models' button left epoll drawn"
    );
    assert_eq!(shown(&mut b, "thread"), charts);
    b.click("document.querySelector('.toolbar button[data-family=\"io\"]')");
    assert_eq!(shown(&mut b, "epoll"), epoll);

    // A point's tooltip: its target and value with the unit.
    b.hover("document.querySelector('#chart-plaintext-throughput g.series[data-series=\"epoll\"] .hit')");
    let tip = b.eval("(() => { const t = document.getElementById('tip'); return t.hidden ? null : t.textContent; })()");
    let tip = tip
        .as_str()
        .unwrap_or_else(|| panic!("no tooltip shown: {tip}"));
    assert!(
        tip.starts_with("epoll · ") && tip.ends_with(" req/s"),
        "tooltip: {tip}"
    );

    // The anatomy's bars, stacked by kind.
    if counted {
        check_anatomy(&mut b, cells);
    } else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "under CI perf must count, for the anatomy chart"
        );
        eprintln!("perf counted nothing here: the anatomy chart was not checked");
    }

    // Sorting by p99, both ways, nginx pinned on top.
    let p99 = b
        .eval("Array.from(document.querySelectorAll('#table-plaintext th')).findIndex(th => th.textContent.trim() === 'p99')")
        .as_u64()
        .expect("a p99 column") as usize;
    let th = format!("document.querySelectorAll('#table-plaintext th')[{p99}]");
    b.click(&th);
    check_sorted(&column(&mut b, "table-plaintext", p99), true);
    b.click(&th);
    check_sorted(&column(&mut b, "table-plaintext", p99), false);

    b.screenshot(1280, 2000, false, &keep.join("report.png"));

    // A narrow screen: the page does not overflow; the wide tables scroll inside their frame.
    b.screenshot(420, 2400, true, &keep.join("report-narrow.png"));
    let fits = b.eval(
        "[document.documentElement.scrollWidth, window.innerWidth, \
         Array.from(document.querySelectorAll('.table-wrap')).some(w => w.scrollWidth > w.clientWidth)]",
    );
    assert!(
        fits[0].as_f64() <= fits[1].as_f64(),
        "the page overflows a narrow screen: {fits}"
    );
    assert_eq!(
        fits[2],
        json!(true),
        "no table scrolls on a narrow screen: {fits}"
    );

    // Print: the toolbar goes, the charts stay; the PDF is kept beside the screenshots.
    b.call("Emulation.setEmulatedMedia", json!({"media": "print"}));
    let pdf = b.call("Page.printToPDF", json!({"printBackground": true}));
    let pdf = base64::engine::general_purpose::STANDARD
        .decode(pdf["data"].as_str().expect("pdf data"))
        .expect("base64 PDF");
    assert!(pdf.starts_with(b"%PDF"), "not a PDF");
    std::fs::write(keep.join("report.pdf"), pdf).expect("write report.pdf");
    let print = b.eval(
        "[getComputedStyle(document.querySelector('.toolbar')).display, \
         getComputedStyle(document.querySelector('svg.chart')).display]",
    );
    assert_eq!(print, json!(["none", "block"]), "print styles");

    let errors = b.errors();
    assert!(errors.is_empty(), "console errors:\n{}", errors.join("\n"));

    // JavaScript off: everything is there, the points keep their titles, the toolbar stays
    // hidden. The DOM is read through DevTools' DOM domain, which needs no page script.
    b.call("Emulation.setEmulatedMedia", json!({"media": ""}));
    b.call(
        "Emulation.setScriptExecutionDisabled",
        json!({"value": true}),
    );
    b.open(&url);
    let root = b.call("DOM.getDocument", json!({}));
    let dom = b.call(
        "DOM.getOuterHTML",
        json!({"nodeId": root["root"]["nodeId"]}),
    );
    let dom = dom["outerHTML"].as_str().expect("the DOM");
    assert_eq!(
        dom.matches("<svg class=\"chart\"").count(),
        expected_charts.len(),
        "charts without JS"
    );
    for scenario in SCENARIOS {
        assert!(
            dom.contains(&format!("id=\"table-{scenario}\"")),
            "table-{scenario} without JS"
        );
    }
    assert!(
        dom.contains("<div class=\"toolbar\" hidden=\"\">"),
        "toolbar shown without JS"
    );
    assert!(
        dom.contains("<title>epoll · "),
        "the points lost their titles without JS"
    );
}

/// The anatomy's kinds, bottom up as its bars stack them (the PNG's order).
const KINDS: [&str; 9] = [
    "read",
    "write",
    "wait",
    "epoll_ctl",
    "io_uring_enter",
    "futex",
    "accept",
    "clone",
    "other",
];

/// One segment of a stacked bar as the browser lays it out: kind, its lower and upper edges in
/// screen pixels above the chart's 0, computed fill, tooltip, and whether it is displayed.
#[derive(Debug)]
struct Drawn {
    kind: String,
    from: f64,
    to: f64,
    fill: String,
    tip: String,
    shown: bool,
}

/// A model's bar as results.json has it: its syscalls per request of each kind it made, in
/// [`KINDS`] order, and their sum.
struct Bar {
    target: String,
    split: Vec<(&'static str, f64)>,
    total: f64,
}

/// The segments of `target`'s bar on the anatomy chart, in document order.
fn segments(b: &mut Browser, target: &str) -> Vec<Drawn> {
    let (zero, _) = anatomy_axis(b);
    let v = b.eval(&format!(
        "Array.from(document.querySelectorAll('#chart-plaintext-anatomy \
         g.series[data-series={}] rect.segment')).map(r => {{ const box = \
         r.getBoundingClientRect(); return [r.dataset.kind, box.top, box.bottom, \
         getComputedStyle(r).fill, r.dataset.tip || null, getComputedStyle(r).display !== 'none']; }})",
        json!(target)
    ));
    v.as_array()
        .expect("segments")
        .iter()
        .map(|s| Drawn {
            kind: s[0].as_str().expect("data-kind").to_string(),
            to: zero - s[1].as_f64().expect("top"),
            from: zero - s[2].as_f64().expect("bottom"),
            fill: s[3].as_str().expect("fill").to_string(),
            tip: s[4].as_str().unwrap_or_default().to_string(),
            shown: s[5].as_bool().expect("shown"),
        })
        .collect()
}

/// The anatomy chart's y axis in screen pixels: where 0 is, and pixels per syscall, read from
/// its labelled grid lines.
fn anatomy_axis(b: &mut Browser) -> (f64, f64) {
    let ticks = b.eval(
        "Array.from(document.querySelectorAll('#chart-plaintext-anatomy line.grid.major'))\
         .map(l => [Number(l.nextElementSibling.textContent), l.getBoundingClientRect().top])",
    );
    let ticks: Vec<(f64, f64)> = ticks
        .as_array()
        .expect("ticks")
        .iter()
        .map(|t| {
            (
                t[0].as_f64().expect("a tick value"),
                t[1].as_f64().expect("y"),
            )
        })
        .collect();
    assert!(ticks.len() >= 2, "the anatomy's y axis: {ticks:?}");
    let (zero, top) = (ticks[0], ticks[ticks.len() - 1]);
    assert_eq!(zero.0, 0.0, "the axis starts at 0: {ticks:?}");
    (zero.1, (zero.1 - top.1) / top.0)
}

/// The anatomy chart against results.json: each model's bar a stack of one segment per kind it
/// made, bottom up in the PNG's order, as tall together as its total on the chart's own axis,
/// a colour per kind shared with the legend, and a tooltip naming model and kind; the legend
/// lists the kinds; hiding one (a click) closes the bars up, showing it (Enter) restores them.
fn check_anatomy(b: &mut Browser, cells: &[Value]) {
    // The cell the anatomy shows: plaintext at 64 connections.
    let bars: Vec<Bar> = cells
        .iter()
        .filter(|c| c["scenario"] == "plaintext" && c["variant"] == "c=64")
        .filter(|c| c["anatomy"]["per_request"]["syscalls"].is_number())
        .map(|c| {
            let per = &c["anatomy"]["per_request"];
            let split: Vec<(&str, f64)> = KINDS
                .iter()
                .map(|k| (*k, per["by_kind"][*k].as_f64().unwrap_or(0.0)))
                .filter(|(_, v)| *v > 0.0)
                .collect();
            Bar {
                target: c["target"].as_str().expect("target").to_string(),
                total: split.iter().map(|k| k.1).sum(),
                split,
            }
        })
        .collect();
    assert!(!bars.is_empty(), "no counted plaintext cell at c=64");
    b.eval("document.getElementById('chart-plaintext-anatomy').scrollIntoView()");
    let (_, per_syscall) = anatomy_axis(b);
    let mut colours: Vec<(String, String)> = Vec::new();
    for Bar {
        target,
        split,
        total,
    } in &bars
    {
        let drawn = segments(b, target);
        let kinds: Vec<&str> = drawn.iter().map(|d| d.kind.as_str()).collect();
        let want: Vec<&str> = split.iter().map(|k| k.0).collect();
        assert_eq!(kinds, want, "{target}'s segments, bottom up: {drawn:?}");
        // Bottom up: each segment sits on the one before, the first on the axis.
        let mut below = 0.0;
        for d in &drawn {
            assert!((d.from - below).abs() < 1.0, "{target}: a gap: {drawn:?}");
            below = d.to;
            assert!(
                d.tip.starts_with(&format!("{target} · {} · ", d.kind))
                    && d.tip.contains(" syscalls per request, of "),
                "{target}'s {} segment's tooltip: {:?}",
                d.kind,
                d.tip
            );
            match colours.iter().find(|c| c.0 == d.kind) {
                Some(c) => assert_eq!(c.1, d.fill, "{} in two colours", d.kind),
                None => colours.push((d.kind.clone(), d.fill.clone())),
            }
        }
        let heights: f64 = drawn.iter().map(|d| d.to - d.from).sum();
        let want = total * per_syscall;
        assert!(
            (heights - want).abs() <= 1.0,
            "{target}: segments {heights:.1} px tall, its total {total:.3} is {want:.1} px"
        );
    }
    let mut fills: Vec<&String> = colours.iter().map(|c| &c.1).collect();
    fills.sort();
    fills.dedup();
    assert_eq!(
        fills.len(),
        colours.len(),
        "two kinds share a colour: {colours:?}"
    );

    // The legend: the kinds some model made, the top of a stack first, each in its colour.
    let legend = b.eval(
        "Array.from(document.querySelectorAll('#chart-plaintext-anatomy .legend-entry'))\
         .map(e => [e.dataset.kind || null, getComputedStyle(e.querySelector('rect:not(.legend-hit)')).fill])",
    );
    let legend: Vec<(String, String)> = legend
        .as_array()
        .expect("legend")
        .iter()
        .map(|e| {
            let kind = e[0]
                .as_str()
                .unwrap_or_else(|| panic!("a legend entry without a kind: {e}"));
            (kind.to_string(), e[1].as_str().expect("fill").to_string())
        })
        .collect();
    let made: Vec<&str> = KINDS
        .iter()
        .rev()
        .filter(|k| bars.iter().any(|b| b.split.iter().any(|s| s.0 == **k)))
        .copied()
        .collect();
    let named: Vec<&str> = legend.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(named, made, "the anatomy's legend");
    for (kind, fill) in &colours {
        let entry = legend.iter().find(|e| e.0 == *kind).expect("in the legend");
        assert_eq!(&entry.1, fill, "{kind}'s legend swatch");
    }

    // Hovering a bar's largest segment shows its tooltip.
    let Bar {
        target,
        split,
        total,
    } = &bars[0];
    let largest = split
        .iter()
        .max_by(|a, c| a.1.total_cmp(&c.1))
        .expect("a segment")
        .0;
    b.hover(&format!(
        "document.querySelector('#chart-plaintext-anatomy g.series[data-series={}] \
         rect.segment[data-kind={}]')",
        json!(target),
        json!(largest)
    ));
    let tip = b.eval("(() => { const t = document.getElementById('tip'); return t.hidden ? null : t.textContent; })()");
    assert!(
        tip.as_str()
            .is_some_and(|t| t.starts_with(&format!("{target} · {largest} · "))),
        "hovering {target}'s {largest}: {tip}"
    );

    // Hiding the bottom kind closes each bar up onto the axis; Enter on its entry restores it.
    let bottom = split[0].0;
    let entry = format!(
        "document.querySelector('#chart-plaintext-anatomy .legend-entry[data-kind={}]')",
        json!(bottom)
    );
    let label = format!(
        "document.querySelector('#chart-plaintext-anatomy g.series[data-series={}] \
         .stack-total').textContent",
        json!(target)
    );
    let written = b.eval(&label);
    let before = segments(b, target);
    b.click(&entry);
    let hidden = segments(b, target);
    // The total says what the shown kinds add up to, to its last written digit.
    let left = total - split[0].1;
    let shown_total: f64 = b
        .eval(&label)
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("a total above the bar");
    let digit = if left >= 10.0 { 0.5 } else { 0.05 };
    assert!(
        (shown_total - left).abs() <= digit + 1e-9,
        "{target} without {bottom}: {shown_total} above the bar, {left:.3} left"
    );
    assert!(
        !hidden[0].shown,
        "{bottom} still drawn after its legend click"
    );
    if let Some(next) = hidden.get(1) {
        assert!(
            next.shown && next.from.abs() < 1.0,
            "{target}'s bar did not close up: {hidden:?}"
        );
    }
    assert_eq!(
        b.eval(&format!("{entry}.getAttribute('aria-pressed')")),
        json!("false")
    );
    b.eval(&format!("{entry}.focus()"));
    for kind in ["keyDown", "keyUp"] {
        b.call(
            "Input.dispatchKeyEvent",
            json!({"type": kind, "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13}),
        );
    }
    let again = segments(b, target);
    assert_eq!(before.len(), again.len(), "{target}'s segments after Enter");
    assert_eq!(b.eval(&label), written, "{target}'s total after Enter");
    for (a, d) in before.iter().zip(&again) {
        assert!(
            d.shown && (a.from - d.from).abs() < 0.5 && (a.to - d.to).abs() < 0.5,
            "{target}'s bar not restored by Enter: {before:?} then {again:?}"
        );
    }
}

/// A fresh directory under `dir`.
fn tempdir(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let _ = std::fs::remove_dir_all(&path);
    std::fs::create_dir_all(&path).expect("create a dir");
    path
}
