//! `loadtest compare --quick` with two models and the two Python originals they mirror
//! (peers/python, the virtualenv `make twins` makes): every cell measured, each count agreeing
//! with the twin's own `/metrics`, the "Mirrors and their originals" section with both pairs,
//! and, with the virtualenv pointed elsewhere, an error naming `make twins` before any cell.
//!
//! The one skip: no virtualenv outside CI (a line says so). Under `CI=true` the virtualenv must
//! be there: `.ci/run` runs `make twins` before `make test`.

mod support;

use serde_json::Value;
use std::path::Path;
use std::process::Command;
use support::{zoo, TempDir};

fn venv_python() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../peers/python/.venv/bin/python")
}

#[test]
fn originals_run_like_models_and_the_report_pairs_them() {
    let _one = support::exclusive();
    if !venv_python().is_file() {
        assert!(
            std::env::var("CI").is_err(),
            "CI: peers/python/.venv is missing: .ci/run must run `make twins` first"
        );
        eprintln!("skipped: no peers/python/.venv (run `make twins`)");
        return;
    }
    let zoo = zoo();
    let out = TempDir::new("twins-compare");
    let dir = out.path("run");
    let status = Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args(["compare", "--quick", "--no-anatomy", "--concurrency", "16"])
        .args(["--models", "epoll,prefork,py-tornado,py-gunicorn-sync"])
        .args(["--scenarios", "plaintext,slowloris"])
        .arg("--zoo")
        .arg(&zoo)
        .arg("--out")
        .arg(&dir)
        .status()
        .expect("run loadtest compare");
    assert!(status.success(), "compare failed");
    let text = std::fs::read_to_string(dir.join("results.json")).expect("results.json");
    let r: Value = serde_json::from_str(&text).expect("results.json parses");
    let targets = r["targets"].as_array().expect("targets");
    for twin in ["py-tornado", "py-gunicorn-sync"] {
        let t = targets
            .iter()
            .find(|t| t["name"] == twin)
            .unwrap_or_else(|| panic!("{twin} in targets"));
        assert_eq!(t["kind"], "original", "{t}");
    }
    let cells = r["cells"].as_array().expect("cells");
    assert_eq!(cells.len(), 8, "4 targets × 2 scenarios");
    for c in cells {
        let name = c["target"].as_str().expect("target");
        if c["scenario"] == "plaintext" {
            assert_eq!(c["status"], "ok", "{c}");
            assert!(c["headline"]["requests_per_s"].as_f64().unwrap_or(0.0) > 0.0);
            assert_eq!(c["metrics"]["agrees"], true, "{name}: {}", c["metrics"]);
            assert!(c["server"]["cpu_us_per_request"].as_f64().is_some(), "{c}");
        }
    }
    let report = std::fs::read_to_string(dir.join("report.md")).expect("report.md");
    assert!(
        report.contains("## Mirrors and their originals"),
        "{report}"
    );
    assert!(report.contains("### `epoll` and `py-tornado`"), "{report}");
    assert!(
        report.contains("### `prefork` and `py-gunicorn-sync`"),
        "{report}"
    );
    // Each pair's own chart, drawn and placed in its part of the mirrors section.
    let mirrors = &report[report.find("## Mirrors and their originals").unwrap_or(0)..];
    for stem in ["pair-epoll-py-tornado", "pair-prefork-py-gunicorn-sync"] {
        assert!(
            mirrors.contains(&format!("-{stem}.")),
            "no {stem} chart in the mirrors section:\n{mirrors}"
        );
        let drawn = std::fs::read_dir(dir.join("charts"))
            .expect("charts/")
            .flatten()
            .any(|e| e.file_name().to_string_lossy().contains(stem));
        assert!(drawn, "charts/ has no {stem} file");
    }
    let html = std::fs::read_to_string(dir.join("report.html")).expect("report.html");
    assert!(
        html.contains("pair-epoll-py-tornado"),
        "report.html has no chart for the epoll/py-tornado pair"
    );

    let missing = out.path("no-venv");
    let failed = Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args(["compare", "--quick", "--models", "epoll", "--twins"])
        .args(["--scenarios", "plaintext", "--twins-venv"])
        .arg(&missing)
        .arg("--zoo")
        .arg(&zoo)
        .arg("--out")
        .arg(out.path("never"))
        .output()
        .expect("run loadtest compare");
    assert!(!failed.status.success());
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(err.contains("make twins"), "{err}");
    assert!(!out.path("never").join("results.json").exists());
}
