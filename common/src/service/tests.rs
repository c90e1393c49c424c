//! Every route driven through `Service::handle`, as a model would call it, with its error cases.

use super::counter::MAX_IDEMPOTENCY_KEYS;
use super::kv::MAX_KEY_LEN;
use super::session::MAX_SESSIONS;
use super::work::{MAX_CHUNKS, MAX_CHUNK_SIZE, MAX_CPU_ROUNDS, MAX_SLEEP_MS};
use super::*;
use crate::Body;
use std::time::{Duration, Instant};

fn service() -> Service {
    service_with("test", false)
}

fn service_with(model: &str, per_process: bool) -> Service {
    Service::new(ServiceConfig {
        model: model.to_owned(),
        counters: Box::leak(Box::new(Counters::default())),
        per_process,
        debug_routes: false,
        process: None,
    })
}

fn reply(
    svc: &Service,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    svc.handle(&Request::build(method, target, headers, body))
}

/// The response of a request that must be answered at once.
fn call(svc: &Service, method: &str, target: &str) -> Response {
    call_with(svc, method, target, &[], b"")
}

fn call_with(
    svc: &Service,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    match reply(svc, method, target, headers, body) {
        Reply::Ready(resp) => resp,
        Reply::Delayed(..) => panic!("{method} {target}: Delayed, expected Ready"),
        Reply::Compute(_) => panic!("{method} {target}: Compute, expected Ready"),
    }
}

fn text(resp: &Response) -> String {
    String::from_utf8(resp.body_bytes()).expect("the service answered UTF-8 here")
}

/// Asserts a one-line error answer with `status` whose reason mentions `needle`.
fn assert_rejected(resp: &Response, status: u16, needle: &str) {
    let body = text(resp);
    assert_eq!(resp.status, status, "body: {body:?}");
    assert_eq!(resp.header("Content-Type"), Some("text/plain"));
    assert!(
        body.ends_with('\n') && body.lines().count() == 1,
        "{body:?}"
    );
    assert!(body.contains(needle), "{body:?} should mention {needle:?}");
}

