//! The one integration suite, run against every model (`ZOO_MODELS=a,b` narrows it): the real
//! binary on a real socket, raw bytes and curl as clients.

mod support;

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};
use support::{for_each_model, parse_responses, read_all, wait_for, wait_until, Client, Server};

const SHORT: Duration = Duration::from_millis(1500);

#[test]
fn plain_routes() {
    for_each_model(&[], |s| {
        for path in ["/", "/plaintext"] {
            let r = s.get(path);
            assert_eq!(
                (r.status, r.text().as_str()),
                (200, "Hello, World!"),
                "{path}"
            );
            assert!(r
                .header("content-type")
                .unwrap_or("")
                .starts_with("text/plain"));
            assert!(r.header("date").is_some_and(|d| d.ends_with(" GMT")));
        }
        let r = s.get("/json");
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), r#"{"message":"Hello, World!"}"#);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(s.get("/healthz").status, 200);
        assert_eq!(s.get("/no/such/path").status, 404);
        for code in [201, 204, 418, 503, 599] {
            assert_eq!(s.get(&format!("/status/{code}")).status, code);
        }
        assert_eq!(s.get("/status/600").status, 400);
        assert_eq!(s.get("/status/abc").status, 400);
    });
}

#[test]
fn wrong_method_is_405_with_allow() {
    for_each_model(&[], |s| {
        let raw = b"DELETE /json HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
        let r = &parse_responses(&s.exchange(raw, SHORT).bytes, false)[0];
        assert_eq!(r.status, 405);
        assert!(
            r.header("allow").is_some_and(|a| a.contains("GET")),
            "{:?}",
            r.headers
        );
    });
}

#[test]
fn sleep_block_cpu_and_redirect() {
    for_each_model(&[], |s| {
        let t = Instant::now();
        assert_eq!(s.get("/sleep?ms=200").status, 200);
        assert!(
            t.elapsed() >= Duration::from_millis(200),
            "answered before the delay"
        );
        assert_eq!(s.get("/sleep").status, 400);
        assert_eq!(s.get("/sleep?ms=nope").status, 400);
        let t = Instant::now();
        assert_eq!(s.get("/block?ms=100").status, 200);
        assert!(t.elapsed() >= Duration::from_millis(100));
        let inline = s.get("/cpu?n=20000");
        let offloaded = s.get("/cpu?n=20000&offload=1");
        assert_eq!((inline.status, offloaded.status), (200, 200));
        assert_eq!(
            inline.body, offloaded.body,
            "same work inline and on the pool"
        );
        let r = s.get("/redirect?to=/json");
        assert_eq!((r.status, r.header("location")), (302, Some("/json")));
        for evil in ["//evil.example", "http://evil.example/", "/\\evil", ""] {
            assert_eq!(
                s.get(&format!("/redirect?to={evil}")).status,
                400,
                "to={evil}"
            );
        }
    });
}

#[test]
fn keep_alive_and_pipelining_answer_in_order() {
    for_each_model(&[], |s| {
        let raw = b"GET /json HTTP/1.1\r\nHost: t\r\n\r\n\
GET /status/201 HTTP/1.1\r\nHost: t\r\n\r\n\
POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello\
GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
        let ex = s.exchange(raw, Duration::from_secs(5));
        let rs = parse_responses(&ex.bytes, false);
        let statuses: Vec<u16> = rs.iter().map(|r| r.status).collect();
        assert_eq!(statuses, [200, 201, 200, 200]);
        assert_eq!(rs[2].body, b"hello");
        assert_eq!(rs[3].header("connection"), Some("close"));
        assert!(ex.closed, "Connection: close must close");
        // Keep-alive across separate writes on one connection. prefork is the exception by
        // design (gunicorn `sync`): it closes once no further request is already waiting, and
        // says so with `Connection: close`.
        let closes_idle = s.model == "prefork";
        let mut c = s.connect();
        for _ in 0..3 {
            c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
            let ex = read_all(&mut c, Duration::from_millis(300));
            let r = &parse_responses(&ex.bytes, false)[0];
            assert_eq!(r.status, 200);
            assert_eq!(ex.closed, closes_idle);
            assert_eq!(r.header("connection") == Some("close"), closes_idle);
            if closes_idle {
                c = s.connect();
            }
        }
        // HTTP/1.0 closes by default and keeps alive on request.
        let ex = s.exchange(b"GET / HTTP/1.0\r\n\r\n", SHORT);
        assert!(ex.closed);
        let ex = s.exchange(
            b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            Duration::from_millis(300),
        );
        assert_eq!(ex.closed, closes_idle);
        let expected = if closes_idle { "close" } else { "keep-alive" };
        assert_eq!(
            parse_responses(&ex.bytes, false)[0].header("connection"),
            Some(expected)
        );
    });
}

