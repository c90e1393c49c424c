//! The few system calls std does not offer: epoll, a non-blocking connect, per-thread CPU time,
//! and for `compare` CPU affinity, signals to the servers it starts, and the units of /proc.
//! Every `unsafe` block of the crate lives here, each one a thin call into `libc`.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicU16, Ordering};
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

/// The CPUs the calling thread may run on, in ascending order.
pub fn allowed_cpus() -> io::Result<Vec<usize>> {
    // SAFETY: cpu_set_t is a plain bit array, for which all-zero bytes are the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable cpu_set_t of the size passed.
    let rc = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let max = 8 * std::mem::size_of_val(&set);
    // SAFETY: CPU_ISSET only reads `set`, and every index is below its size in bits.
    Ok((0..max)
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect())
}

/// A CPU set built before a fork, so the child only has to hand it to the kernel.
fn cpu_set(cpus: &[usize]) -> io::Result<libc::cpu_set_t> {
    // SAFETY: all-zero bytes are the empty set, as above.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let max = 8 * std::mem::size_of_val(&set);
    for &cpu in cpus {
        if cpu >= max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("CPU {cpu} is beyond the {max} this system call can name"),
            ));
        }
        // SAFETY: `cpu` is below the set's size in bits (checked above).
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    Ok(set)
}