#[test]
fn hello_and_json() {
    let svc = service();
    for target in ["/", "/plaintext"] {
        let resp = call(&svc, "GET", target);
        assert_eq!((resp.status, text(&resp).as_str()), (200, "Hello, World!"));
        assert_eq!(resp.header("Content-Type"), Some("text/plain"));
    }
    let resp = call(&svc, "GET", "/json");
    assert_eq!(resp.status, 200);
    assert_eq!(text(&resp), r#"{"message":"Hello, World!"}"#);
    assert_eq!(resp.header("Content-Type"), Some("application/json"));
}

#[test]
fn head_is_routed_like_get() {
    let svc = service();
    for target in [
        "/", "/json", "/healthz", "/info", "/metrics", "/stream", "/me",
    ] {
        let get = call(&svc, "GET", target);
        let head = call(&svc, "HEAD", target);
        assert_eq!(head.status, get.status, "{target}");
        assert_eq!(head.header("Content-Type"), get.header("Content-Type"));
    }
}

#[test]
fn requests_are_counted_but_not_response_classes() {
    let svc = service();
    call(&svc, "GET", "/");
    call(&svc, "GET", "/nowhere");
    call(&svc, "DELETE", "/json");
    let counters = svc.config.counters;
    assert_eq!(counters.requests_total.load(Relaxed), 3);
    assert!(counters
        .responses_by_class
        .iter()
        .all(|c| c.load(Relaxed) == 0));
}

#[test]
fn unknown_paths_are_404() {
    let svc = service();
    for target in [
        "/nope",
        "/json/",
        "/kv",
        "/status",
        "//",
        "",
        "/PLAINTEXT",
        "/\u{fffd}",
    ] {
        assert_rejected(&call(&svc, "GET", target), 404, "not found");
    }
}

#[test]
fn wrong_method_is_405_with_allow() {
    let svc = service();
    let cases = [
        ("POST", "/", "GET, HEAD, OPTIONS"),
        ("PUT", "/json", "GET, HEAD, OPTIONS"),
        ("DELETE", "/metrics", "GET, HEAD, OPTIONS"),
        ("GET", "/echo", "POST, OPTIONS"),
        ("HEAD", "/counter", "POST, OPTIONS"),
        ("GET", "/login", "POST, OPTIONS"),
        ("GET", "/logout", "POST, OPTIONS"),
        ("POST", "/kv/a", "GET, HEAD, PUT, DELETE, OPTIONS"),
        ("get", "/", "GET, HEAD, OPTIONS"),
        ("options", "/", "GET, HEAD, OPTIONS"),
        ("BREW", "/status/200", "GET, HEAD, OPTIONS"),
        ("CONNECT", "/json", "GET, HEAD, OPTIONS"),
    ];
    for (method, target, allow) in cases {
        let resp = call(&svc, method, target);
        assert_rejected(&resp, 405, allow);
        assert_eq!(resp.header("Allow"), Some(allow), "{method} {target}");
    }
}

/// One path of every route, with the methods it answers besides OPTIONS.
const ROUTE_PATHS: [&str; 19] = [
    "/",
    "/plaintext",
    "/json",
    "/sleep",
    "/block",
    "/cpu",
    "/stream",
    "/echo",
    "/headers",
    "/status/200",
    "/redirect",
    "/kv/a",
    "/counter",
    "/login",
    "/me",
    "/logout",
    "/info",
    "/metrics",
    "/healthz",
];

fn methods(allow: &str) -> Vec<&str> {
    allow.split(", ").collect()
}

#[test]
fn options_answers_the_routes_allow() {
    let svc = service();
    for path in ROUTE_PATHS {
        let wrong = call(&svc, "BREW", path);
        let allow = wrong.header("Allow").expect("a 405 has Allow").to_string();
        for body in [&b""[..], b"dropped"] {
            let resp = call_with(&svc, "OPTIONS", path, &[], body);
            assert_eq!(resp.status, 204, "OPTIONS {path}");
            assert_eq!(resp.body_len(), 0, "OPTIONS {path}");
            assert_eq!(resp.header("Allow"), Some(allow.as_str()), "OPTIONS {path}");
        }
        let listed = methods(&allow);
        assert!(listed.contains(&"OPTIONS"), "{path}: {allow}");
        assert_eq!(
            listed.contains(&"GET"),
            listed.contains(&"HEAD"),
            "{path}: HEAD goes with GET: {allow}"
        );
        for method in listed {
            assert_ne!(call(&svc, method, path).status, 405, "{method} {path}");
        }
    }
    assert_rejected(&call(&svc, "OPTIONS", "/nope"), 404, "not found");
}

#[test]
fn options_star_lists_every_method_some_route_answers() {
    let svc = service();
    let resp = call(&svc, "OPTIONS", "*");
    assert_eq!((resp.status, resp.body_len()), (204, 0));
    let allow = resp.header("Allow").expect("Allow");
    let mut union: Vec<String> = Vec::new();
    for path in ROUTE_PATHS {
        let wrong = call(&svc, "BREW", path);
        for m in methods(wrong.header("Allow").expect("Allow")) {
            if !union.iter().any(|u| u == m) {
                union.push(m.to_string());
            }
        }
    }
    let mut listed = methods(allow);
    listed.sort_unstable();
    union.sort_unstable();
    assert_eq!(listed, union, "OPTIONS * says {allow}");
    // `*` names no resource: only OPTIONS asks about it (the parser refuses the rest).
    assert_rejected(&call(&svc, "GET", "*"), 404, "not found");
}

#[test]
fn connect_is_refused_with_allow_and_closes() {
    let svc = service();
    for target in ["example.com:443", "[::1]:80", "a:1"] {
        let resp = call(&svc, "CONNECT", target);
        assert_rejected(&resp, 405, "no proxy");
        assert_eq!(
            resp.header("Allow"),
            call(&svc, "OPTIONS", "*").header("Allow")
        );
        assert!(resp.close, "CONNECT {target}: the connection closes");
    }
}

#[test]
fn absolute_form_routes_by_its_path_and_names_its_authority() {
    let svc = service();
    let cases = [
        ("http://host/json", "host", "/json", None),
        (
            "HTTPS://host:8443/kv/a?x=1",
            "host:8443",
            "/kv/a",
            Some("x=1"),
        ),
        ("http://host", "host", "/", None),
        ("http://[::1]?q", "[::1]", "/", Some("q")),
    ];
    for (target, authority, path, query) in cases {
        let req = Request::build("GET", target, &[("Host", "other")], b"");
        assert_eq!(
            req.authority(),
            Some(authority),
            "{target}: the target wins over Host"
        );
        assert_eq!((req.path(), req.query()), (path, query), "{target}");
    }
    let json = call_with(&svc, "GET", "http://host/json", &[("Host", "other")], b"");
    assert_eq!(json.status, 200);
    let origin = Request::build("GET", "/json", &[("Host", "other")], b"");
    assert_eq!(origin.authority(), Some("other"));
    let connect = Request::build("CONNECT", "a:443", &[("Host", "b")], b"");
    assert_eq!(
        (connect.authority(), connect.path()),
        (Some("a:443"), "a:443")
    );
}

#[test]
fn sleep_is_delayed_and_bounded() {
    let svc = service();
    match reply(&svc, "GET", "/sleep?ms=250", &[], b"") {
        Reply::Delayed(wait, resp) => {
            assert_eq!(wait, Duration::from_millis(250));
            assert_eq!((resp.status, text(&resp).as_str()), (200, "slept 250 ms\n"));
        }
        _ => panic!("/sleep must be Delayed"),
    }
    let over = format!("/sleep?ms={}", MAX_SLEEP_MS + 1);
    assert_rejected(&call(&svc, "GET", &over), 400, &MAX_SLEEP_MS.to_string());
    for target in [
        "/sleep",
        "/sleep?ms=",
        "/sleep?ms=-1",
        "/sleep?ms=1.5",
        "/sleep?ms=abc",
    ] {
        assert_rejected(&call(&svc, "GET", target), 400, "`ms`");
    }
    let huge = "/sleep?ms=184467440737095516150000";
    assert_rejected(&call(&svc, "GET", huge), 400, "`ms` must be from 0 to");
}

#[test]
fn block_sleeps_in_handle() {
    let svc = service();
    let start = Instant::now();
    let resp = call(&svc, "GET", "/block?ms=30");
    assert!(start.elapsed() >= Duration::from_millis(30));
    assert_eq!((resp.status, text(&resp).as_str()), (200, "slept 30 ms\n"));
    assert_rejected(&call(&svc, "GET", "/block?ms=60001"), 400, "`ms`");
    assert_rejected(
        &call(&svc, "GET", "/block?n=5"),
        400,
        "missing query parameter `ms`",
    );
}

#[test]
fn cpu_offload_answers_what_inline_does() {
    let svc = service();
    let inline = call(&svc, "GET", "/cpu?n=100000");
    assert_eq!(inline.status, 200);
    assert!(text(&inline).starts_with("cpu n=100000 result="));
    let offloaded = match reply(&svc, "GET", "/cpu?n=100000&offload=1", &[], b"") {
        Reply::Compute(job) => job(),
        _ => panic!("offload=1 must be Compute"),
    };
    assert_eq!(offloaded, inline);
    let other = call(&svc, "GET", "/cpu?n=100001&offload=0");
    assert_ne!(text(&other), text(&inline).replace("100000", "100001"));
}

#[test]
fn cpu_rejects_bad_params() {
    let svc = service();
    let over = format!("/cpu?n={}", MAX_CPU_ROUNDS + 1);
    assert_rejected(&call(&svc, "GET", &over), 400, "`n`");
    assert_rejected(&call(&svc, "GET", "/cpu"), 400, "`n`");
    assert_rejected(&call(&svc, "GET", "/cpu?n=x"), 400, "`n`");
    for bad in ["2", "yes", ""] {
        let target = format!("/cpu?n=1&offload={bad}");
        assert_rejected(&call(&svc, "GET", &target), 400, "`offload`");
    }
}

#[test]
fn echo_returns_body_and_type() {
    let svc = service();
    let body = b"\x00\xffnot utf-8";
    let resp = call_with(
        &svc,
        "POST",
        "/echo",
        &[("Content-Type", "image/png")],
        body,
    );
    assert_eq!((resp.status, resp.body_bytes()), (200, body.to_vec()));
    assert_eq!(resp.header("Content-Type"), Some("image/png"));
    let resp = call_with(&svc, "POST", "/echo", &[], b"");
    assert_eq!((resp.status, resp.body_bytes()), (200, Vec::new()));
    assert_eq!(
        resp.header("Content-Type"),
        Some("application/octet-stream")
    );
    let injected = [("Content-Type", "text/html\r\nSet-Cookie: x=1")];
    let resp = call_with(&svc, "POST", "/echo", &injected, b"x");
    assert_eq!(
        resp.header("Content-Type"),
        Some("application/octet-stream")
    );
}

#[test]
fn headers_are_listed_in_order() {
    let svc = service();
    let headers = [("Host", "example.test"), ("X-One", "1"), ("x-two", "a b")];
    let resp = call_with(&svc, "GET", "/headers", &headers, b"");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("Content-Type"), Some("text/plain"));
    assert_eq!(text(&resp), "Host: example.test\nX-One: 1\nx-two: a b\n");
}

