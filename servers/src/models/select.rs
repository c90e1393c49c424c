//! `select`: the hand-written reactor (see `reactor`) waiting in `select(2)`.
//!
//! One thread (or `--threads N` threads, loop 0 dealing connections round-robin) runs an event loop
//! over non-blocking sockets: it asks the kernel which of its descriptors are ready, serves those,
//! and keeps connection deadlines and `/sleep` answers in a timer heap; CPU jobs go to rayon and
//! come back through an eventfd. Thousands of idle keep-alive connections cost a few hundred bytes
//! each instead of a thread each. The cost of select itself: every wait copies two bitmaps of
//! descriptor numbers into the kernel and back and both sides walk them to the highest descriptor,
//! so each wait is O(highest descriptor), and an `fd_set` holds only `FD_SETSIZE` (1024)
//! descriptors. Setting a bit beyond it corrupts memory, so this model refuses any connection whose
//! descriptor is 1024 or more, with a 503 and a close, counted as shed, while the connections it
//! has keep being served: it breaks at about a thousand concurrent connections, and any handler
//! that blocks (`/block`) stalls every connection of its loop. It mirrors Python's
//! `selectors.SelectSelector` (asyncio's loop where nothing better exists) and Twisted's
//! `selectreactor`. Over `--max-connections` a new connection gets 503 and is closed.

use crate::reactor::{self, backend_select::Select};
use crate::server::Ctx;
use std::io;
use std::net::TcpListener;
use std::sync::Arc;

/// Serves until a graceful stop, then drains.
pub fn run(ctx: Arc<Ctx>, listener: TcpListener) -> io::Result<()> {
    reactor::run::<Select>(ctx, listener)
}
