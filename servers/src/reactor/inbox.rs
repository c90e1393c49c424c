//! How other threads hand an event loop work: a queue behind a mutex, and a wake-up descriptor the
//! loop watches beside its sockets. The rayon pool sends the answers of `Reply::Compute` jobs this
//! way, and loop 0 the connections it deals to the other loops.

use crate::admission::ConnGuard;
use common::Response;
use std::io;
use std::net::TcpStream;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Mutex, PoisonError};

/// Work for a loop from another thread.
pub(super) enum Message {
    /// A connection accepted by loop 0 and dealt to this loop.
    Conn(TcpStream, ConnGuard),
    /// The answer of a `Reply::Compute` job: the connection's slab key, the request's serial
    /// number, the response.
    Done(usize, u64, Response),
}

/// One loop's inbox.
pub(super) struct Inbox {
    /// `None` once the loop has ended: what is sent then is dropped (a connection just closes).
    queue: Mutex<Option<Vec<Message>>>,
    /// Set from the first send until the loop takes the mail: later senders skip the write(2).
    armed: AtomicBool,
    /// The descriptor the loop watches: an eventfd, or the read end of a pipe.
    read: OwnedFd,
    /// The write end of the pipe; `None` for an eventfd, which is written where it is read.
    write: Option<OwnedFd>,
}

impl Inbox {
    /// An empty inbox whose wake-up descriptor is an eventfd, or a pipe if `pipe`.
    pub(super) fn new(pipe: bool) -> io::Result<Inbox> {
        let (read, write) = if pipe {
            let mut fds = [0; 2];
            // SAFETY: pipe2 writes two descriptors into the array we pass.
            if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: both descriptors are fresh and owned by nobody else.
            unsafe {
                (
                    OwnedFd::from_raw_fd(fds[0]),
                    Some(OwnedFd::from_raw_fd(fds[1])),
                )
            }
        } else {
            // SAFETY: eventfd takes integer arguments only.
            let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: the descriptor is fresh and owned by nobody else.
            (unsafe { OwnedFd::from_raw_fd(fd) }, None)
        };
        Ok(Inbox {
            queue: Mutex::new(Some(Vec::new())),
            armed: AtomicBool::new(false),
            read,
            write,
        })
    }

    /// The descriptor the loop watches for readability.
    pub(super) fn fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// Queues `msg` and wakes the loop.
    pub(super) fn send(&self, msg: Message) {
        {
            // Nothing panics while holding this lock, so a poisoned one is still consistent.
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            match queue.as_mut() {
                Some(queue) => queue.push(msg),
                None => return,
            }
        }
        if !self.armed.swap(true, SeqCst) {
            self.wake();
        }
    }

    /// Makes the wake-up descriptor readable.
    pub(super) fn wake(&self) {
        let fd = self.write.as_ref().unwrap_or(&self.read).as_raw_fd();
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live array. An eventfd adds 1 to its counter; a pipe gets 8
        // bytes. A full pipe (EAGAIN) is readable already, so the failure needs no handling.
        unsafe { libc::write(fd, one.as_ptr().cast(), one.len()) };
    }

    /// Moves the queued messages into `out` (empty on entry) and makes the descriptor unreadable.
    pub(super) fn take(&self, out: &mut Vec<Message>) {
        // Drain, then disarm, then take. A sender that armed before the disarm has pushed already
        // (push comes before arming), so its message is taken below; one that arms after it
        // writes, and that write is not drained here, so it wakes the loop again. Disarming
        // before draining would be wrong: a sender could arm and write in between, its write be
        // drained, and `armed` stay set with nothing readable, so every later sender would skip
        // its write and the loop never hear of them.
        let mut sink = [0u8; 64];
        loop {
            // SAFETY: reads into a live 64-byte array (an eventfd needs at least 8).
            let n = unsafe { libc::read(self.fd(), sink.as_mut_ptr().cast(), sink.len()) };
            if n <= 0 {
                break; // EAGAIN: drained (EINTR cannot happen on a non-blocking read)
            }
        }
        self.armed.store(false, SeqCst);
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(queue) = queue.as_mut() {
            std::mem::swap(queue, out);
        }
    }

    /// Ends the inbox: what is queued is dropped, and so is everything sent from now on.
    pub(super) fn close(&self) {
        let left = self
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        drop(left); // outside the lock: this closes sockets
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Senders race the loop; every message must arrive with a wake-up, never be left waiting
    /// behind a drained descriptor.
    fn no_message_left_behind(pipe: bool) {
        const SENDERS: usize = 4;
        const EACH: usize = 20_000;
        let inbox = Arc::new(Inbox::new(pipe).unwrap());
        let senders: Vec<_> = (0..SENDERS)
            .map(|s| {
                let inbox = inbox.clone();
                std::thread::spawn(move || {
                    for i in 0..EACH {
                        inbox.send(Message::Done(s, i as u64, Response::new(200, Vec::new())));
                    }
                })
            })
            .collect();
        let mut got = 0;
        let mut mail = Vec::new();
        while got < SENDERS * EACH {
            let mut pfd = libc::pollfd {
                fd: inbox.fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd for the duration of the call.
            let n = unsafe { libc::poll(&mut pfd, 1, 2000) };
            assert!(
                n > 0,
                "no wake-up with {} messages still to come",
                SENDERS * EACH - got
            );
            inbox.take(&mut mail);
            got += mail.len();
            mail.clear();
        }
        for s in senders {
            s.join().unwrap();
        }
    }

    #[test]
    fn eventfd_inbox_loses_no_wake_up() {
        no_message_left_behind(false);
    }

    #[test]
    fn pipe_inbox_loses_no_wake_up() {
        no_message_left_behind(true);
    }
}