#[test]
fn stream_sends_the_asked_chunks() {
    let svc = service();
    let resp = call(&svc, "GET", "/stream?chunks=7&size=100");
    assert_eq!(resp.status, 200);
    match &resp.body {
        Body::Chunked(chunks) => {
            assert_eq!(chunks.len(), 7);
            assert!(chunks.iter().all(|c| c.len() == 100));
            assert!(chunks[0].starts_with(b"abcdefghijklmnopqrstuvwxyzabc"));
        }
        Body::Full(_) => panic!("/stream must be chunked"),
    }
    match call(&svc, "GET", "/stream").body {
        Body::Chunked(chunks) => {
            assert_eq!(chunks.len(), 10);
            assert!(chunks.iter().all(|c| c.len() == 16));
        }
        Body::Full(_) => panic!("/stream must be chunked"),
    }
}

#[test]
fn stream_is_bounded() {
    let svc = service();
    let cases = [
        (format!("/stream?chunks={}", MAX_CHUNKS + 1), "`chunks`"),
        ("/stream?chunks=0".to_owned(), "`chunks`"),
        (format!("/stream?size={}", MAX_CHUNK_SIZE + 1), "`size`"),
        ("/stream?size=0".to_owned(), "`size`"),
        ("/stream?size=ten".to_owned(), "`size`"),
        (
            format!("/stream?chunks={MAX_CHUNKS}&size={MAX_CHUNK_SIZE}"),
            "chunks * size",
        ),
    ];
    for (target, needle) in cases {
        assert_rejected(&call(&svc, "GET", &target), 400, needle);
    }
}

