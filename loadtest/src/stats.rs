//! Statistics: what each generator thread records, and how the main thread adds it up.
//!
//! Latencies go into HdrHistograms in microseconds, from 1 us to one hour at three significant
//! figures: a fixed ~200 KB each, however long the run. A thread records the current second into
//! its own histograms and hands them to the main thread when the second is over; the main thread
//! adds the seconds of every thread together, for the per-second figures and the totals alike.
//! Percentiles are only ever read from added-up histograms, never averaged.
//!
//! Only measured requests are recorded: those whose intended send time falls at or after the
//! end of the warm-up. Seconds are counted from that moment, by completion time.

use crate::sys::CpuTime;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::sync::mpsc::Sender;
use std::time::Duration;

/// The largest latency a histogram holds, in microseconds (one hour); larger values are clamped.
pub const MAX_LATENCY_US: u64 = 3_600_000_000;
/// Significant figures of every histogram.
pub const SIGNIFICANT_FIGURES: u8 = 3;
/// A send this much later than its intended time counts as late (open loop).
pub const LATE_NS: u64 = 1_000_000;
/// Nanoseconds in one interval.
const SECOND_NS: u64 = 1_000_000_000;

/// An empty latency histogram with the bounds above.
pub fn new_histogram() -> Histogram<u64> {
    // Constant, valid bounds: 1 <= low, 2 * low <= high, sigfig <= 5.
    Histogram::new_with_bounds(1, MAX_LATENCY_US, SIGNIFICANT_FIGURES)
        .expect("constant histogram bounds are valid")
}

/// How a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The connection could not be established.
    Connect,
    /// Reading failed, or the server closed before the response was complete.
    Read,
    /// Writing the request failed.
    Write,
    /// No complete response within `--timeout` (or no connection within it).
    Timeout,
    /// The response was not valid HTTP/1.1, or answered nothing that was asked.
    Parse,
}

/// Counters of one thread, or of the whole run once added up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Complete responses, any status.
    pub responses: u64,
    /// Responses by status class: 1xx, 2xx, 3xx, 4xx, 5xx.
    pub status: [u64; 5],
    /// Failed requests, indexed by `ErrorKind as usize`.
    pub errors: [u64; 5],
    /// Bytes read from the sockets.
    pub bytes: u64,
    /// Requests sent.
    pub sent: u64,
    /// Open loop: sends that left more than [`LATE_NS`] after their intended time.
    pub late: u64,
    /// Open loop: the largest delay between intended and actual send, in nanoseconds.
    pub max_lag_ns: u64,
    /// Requests sent again because the server closed the connection before reading them.
    pub retried: u64,
    /// Latencies above [`MAX_LATENCY_US`], recorded as that bound.
    pub clamped: u64,
    /// Responses to warm-up requests: in no figure, but the server answered them (compare
    /// checks the server's own request counter against every response, these included).
    pub warmup_responses: u64,
    /// Warm-up requests that failed once sent (the server may have answered them late).
    pub warmup_errors: u64,
}

impl Tally {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Tally) {
        self.responses += other.responses;
        for (a, b) in self.status.iter_mut().zip(other.status) {
            *a += b;
        }
        for (a, b) in self.errors.iter_mut().zip(other.errors) {
            *a += b;
        }
        self.bytes += other.bytes;
        self.sent += other.sent;
        self.late += other.late;
        self.max_lag_ns = self.max_lag_ns.max(other.max_lag_ns);
        self.retried += other.retried;
        self.clamped += other.clamped;
        self.warmup_responses += other.warmup_responses;
        self.warmup_errors += other.warmup_errors;
    }

    /// All failed requests.
    pub fn error_total(&self) -> u64 {
        self.errors.iter().sum()
    }
}

/// One second of one thread, handed to the main thread.
#[derive(Debug)]
pub struct Interval {
    /// The thread that recorded it.
    pub thread: usize,
    /// Seconds since the end of the warm-up.
    pub bin: u64,
    /// Whether time moved past the end of the second (otherwise the thread stopped within it).
    pub closed: bool,
    /// Latency: from the intended send in open loop, from the actual send in closed loop.
    pub latency: Option<Histogram<u64>>,
    /// Service time, from the actual send (open loop only: in closed loop it is `latency`).
    pub service: Option<Histogram<u64>>,
    /// Responses completed in the second.
    pub responses: u64,
    /// Requests failed in the second.
    pub errors: u64,
    /// Bytes read in the second.
    pub bytes: u64,
}

