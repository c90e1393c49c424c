//! Servers that misbehave on purpose, written here because nginx never would: each fault must
//! land in its error class and never count as a success.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use support::{exclusive, loadtest_raw, loadtest_run, read_request, serve, ENGINES};

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// Answers each request with half of a 100-byte body, then closes.
fn half_body(mut s: TcpStream) {
    let mut buf = Vec::new();
    if read_request(&mut s, &mut buf) {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly fifty bytes of the promised hundred.........");
    }
}

/// Answers each request with half a head, then closes.
fn half_head(mut s: TcpStream) {
    let mut buf = Vec::new();
    if read_request(&mut s, &mut buf) {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Le");
    }
}

/// Answers with a head whose framing is ambiguous.
fn bad_framing(mut s: TcpStream) {
    let mut buf = Vec::new();
    while read_request(&mut s, &mut buf) {
        let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok";
        if s.write_all(reply).is_err() {
            return;
        }
    }
}

/// Accepts and reads, never answers.
fn silent(mut s: TcpStream) {
    let mut buf = Vec::new();
    while read_request(&mut s, &mut buf) {}
}

/// Answers in the other framings: chunked with a trailer, then HTTP/1.0 close-delimited.
fn other_framings(mut s: TcpStream) {
    let mut buf = Vec::new();
    let mut served = 0;
    while read_request(&mut s, &mut buf) {
        served += 1;
        if served < 3 {
            let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                            2;ext=1\r\nok\r\n0\r\nX-Sum: 2\r\n\r\n";
            if s.write_all(chunked).is_err() {
                return;
            }
        } else {
            let _ = s.write_all(b"HTTP/1.0 200 OK\r\n\r\nuntil the server closes");
            return;
        }
    }
}

/// Answers at once, except the 50th request of the process, which it holds for half a second.
fn stall_once(mut s: TcpStream) {
    static SEEN: AtomicUsize = AtomicUsize::new(0);
    let mut buf = Vec::new();
    while read_request(&mut s, &mut buf) {
        if SEEN.fetch_add(1, Ordering::SeqCst) == 49 {
            std::thread::sleep(Duration::from_millis(500));
        }
        if s.write_all(OK).is_err() {
            return;
        }
    }
}

fn url(port: u16) -> String {
    format!("http://127.0.0.1:{port}/")
}

#[test]
fn a_server_closing_mid_body_is_a_read_error() {
    let _one = exclusive();
    for engine in ENGINES {
        let port = serve(half_body);
        let run = loadtest_run(&[
            "--engine",
            engine,
            "-c",
            "2",
            "-t",
            "1",
            "-n",
            "40",
            &url(port),
        ]);
        assert_eq!(
            run.count("/errors/read"),
            40,
            "{engine}: {:#}",
            run.json["errors"]
        );
        assert_eq!(
            run.count("/requests"),
            0,
            "{engine}: a cut response is not a response"
        );
        assert_eq!(run.count("/responses/2xx"), 0, "{engine}");
        assert_eq!(run.count("/latency/count"), 0, "{engine}");
    }
}

#[test]
fn a_server_closing_mid_head_is_a_read_error() {
    let _one = exclusive();
    let port = serve(half_head);
    let run = loadtest_run(&["-c", "1", "-t", "1", "-n", "20", &url(port)]);
    assert_eq!(run.count("/errors/read"), 20);
    assert_eq!(run.count("/requests"), 0);
}

#[test]
fn ambiguous_framing_is_a_parse_error() {
    let _one = exclusive();
    let port = serve(bad_framing);
    let run = loadtest_run(&["-c", "2", "-t", "1", "-n", "20", &url(port)]);
    assert_eq!(run.count("/errors/parse"), 20);
    assert_eq!(run.count("/requests"), 0);
}