#[test]
fn status_answers_with_the_code() {
    let svc = service();
    for (code, body) in [
        (200, "200 OK\n"),
        (418, "418\n"),
        (503, "503 Service Unavailable\n"),
    ] {
        let resp = call(&svc, "GET", &format!("/status/{code}"));
        assert_eq!((resp.status, text(&resp).as_str()), (code, body));
    }
    assert_eq!(call(&svc, "GET", "/status/599").status, 599);
    for code in [
        "199",
        "600",
        "100",
        "0200",
        "+200",
        "20",
        "abc",
        "",
        "200/x",
        "99999999999",
    ] {
        let resp = call(&svc, "GET", &format!("/status/{code}"));
        assert_rejected(&resp, 400, "200 to 599");
    }
}

#[test]
fn redirect_goes_to_local_paths_only() {
    let svc = service();
    let resp = call(&svc, "GET", "/redirect?to=/json");
    assert_eq!(resp.status, 302);
    assert_eq!(resp.header("Location"), Some("/json"));
    let resp = call(&svc, "GET", "/redirect?to=%2Fkv%2Fa%3Fx%3D1&other=2");
    assert_eq!(resp.header("Location"), Some("/kv/a?x=1"));
    let attempts = [
        "/redirect?to=//evil.example",
        "/redirect?to=%2F%2Fevil.example",
        "/redirect?to=/%5Cevil.example",
        "/redirect?to=/\\evil.example",
        // `to=https://evil.example` unencoded is left out: `Request::path` takes any target
        // holding `://` for absolute-form, so that request is routed to `/` before it gets here.
        "/redirect?to=https:%2F%2Fevil.example",
        "/redirect?to=https%3A%2F%2Fevil.example",
        "/redirect?to=evil.example",
        "/redirect?to=/%09/evil.example",
        "/redirect?to=/a%0D%0ASet-Cookie:%20x=1",
        "/redirect?to=/%00",
        "/redirect?to=",
    ];
    for target in attempts {
        let resp = call(&svc, "GET", target);
        assert_rejected(&resp, 400, "local path");
        assert_eq!(resp.header("Location"), None, "{target}");
    }
    assert_rejected(
        &call(&svc, "GET", "/redirect?to=/%zz"),
        400,
        "percent-encoding",
    );
    assert_rejected(&call(&svc, "GET", "/redirect"), 400, "`to`");
}