#[test]
fn chunked_bodies_both_ways() {
    for_each_model(&[], |s| {
        let raw = b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n";
        let r = &parse_responses(&s.exchange(raw, SHORT).bytes, false)[0];
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hello world"[..]));
        let r = s.get("/stream?chunks=7&size=100");
        assert_eq!(r.header("transfer-encoding"), Some("chunked"));
        assert_eq!(r.body.len(), 700);
        // HTTP/1.0 clients get the same body with Content-Length.
        let ex = s.exchange(b"GET /stream?chunks=3&size=10 HTTP/1.0\r\n\r\n", SHORT);
        let r = &parse_responses(&ex.bytes, false)[0];
        assert_eq!((r.header("content-length"), r.body.len()), (Some("30"), 30));
    });
}

#[test]
fn expect_100_continue() {
    for_each_model(&[], |s| {
        let mut c = s.connect();
        c.write_all(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n",
        )
        .unwrap();
        let interim = read_all(&mut c, Duration::from_millis(500));
        assert!(
            interim.bytes.starts_with(b"HTTP/1.1 100 Continue\r\n\r\n"),
            "{:?}",
            String::from_utf8_lossy(&interim.bytes)
        );
        c.write_all(b"ping").unwrap();
        let ex = read_all(&mut c, Duration::from_millis(500));
        assert_eq!(parse_responses(&ex.bytes, false)[0].body, b"ping");
        // No 100 for a body that is too large: the 413 comes straight away.
        let raw = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 999999999\r\nExpect: 100-continue\r\n\r\n";
        let ex = s.exchange(raw, SHORT);
        assert!(
            ex.bytes.starts_with(b"HTTP/1.1 413"),
            "{:?}",
            String::from_utf8_lossy(&ex.bytes)
        );
        assert!(ex.closed);
    });
}

#[test]
fn head_has_get_headers_and_no_body() {
    for_each_model(&[], |s| {
        let get = s.get("/json");
        let ex = s.exchange(b"HEAD /json HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", SHORT);
        let rs = parse_responses(&ex.bytes, true);
        assert_eq!(rs[0].status, 200);
        assert_eq!(rs[0].header("content-length"), get.header("content-length"));
        // The next response starts right after HEAD's head: no body bytes in between.
        let second = ex
            .bytes
            .windows(15)
            .filter(|w| w == b"HTTP/1.1 200 OK")
            .count();
        assert_eq!(second, 2);
        assert!(ex.bytes.ends_with(b"Hello, World!"));
    });
}

