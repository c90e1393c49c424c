//! Graceful shutdown. SIGTERM and SIGINT write a byte into a pipe that nobody drains, so its read
//! end stays readable for good: any model can watch it next to its sockets (in `poll`, `epoll`, a
//! runtime's reactor) and wake at once, with no polling interval and no signal-safety puzzles.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// The process-wide shutdown notice.
pub struct Shutdown {
    read: OwnedFd,
    /// The write end's number (the handlers own the descriptor); [`detach`] repoints it.
    write: RawFd,
    flag: AtomicBool,
}

static SHUTDOWN: OnceLock<Shutdown> = OnceLock::new();

/// Installs the SIGTERM/SIGINT handlers. Call once, before any thread or fork.
pub fn install() -> io::Result<&'static Shutdown> {
    if let Some(s) = SHUTDOWN.get() {
        return Ok(s);
    }
    let (read, write) = std::io::pipe()?;
    let read: OwnedFd = read.into();
    let write: OwnedFd = write.into();
    let write_fd = write.as_raw_fd();
    set_nonblocking(read.as_raw_fd())?;
    set_nonblocking(write.as_raw_fd())?;
    let write = std::sync::Arc::new(write);
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        let write = write.clone();
        // SAFETY: the handler only calls write(2), which is async-signal-safe, and touches an
        // atomic; it allocates nothing and takes no lock.
        unsafe {
            signal_hook::low_level::register(sig, move || {
                if let Some(s) = SHUTDOWN.get() {
                    s.flag.store(true, Ordering::SeqCst);
                }
                let byte = 1u8;
                libc::write(write.as_raw_fd(), (&byte as *const u8).cast(), 1);
            })?;
        }
    }
    Ok(SHUTDOWN.get_or_init(|| Shutdown {
        read,
        write: write_fd,
        flag: AtomicBool::new(false),
    }))
}

/// The installed notice (installs it on first use).
pub fn get() -> &'static Shutdown {
    // `install` only fails when the process is out of descriptors at start; nothing can run then.
    install().expect("cannot install the shutdown signal handlers")
}

impl Shutdown {
    /// Whether a stop was asked for.
    pub fn requested(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// A descriptor that becomes readable, and stays so, once a stop is asked for.
    pub fn fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }
}

/// In a process just forked: gives it a stop notice of its own. The pipe is shared with the parent
/// across `fork`, so without this a signal to one child would wake, and stop, every process of the
/// server; after it, the parent stops a child by signalling it. Call it with SIGTERM and SIGINT
/// blocked, so that no signal falls between `fork` and here.
pub fn detach() -> io::Result<()> {
    let s = get();
    let (read, write) = std::io::pipe()?;
    set_nonblocking(read.as_raw_fd())?;
    set_nonblocking(write.as_raw_fd())?;
    for (from, to) in [
        (read.as_raw_fd(), s.read.as_raw_fd()),
        (write.as_raw_fd(), s.write),
    ] {
        // SAFETY: dup3 atomically points descriptor `to`, which this module owns, at the new pipe
        // end; the handlers keep writing to the same number and now reach the new pipe.
        if unsafe { libc::dup3(from, to, libc::O_CLOEXEC) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    // The temporaries close here; the pipe lives on under the old numbers.
    drop((read, write));
    if s.requested() {
        // A stop asked for before the fork still stands in the child.
        let byte = 1u8;
        // SAFETY: write(2) of one byte from a valid buffer to our own pipe.
        unsafe { libc::write(s.write, (&byte as *const u8).cast(), 1) };
    }
    Ok(())
}

/// Puts `fd` in non-blocking mode.
pub fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own, with integer arguments only.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