#[test]
fn kv_lifecycle() {
    let svc = service();
    assert_rejected(&call(&svc, "GET", "/kv/k"), 404, "no such key");
    let created = call_with(&svc, "PUT", "/kv/k", &[], b"v1");
    assert_eq!(created.status, 201);
    let got = call(&svc, "GET", "/kv/k");
    assert_eq!((got.status, got.body_bytes()), (200, b"v1".to_vec()));
    assert_eq!(got.header("Content-Type"), Some("application/octet-stream"));
    assert_eq!(call(&svc, "HEAD", "/kv/k").status, 200);
    let replaced = call_with(&svc, "PUT", "/kv/k", &[], b"v2");
    assert_eq!((replaced.status, replaced.body_bytes()), (204, Vec::new()));
    assert_eq!(call(&svc, "GET", "/kv/k").body_bytes(), b"v2");
    assert_eq!(call(&svc, "DELETE", "/kv/k").status, 204);
    assert_rejected(&call(&svc, "DELETE", "/kv/k"), 404, "no such key");
    assert_rejected(&call(&svc, "GET", "/kv/k"), 404, "no such key");
    // An empty value is a value.
    assert_eq!(call_with(&svc, "PUT", "/kv/empty", &[], b"").status, 201);
    assert_eq!(call(&svc, "GET", "/kv/empty").status, 200);
}

#[test]
fn kv_rejects_bad_keys_and_values() {
    let svc = service();
    let long = format!("/kv/{}", "k".repeat(MAX_KEY_LEN + 1));
    for target in ["/kv/", "/kv/a/b", long.as_str()] {
        assert_rejected(
            &call_with(&svc, "PUT", target, &[], b"v"),
            400,
            "key must be",
        );
        assert_rejected(&call(&svc, "GET", target), 400, "key must be");
    }
    let max = format!("/kv/{}", "k".repeat(MAX_KEY_LEN));
    assert_eq!(call_with(&svc, "PUT", &max, &[], b"v").status, 201);
    let big = vec![b'x'; super::kv::MAX_VALUE_LEN + 1];
    assert_rejected(
        &call_with(&svc, "PUT", "/kv/big", &[], &big),
        413,
        "value must be",
    );
    assert_rejected(&call(&svc, "GET", "/kv/big"), 404, "no such key");
}

#[test]
fn counter_counts_each_post() {
    let svc = service();
    for expected in 1..=3 {
        let resp = call(&svc, "POST", "/counter");
        assert_eq!((resp.status, text(&resp)), (200, format!("{expected}\n")));
        assert_eq!(resp.header("Idempotent-Replayed"), None);
    }
}