/// Each malformed request gets its status and a closed connection, and the request after it on
/// the same connection is never served.
#[test]
fn rejections_close_the_connection() {
    let cases: &[(&str, &[u8], u16)] = &[
        ("CL and TE", b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        ("two CL", b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400),
        ("CL list", b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3, 3\r\n\r\nabc", 400),
        ("CL sign", b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: +3\r\n\r\nabc", 400),
        ("TE not final", b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400),
        ("TE unknown", b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        ("obs-fold", b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\r\n b\r\n\r\n", 400),
        ("bare LF", b"GET / HTTP/1.1\nHost: t\n\n", 400),
        ("bare CR", b"GET / HTTP/1.1\r\nHost: t\rX: y\r\n\r\n", 400),
        ("NUL in value", b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\x00b\r\n\r\n", 400),
        ("space before colon", b"GET / HTTP/1.1\r\nHost : t\r\n\r\n", 400),
        ("bad name", b"GET / HTTP/1.1\r\nHost: t\r\nX(A): b\r\n\r\n", 400),
        ("no Host", b"GET / HTTP/1.1\r\n\r\n", 400),
        ("two Hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        ("bad chunk size", b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
        ("bad chunk ext", b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5;\r\nhello\r\n0\r\n\r\n", 400),
        ("version", b"GET / HTTP/1.2\r\nHost: t\r\n\r\n", 505),
        ("HTTP/2 text", b"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505),
        ("garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),
    ];
    for_each_model(&["--max-body-bytes", "1000"], |s| {
        for (name, raw, status) in cases {
            let mut bytes = raw.to_vec();
            bytes.extend_from_slice(b"GET /json HTTP/1.1\r\nHost: t\r\n\r\n");
            let ex = s.exchange(&bytes, Duration::from_secs(3));
            let rs = parse_responses(&ex.bytes, false);
            assert_eq!(rs.first().map(|r| r.status), Some(*status), "{name}");
            assert_eq!(rs.len(), 1, "{name}: served a request after the rejection");
            assert!(ex.closed, "{name}: connection left open");
        }
        let long_line = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(10_000));
        assert!(s
            .exchange(long_line.as_bytes(), SHORT)
            .bytes
            .starts_with(b"HTTP/1.1 414"));
        let big_head = format!(
            "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
            "b".repeat(20_000)
        );
        assert!(s
            .exchange(big_head.as_bytes(), SHORT)
            .bytes
            .starts_with(b"HTTP/1.1 431"));
        let many: String = (0..200).map(|i| format!("X-{i}: v\r\n")).collect();
        let many = format!("GET / HTTP/1.1\r\nHost: t\r\n{many}\r\n");
        assert!(s
            .exchange(many.as_bytes(), SHORT)
            .bytes
            .starts_with(b"HTTP/1.1 431"));
        let big_body = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n";
        assert!(s
            .exchange(big_body, SHORT)
            .bytes
            .starts_with(b"HTTP/1.1 413"));
        // The server still serves after all that.
        assert_eq!(s.get("/").status, 200);
    });
}

#[test]
fn slow_and_silent_clients_are_timed_out() {
    for_each_model(
        &["--header-timeout", "1", "--keep-alive-timeout", "1"],
        |s| {
            let t = Instant::now();
            let ex = s.exchange(b"GET / HTTP/1.1\r\nHost:", Duration::from_secs(5));
            assert!(
                ex.bytes.starts_with(b"HTTP/1.1 408"),
                "{:?}",
                String::from_utf8_lossy(&ex.bytes)
            );
            assert!(ex.closed && t.elapsed() < Duration::from_secs(4));
            let t = Instant::now();
            let ex = s.exchange(b"", Duration::from_secs(5));
            assert!(
                ex.closed && ex.bytes.is_empty(),
                "a silent connection is closed without a word"
            );
            assert!(t.elapsed() < Duration::from_secs(4));
            let ex = s.exchange(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n", Duration::from_secs(5));
            assert!(ex.closed, "idle keep-alive connection closed");
            assert_eq!(parse_responses(&ex.bytes, false).len(), 1);
        },
    );
}

#[test]
fn kv_counter_and_sessions() {
    // One prefork worker, so that its per-process state is the server's (see support::Client).
    for_each_model(&["--workers", "1"], |s| {
        let mut c = Client::new(s);
        let mut send = |method: &str, target: &str, headers: &str, body: &str| {
            c.send(method, target, headers, body.as_bytes())
        };
        assert_eq!(send("GET", "/kv/k1", "", "").status, 404);
        assert_eq!(send("PUT", "/kv/k1", "", "one").status, 201);
        assert!(matches!(send("PUT", "/kv/k1", "", "two").status, 200 | 204));
        let got = send("GET", "/kv/k1", "", "");
        assert_eq!((got.status, got.text().as_str()), (200, "two"));
        assert_eq!(send("DELETE", "/kv/k1", "", "").status, 204);
        assert_eq!(send("DELETE", "/kv/k1", "", "").status, 404);

        let first: u64 = send("POST", "/counter", "", "")
            .text()
            .trim()
            .parse()
            .expect("a number");
        let keyed = send("POST", "/counter", "Idempotency-Key: abc\r\n", "");
        let again = send("POST", "/counter", "Idempotency-Key: abc\r\n", "");
        assert_eq!(
            (keyed.status, keyed.text()),
            (again.status, again.text()),
            "retry answers the stored response"
        );
        let next: u64 = send("POST", "/counter", "", "")
            .text()
            .trim()
            .parse()
            .expect("a number");
        assert_eq!(next, first + 2, "the retry added nothing");

        assert_eq!(send("GET", "/me", "", "").status, 401);
        let form = "Content-Type: application/x-www-form-urlencoded\r\n";
        let login = send("POST", "/login", form, "user=alice");
        assert_eq!(login.status, 200);
        let cookie = login
            .header("set-cookie")
            .expect("a session cookie")
            .to_string();
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
            "{cookie}"
        );
        let sid = cookie.split(';').next().unwrap().to_string();
        let me = send("GET", "/me", &format!("Cookie: a=b; {sid}\r\n"), "");
        assert_eq!((me.status, me.text().contains("alice")), (200, true));
        let out = send("POST", "/logout", &format!("Cookie: {sid}\r\n"), "");
        assert!(out.status < 300);
        let me = send("GET", "/me", &format!("Cookie: {sid}\r\n"), "");
        assert_eq!(me.status, 401);
    });
}

#[test]
fn info_and_metrics_count_this_server() {
    for_each_model(&[], |s| {
        for _ in 0..5 {
            assert_eq!(s.get("/").status, 200);
        }
        let info = s.get("/info");
        assert_eq!(info.status, 200);
        let v: serde_json::Value = serde_json::from_slice(&info.body).expect("/info is JSON");
        assert_eq!(v["model"], s.model.as_str());
        assert!(v["requests_total"].as_u64().unwrap_or(0) >= 6, "{v}");
        let m = s.get("/metrics");
        let text = m.text();
        let line = text
            .lines()
            .find(|l| l.starts_with("zoo_requests_total"))
            .expect("zoo_requests_total");
        let n: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(n >= 7.0, "{line}");
        assert!(text.contains("# TYPE zoo_requests_total counter"));

        // Requests the protocol core refuses never reach the service: each one counts in
        // zoo_rejected_total once its connection is gone, and in no other counter.
        let rejected = s.metric("zoo_rejected_total");
        let requests = s.metric("zoo_requests_total");
        for bad in [
            &b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n"[..],
            b"GET / HTTP/7.0\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\n",
        ] {
            let ex = s.exchange(bad, Duration::from_secs(3));
            assert!(ex.closed, "{}: a rejection closes", s.model);
        }
        let mut reads = 0;
        let counted = wait_for(Duration::from_secs(3), || {
            reads += 1;
            (s.metric("zoo_rejected_total") == rejected + 3).then_some(())
        });
        assert!(
            counted.is_some(),
            "{}: zoo_rejected_total {} after 3 rejections, {rejected} before",
            s.model,
            s.metric("zoo_rejected_total")
        );
        // The /metrics reads since (this one included) are the only requests the service saw.
        assert_eq!(
            s.metric("zoo_requests_total"),
            requests + reads + 1,
            "{}",
            s.model
        );
    });
}

#[test]
fn curl_is_served() {
    if Command::new("curl").arg("--version").output().is_err() {
        panic!("curl is required for this test (apt-get install curl)");
    }
    for_each_model(&[], |s| {
        let base = format!("http://{}", s.addr);
        let out = Command::new("curl")
            .args([
                "-sS",
                "--fail",
                &format!("{base}/"),
                &format!("{base}/json"),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "Hello, World!{\"message\":\"Hello, World!\"}"
        );
        let out = Command::new("curl")
            .args([
                "-sS",
                "--fail",
                "-H",
                "Transfer-Encoding: chunked",
                "-H",
                "Expect: 100-continue",
                "--data-binary",
                "chunky",
                &format!("{base}/echo"),
            ])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "chunky");
    });
}

#[test]
fn garbage_never_stops_the_server() {
    for_each_model(&[], |s| {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..50 {
            let len = (seed % 300) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let mut c = s.connect();
            let _ = c.write_all(&bytes);
            drop(c); // half-sent garbage, then a reset or close
        }
        assert_eq!(s.get("/").status, 200);
    });
}

#[test]
fn graceful_shutdown_finishes_in_flight_requests() {
    for model in support::models() {
        let Some(mut s) = Server::start(&model, &["--grace", "5"]) else {
            continue; // uring, where the kernel refuses io_uring (said why)
        };
        let mut busy = s.connect();
        busy.write_all(b"GET /sleep?ms=700 HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let mut idle = s.connect();
        idle.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let first = read_all(&mut idle, Duration::from_millis(300));
        assert_eq!(parse_responses(&first.bytes, false).len(), 1, "{model}");
        // The sleep request reaches the service: it counts in `zoo_requests_total` when it does.
        // Each look adds one (the /metrics request itself): after n looks, 1 (`idle`) + n without
        // it, one more with it.
        let mut looks = 0;
        let deadline = Instant::now() + Duration::from_secs(5);
        let reached = wait_until(deadline, || {
            looks += 1;
            s.metric("zoo_requests_total") > 1 + looks
        });
        assert!(
            reached,
            "{model}: the sleep request never reached the service"
        );
        let t = Instant::now();
        let status = s
            .terminate(Duration::from_secs(6))
            .unwrap_or_else(|| panic!("{model}: did not exit within the grace"));
        assert!(status.success(), "{model}: exit {status:?}");
        let ex = read_all(&mut busy, Duration::from_secs(2));
        let rs = parse_responses(&ex.bytes, false);
        assert_eq!(
            rs.first().map(|r| r.status),
            Some(200),
            "{model}: in-flight request lost"
        );
        assert!(t.elapsed() < Duration::from_secs(5), "{model}");
        let ex = read_all(&mut idle, Duration::from_secs(1));
        assert!(ex.closed, "{model}: idle connection left open");
    }
}
