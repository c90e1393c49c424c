//! `zoo`: one HTTP/1.1 service served by the concurrency model picked at launch.
//!
//! - [`cli`]: the options (each also from a `ZOO_*` environment variable).
//! - [`server`]: what every model shares: service, limits, counters, binding.
//! - [`admission`]: the connection limit, the shed 503, the accept back-off, the connection
//!   guards and the drain, once for every model.
//! - [`shutdown`]: SIGTERM/SIGINT as a descriptor that every model can wait on.
//! - [`acceptor`]: the blocking accept loop (thread, fork) over [`admission`].
//! - [`blocking`]: the per-connection loop for blocking IO.
//! - [`async_conn`]: the per-connection loop and the runtime glue of tokio, async-std and smol.
//! - [`children`]: forking, reaping and stopping child processes (fork, prefork).
//! - [`scoreboard`]: server-wide counters in memory shared by every process (fork, prefork).
//! - [`process`]: the `process_*` series of `/metrics` (CPU, memory, descriptors) from /proc.
//! - [`reactor`]: the hand-written event loop behind select, poll, epoll, nonblocking and sigio.
//! - [`models`]: one module per model.

mod acceptor;
mod admission;
mod async_conn;
mod blocking;
mod children;
mod cli;
mod models;
mod process;
mod reactor;
mod scoreboard;
mod server;
mod shutdown;

use clap::{Parser, ValueEnum};
use cli::{Model, Options};
use common::stats::Counters;
use scoreboard::Scoreboard;
use server::{announce, bind, raise_nofile_limit, Ctx};
use std::process::ExitCode;
use std::sync::Arc;

fn main() -> ExitCode {
    let opts = Options::parse();
    if opts.list_models {
        for model in Model::value_variants() {
            println!("{}", model.name());
        }
        return ExitCode::SUCCESS;
    }
    match run(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zoo: {e}");
            match e.is::<Unavailable>() {
                true => ExitCode::from(UNAVAILABLE),
                false => ExitCode::FAILURE,
            }
        }
    }
}

/// The exit status when the kernel refuses what the model needs (io_uring): EX_UNAVAILABLE of
/// sysexits.h, so a test or a script can tell "not here" from "broken" (status 1).
const UNAVAILABLE: u8 = 69;

/// The kernel refuses what the model needs; the text says what and why.
#[derive(Debug)]
struct Unavailable(String);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unavailable {}

fn run(opts: Options) -> Result<(), Box<dyn std::error::Error>> {
    shutdown::install()?;
    raise_nofile_limit();
    let listener = bind(opts.listen)
        .map_err(|e| format!("cannot listen on {} (--listen): {e}", opts.listen))?;
    let addr = listener.local_addr()?;
    let model = opts.model;
    if model == Model::Uring {
        models::uring::check_available().map_err(Unavailable)?;
    }
    // The process models count in shared memory, mapped before anything forks.
    let board = model.multi_process().then(Scoreboard::create).transpose()?;
    let counters: &'static Counters = match board {
        Some(board) => &board.counters,
        None => Box::leak(Box::default()),
    };
    let ctx = Arc::new(Ctx::new(opts, counters, board.is_some()));
    let note = if board.is_some() {
        " (state per process)"
    } else {
        ""
    };
    announce(model.name(), addr, note);
    match model {
        Model::Thread => models::thread::run(ctx, listener),
        Model::Pool => models::pool::run(ctx, listener)?,
        Model::Coroutine => models::coroutine::run(ctx, listener)?,
        Model::Tokio => models::tokio::run(ctx, listener)?,
        Model::AsyncStd => models::async_std::run(ctx, listener)?,
        Model::Smol => models::smol::run(ctx, listener)?,
        Model::Fork => models::fork::run(&ctx, listener)?,
        Model::Prefork => {
            let board = board.ok_or("prefork runs without its scoreboard")?;
            models::prefork::run(&ctx, listener, board)?
        }
        Model::Select => models::select::run(ctx, listener)?,
        Model::Poll => models::poll::run(ctx, listener)?,
        Model::Epoll => models::epoll::run(ctx, listener)?,
        Model::Nonblocking => models::nonblocking::run(ctx, listener)?,
        Model::Sigio => models::sigio::run(ctx, listener)?,
        Model::Uring => models::uring::run(ctx, listener)?,
    }
    Ok(())
}