/// Binds the calling thread, and every thread it starts from now on, to `cpus`.
pub fn pin_current_thread(cpus: &[usize]) -> io::Result<()> {
    let set = cpu_set(cpus)?;
    // SAFETY: `set` is a valid cpu_set_t the kernel only reads.
    if unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// How a child started by `compare` is set up between fork and exec.
#[derive(Debug, Clone, Default)]
pub struct ChildSetup {
    /// Run it on these CPUs (its own children inherit them).
    pub cpus: Option<Vec<usize>>,
    /// Keep this descriptor open across exec (nginx adopts an inherited listening socket).
    pub keep_fd: Option<RawFd>,
}

/// Applies `setup` to `cmd`, and puts the child in a process group of its own (so a last-resort
/// SIGKILL reaches the workers a forking server started, and a Ctrl-C on the terminal reaches
/// compare alone, which then stops the server gracefully). The child also gets SIGTERM if
/// compare dies first, so no server outlives an aborted comparison.
pub fn prepare_child(cmd: &mut Command, setup: &ChildSetup) -> io::Result<()> {
    let set = match &setup.cpus {
        Some(cpus) => Some(cpu_set(cpus)?),
        None => None,
    };
    cmd.process_group(0);
    keep_across_exec(cmd, setup.keep_fd.into_iter().collect());
    // SAFETY: runs in the child between fork and exec and calls only prctl and
    // sched_setaffinity, which are async-signal-safe; `set` was built before the fork.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) < 0 {
                return Err(io::Error::last_os_error());
            }
            if let Some(set) = &set {
                if libc::sched_setaffinity(0, std::mem::size_of_val(set), set) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    Ok(())
}

/// Keeps `fds` open in `cmd`'s child across exec (they stay close-on-exec in this process, so
/// no other child inherits them).
pub fn keep_across_exec(cmd: &mut Command, fds: Vec<RawFd>) {
    // SAFETY: runs in the child between fork and exec and calls only fcntl, which is
    // async-signal-safe; `fds` was built before the fork.
    unsafe {
        cmd.pre_exec(move || {
            for &fd in &fds {
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// Sends `signal` to process `pid`, or with `group` to its whole process group.
pub fn send_signal(pid: u32, group: bool, signal: libc::c_int) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pid out of range"))?;
    let target = if group { -pid } else { pid };
    // SAFETY: kill takes no pointers.
    if unsafe { libc::kill(target, signal) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether child `pid` has exited, without reaping it (`waitid` with `WNOWAIT`): its pid stays
/// taken until the caller waits for it.
pub fn has_exited(pid: u32) -> io::Result<bool> {
    let id = libc::id_t::from(pid);
    // SAFETY: siginfo_t is plain old data, for which all-zero bytes are a valid value.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is a valid, writable siginfo_t; waitid writes only into it.
    let rc = unsafe {
        libc::waitid(
            libc::P_PID,
            id,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // With WNOHANG and no exit yet, the kernel leaves si_pid zero.
    // SAFETY: after a successful waitid the kernel has filled the si_pid field.
    Ok(unsafe { info.si_pid() } != 0)
}

/// Clock ticks per second: the unit of the CPU times in /proc/PID/stat.
pub fn clock_ticks() -> u64 {
    // SAFETY: sysconf takes no pointers.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    // Linux has answered 100 on every architecture for decades; use it if the call fails.
    u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100)
}

/// Bytes per page: the unit of the resident set in /proc/PID/stat.
pub fn page_size() -> u64 {
    // SAFETY: sysconf takes no pointers.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|&s| s > 0).unwrap_or(4096)
}

/// What an io_uring operation was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A wait for a connecting socket to turn writable (`POLL_ADD`); the result is the mask.
    Connected,
    /// Bytes of the connection's multishot receive; the result is the byte count.
    Received,
    /// A send of a range of the request bytes; the result is the byte count.
    Sent,
}

/// One completion: the slot and connection generation it was issued for, the operation, the
/// kernel's result (a count or mask, or a negated errno), and for a receive the buffer that
/// holds its bytes, to be handed back with [`Ring::recycle`].
#[derive(Debug, Clone, Copy)]
pub struct Completion {
    /// The connection slot.
    pub slot: usize,
    /// The connection's generation at issue: a completion of an older one is stale.
    pub generation: u32,
    /// The operation.
    pub op: Op,
    /// Result: non-negative on success, `-errno` on failure.
    pub result: i32,
    /// The provided buffer a receive filled.
    pub buffer: Option<u16>,
}

const OP_CONNECTED: u64 = 1;
const OP_RECEIVED: u64 = 2;
const OP_SENT: u64 = 3;
/// The tag of the ring's own housekeeping (cancels, file-table updates): its completions are
/// not reported.
const OP_HOUSEKEEPING: u64 = 4;
/// The one buffer group of a ring.
const GROUP: u16 = 0;

/// `slot`'s socket, as its entry of the ring's file table.
fn fixed(slot: usize) -> io_uring::types::Fixed {
    io_uring::types::Fixed(slot as u32)
}

fn tag(slot: usize, generation: u32, op: u64) -> u64 {
    ((slot as u64) << 32) | (u64::from(generation & 0x00ff_ffff) << 8) | op
}

/// An io_uring instance for one generator thread, with the memory the kernel reads and writes:
/// the request bytes that sends take from, and a ring of provided buffers that every
/// connection's multishot receive fills (the kernel picks a free one per completion; the engine
/// hands it back once it has decoded its bytes). One receive request per connection stays armed
/// for the connection's life, so a request/response costs one send submission and two
/// completions. The ring is its thread's alone (single issuer), and the kernel's part of each
/// completion (running the receive that a wake-up found ready) waits for the thread's next wait
/// (deferred task work): it neither interrupts the thread while it decodes nor runs once per
/// packet, but once per batch, in the one call that also submits and waits. The ring owns all
/// that memory and, when dropped, cancels everything in flight and waits for it before freeing
/// any.
pub struct Ring {
    ring: io_uring::IoUring,
    batch: Box<[u8]>,
    /// The buffers, `buffer_size` bytes each, back to back.
    pool: Box<[u8]>,
    buffer_size: usize,
    /// The shared ring of buffer descriptors (page-aligned, from mmap), `count` entries.
    entries: *mut io_uring::types::BufRingEntry,
    count: u16,
    tail: u16,
    /// Per slot: the tag of its armed receive, if any.
    receiving: Vec<Option<u64>>,
    /// Per slot: the descriptor its entry of the ring's file table is being set to, read by the
    /// kernel when the update is issued (so it stays put: the vector is never resized).
    files: Vec<RawFd>,
    in_flight: usize,
}

impl Ring {
    /// A ring for `slots` connections, receiving into `buffers` buffers of `buffer_size`
    /// bytes, sending ranges of `batch`. Fails with the kernel's error where io_uring (or a
    /// provided-buffer ring, from Linux 5.19) is refused.
    pub fn new(slots: usize, buffers: u16, buffer_size: usize, batch: &[u8]) -> io::Result<Ring> {
        let count = buffers.next_power_of_two().clamp(8, 1 << 15);
        let entries = (slots * 2 + 64).next_power_of_two().clamp(64, 4096) as u32;
        let build = |defer: bool| {
            let mut builder = io_uring::IoUring::builder();
            builder
                .setup_coop_taskrun()
                .setup_single_issuer()
                .setup_cqsize(entries * 4)
                .setup_clamp();
            if defer {
                builder.setup_defer_taskrun();
            }
            builder.build(entries)
        };
        // Deferred completion work is from Linux 6.1; before it the ring runs that work as
        // completions come.
        let ring = match build(true) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => build(false)?,
            ring => ring?,
        };
        let bytes = usize::from(count) * std::mem::size_of::<io_uring::types::BufRingEntry>();
        // SAFETY: an anonymous private mapping takes no pointer of ours; the result is checked.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let mut ring = Ring {
            ring,
            batch: batch.into(),
            pool: vec![0; usize::from(count) * buffer_size].into_boxed_slice(),
            buffer_size,
            entries: map.cast(),
            count,
            tail: 0,
            receiving: vec![None; slots],
            files: vec![-1; slots],
            in_flight: 0,
        };
        // SAFETY: `entries` is a page-aligned mapping of `count` zeroed descriptors that lives
        // as long as the ring (unmapped in Drop, after the kernel let go of the group).
        unsafe {
            ring.ring
                .submitter()
                .register_buf_ring_with_flags(map as u64, count, GROUP, 0)?;
        }
        // Slot `i`'s socket is entry `i` of the ring's file table while it is open: the kernel
        // looks a registered file up without taking and dropping a reference per operation.
        ring.ring
            .submitter()
            .register_files_sparse(slots.max(1) as u32)?;
        for bid in 0..count {
            ring.recycle(bid);
        }
        Ok(ring)
    }

    fn push(&mut self, entry: &io_uring::squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: every entry pushed points only into memory the ring owns and keeps until
            // the entry's completion (see the type's doc), or into none.
            if unsafe { self.ring.submission().push(entry) }.is_ok() {
                self.in_flight += 1;
                return Ok(());
            }
            self.ring.submit()?;
        }
    }

    /// Queues setting `slot`'s entry of the file table to `fd` (-1 empties it), linked to the
    /// next entry queued when `link`.
    fn set_file(&mut self, slot: usize, fd: RawFd, link: bool) -> io::Result<()> {
        self.files[slot] = fd;
        let flags = if link {
            io_uring::squeue::Flags::IO_LINK
        } else {
            io_uring::squeue::Flags::empty()
        };
        let entry = io_uring::opcode::FilesUpdate::new(&self.files[slot], 1)
            .offset(slot as i32)
            .build()
            .flags(flags)
            .user_data(OP_HOUSEKEEPING);
        self.push(&entry)
    }

    /// Takes connecting socket `fd` as `slot`'s and waits for it to turn writable or fail.
    pub fn poll_connected(&mut self, slot: usize, generation: u32, fd: RawFd) -> io::Result<()> {
        // Linked: the wait starts once the table holds the socket.
        self.set_file(slot, fd, true)?;
        let mask = (libc::POLLOUT | libc::POLLERR | libc::POLLHUP) as u32;
        let entry = io_uring::opcode::PollAdd::new(fixed(slot), mask)
            .build()
            .user_data(tag(slot, generation, OP_CONNECTED));
        self.push(&entry).inspect_err(|_| {
            // The caller drops the socket: the table must not keep it open.
            let _ = self.set_file(slot, -1, false);
        })
    }

    /// Arms `slot`'s multishot receive, unless it is armed already.
    pub fn receive(&mut self, slot: usize, generation: u32) -> io::Result<()> {
        if self.receiving[slot].is_some() {
            return Ok(());
        }
        let user_data = tag(slot, generation, OP_RECEIVED);
        let entry = io_uring::opcode::RecvMulti::new(fixed(slot), GROUP)
            .build()
            .user_data(user_data);
        self.push(&entry)?;
        self.receiving[slot] = Some(user_data);
        Ok(())
    }

    /// The first `n` bytes of provided buffer `bid`.
    pub fn received(&self, bid: u16, n: usize) -> &[u8] {
        let start = usize::from(bid) * self.buffer_size;
        &self.pool[start..start + n.min(self.buffer_size)]
    }

    /// Hands provided buffer `bid` back to the kernel.
    pub fn recycle(&mut self, bid: u16) {
        let start = usize::from(bid) * self.buffer_size;
        let index = usize::from(self.tail & (self.count - 1));
        // SAFETY: `index` is below `count`, the mapping's length in entries; the kernel reads
        // an entry only once the tail below has moved past it.
        let entry = unsafe { &mut *self.entries.add(index) };
        entry.set_addr(self.pool[start..].as_ptr() as u64);
        entry.set_len(self.buffer_size as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
        // SAFETY: the first entry's tail field is a u16 the kernel reads; publishing it with
        // release ordering makes the entry written above visible first.
        unsafe {
            let tail = io_uring::types::BufRingEntry::tail(self.entries) as *const AtomicU16;
            (*tail).store(self.tail, Ordering::Release);
        }
    }

    /// Sends `range` of the request bytes on `slot`'s socket.
    pub fn send(
        &mut self,
        slot: usize,
        generation: u32,
        range: std::ops::Range<usize>,
    ) -> io::Result<()> {
        let bytes = &self.batch[range];
        let entry = io_uring::opcode::Send::new(fixed(slot), bytes.as_ptr(), bytes.len() as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(tag(slot, generation, OP_SENT));
        self.push(&entry)
    }

    /// `slot`'s connection is about to be closed: what was queued for it goes to the kernel now,
    /// everything in flight on it is cancelled, and the file table lets go of its socket, so
    /// that closing the descriptor closes the connection.
    pub fn forget(&mut self, slot: usize) -> io::Result<()> {
        self.receiving[slot] = None;
        let cancel = io_uring::types::CancelBuilder::fd(fixed(slot)).all();
        let entry = io_uring::opcode::AsyncCancel2::new(cancel)
            .build()
            .user_data(OP_HOUSEKEEPING);
        self.push(&entry)?;
        self.set_file(slot, -1, false)?;
        self.ring.submit()?;
        Ok(())
    }

    /// Submits what is queued and waits up to `timeout` for at least one completion, then
    /// appends every completion to `out` (the housekeeping's are not reported). An
    /// interrupted or timed-out wait returns with what there is.
    pub fn wait(&mut self, out: &mut Vec<Completion>, timeout: Duration) -> io::Result<()> {
        out.clear();
        let ts = io_uring::types::Timespec::new()
            .sec(timeout.as_secs())
            .nsec(timeout.subsec_nanos());
        let args = io_uring::types::SubmitArgs::new().timespec(&ts);
        match self.ring.submitter().submit_with_args(1, &args) {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                ) => {}
            Err(e) => return Err(e),
        }
        for cqe in self.ring.completion() {
            let user_data = cqe.user_data();
            let more = io_uring::cqueue::more(cqe.flags());
            if !more {
                self.in_flight -= 1;
            }
            let op = match user_data & 0xff {
                OP_CONNECTED => Op::Connected,
                OP_RECEIVED => Op::Received,
                OP_SENT => Op::Sent,
                _ => continue,
            };
            let slot = (user_data >> 32) as usize;
            if op == Op::Received && !more && self.receiving.get(slot) == Some(&Some(user_data)) {
                self.receiving[slot] = None;
            }
            out.push(Completion {
                slot,
                generation: ((user_data >> 8) & 0x00ff_ffff) as u32,
                op,
                result: cqe.result(),
                buffer: io_uring::cqueue::buffer_select(cqe.flags()),
            });
        }
        Ok(())
    }

    /// Whether `generation` (as a completion carries it) is `current`'s.
    pub fn same_generation(current: u32, generation: u32) -> bool {
        current & 0x00ff_ffff == generation
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // The kernel may still write into the buffers: cancel everything and wait for it.
        let entry = io_uring::opcode::AsyncCancel2::new(io_uring::types::CancelBuilder::any())
            .build()
            .user_data(OP_HOUSEKEEPING);
        if self.push(&entry).is_ok() {
            let mut done = Vec::new();
            for _ in 0..10 {
                if self.in_flight == 0 {
                    break;
                }
                if self.wait(&mut done, Duration::from_millis(200)).is_err() {
                    break;
                }
            }
        }
        if self.in_flight > 0 {
            // The kernel would not let go: never free what it may still write.
            std::mem::forget(std::mem::take(&mut self.pool));
            return;
        }
        // An error leaves the group to go with the ring; the pages stay pinned until then.
        let _ = self.ring.submitter().unregister_buf_ring(GROUP);
        let bytes = usize::from(self.count) * std::mem::size_of::<io_uring::types::BufRingEntry>();
        // SAFETY: nothing is in flight, so the kernel reads no descriptor any more; the mapping
        // is ours and unmapped once.
        unsafe { libc::munmap(self.entries.cast(), bytes) };
    }
}
