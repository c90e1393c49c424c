//! `zoo`: one HTTP/1.1 service served by the concurrency model picked at launch.
//!
//! - [`cli`]: the options (each also from a `ZOO_*` environment variable).
//! - [`server`]: what every model shares: service, limits, counters, binding, load shedding.
//! - [`shutdown`]: SIGTERM/SIGINT as a descriptor that every model can wait on.
//! - [`acceptor`]: the blocking accept loop with limits and back-off.
//! - [`blocking`]: the per-connection loop for blocking IO.
//! - [`models`]: one module per model.

mod acceptor;
mod blocking;
mod cli;
mod models;
mod server;
mod shutdown;

use clap::Parser;
use cli::{Model, Options};
use common::stats::Counters;
use server::{announce, bind, raise_nofile_limit, Ctx};
use std::process::ExitCode;
use std::sync::Arc;

fn main() -> ExitCode {
    let opts = Options::parse();
    match run(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zoo: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(opts: Options) -> Result<(), Box<dyn std::error::Error>> {
    shutdown::install()?;
    raise_nofile_limit();
    let listener = bind(opts.listen)
        .map_err(|e| format!("cannot listen on {} (--listen): {e}", opts.listen))?;
    let addr = listener.local_addr()?;
    let model = opts.model;
    let counters: &'static Counters = Box::leak(Box::default());
    let ctx = Arc::new(Ctx::new(opts, counters, false));
    announce(model.name(), addr, "");
    match model {
        Model::Thread => models::thread::run(ctx, listener),
        Model::Pool => models::pool::run(ctx, listener)?,
        Model::Coroutine => models::coroutine::run(ctx, listener)?,
        Model::Tokio => models::tokio::run(ctx, listener)?,
        Model::AsyncStd => models::async_std::run(ctx, listener)?,
        Model::Smol => models::smol::run(ctx, listener)?,
    }
    Ok(())
}
