//! Writes the seed corpus of both fuzz targets into `seeds/<target>/` (next to this crate's
//! manifest, or under the directory given as the one argument), replacing what was there:
//!
//! ```sh
//! cargo run --manifest-path fuzz/Cargo.toml --bin seeds
//! ```
//!
//! The requests are those of the core's byte tables (valid ones, pipelined, chunked with
//! extensions and trailers, HEAD, HTTP/1.0, and one case for each rejection), so libFuzzer
//! starts from every branch the tables reach. `request_parser` gets each request behind the
//! selector of its largest small limits. `connection` gets each one three ways: sent in one read,
//! one byte a read, and under the small limits; then the conversations the tables cannot express
//! as bytes alone: 100-continue, answers held while more arrives, partial writes, deadlines,
//! shutdown, peer EOF, released buffers, and every answer kind.

use std::path::{Path, PathBuf};
use std::time::Duration;
use zoo_fuzz::script::{encode_input, Delay, Op, ALL};

/// A GET of `/` with `Host: a` and then `extra` header lines: most rejections are one bad line.
fn get_with(extra: &str) -> Vec<u8> {
    format!("GET / HTTP/1.1\r\nHost: a\r\n{extra}\r\n").into_bytes()
}

/// A chunked POST whose body section is `body`.
fn chunked(body: &str) -> Vec<u8> {
    format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n{body}").into_bytes()
}

