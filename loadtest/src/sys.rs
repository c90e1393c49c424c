//! The few system calls std does not offer: epoll, a non-blocking connect, and per-thread CPU
//! time. Every `unsafe` block of the crate lives here, each one a thin call into `libc`.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// Readiness a connection is registered for, once: edge-triggered, so the generator never calls
/// `epoll_ctl` again for the life of the socket.
const INTEREST: u32 = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32;

/// Readable (or the peer closed, or an error is pending: a read will tell which).
pub const READABLE: u32 =
    (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;
/// Writable.
pub const WRITABLE: u32 = libc::EPOLLOUT as u32;
/// An error or hang-up, which on a connecting socket means the connect failed.
pub const FAILED: u32 = (libc::EPOLLERR | libc::EPOLLHUP) as u32;
/// The peer has shut down its side: no byte follows what is buffered.
pub const PEER_CLOSED: u32 = libc::EPOLLRDHUP as u32;

/// One readiness event: the token given at registration and the readiness flags.
pub type Event = libc::epoll_event;

/// An epoll instance.
pub struct Poller {
    fd: OwnedFd,
    /// `epoll_pwait2` (nanosecond timeouts) works on this kernel; cleared on the first ENOSYS.
    precise: bool,
}

impl Poller {
    /// A new epoll instance, closed on exec.
    pub fn new() -> io::Result<Poller> {
        // SAFETY: epoll_create1 takes no pointers; a non-negative result is a new fd we own.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd was just returned by epoll_create1 and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Poller { fd, precise: true })
    }

    /// Watches `fd` for reading and writing, edge-triggered, reporting `token`. Closing the fd
    /// removes it from the set.
    pub fn add(&self, fd: RawFd, token: u64) -> io::Result<()> {
        let mut event = libc::epoll_event {
            events: INTEREST,
            u64: token,
        };
        // SAFETY: both fds are open; `event` is a valid epoll_event the kernel only reads.
        let rc =
            unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits up to `timeout` for events, filling `events` (its capacity bounds the batch).
    /// Returns how many arrived; an interrupted wait returns 0.
    pub fn wait(&mut self, events: &mut Vec<Event>, timeout: Duration) -> io::Result<usize> {
        events.clear();
        let max = events.capacity().clamp(1, i32::MAX as usize) as i32;
        let n = if self.precise {
            let ts = libc::timespec {
                tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
                tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
            };
            // SAFETY: `events` has room for `max` entries and `ts` outlives the call; a null
            // sigmask leaves the signal mask alone.
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_epoll_pwait2,
                    self.fd.as_raw_fd(),
                    events.as_mut_ptr(),
                    max,
                    &ts as *const libc::timespec,
                    std::ptr::null::<libc::sigset_t>(),
                    0usize,
                )
            };
            if rc < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS) {
                self.precise = false;
                return self.wait(events, timeout);
            }
            rc as i64
        } else {
            // Round up: waking early only to find nothing due would spin.
            let ms = timeout.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32;
            // SAFETY: `events` has room for `max` entries.
            let rc = unsafe { libc::epoll_wait(self.fd.as_raw_fd(), events.as_mut_ptr(), max, ms) };
            i64::from(rc)
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            return match err.kind() {
                io::ErrorKind::Interrupted => Ok(0),
                _ => Err(err),
            };
        }
        let n = n as usize;
        // SAFETY: the kernel initialised the first `n` entries, and n <= max <= capacity.
        unsafe { events.set_len(n) };
        Ok(n)
    }
}

/// Starts a non-blocking connect to `addr` with Nagle off. The connect is usually still in
/// progress on return: the socket turns writable when it completes, or reports an error.
pub fn connect(addr: &SocketAddr) -> io::Result<TcpStream> {
    let family = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    let kind = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: socket takes no pointers; a non-negative result is a new fd we own.
    let fd = unsafe { libc::socket(family, kind, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by socket and nothing else owns it.
    let stream = TcpStream::from(unsafe { OwnedFd::from_raw_fd(fd) });
    stream.set_nodelay(true)?;
    let rc = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            let len = std::mem::size_of_val(&sin) as libc::socklen_t;
            // SAFETY: `sin` is a valid sockaddr_in of `len` bytes that outlives the call.
            unsafe { libc::connect(fd, (&sin as *const libc::sockaddr_in).cast(), len) }
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            let len = std::mem::size_of_val(&sin6) as libc::socklen_t;
            // SAFETY: `sin6` is a valid sockaddr_in6 of `len` bytes that outlives the call.
            unsafe { libc::connect(fd, (&sin6 as *const libc::sockaddr_in6).cast(), len) }
        }
    };
    if rc < 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(err);
        }
    }
    Ok(stream)
}

/// Raises the soft limit on open files towards `wanted`, as far as the hard limit allows.
/// Returns the limit in force afterwards.
pub fn raise_fd_limit(wanted: u64) -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } < 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur >= wanted {
        return Ok(lim.rlim_cur);
    }
    let raised = libc::rlimit {
        rlim_cur: wanted.min(lim.rlim_max),
        rlim_max: lim.rlim_max,
    };
    // SAFETY: `raised` is a valid rlimit the kernel only reads.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(raised.rlim_cur)
}

/// CPU time spent, split as the kernel accounts it.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuTime {
    /// Time in user space.
    pub user: Duration,
    /// Time in the kernel on our behalf.
    pub system: Duration,
}

impl CpuTime {
    /// User plus system time.
    pub fn total(&self) -> Duration {
        self.user + self.system
    }

    /// The time spent since `earlier`.
    pub fn since(&self, earlier: CpuTime) -> CpuTime {
        CpuTime {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }
}

/// CPU time of the calling thread.
pub fn thread_cpu() -> CpuTime {
    rusage(libc::RUSAGE_THREAD)
}

/// CPU time of the whole process, every thread included.
pub fn process_cpu() -> CpuTime {
    rusage(libc::RUSAGE_SELF)
}

fn rusage(who: libc::c_int) -> CpuTime {
    // SAFETY: rusage is plain old data, for which all-zero bytes are a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage; RUSAGE_THREAD/SELF cannot fail on Linux.
    let rc = unsafe { libc::getrusage(who, &mut usage) };
    if rc < 0 {
        return CpuTime::default();
    }
    let tv = |t: libc::timeval| {
        Duration::new(
            t.tv_sec.max(0) as u64,
            (t.tv_usec.clamp(0, 999_999) * 1000) as u32,
        )
    };
    CpuTime {
        user: tv(usage.ru_utime),
        system: tv(usage.ru_stime),
    }
}