/// What a thread reports when it stops.
#[derive(Debug, Clone)]
pub struct ThreadDone {
    /// The thread.
    pub thread: usize,
    /// Its counters.
    pub tally: Tally,
    /// CPU time it used.
    pub cpu: CpuTime,
    /// Wall time it ran.
    pub wall: Duration,
    /// When it stopped, in nanoseconds since the run began.
    pub stopped_ns: u64,
}

/// A message from a generator thread to the main thread.
#[derive(Debug)]
pub enum Report {
    /// A second is over.
    Interval(Interval),
    /// The thread has stopped; its last interval was sent before this.
    Done(ThreadDone),
}

/// Records one thread's measured requests, a second at a time.
pub struct Recorder {
    thread: usize,
    open_loop: bool,
    bin: u64,
    bin_end: u64,
    last_bin: Option<u64>,
    latency: Histogram<u64>,
    service: Option<Histogram<u64>>,
    responses: u64,
    errors: u64,
    bytes: u64,
    /// The thread's counters over the whole run.
    pub tally: Tally,
    tx: Sender<Report>,
}

impl Recorder {
    /// A recorder whose seconds start at `measure_start` (ns since the run began); with
    /// `last_bin`, responses after that second still count in it (the drain at the end).
    pub fn new(
        thread: usize,
        open_loop: bool,
        measure_start: u64,
        last_bin: Option<u64>,
        tx: Sender<Report>,
    ) -> Recorder {
        Recorder {
            thread,
            open_loop,
            bin: 0,
            bin_end: measure_start + SECOND_NS,
            last_bin,
            latency: new_histogram(),
            service: open_loop.then(new_histogram),
            responses: 0,
            errors: 0,
            bytes: 0,
            tally: Tally::default(),
            tx,
        }
    }

    /// A measured response completed at `now`; all times in ns since the run began.
    pub fn response(&mut self, intended: u64, sent: u64, now: u64, status: u16) {
        self.tick(now);
        let latency_us = now.saturating_sub(intended) / 1000;
        if latency_us > MAX_LATENCY_US {
            self.tally.clamped += 1;
        }
        self.latency.saturating_record(latency_us);
        if let Some(service) = &mut self.service {
            service.saturating_record(now.saturating_sub(sent) / 1000);
        }
        // Statuses are 100-599 (the decoder refuses others).
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.tally.status[class] += 1;
        self.tally.responses += 1;
        self.responses += 1;
    }

    /// A measured request failed at `now`.
    pub fn error(&mut self, kind: ErrorKind, now: u64) {
        self.tick(now);
        self.tally.errors[kind as usize] += 1;
        self.errors += 1;
    }

    /// Bytes read at `now`, after the warm-up.
    pub fn bytes(&mut self, n: usize, now: u64) {
        self.tick(now);
        self.tally.bytes += n as u64;
        self.bytes += n as u64;
    }

    /// A measured request left `lag_ns` after its intended time.
    pub fn sent(&mut self, lag_ns: u64) {
        self.tally.sent += 1;
        if self.open_loop {
            self.tally.late += u64::from(lag_ns > LATE_NS);
            self.tally.max_lag_ns = self.tally.max_lag_ns.max(lag_ns);
        }
    }

    /// Hands over every second that ended before `now`, empty ones included, so the main
    /// thread knows this thread is past them.
    pub fn tick(&mut self, now: u64) {
        while now >= self.bin_end && self.last_bin != Some(self.bin) {
            self.flush(true);
            self.bin += 1;
            self.bin_end += SECOND_NS;
        }
    }

    /// Hands over the current second and reports the thread as stopped.
    pub fn finish(mut self, cpu: CpuTime, wall: Duration, stopped_ns: u64) {
        self.flush(false);
        // The receiver outlives the threads; if it is gone, nobody is left to tell.
        let _ = self.tx.send(Report::Done(ThreadDone {
            thread: self.thread,
            tally: self.tally,
            cpu,
            wall,
            stopped_ns,
        }));
    }

    fn flush(&mut self, closed: bool) {
        let take =
            |h: &mut Histogram<u64>| (!h.is_empty()).then(|| std::mem::replace(h, new_histogram()));
        let interval = Interval {
            thread: self.thread,
            bin: self.bin,
            closed,
            latency: take(&mut self.latency),
            service: self.service.as_mut().and_then(take),
            responses: std::mem::take(&mut self.responses),
            errors: std::mem::take(&mut self.errors),
            bytes: std::mem::take(&mut self.bytes),
        };
        // As in `finish`: a missing receiver only means the run is being torn down.
        let _ = self.tx.send(Report::Interval(interval));
    }
}