fn valid() -> Vec<(&'static str, Vec<u8>)> {
    let raw = |name, bytes: &str| (name, bytes.as_bytes().to_vec());
    vec![
        ("simple GET", get_with("")),
        raw(
            "query and a value with inner spaces",
            "GET /x?y=1&z HTTP/1.1\r\nHost: a\r\nX-Thing: \t two  words \t\r\n\r\n",
        ),
        ("obs-text in a value", get_with("X: caf\u{e9}\tau lait\r\n")),
        ("every tchar in a name", get_with("X-!#$%&'*+.^_`|~: v\r\n")),
        raw("Host with percent-encoding and a port", "GET / HTTP/1.1\r\nHost: a%2Db:80\r\n\r\n"),
        raw("IPv6 Host with port", "GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n"),
        raw("unknown method", "PURGE /x HTTP/1.1\r\nHost: a\r\n\r\n"),
        raw("absolute-form", "GET http://a/x?q HTTP/1.1\r\nHost: a\r\n\r\n"),
        raw(
            "absolute-form beside another Host",
            "GET HTTPS://[::1]:8443?q HTTP/1.1\r\nHost: other\r\n\r\n",
        ),
        raw("asterisk-form", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"),
        raw(
            "OPTIONS with a body",
            "OPTIONS /json HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhiGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        ),
        // The core lets CONNECT through; the service refuses it (405, Allow, close).
        raw("authority-form", "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n"),
        ("leading empty lines", [&b"\r\n\r\n"[..], &get_with("")].concat()),
        raw(
            "Content-Length body",
            "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
        ),
        raw(
            "Content-Length 0",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
        ),
        raw(
            "Content-Length with zeros and whitespace",
            "PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: \t003 \r\n\r\nabc",
        ),
        raw(
            "body that looks like a request",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18\r\n\r\nGET / HTTP/1.1\r\n\r\n",
        ),
        (
            "chunked",
            chunked("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
        ),
        (
            "chunked hex sizes and a padded last chunk",
            chunked("A\r\n0123456789\r\nb\r\n0123456789a\r\n000\r\n\r\n"),
        ),
        (
            "chunk extensions",
            chunked(
                "5;a;b=c;d=\"x y\"\r\nhello\r\n6 ; e = \"q\\\"u;o\\\\te\" ;f\r\n world\r\n0;last=yes\r\n\r\n",
            ),
        ),
        (
            "chunked with trailers",
            chunked("3\r\nabc\r\n0\r\nX-Sum: 123\r\nX-Note:  two words \r\n\r\n"),
        ),
        raw(
            "Transfer-Encoding with empty list elements",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , Chunked ,\r\n\r\n1\r\nx\r\n0\r\n\r\n",
        ),
        raw("HTTP/1.0", "GET / HTTP/1.0\r\n\r\n"),
        raw(
            "HTTP/1.0 body",
            "POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc",
        ),
        raw(
            "HTTP/1.0 keep-alive",
            "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\nGET /2 HTTP/1.0\r\n\r\n",
        ),
        raw(
            "HTTP/1.0 keep-alive and close",
            "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n",
        ),
        ("Connection close", get_with("Connection: foo, CLOSE\r\n")),
        (
            "Connection upgrade",
            get_with("Connection: keep-alive, Upgrade\r\nUpgrade: x\r\n"),
        ),
        raw(
            "three pipelined",
            "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhiGET /3 HTTP/1.1\r\nHost: a\r\n\r\n",
        ),
        raw(
            "pipelined behind a close",
            "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /3 HTTP/1.1\r\nHost: a\r\n\r\n",
        ),
        raw(
            "pipelined chunked then Content-Length",
            "POST /1 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\nok\r\n0\r\nT: v\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
        ),
        raw("HEAD", "HEAD /x HTTP/1.1\r\nHost: a\r\n\r\n"),
        raw(
            "HEAD then GET",
            "HEAD / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        ),
        raw(
            "100-continue with its body",
            "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello",
        ),
        raw(
            "100-continue chunked",
            "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        ),
        raw(
            "HTTP/1.0 ignores 100-continue",
            "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
        ),
    ]
}

fn rejected() -> Vec<(&'static str, Vec<u8>)> {
    let raw = |name, bytes: &str| (name, bytes.as_bytes().to_vec());
    vec![
        // Framing.
        raw(
            "CL and TE",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ),
        ("duplicate CL", get_with("Content-Length: 1\r\nContent-Length: 1\r\n")),
        ("CL plus", get_with("Content-Length: +5\r\n")),
        ("CL list", get_with("Content-Length: 5,5\r\n")),
        ("CL hex", get_with("Content-Length: 0x5\r\n")),
        ("CL blank", get_with("Content-Length: \r\n")),
        ("CL beyond u64", get_with("Content-Length: 100000000000000000000000\r\n")),
        ("TE chunked then gzip", get_with("Transfer-Encoding: chunked, gzip\r\n")),
        ("TE chunked twice", get_with("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n")),
        ("TE gzip then chunked", get_with("Transfer-Encoding: gzip, chunked\r\n")),
        ("TE identity", get_with("Transfer-Encoding: identity\r\n")),
        ("TE blank", get_with("Transfer-Encoding: \r\n")),
        ("TE with a parameter", get_with("Transfer-Encoding: chunked;q=1\r\n")),
        raw(
            "TE in HTTP-1.0",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ),
        // Line endings and folding.
        ("obs-fold", get_with("X: a\r\n b\r\n")),
        ("obs-fold with a tab", get_with("X: a\r\n\tb\r\n")),
        raw("whitespace before the first field", "GET / HTTP/1.1\r\n Host: a\r\n\r\n"),
        raw("bare CR in the request line", "GET / HTTP/1.1\rHost: a\r\n\r\n"),
        ("bare CR in a value", get_with("X: a\rb\r\n")),
        ("CR CR LF", get_with("X: a\r\r\n")),
        raw(
            "bare CR before the body",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\rabc",
        ),
        raw("bare LF line endings", "GET / HTTP/1.1\nHost: a\n\n"),
        raw("bare LF ends the head", "GET / HTTP/1.1\r\nHost: a\r\n\n"),
        raw("bare LF before the request line", "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"),
        // Bytes in names and values.
        ("NUL in a value", get_with("X: a\0b\r\n")),
        ("DEL in a value", get_with("X: a\x7fb\r\n")),
        ("paren in a name", get_with("X(y): v\r\n")),
        ("space inside a name", get_with("X y: v\r\n")),
        ("empty name", get_with(": v\r\n")),
        ("no colon", get_with("X\r\n")),
        raw("space before the colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n"),
        // Host.
        raw("missing Host", "GET / HTTP/1.1\r\n\r\n"),
        ("two Hosts", get_with("Host: b\r\n")),
        raw("Host with userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n"),
        raw("empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n"),
        raw("Host of a tab", "GET / HTTP/1.1\r\nHost:\t\r\n\r\n"),
        raw("Host with an open bracket", "GET / HTTP/1.1\r\nHost: [::1:80\r\n\r\n"),
        raw("absolute-form beside a Host of a space", "GET http://a/ HTTP/1.1\r\nHost: \r\n\r\n"),
        // Chunked framing.
        ("chunk size zz", chunked("zz\r\n")),
        ("chunk size empty", chunked("\r\nabc\r\n")),
        ("chunk size with a space", chunked("5 \r\nhello\r\n0\r\n\r\n")),
        ("chunk size overflows", chunked("ffffffffffffffffff\r\nx\r\n0\r\n\r\n")),
        ("chunk extension without a name", chunked("5;\r\nhello\r\n0\r\n\r\n")),
        ("chunk extension without a value", chunked("5;a=\r\nhello\r\n0\r\n\r\n")),
        ("chunk extension open quote", chunked("5;a=\"x\r\nhello\r\n0\r\n\r\n")),
        ("chunk extension control byte", chunked("5;a=\"\x01\"\r\nhello\r\n0\r\n\r\n")),
        ("chunk data without CRLF", chunked("5\r\nhelloXX0\r\n\r\n")),
        ("chunk data ended by LF", chunked("5\r\nhello\n0\r\n\r\n")),
        ("chunk size line with a bare CR", chunked("5\r\r;a\r\nhello\r\n0\r\n\r\n")),
        ("trailer with a bad name", chunked("0\r\nX y: v\r\n\r\n")),
        ("trailer folded", chunked("0\r\nX: a\r\n b\r\n\r\n")),
        ("trailers end with LF", chunked("0\r\nX: a\r\n\n")),
        // Limits (the default ones; the small limits reach them sooner).
        (
            "414 request line",
            format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(9000)).into_bytes(),
        ),
        ("431 head", get_with(&format!("X-Big: {}\r\n", "b".repeat(17_000)))),
        ("431 fields", get_with(&"X-N: v\r\n".repeat(100))),
        ("413 Content-Length", get_with("Content-Length: 2000000\r\n")),
        ("413 chunk", chunked("100001\r\n")),
        // Request line.
        raw("505 HTTP-1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n"),
        raw("HTTP-2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        raw("no version", "GET /\r\n\r\n"),
        raw("lower-case http", "GET / http/1.1\r\nHost: a\r\n\r\n"),
        raw("two spaces after the method", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n"),
        raw("target foo", "GET foo HTTP/1.1\r\nHost: a\r\n\r\n"),
        raw("target double slash", "GET //x HTTP/1.1\r\nHost: a\r\n\r\n"),
        raw("asterisk with GET", "GET * HTTP/1.1\r\nHost: a\r\n\r\n"),
        raw("CONNECT with a path", "CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n"),
        raw("CONNECT without a port", "CONNECT a HTTP/1.1\r\nHost: a\r\n\r\n"),
        raw("authority-form with GET", "GET a:443 HTTP/1.1\r\nHost: a\r\n\r\n"),
        raw("fragment", "GET /a?b#c HTTP/1.1\r\nHost: a\r\n\r\n"),
        raw("absolute-form with userinfo", "GET http://u@a/x HTTP/1.1\r\nHost: a\r\n\r\n"),
        raw("absolute-form with a bad byte in the authority", "GET http://a\"b/ HTTP/1.1\r\nHost: a\r\n\r\n"),
        (
            "501 method past the line limit",
            format!("{} / HTTP/1.1\r\nHost: a\r\n\r\n", "M".repeat(9000)).into_bytes(),
        ),
        (
            "TLS hello",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n".to_vec(),
        ),
        // Expectations.
        ("417", get_with("Expect: the-unexpected\r\n")),
        raw(
            "bad request behind a good one",
            "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\n\r\n",
        ),
    ]
}

/// Feed ops that send exactly `n` bytes: the largest sizes of the table first.
fn feed_exactly(mut n: usize) -> Vec<Op> {
    const SIZES: [usize; 12] = [8192, 4096, 1024, 256, 64, 32, 16, 8, 4, 3, 2, 1];
    let mut ops = Vec::new();
    for size in SIZES {
        while n >= size {
            ops.push(Op::Feed(size));
            n -= size;
        }
    }
    ops
}

/// Serve and answer at once with answer kind `answer`.
fn serve(answer: u8) -> Op {
    Op::Serve {
        answer,
        hold: false,
    }
}

/// A scripted conversation: name, small limits, the script, the client's bytes.
type Conversation = (&'static str, bool, Vec<Op>, Vec<u8>);

fn conversations() -> Vec<Conversation> {
    let expect_head =
        b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";
    let first = b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n";
    let three = [&first[..], first, first].concat();
    let post2 = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n";
    let big_post = [
        &b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9000\r\n\r\n"[..],
        &[b'x'; 9000],
    ]
    .concat();
    let hold = Op::Serve {
        answer: 0,
        hold: true,
    };
    let out = Op::Write(ALL);
    let mut list = vec![
        (
            "100-continue, then the body",
            false,
            [
                feed_exactly(expect_head.len()),
                vec![out, Op::Feed(ALL), serve(0), out],
            ]
            .concat(),
            [&expect_head[..], b"hello"].concat(),
        ),
        (
            "100-continue, written in pieces",
            false,
            [
                feed_exactly(expect_head.len()),
                vec![
                    Op::Write(16),
                    Op::Write(9),
                    Op::Feed(3),
                    Op::Feed(2),
                    serve(1),
                ],
                vec![Op::Write(1), out],
            ]
            .concat(),
            [&expect_head[..], b"hello"].concat(),
        ),
        (
            "HEAD with chunked answers",
            false,
            vec![Op::Feed(ALL), serve(1), serve(3), out],
            b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\nHEAD / HTTP/1.0\r\n\r\n".to_vec(),
        ),
        (
            "held while more arrives",
            false,
            [
                feed_exactly(first.len()),
                vec![
                    hold,
                    Op::Feed(ALL),
                    Op::Wait(Delay::By(Duration::from_secs(60))),
                ],
                vec![serve(1), serve(0), out],
            ]
            .concat(),
            [&first[..], post2, b"ok"].concat(),
        ),
        (
            "partial writes across answers",
            false,
            vec![
                Op::Feed(ALL),
                serve(0),
                serve(1),
                serve(2),
                Op::Write(1),
                Op::Write(100),
                Op::Write(7),
                out,
            ],
            three.clone(),
        ),
        (
            "header timeout, and a nanosecond before it",
            false,
            vec![
                Op::Feed(ALL),
                Op::Wait(Delay::JustBeforeDeadline),
                Op::Wait(Delay::ToDeadline),
                out,
            ],
            b"GET / HT".to_vec(),
        ),
        (
            "body stall",
            false,
            vec![
                Op::Feed(ALL),
                Op::Wait(Delay::By(Duration::from_secs(3))),
                Op::Wait(Delay::ToDeadline),
                out,
            ],
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc".to_vec(),
        ),
        (
            "idle keep-alive expires",
            false,
            vec![Op::Feed(ALL), serve(0), out, Op::Wait(Delay::ToDeadline)],
            first.to_vec(),
        ),
        (
            "next request after a long idle",
            false,
            [
                feed_exactly(first.len()),
                vec![
                    serve(0),
                    out,
                    Op::Wait(Delay::By(Duration::from_secs(4))),
                    Op::Feed(3),
                ],
                vec![Op::Wait(Delay::ToDeadline), out],
            ]
            .concat(),
            [&first[..], first].concat(),
        ),
        (
            "silent client",
            false,
            vec![Op::Wait(Delay::ToDeadline)],
            Vec::new(),
        ),
        (
            "shutdown while idle",
            false,
            vec![Op::Feed(ALL), serve(0), Op::Shutdown, out],
            three.clone(),
        ),
        (
            "shutdown while held",
            false,
            vec![Op::Feed(ALL), hold, Op::Shutdown, serve(0), out],
            three.clone(),
        ),
        (
            "shutdown mid-head",
            false,
            vec![Op::Feed(16), Op::Shutdown, Op::Feed(ALL), serve(0), out],
            three.clone(),
        ),
        (
            "peer EOF behind pipelined requests",
            false,
            vec![Op::Feed(ALL), Op::Eof, serve(0), serve(0), serve(0), out],
            [&three[..], b"GET /4 HTTP/1.1\r\n"].concat(),
        ),
        (
            "buffers released when idle and kept when not",
            false,
            [
                feed_exactly(first.len()),
                vec![serve(0), out, Op::Release],
                feed_exactly(post2.len()),
                vec![Op::Release, Op::Feed(ALL), serve(0), out, Op::Release],
            ]
            .concat(),
            [&first[..], post2, b"ok"].concat(),
        ),
        (
            "read in place across the read chunk",
            false,
            vec![Op::Read(8191), Op::Read(8193), Op::Read(ALL), serve(1), out],
            big_post.clone(),
        ),
        (
            "small limits: 413 body",
            true,
            vec![Op::Feed(ALL), out],
            [
                &b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 200\r\n\r\n"[..],
                &[b'y'; 200],
            ]
            .concat(),
        ),
        (
            "small limits: 414",
            true,
            Vec::new(),
            format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(64)).into_bytes(),
        ),
        (
            "small limits: 431",
            true,
            Vec::new(),
            get_with(&"X-N: v\r\n".repeat(8)),
        ),
    ];
    // Every answer kind that keeps the connection open, each on its own pipelined request, then
    // one that closes it.
    let kinds = [0, 1, 2, 3, 8, 9, 10, 11, 4];
    let ops: Vec<Op> = kinds
        .iter()
        .flat_map(|&k| [serve(k), Op::Write(ALL)])
        .collect();
    let requests = (0..kinds.len())
        .map(|_| "POST /k HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\n012345678")
        .collect::<String>();
    let ops = [vec![Op::Feed(ALL)], ops].concat();
    list.push(("every answer kind", false, ops, requests.into_bytes()));
    list
}

/// A file name from a case name: lower case, runs of anything else as one dash.
fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// Empties `dir` of the files this tool wrote before, then makes sure it exists.
fn fresh_dir(dir: &Path) -> std::io::Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = match std::env::args_os().nth(1) {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds"),
    };
    let parser_dir = root.join("request_parser");
    let conn_dir = root.join("connection");
    fresh_dir(&parser_dir)?;
    fresh_dir(&conn_dir)?;

    let mut written = 0;
    let mut write = |dir: &Path, name: String, bytes: Vec<u8>| -> std::io::Result<()> {
        let path = dir.join(name);
        assert!(!path.exists(), "two seeds named {}", path.display());
        written += 1;
        std::fs::write(path, bytes)
    };
    let cases = valid().into_iter().map(|c| ("ok", c));
    let cases = cases.chain(rejected().into_iter().map(|c| ("bad", c)));
    for (kind, (name, bytes)) in cases {
        let name = format!("{kind}-{}", slug(name));
        // 0xff: the largest of the parser target's small limits.
        write(&parser_dir, name.clone(), [&[0xff][..], &bytes].concat())?;
        write(&conn_dir, name.clone(), encode_input(false, &[], &bytes))?;
        let bytewise = vec![Op::Feed(1); bytes.len().min(255)];
        write(
            &conn_dir,
            format!("{name}.bytewise"),
            encode_input(false, &bytewise, &bytes),
        )?;
        write(
            &conn_dir,
            format!("{name}.small"),
            encode_input(true, &[], &bytes),
        )?;
    }
    // The smallest limits of all: no field allowed, a 16-byte request line.
    write(
        &parser_dir,
        "ok-tiny-limits".into(),
        [&[0x00][..], b"GET / HTTP/1.1\r\n\r\n"].concat(),
    )?;
    for (name, small, ops, bytes) in conversations() {
        write(
            &conn_dir,
            format!("talk-{}", slug(name)),
            encode_input(small, &ops, &bytes),
        )?;
    }
    println!("{written} seeds written under {}", root.display());
    Ok(())
}
