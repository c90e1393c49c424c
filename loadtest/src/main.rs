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
//! - [`format`]: numbers and units (latencies, sizes, rates, ratios, thousands): one home.
//! - [`compare`]: the `compare` and `report` subcommands, each job a module of its folder: the
//!   plan, running a scenario, the scenario catalogue and a cell's measurement, the crowds, the
//!   servers, sampling, results.json, report.md, its readings and the charts.

mod cli;
mod compare;
mod engine;
mod format;
mod hlog;
mod report;
mod run;
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
