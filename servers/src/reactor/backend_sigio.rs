//! Signal-driven readiness (IO model 4): the kernel queues a real-time signal each time a socket
//! becomes readable or writable, and the loop reads readiness off the signal queue.
//!
//! Each descriptor gets `F_SETSIG` (which signal: a real-time one, so instances queue and carry
//! `si_fd` and `si_band` instead of merging into one bare SIGIO), `F_SETOWN_EX` to the loop's own
//! thread (so with several loops each hears only its sockets), and `O_ASYNC`. The signals are
//! blocked in every thread and taken synchronously, in batches through a `signalfd`, one read for
//! up to 64 reports, because taking them one syscall each is the main cost of this model:
//! [`SigIo::wait`] first reads what is queued already, and only when nothing is sleeps in
//! `sigtimedwait` (which has a timeout, for the timer heap) and then reads the rest.
//!
//! The reports are edge-triggered: a signal per change, none for a state that persists. So the
//! loop drains every socket until `WouldBlock`, and tries IO after each change of its own (an
//! answer sent, a connection accepted) instead of waiting for a report. Interest is a filter here,
//! not a syscall: the kernel signals every change and [`SigIo`] drops those nobody waits for.
//!
//! That drain is the one syscall a request costs here beyond the read and the write (three in
//! all, plus a share of the waits: the README's Performance section has the counts), and it is
//! inherent: a FIN that half-closes a connection raises the same `POLL_IN` report as data, and
//! the reports of one socket taken in one batch are merged, so after a short read nothing tells
//! whether the end of input came with the bytes; only a read to `WouldBlock` finds out.
//!
//! The queue is bounded (`RLIMIT_SIGPENDING`, per user). When it overflows the kernel sends plain
//! SIGIO, which carries no descriptor, and reports have been lost: the loop then treats every
//! watched descriptor as ready (a full rescan, as nginx's rtsig method did), and the stale reports
//! still queued cost a harmless extra try each.

use super::{wait_error, FdTable, Interest, Multiplexer, Token};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

// From <fcntl.h>, the asm-generic values (x86, arm, riscv); libc does not export them for glibc.
const F_SETSIG: libc::c_int = 10;
const F_SETOWN_EX: libc::c_int = 15;
const F_OWNER_TID: libc::c_int = 0;

/// `struct f_owner_ex` of <fcntl.h>.
#[repr(C)]
struct OwnerEx {
    kind: libc::c_int,
    pid: libc::pid_t,
}

/// Reports taken per read of the signalfd.
const BATCH: usize = 64;
/// Reports taken per wait at most (as epoll_wait's maxevents); the rest stay queued.
const MAX_REPORTS: usize = 1024;

/// Signal-driven readiness.
pub struct SigIo {
    /// The real-time signal the sockets raise.
    signo: libc::c_int,
    /// `signo` and SIGIO (the overflow notice).
    set: libc::sigset_t,
    /// Reads the same signals, many per call, without blocking.
    signalfd: OwnedFd,
    table: FdTable,
    batch: Vec<libc::signalfd_siginfo>,
    /// The loop's thread id, taken at the first registration (which runs on the loop's thread).
    owner: Option<libc::pid_t>,
    overflowed: bool,
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

impl SigIo {
    /// Takes one report: `sig` with its descriptor and band.
    fn take(&mut self, sig: libc::c_int, fd: RawFd, band: i64, ready: &mut Vec<Token>) {
        if sig == libc::SIGIO {
            if !self.overflowed {
                self.overflowed = true;
                eprintln!(
                    "zoo: the real-time signal queue overflowed (RLIMIT_SIGPENDING): \
                     rescanning every connection (reported once)"
                );
            }
            let watched = self.table.iter().filter(|&(_, _, i)| i != Interest::None);
            ready.extend(watched.map(|(_, token, _)| token));
            return;
        }
        if sig != self.signo {
            return;
        }
        // A report for a descriptor closed since finds no slot, or (number reused) costs one try.
        let Some((token, interest)) = self.table.get(fd) else {
            return;
        };
        let has = |bits: libc::c_short| band & i64::from(bits) != 0;
        let wanted = match interest {
            Interest::Read => has(libc::POLLIN | libc::POLLRDNORM | libc::POLLERR | libc::POLLHUP),
            Interest::Write => {
                has(libc::POLLOUT | libc::POLLWRNORM | libc::POLLERR | libc::POLLHUP)
            }
            Interest::None => false,
        };
        if wanted {
            ready.push(token);
        }
    }
}

impl Multiplexer for SigIo {
    const PIPE_WAKER: bool = true;
    const LEVEL_TRIGGERED: bool = false;

