//! `loadtest`: an HTTP/1.1 load generator for the zoo, as efficient as wrk (an epoll loop per
//! thread, no task or allocation per request) with wrk2's corrected latency, HdrHistogram
//! percentiles, per-second figures and a JSON report; and `compare`, which runs every model
//! through every scenario with that engine and writes the report. See `loadtest/README.md` for
//! the options and the JSON schemas.
//!
//! - [`cli`]: the command line (clap), each value checked against its flag.
//! - [`target`]: the `http://` URL, parsed and resolved before the run.
//! - [`sys`]: epoll, a non-blocking connect and CPU time: the only `unsafe` code.
//! - [`engine`]: one thread's epoll loop over its connections ("Theory of operation").
//! - [`stats`]: per-thread recording, per-second hand-over, the main thread's sums.
//! - [`run`]: the `run` subcommand: plan, threads, progress bar, self-check, output.
//! - [`report`]: the terminal summary and the JSON document (schema `zoo-loadtest/1`).
//! - [`hlog`]: HdrHistogram interval logs, and the `merge` subcommand's sums.
//! - [`compare`]: the `compare` and `report` subcommands: the matrix, servers, progress, output.
//! - [`scenarios`]: each scenario's load, words and variants, and how a cell is measured.
//! - [`launch`]: starting and stopping zoo and nginx, pinned, with their stderr kept.
//! - [`sampling`]: CPU time and memory of a server's whole process tree, from /proc.
//! - [`probe`]: single requests beside the load: `/metrics`, readiness.
//! - [`idle`]: c10k's crowd of idle keep-alive connections.
//! - [`slowloris`]: slowloris' crowd of clients trickling their heads.
//! - [`results`]: `results.json` (schema `zoo-compare/1`).
//! - [`markdown`]: `report.md`: the setup, a table per scenario, the checks and failures.
//! - [`reading`]: the plain-words reading of each table, computed from its figures.
//! - [`charts`]: SVG and PNG charts with plotters.
//! - [`html`]: `report.html`: the report to explore in a browser, charts as inline SVG.

mod charts;
mod cli;
mod compare;
mod engine;
mod hlog;
mod html;
mod idle;
mod launch;
mod markdown;
mod probe;
mod reading;
mod report;
mod results;
mod run;
mod sampling;
mod scenarios;
mod slowloris;
mod stats;
mod sys;
mod target;

use clap::Parser;
use cli::{Cli, Command, MergeArgs};
use std::error::Error;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match &cli.command {
        Command::Run(args) => run::run(args),
        Command::Merge(args) => merge(args),
        Command::Compare(args) => compare::compare(args),
        Command::Report(args) => compare::report_again(&args.dir),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `loadtest merge`: adds up interval logs and prints (or writes) the combined percentiles.
fn merge(args: &MergeArgs) -> Result<(), Box<dyn Error>> {
    let merged = hlog::merge_files(&args.files)?;
    let report = hlog::MergeReport::new(&merged);
    let to_stdout = args.json.as_deref() == Some("-");
    if to_stdout {
        eprint!("{}", report.summary());
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.summary());
        if let Some(path) = &args.json {
            let text = serde_json::to_string_pretty(&report)? + "\n";
            std::fs::write(path, text).map_err(|e| format!("--json {path}: {e}"))?;
        }
    }
    Ok(())
}