#[test]
fn idempotent_retry_adds_nothing() {
    let svc = service();
    let key = [("Idempotency-Key", "order-42")];
    let first = call_with(&svc, "POST", "/counter", &key, b"");
    assert_eq!(text(&first), "1\n");
    let retry = call_with(&svc, "POST", "/counter", &key, b"");
    assert_eq!(
        (retry.status, retry.body_bytes()),
        (first.status, first.body_bytes())
    );
    assert_eq!(retry.header("Idempotent-Replayed"), Some("true"));
    let other = call_with(
        &svc,
        "POST",
        "/counter",
        &[("Idempotency-Key", "order-43")],
        b"",
    );
    assert_eq!(text(&other), "2\n");
    assert_eq!(text(&call(&svc, "POST", "/counter")), "3\n");
    assert_eq!(text(&call_with(&svc, "POST", "/counter", &key, b"")), "1\n");
}

#[test]
fn idempotency_keys_are_checked_and_bounded() {
    let svc = service();
    let long = "k".repeat(256);
    for bad in ["", long.as_str(), "tab\there", "caf\u{e9}"] {
        let resp = call_with(&svc, "POST", "/counter", &[("Idempotency-Key", bad)], b"");
        assert_rejected(&resp, 400, "Idempotency-Key");
    }
    assert_eq!(
        text(&call(&svc, "POST", "/counter")),
        "1\n",
        "rejected keys count nothing"
    );
    // Past the cap the oldest key is forgotten, so its retry counts again.
    for i in 0..=MAX_IDEMPOTENCY_KEYS {
        let key = format!("key-{i}");
        call_with(&svc, "POST", "/counter", &[("Idempotency-Key", &key)], b"");
    }
    let newest = format!("key-{MAX_IDEMPOTENCY_KEYS}");
    let kept = call_with(
        &svc,
        "POST",
        "/counter",
        &[("Idempotency-Key", &newest)],
        b"",
    );
    assert_eq!(kept.header("Idempotent-Replayed"), Some("true"));
    let forgotten = call_with(
        &svc,
        "POST",
        "/counter",
        &[("Idempotency-Key", "key-0")],
        b"",
    );
    assert_eq!(forgotten.header("Idempotent-Replayed"), None);
    assert_eq!(text(&forgotten), format!("{}\n", MAX_IDEMPOTENCY_KEYS + 3));
}

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

/// Logs in as `form` and returns the `sid=...` pair of the cookie set.
fn login(svc: &Service, form: &str) -> String {
    let resp = call_with(svc, "POST", "/login", &[FORM], form.as_bytes());
    assert_eq!(resp.status, 200, "{}", text(&resp));
    let cookie = resp.header("Set-Cookie").expect("login sets a cookie");
    let (pair, attributes) = cookie.split_once("; ").expect("the cookie has attributes");
    assert_eq!(attributes, "Path=/; HttpOnly; SameSite=Lax");
    pair.to_owned()
}

#[test]
fn session_login_me_logout() {
    let svc = service();
    let pair = login(&svc, "user=J%C3%B6rg+M%26M");
    let sid = pair.strip_prefix("sid=").expect("the cookie is called sid");
    assert_eq!(sid.len(), 32);
    assert!(sid
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));

    let cookie = format!("theme=dark; {pair}; lang=en");
    let me = call_with(&svc, "GET", "/me", &[("Cookie", &cookie)], b"");
    assert_eq!((me.status, text(&me).as_str()), (200, "Jörg M&M\n"));

    let out = call_with(&svc, "POST", "/logout", &[("Cookie", &cookie)], b"");
    assert_eq!(out.status, 200);
    let expired = out.header("Set-Cookie").expect("logout expires the cookie");
    assert!(
        expired.starts_with("sid=;") && expired.contains("Max-Age=0"),
        "{expired}"
    );
    let me = call_with(&svc, "GET", "/me", &[("Cookie", &cookie)], b"");
    assert_rejected(&me, 401, "no valid session");
    assert!(me.header("WWW-Authenticate").is_some());
    // Logging out again is no error.
    let again = call_with(&svc, "POST", "/logout", &[("Cookie", &cookie)], b"");
    assert_eq!(again.status, 200);
}

