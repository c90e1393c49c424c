//! HdrHistogram interval logs: `run --hlog` writes one line per second, `merge` adds the lines
//! of several logs (several generator hosts loading one server) into one distribution.
//!
//! The format is HdrHistogram's own (Java `HistogramLogWriter`, version 1.3): a header with
//! `StartTime` and `BaseTime` (the end of the warm-up), then
//! `start,length,max,base64(V2 compressed histogram)` per interval, values in microseconds and
//! the max column in milliseconds. Untagged lines hold the latency; lines tagged `service` hold
//! the service time of an open-loop run. Any HdrHistogram tool reads these files.

use crate::report::{percentile_lines, Latency};
use crate::stats::SIGNIFICANT_FIGURES;
use base64::Engine as _;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriter, IntervalLogWriterBuilder, LogEntry, Tag,
};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The tag of service-time lines.
pub const SERVICE_TAG: &str = "service";
/// Microseconds to milliseconds, for the human-readable max column.
const MAX_DIVISOR: f64 = 1000.0;

/// The writer type `run` keeps for the length of a run.
pub type Writer<'a, W> = IntervalLogWriter<'a, 'a, W, V2DeflateSerializer>;

/// Writes the header of a log whose intervals count from `start`, and returns the writer for
/// the intervals.
pub fn begin<'a, W: Write>(
    out: &'a mut W,
    serializer: &'a mut V2DeflateSerializer,
    start: SystemTime,
    what: &str,
) -> io::Result<Writer<'a, W>> {
    IntervalLogWriterBuilder::new()
        .add_comment(&format!(
            "[Logged with loadtest {}]",
            env!("CARGO_PKG_VERSION")
        ))
        .add_comment(&format!("[{what}]"))
        .add_comment("[Histogram log format version 1.3]")
        .with_start_time(start)
        .with_base_time(start)
        .begin_log_with(&mut *out, &mut *serializer)?;
    out.write_all(
        b"\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n",
    )?;
    IntervalLogWriterBuilder::new()
        .with_max_value_divisor(MAX_DIVISOR)
        .begin_log_with(out, serializer)
}

/// Appends one interval; `service` is tagged as such.
pub fn write_interval<W: Write>(
    log: &mut Writer<'_, W>,
    start_s: f64,
    length_s: f64,
    latency: &Histogram<u64>,
    service: Option<&Histogram<u64>>,
) -> io::Result<()> {
    let start = Duration::from_secs_f64(start_s.max(0.0));
    let length = Duration::from_secs_f64(length_s.max(0.0));
    let fail = |e| io::Error::other(format!("{e:?}"));
    log.write_histogram(latency, start, length, None)
        .map_err(fail)?;
    if let Some(service) = service {
        log.write_histogram(service, start, length, Tag::new(SERVICE_TAG))
            .map_err(fail)?;
    }
    Ok(())
}

/// Histograms of several logs added up.
#[derive(Debug)]
pub struct Merged {
    /// Logs read.
    pub logs: usize,
    /// Interval lines read.
    pub intervals: usize,
    /// One histogram per tag; untagged lines are under `latency`.
    pub by_tag: BTreeMap<String, Histogram<u64>>,
    /// The sum over logs of each log's untagged count divided by the span its intervals cover:
    /// the combined rate of generators that ran side by side.
    pub requests_per_s: f64,
}

/// Reads and adds up the logs at `paths`.
pub fn merge_files(paths: &[PathBuf]) -> Result<Merged, String> {
    let mut merged = Merged {
        logs: 0,
        intervals: 0,
        by_tag: BTreeMap::new(),
        requests_per_s: 0.0,
    };
    for path in paths {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        merge_one(&mut merged, path, &bytes)?;
    }
    Ok(merged)
}