/// One second of the whole run, every thread added in.
#[derive(Debug)]
pub struct Second {
    /// Seconds since the end of the warm-up.
    pub bin: u64,
    /// Length of the interval in seconds: 1, or less for the last one.
    pub length: f64,
    /// Latency histogram of the second.
    pub latency: Histogram<u64>,
    /// Service-time histogram of the second (open loop).
    pub service: Option<Histogram<u64>>,
    /// Responses completed.
    pub responses: u64,
    /// Requests failed.
    pub errors: u64,
    /// Bytes read.
    pub bytes: u64,
}

/// The per-second figures kept for the report once a [`Second`] is written out.
#[derive(Debug, Clone, PartialEq)]
pub struct SecondFigures {
    /// Seconds since the end of the warm-up.
    pub bin: u64,
    /// Length in seconds.
    pub length: f64,
    /// Responses completed.
    pub responses: u64,
    /// Requests failed.
    pub errors: u64,
    /// Bytes read.
    pub bytes: u64,
    /// 99th percentile latency in microseconds, if anything completed.
    pub p99_us: Option<u64>,
}

/// Adds up what the threads report: seconds as soon as every thread is past them, totals as
/// they go. Memory stays bounded: only seconds some thread has not finished are held.
pub struct Collector {
    reported: Vec<Option<u64>>,
    finished: Vec<bool>,
    pending: BTreeMap<u64, (Second, bool)>,
    open_loop: bool,
    /// Latency over the whole measured run.
    pub latency: Histogram<u64>,
    /// Service time over the whole measured run (open loop).
    pub service: Option<Histogram<u64>>,
    /// Figures of every second, in order.
    pub seconds: Vec<SecondFigures>,
    /// Counters of every thread added up.
    pub tally: Tally,
    /// What each thread reported when it stopped, by thread.
    pub threads: Vec<Option<ThreadDone>>,
}

impl Collector {
    /// A collector for `threads` threads.
    pub fn new(threads: usize, open_loop: bool) -> Collector {
        Collector {
            reported: vec![None; threads],
            finished: vec![false; threads],
            pending: BTreeMap::new(),
            open_loop,
            latency: new_histogram(),
            service: open_loop.then(new_histogram),
            seconds: Vec::new(),
            tally: Tally::default(),
            threads: vec![None; threads],
        }
    }

    /// Takes one report; `sink` receives each second that becomes complete, in order.
    pub fn absorb(&mut self, report: Report, sink: &mut impl FnMut(&Second)) {
        match report {
            Report::Interval(iv) => {
                self.reported[iv.thread] = Some(iv.bin);
                let open_loop = self.open_loop;
                let (second, closed) = self.pending.entry(iv.bin).or_insert_with(|| {
                    let second = Second {
                        bin: iv.bin,
                        length: 1.0,
                        latency: new_histogram(),
                        service: open_loop.then(new_histogram),
                        responses: 0,
                        errors: 0,
                        bytes: 0,
                    };
                    (second, false)
                });
                *closed |= iv.closed;
                add_into(&mut second.latency, iv.latency.as_ref());
                if let Some(service) = &mut second.service {
                    add_into(service, iv.service.as_ref());
                }
                second.responses += iv.responses;
                second.errors += iv.errors;
                second.bytes += iv.bytes;
            }
            Report::Done(done) => {
                self.finished[done.thread] = true;
                self.tally.add(&done.tally);
                let thread = done.thread;
                self.threads[thread] = Some(done);
            }
        }
        // A second is complete once every thread is past it and time has run beyond it; the
        // very last one waits for `finish`, which knows where the run ended.
        while let Some((&bin, &(_, closed))) = self.pending.first_key_value() {
            let all_past = (0..self.reported.len())
                .all(|t| self.finished[t] || self.reported[t].is_some_and(|r| r >= bin));
            if !(closed && all_past) {
                break;
            }
            self.complete(bin, 1.0, sink);
        }
    }

    /// Completes every second still held; the run's measured part lasted `measured_s` seconds.
    pub fn finish(&mut self, measured_s: f64, sink: &mut impl FnMut(&Second)) {
        while let Some((&bin, _)) = self.pending.first_key_value() {
            let length = (measured_s - bin as f64).clamp(0.001, 1.0);
            let length = if self.pending.len() > 1 { 1.0 } else { length };
            self.complete(bin, length, sink);
        }
    }

