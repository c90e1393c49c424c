//! No multiplexer (IO model 2): every watched descriptor is reported ready on every pass, and the
//! loop finds out by trying. A read or accept on a non-blocking socket that has nothing answers
//! `EAGAIN` at once, so a pass over n connections costs n syscalls whether or not anything
//! happened.
//!
//! After a pass that found nothing the loop naps for [`IDLE_NAP`] (or until its next timer, if
//! sooner). Without the nap an idle server spins a CPU at 100% and, pinned beside the load
//! generator, takes its time slices. A millisecond is the shortest nap the kernel reliably honours
//! without turning it into a busy wait, and it adds at most that much latency to the first request
//! after a quiet spell; a pass that found work is followed at once by the next, so a busy server
//! never naps.

use super::{FdTable, Interest, Multiplexer, Token};
use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

/// The sleep after a pass that found nothing to do.
pub const IDLE_NAP: Duration = Duration::from_millis(1);

/// Reports everything, every time.
#[derive(Debug)]
pub struct Scan {
    table: FdTable,
    found_work: bool,
}

impl Multiplexer for Scan {
    fn new() -> io::Result<Scan> {
        Ok(Scan {
            table: FdTable::default(),
            found_work: true,
        })
    }

    fn add(&mut self, fd: RawFd, token: Token, interest: Interest) -> io::Result<()> {
        self.table.set(fd, token, interest);
        Ok(())
    }

    fn modify(&mut self, fd: RawFd, token: Token, _old: Interest, new: Interest) -> io::Result<()> {
        self.add(fd, token, new)
    }

    fn delete(&mut self, fd: RawFd, _interest: Interest) -> io::Result<()> {
        self.table.remove(fd);
        Ok(())
    }

    fn wait(&mut self, ready: &mut Vec<Token>, timeout: Option<Duration>) -> io::Result<()> {
        if !self.found_work {
            let nap = timeout.map_or(IDLE_NAP, |t| t.min(IDLE_NAP));
            if !nap.is_zero() {
                std::thread::sleep(nap);
            }
        }
        let watched = self.table.iter().filter(|&(_, _, i)| i != Interest::None);
        ready.extend(watched.map(|(_, token, _)| token));
        Ok(())
    }

    fn pass_done(&mut self, found_work: bool) {
        self.found_work = found_work;
    }
}