#[test]
fn me_without_a_valid_session_is_401() {
    let svc = service();
    login(&svc, "user=ann");
    let forged = format!("sid={}", "0".repeat(32));
    let cases: [&[(&str, &str)]; 5] = [
        &[],
        &[("Cookie", "other=1")],
        &[("Cookie", &forged)],
        &[("Cookie", "sid=../../etc")],
        &[("Cookie", "sid=")],
    ];
    for headers in cases {
        let resp = call_with(&svc, "GET", "/me", headers, b"");
        assert_rejected(&resp, 401, "no valid session");
    }
}

#[test]
fn sessions_are_distinct_and_replaced_on_login() {
    let svc = service();
    let ann = login(&svc, "user=ann");
    let bob = login(&svc, "user=bob");
    assert_ne!(ann, bob);
    let me = |pair: &str| text(&call_with(&svc, "GET", "/me", &[("Cookie", pair)], b""));
    assert_eq!(
        (me(&ann), me(&bob)),
        ("ann\n".to_owned(), "bob\n".to_owned())
    );
    // A stale sid cookie next to a live one still finds the live session.
    let both = format!("sid={}; {bob}", "f".repeat(32));
    assert_eq!(me(&both), "bob\n");

    let resp = call_with(
        &svc,
        "POST",
        "/login",
        &[FORM, ("Cookie", &ann)],
        b"user=ann2",
    );
    assert_eq!(resp.status, 200);
    assert_rejected(
        &call_with(&svc, "GET", "/me", &[("Cookie", &ann)], b""),
        401,
        "session",
    );
    assert_eq!(svc.sessions.len(), 2);
}

#[test]
fn login_rejects_bad_forms() {
    let svc = service();
    let long = format!("user={}", "a".repeat(65));
    let cases = [
        ("", "missing form field `user`"),
        ("name=ann", "missing form field `user`"),
        ("user=", "`user` must be"),
        ("user=+++", "`user` must be"),
        ("user=a%0Ab", "`user` must be"),
        ("user=%FF", "UTF-8"),
        ("user=%G0", "percent-encoding"),
        (long.as_str(), "`user` must be"),
    ];
    for (form, needle) in cases {
        let resp = call_with(&svc, "POST", "/login", &[FORM], form.as_bytes());
        assert_rejected(&resp, 400, needle);
        assert_eq!(resp.header("Set-Cookie"), None);
    }
    let json = [("Content-Type", "application/json")];
    let resp = call_with(&svc, "POST", "/login", &json, br#"{"user":"ann"}"#);
    assert_rejected(&resp, 415, "x-www-form-urlencoded");
    // Without a Content-Type the body is taken as a form.
    let resp = call_with(&svc, "POST", "/login", &[], b"user=ann");
    assert_eq!(resp.status, 200);
}

#[test]
fn session_store_is_bounded() {
    let svc = service();
    let first = login(&svc, "user=first");
    for _ in 0..MAX_SESSIONS {
        login(&svc, "user=later");
    }
    assert_eq!(svc.sessions.len(), MAX_SESSIONS);
    let resp = call_with(&svc, "GET", "/me", &[("Cookie", &first)], b"");
    assert_rejected(&resp, 401, "no valid session");
}

#[test]
fn info_reports_who_answered() {
    let svc = service_with("fo\"rk", true);
    svc.config.counters.connection_opened();
    let resp = call(&svc, "GET", "/info");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("Content-Type"), Some("application/json"));
    let body = text(&resp);
    for field in [
        r#""model":"fo\"rk""#.to_owned(),
        format!("\"pid\":{}", std::process::id()),
        r#""thread":""#.to_owned(),
        r#""connections_total":1"#.to_owned(),
        r#""connections_active":1"#.to_owned(),
        r#""requests_total":1"#.to_owned(),
        r#""per_process_state":true"#.to_owned(),
    ] {
        assert!(body.contains(&field), "{body} lacks {field}");
    }
    assert!(body.starts_with('{') && body.trim_end().ends_with('}'));
    let threads = service_with("pool", false);
    assert!(text(&call(&threads, "GET", "/info")).contains(r#""per_process_state":false"#));
}

#[test]
fn metrics_are_prometheus_text() {
    let svc = service_with("epoll", false);
    let counters = svc.config.counters;
    counters.connection_opened();
    counters.response_sent(200);
    counters.response_sent(404);
    counters.shed_total.fetch_add(2, Relaxed);
    call(&svc, "GET", "/");
    let resp = call(&svc, "GET", "/metrics");
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("Content-Type"),
        Some("text/plain; version=0.0.4")
    );
    let body = text(&resp);
    for line in [
        "# TYPE zoo_requests_total counter",
        "zoo_info{model=\"epoll\",per_process_state=\"false\"} 1",
        "zoo_requests_total 2",
        "zoo_connections_total 1",
        "zoo_connections_active 1",
        "# TYPE zoo_connections_active gauge",
        "zoo_responses_total{class=\"2xx\"} 1",
        "zoo_responses_total{class=\"4xx\"} 1",
        "zoo_responses_total{class=\"5xx\"} 0",
        "zoo_rejected_total 0",
        "zoo_shed_total 2",
    ] {
        assert!(body.lines().any(|l| l == line), "{body} lacks {line}");
    }
    // Every sample belongs to a family announced by HELP and TYPE just before it.
    let mut family = "";
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            family = rest.split(' ').next().unwrap_or("");
        } else if !line.starts_with("# HELP ") {
            assert!(line.starts_with(family) && !family.is_empty(), "{line}");
        }
    }
    assert!(body.ends_with('\n'));
}