    fn complete(&mut self, bin: u64, length: f64, sink: &mut impl FnMut(&Second)) {
        let Some((mut second, _)) = self.pending.remove(&bin) else {
            return;
        };
        second.length = length;
        sink(&second);
        add_into(&mut self.latency, Some(&second.latency));
        if let Some(service) = &mut self.service {
            add_into(service, second.service.as_ref());
        }
        self.seconds.push(SecondFigures {
            bin,
            length,
            responses: second.responses,
            errors: second.errors,
            bytes: second.bytes,
            p99_us: (!second.latency.is_empty()).then(|| second.latency.value_at_quantile(0.99)),
        });
    }
}

/// Adds `from` into `into`; both have the same bounds, so the addition cannot fail.
fn add_into(into: &mut Histogram<u64>, from: Option<&Histogram<u64>>) {
    if let Some(from) = from {
        // Same bounds on both sides: addition never needs to resize.
        into.add(from).expect("histograms share bounds");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;

    #[test]
    fn seconds_of_all_threads_add_up_and_percentiles_come_from_the_sum() {
        let (tx, rx) = channel();
        let ms = 5 * SECOND_NS;
        let mut fast = Recorder::new(0, false, ms, None, tx.clone());
        let mut slow = Recorder::new(1, false, ms, None, tx);
        // Thread 0: 99 fast responses in second 0; thread 1: one slow one in second 1.
        for i in 0..99 {
            fast.response(ms + i, ms + i, ms + i + 100_000, 200);
        }
        slow.response(ms, ms, ms + SECOND_NS + 500_000_000, 503);
        fast.tick(ms + 2 * SECOND_NS);
        fast.finish(CpuTime::default(), Duration::ZERO, 0);
        slow.finish(CpuTime::default(), Duration::ZERO, 0);

        let mut collector = Collector::new(2, false);
        let mut seen = Vec::new();
        for report in rx.try_iter() {
            collector.absorb(report, &mut |s| seen.push((s.bin, s.responses)));
        }
        collector.finish(2.5, &mut |s| seen.push((s.bin, s.responses)));
        assert_eq!(seen, vec![(0, 99), (1, 1), (2, 0)]);
        assert_eq!(collector.latency.len(), 100);
        assert_eq!(collector.tally.status, [0, 99, 0, 0, 1]);
        // The slow response is 1% of the total: p99 is fast, the maximum is slow. An average
        // of per-thread p99s would have said ~750 ms.
        assert!(collector.latency.value_at_quantile(0.99) < 200);
        assert!(collector.latency.max() > 1_400_000);
        assert_eq!(collector.seconds[1].p99_us.map(|v| v / 100_000), Some(15));
    }

    #[test]
    fn a_second_waits_for_every_thread() {
        let (tx, rx) = channel();
        let mut a = Recorder::new(0, true, 0, None, tx.clone());
        let b = Recorder::new(1, true, 0, None, tx);
        a.response(0, 10_000, 20_000, 200);
        a.tick(SECOND_NS);
        let mut collector = Collector::new(2, true);
        let mut done = 0;
        for report in rx.try_iter() {
            collector.absorb(report, &mut |_| done += 1);
        }
        assert_eq!(done, 0, "thread 1 has not passed second 0 yet");
        b.finish(CpuTime::default(), Duration::ZERO, 0);
        for report in rx.try_iter() {
            collector.absorb(report, &mut |_| done += 1);
        }
        assert_eq!(done, 1);
        let service = collector
            .service
            .as_ref()
            .expect("open loop keeps service time");
        assert_eq!(
            service.max() / 10,
            1,
            "service time is from the actual send: 10 us"
        );
        assert_eq!(
            collector.latency.max() / 10,
            2,
            "latency is from the intended send: 20 us"
        );
    }

    #[test]
    fn late_sends_are_counted_in_open_loop_only() {
        let (tx, _rx) = channel();
        let mut open = Recorder::new(0, true, 0, None, tx.clone());
        open.sent(LATE_NS + 1);
        open.sent(10);
        assert_eq!((open.tally.sent, open.tally.late), (2, 1));
        assert_eq!(open.tally.max_lag_ns, LATE_NS + 1);
        let mut closed = Recorder::new(0, false, 0, None, tx);
        closed.sent(LATE_NS + 1);
        assert_eq!((closed.tally.sent, closed.tally.late), (1, 0));
    }
}