    fn new() -> io::Result<SigIo> {
        // SIGRTMIN itself is left to libraries that take it by habit.
        let signo = libc::SIGRTMIN() + 1;
        // SAFETY: sigset_t is plain data; sigemptyset initialises it before any other use.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a valid sigset_t; the calls only write into it and the thread's mask.
        unsafe {
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, signo);
            libc::sigaddset(&mut set, libc::SIGIO);
            // Blocked, the signals wait in the queue for sigtimedwait instead of running a handler
            // (or, by default, killing the process). Threads started later inherit the mask.
            let err = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            if err != 0 {
                return Err(io::Error::from_raw_os_error(err));
            }
        }
        let flags = libc::SFD_NONBLOCK | libc::SFD_CLOEXEC;
        // SAFETY: `set` is initialised; -1 asks for a new descriptor.
        let fd = check(unsafe { libc::signalfd(-1, &set, flags) })?;
        // SAFETY: signalfd_siginfo is plain data; all-zero is a valid value.
        let blank: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        Ok(SigIo {
            signo,
            set,
            // SAFETY: a fresh descriptor that nothing else owns.
            signalfd: unsafe { OwnedFd::from_raw_fd(fd) },
            table: FdTable::default(),
            batch: vec![blank; BATCH],
            owner: None,
            overflowed: false,
        })
    }

    fn add(&mut self, fd: RawFd, token: Token, interest: Interest) -> io::Result<()> {
        // SAFETY: gettid has no arguments and cannot fail.
        let tid = *self.owner.get_or_insert_with(|| unsafe { libc::gettid() });
        let owner = OwnerEx {
            kind: F_OWNER_TID,
            pid: tid,
        };
        // SAFETY: fcntl on a descriptor the loop owns; F_SETOWN_EX reads the struct we pass.
        unsafe {
            check(libc::fcntl(fd, F_SETSIG, self.signo))?;
            check(libc::fcntl(fd, F_SETOWN_EX, &owner as *const OwnerEx))?;
            let flags = check(libc::fcntl(fd, libc::F_GETFL))?;
            check(libc::fcntl(
                fd,
                libc::F_SETFL,
                flags | libc::O_ASYNC | libc::O_NONBLOCK,
            ))?;
        }
        self.table.set(fd, token, interest);
        Ok(())
    }

    fn modify(&mut self, fd: RawFd, token: Token, _old: Interest, new: Interest) -> io::Result<()> {
        self.table.set(fd, token, new);
        Ok(())
    }

    fn delete(&mut self, fd: RawFd, _interest: Interest) -> io::Result<()> {
        // Closing a descriptor takes it off the kernel's async list; until then its reports are
        // dropped here.
        self.table.remove(fd);
        Ok(())
    }

    fn wait(&mut self, ready: &mut Vec<Token>, timeout: Option<Duration>) -> io::Result<()> {
        // Under load, reports queued while the last pass ran are waiting: take them with one
        // read and do not sleep. Only an empty queue costs the sleep and a read after it.
        if self.take_queued(ready) > 0 {
            ready.sort_unstable();
            ready.dedup();
            return Ok(());
        }
        let ts = timeout.map(|d| libc::timespec {
            tv_sec: d.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
            tv_nsec: d.subsec_nanos() as libc::c_long,
        });
        let ts_ptr = ts
            .as_ref()
            .map_or(std::ptr::null(), |ts| ts as *const libc::timespec);
        // SAFETY: siginfo_t is plain data; the kernel fills it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set`, `info` and `ts` live across the call.
        let sig = unsafe { libc::sigtimedwait(&self.set, &mut info, ts_ptr) };
        if sig < 0 {
            if io::Error::last_os_error().raw_os_error() == Some(libc::EAGAIN) {
                return Ok(()); // the timeout passed
            }
            return wait_error();
        }
        // SAFETY: for a signal raised by F_SETSIG the kernel fills the SIGPOLL fields; for SIGIO
        // they are not read.
        let (fd, band) = unsafe { (info.si_fd(), info.si_band() as i64) };
        self.take(sig, fd, band, ready);
        self.take_queued(ready);
        // Several reports for one socket need one try.
        ready.sort_unstable();
        ready.dedup();
        Ok(())
    }
}

impl SigIo {
    /// Takes the reports already queued, in batches through the signalfd, without blocking, up to
    /// [`MAX_REPORTS`] in `ready`. Returns how many reports it read.
    fn take_queued(&mut self, ready: &mut Vec<Token>) -> usize {
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        let mut taken = 0;
        while ready.len() < MAX_REPORTS {
            // SAFETY: `batch` has room for BATCH entries, BATCH * size bytes.
            let n = unsafe {
                libc::read(
                    self.signalfd.as_raw_fd(),
                    self.batch.as_mut_ptr().cast(),
                    BATCH * size,
                )
            };
            if n <= 0 {
                break; // EAGAIN: the queue is empty
            }
            let count = n as usize / size;
            taken += count;
            for i in 0..count {
                let report = self.batch[i];
                let band = i64::from(report.ssi_band);
                self.take(report.ssi_signo as libc::c_int, report.ssi_fd, band, ready);
            }
            if count < BATCH {
                break;
            }
        }
        taken
    }
}