#[test]
fn healthz_is_ok() {
    let resp = call(&service(), "GET", "/healthz");
    assert_eq!((resp.status, text(&resp).as_str()), (200, "ok"));
}

#[test]
fn odd_targets_do_not_panic() {
    let svc = service();
    let targets = [
        "/cpu?n=1&n=2&&&=&offload",
        "/sleep?ms=1?ms=2",
        "/stream?chunks=%31",
        "/redirect?to=%",
        "/kv/%ff",
        "/status/%32%30%30",
        "http://host",
        "http://host/json?x",
        "*",
        "?",
    ];
    for target in targets {
        for method in ["GET", "POST", "PUT", "DELETE"] {
            let status = match reply(&svc, method, target, &[("Cookie", ";;=;sid")], b"\xff=\xfe") {
                Reply::Ready(resp) => resp.status,
                Reply::Delayed(_, resp) => resp.status,
                Reply::Compute(job) => job().status,
            };
            assert!((200..600).contains(&status), "{method} {target}: {status}");
        }
    }
    assert_eq!(call(&svc, "GET", "http://host/json?x").status, 200);
}

#[test]
fn service_is_shared_across_threads() {
    let svc = std::sync::Arc::new(service());
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let svc = svc.clone();
            std::thread::spawn(move || {
                for _ in 0..250 {
                    call(&svc, "POST", "/counter");
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().expect("no handler panics");
    }
    assert_eq!(text(&call(&svc, "POST", "/counter")), "1001\n");
}

#[test]
fn panic_route_exists_only_with_debug_routes() {
    assert_eq!(call(&service(), "GET", "/panic").status, 404);
    let svc = Service::new(ServiceConfig {
        model: "test".to_owned(),
        counters: Box::leak(Box::new(Counters::default())),
        per_process: false,
        debug_routes: true,
        process: None,
    });
    let inline = std::panic::catch_unwind(|| reply(&svc, "GET", "/panic", &[], b""));
    assert!(inline.is_err(), "the handler itself panics");
    match reply(&svc, "GET", "/panic?offload=1", &[], b"") {
        // The job panics; run_job is how every model runs it, and it answers 500.
        Reply::Compute(job) => assert_eq!(crate::handler::run_job(job).status, 500),
        _ => panic!("offload=1 hands a job to the model"),
    }
}