#[test]
fn a_silent_server_times_out() {
    let _one = exclusive();
    for engine in ENGINES {
        let port = serve(silent);
        let args = [
            "--engine",
            engine,
            "-c",
            "3",
            "-t",
            "1",
            "-n",
            "3",
            "--timeout",
            "300ms",
        ];
        let run = loadtest_run(&[&args[..], &[&url(port)]].concat());
        assert_eq!(run.count("/errors/timeout"), 3, "{engine}");
        assert_eq!(run.count("/requests"), 0, "{engine}");
    }
}

#[test]
fn a_refused_connect_is_a_connect_error() {
    let _one = exclusive();
    // Bind then drop: nothing listens on the port afterwards.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind")
        .port();
    let run = loadtest_run(&["-c", "2", "-t", "1", "-n", "5", &url(port)]);
    assert_eq!(run.count("/errors/connect"), 5);
    assert_eq!(run.count("/requests"), 0);
}

#[test]
fn chunked_and_close_delimited_answers_are_successes() {
    let _one = exclusive();
    let port = serve(other_framings);
    let run = loadtest_run(&["-c", "2", "-t", "1", "-n", "60", &url(port)]);
    assert_eq!(run.count("/requests"), 60);
    assert_eq!(run.count("/responses/2xx"), 60);
    assert_eq!(run.count("/errors/total"), 0);
}

/// The stall holds back the requests scheduled behind it: corrected latency shows them all,
/// service time only the one the server sat on.
#[test]
fn a_stall_shows_in_corrected_latency_not_in_service_time() {
    let _one = exclusive();
    let port = serve(stall_once);
    let run = loadtest_run(&["-c", "1", "-t", "1", "-R", "200", "-d", "2s", &url(port)]);
    assert_eq!(
        run.count("/requests"),
        400,
        "every scheduled request is answered"
    );
    // 100 requests were due during the 500 ms stall, a quarter of the run.
    let corrected_p90 = run.count("/latency/percentiles/90");
    let service_p90 = run.count("/service_time/percentiles/90");
    assert!(
        corrected_p90 >= 150_000,
        "corrected p90 {corrected_p90} us should show the stall"
    );
    assert!(
        service_p90 < 100_000,
        "service p90 {service_p90} us should not"
    );
    assert!(
        run.count("/service_time/max") >= 450_000,
        "the stalled request itself"
    );
    assert!(run.count("/latency/max") >= 450_000);
    assert!(run.count("/open_loop/late_sends") >= 50);
    assert!(run.count("/open_loop/max_lag_us") >= 400_000);
    assert!(
        run.stderr().contains("warning:") && run.stderr().contains("late"),
        "the slip is reported: {}",
        run.stderr()
    );
}

#[test]
fn https_and_bad_flags_are_refused_by_name() {
    let table: &[(&[&str], &[&str])] = &[
        (
            &["run", "https://127.0.0.1/"],
            &["<URL>", "https", "http://"],
        ),
        (&["run", "-c", "0", "http://127.0.0.1/"], &["--connections"]),
        (&["run", "-d", "fast", "http://127.0.0.1/"], &["--duration"]),
        (&["run", "--rate", "0", "http://127.0.0.1/"], &["--rate"]),
        (
            &["run", "-H", "broken", "http://127.0.0.1/"],
            &["--header", "Name: value"],
        ),
        (
            &["run", "--body", "@/no/such/file", "http://127.0.0.1/"],
            &["--body", "/no/such/file"],
        ),
        (
            &["run", "-c", "1", "-t", "2", "http://127.0.0.1/"],
            &["-t/--threads", "-c/--connections"],
        ),
        (&["merge"], &["<HLOG>"]),
    ];
    for (args, words) in table {
        let out = loadtest_raw(args);
        assert!(!out.status.success(), "{args:?} must fail");
        let stderr = String::from_utf8_lossy(&out.stderr);
        for w in *words {
            assert!(stderr.contains(w), "{args:?}: {w:?} missing from: {stderr}");
        }
    }
}