fn merge_one(merged: &mut Merged, path: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut deserializer = Deserializer::new();
    let mut count = 0u64;
    let mut span: Option<(Duration, Duration)> = None;
    let mut lines = 0;
    for entry in IntervalLogIterator::new(bytes) {
        let entry = entry.map_err(|e| {
            format!(
                "{}: not an HdrHistogram interval log ({e:?})",
                path.display()
            )
        })?;
        let LogEntry::Interval(interval) = entry else {
            continue;
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(interval.encoded_histogram())
            .map_err(|e| format!("{}: bad histogram encoding: {e}", path.display()))?;
        let h: Histogram<u64> = deserializer
            .deserialize(&mut &decoded[..])
            .map_err(|e| format!("{}: bad histogram: {e:?}", path.display()))?;
        let name = interval.tag().map_or("latency", |t| t.as_str()).to_string();
        if name == "latency" {
            count += h.len();
            let (from, to) = (
                interval.start_timestamp(),
                interval.start_timestamp() + interval.duration(),
            );
            span = Some(span.map_or((from, to), |(a, b)| (a.min(from), b.max(to))));
        }
        let total = merged.by_tag.entry(name).or_insert_with(auto_histogram);
        total
            .add(&h)
            .map_err(|e| format!("{}: cannot add histogram: {e:?}", path.display()))?;
        lines += 1;
    }
    if lines == 0 {
        return Err(format!("{}: no intervals in the log", path.display()));
    }
    if let Some((from, to)) = span {
        let secs = (to - from).as_secs_f64();
        if secs > 0.0 {
            merged.requests_per_s += count as f64 / secs;
        }
    }
    merged.logs += 1;
    merged.intervals += lines;
    Ok(())
}

/// A histogram that grows to hold what other tools recorded.
fn auto_histogram() -> Histogram<u64> {
    // 3 significant figures is a valid precision.
    Histogram::new(SIGNIFICANT_FIGURES).expect("valid precision")
}

/// The JSON document of `merge --json`.
#[derive(Debug, Serialize)]
pub struct MergeReport {
    /// Always `zoo-loadtest-merge/1`.
    pub schema: &'static str,
    /// Logs read.
    pub logs: usize,
    /// Interval lines read.
    pub intervals: usize,
    /// Values in the latency histogram.
    pub requests: u64,
    /// Combined rate, see [`Merged::requests_per_s`].
    pub requests_per_s: f64,
    /// The latency distribution of all logs.
    pub latency: Option<Latency>,
    /// The service-time distribution, when the logs hold one.
    pub service_time: Option<Latency>,
}

impl MergeReport {
    /// Summarises `merged`.
    pub fn new(merged: &Merged) -> MergeReport {
        MergeReport {
            schema: "zoo-loadtest-merge/1",
            logs: merged.logs,
            intervals: merged.intervals,
            requests: merged.by_tag.get("latency").map_or(0, Histogram::len),
            requests_per_s: merged.requests_per_s,
            latency: merged.by_tag.get("latency").map(Latency::of),
            service_time: merged.by_tag.get(SERVICE_TAG).map(Latency::of),
        }
    }

    /// The terminal summary.
    pub fn summary(&self) -> String {
        let mut out = format!("Merged {} logs, {} intervals\n", self.logs, self.intervals);
        if let Some(l) = &self.latency {
            out += &percentile_lines("Latency", l);
        }
        if let Some(s) = &self.service_time {
            out += &percentile_lines("Service", s);
        }
        out += &format!("Requests: {}\n", self.requests);
        out += &format!(
            "Requests/sec: {:.2} (summed over logs)\n",
            self.requests_per_s
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::new_histogram;

    #[test]
    fn a_written_log_merges_back_to_the_same_counts() {
        let mut file = Vec::new();
        let mut serializer = V2DeflateSerializer::new();
        let mut a = new_histogram();
        let mut b = new_histogram();
        for v in 1..=100 {
            a.record(v).expect("in bounds");
            b.record(v * 1000).expect("in bounds");
        }
        {
            let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
            let mut log = begin(&mut file, &mut serializer, start, "test").expect("header");
            write_interval(&mut log, 0.0, 1.0, &a, Some(&b)).expect("line");
            write_interval(&mut log, 1.0, 0.5, &b, None).expect("line");
        }
        let text = String::from_utf8(file.clone()).expect("text");
        assert!(text.contains("#[StartTime: 1700000000.000"), "{text}");
        assert!(
            text.contains("\"StartTimestamp\",\"Interval_Length\""),
            "{text}"
        );
        assert!(
            text.contains("Tag=service,0.000,1.000,100.031,HISTFAA"),
            "{text}"
        );

        let dir = std::env::temp_dir().join(format!("loadtest-hlog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("a.hlog");
        std::fs::write(&path, &file).expect("write");
        let merged = merge_files(&[path.clone(), path]).expect("merge");
        assert_eq!((merged.logs, merged.intervals), (2, 6));
        assert_eq!(merged.by_tag["latency"].len(), 400);
        assert_eq!(merged.by_tag[SERVICE_TAG].len(), 200);
        // 200 untagged values over 1.5 s in each of two logs.
        assert!((merged.requests_per_s - 2.0 * 200.0 / 1.5).abs() < 1e-6);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn garbage_is_refused_with_the_file_name() {
        let dir = std::env::temp_dir().join(format!("loadtest-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("bad.hlog");
        std::fs::write(&path, b"not a log\n").expect("write");
        let err = merge_files(&[path]).expect_err("garbage");
        assert!(err.contains("bad.hlog"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
