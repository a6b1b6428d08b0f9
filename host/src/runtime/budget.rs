//! The budgets of [`crate::config::Budgets`], enforced where the host does
//! work for a guest: its log lines (the `log` import, stdout and stderr),
//! the size of what a call hands back, and the producer import.
//!
//! The sandbox keeps a guest from reaching out; these keep it from making
//! the host itself do unbounded work. A guest logging 20,000 lines of 1 KB
//! per call would otherwise write hundreds of MB of host log per thousand
//! events, fill the disk and bury the host's own errors.

use super::metrics;
use super::tag::GuestTag;
use crate::config::Budgets;
use prometheus_client::metrics::counter::Counter;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// The longest log line the host writes for a guest: longer ones are cut
/// (the `log` import) or split (stdout and stderr), so that a guest cannot
/// make the host buffer or write one line without bound.
pub const MAX_LOG_LINE: usize = 16 * 1024;

/// How often the host reports the lines it dropped over budget.
pub const REPORT_EVERY: Duration = Duration::from_secs(10);

/// One component's log budget, shared by all its instances: a token bucket
/// of lines and one of bytes, each holding one second's worth, refilled
/// continuously. Lines that do not fit are dropped and counted; the first
/// drop is reported at once, and then a count every [`REPORT_EVERY`].
pub struct LogBudget {
    lines_per_s: f64,
    bytes_per_s: f64,
    bucket: Mutex<Bucket>,
    /// The component's `budget = "log_lines"` counter, resolved on the
    /// first drop, so that a well-behaved guest adds no series.
    hits: OnceLock<Counter>,
    /// Who to name in the reports: the tag of the instance that first went
    /// over (every instance of a component shares its name and pipeline).
    reported_as: OnceLock<GuestTag>,
}

struct Bucket {
    lines: f64,
    bytes: f64,
    refilled: Instant,
    /// Dropped since the last report.
    dropped_lines: u64,
    dropped_bytes: u64,
    /// When the last report was written; `None` before the first drop.
    reported: Option<Instant>,
}

/// What [`LogBudget::admit`] decided, with a report to write if one is due.
struct Decision {
    admit: bool,
    report: Option<Report>,
}

enum Report {
    /// The first line dropped.
    Started,
    /// Lines and bytes dropped since the last report.
    Dropped(u64, u64),
}

impl LogBudget {
    /// The log budget of a component with `budgets`.
    pub fn new(budgets: &Budgets) -> Self {
        let lines_per_s = f64::from(budgets.log_lines_per_s);
        let bytes_per_s = budgets.log_bytes_per_s as f64;
        Self {
            lines_per_s,
            bytes_per_s,
            bucket: Mutex::new(Bucket {
                lines: lines_per_s,
                bytes: bytes_per_s,
                refilled: Instant::now(),
                dropped_lines: 0,
                dropped_bytes: 0,
                reported: None,
            }),
            hits: OnceLock::new(),
            reported_as: OnceLock::new(),
        }
    }

    /// Whether the instance `tag` may write a log line of `len` bytes now.
    /// A `false` line is to be dropped; it has been counted.
    pub fn admit(&self, tag: &GuestTag, len: usize) -> bool {
        let d = self.decide(len.min(MAX_LOG_LINE), Instant::now());
        if !d.admit {
            self.hits
                .get_or_init(|| metrics::budget_hits(&tag.pipeline, &tag.component, "log_lines"))
                .inc();
        }
        if let Some(report) = d.report {
            self.report(self.reported_as.get_or_init(|| tag.clone()), report);
        }
        d.admit
    }

    fn decide(&self, len: usize, now: Instant) -> Decision {
        let mut b = self.bucket.lock().unwrap_or_else(PoisonError::into_inner);
        let elapsed = now.saturating_duration_since(b.refilled).as_secs_f64();
        b.refilled = now;
        b.lines = (b.lines + elapsed * self.lines_per_s).min(self.lines_per_s);
        b.bytes = (b.bytes + elapsed * self.bytes_per_s).min(self.bytes_per_s);
        let admit = b.lines >= 1.0 && b.bytes >= len as f64;
        if admit {
            b.lines -= 1.0;
            b.bytes -= len as f64;
        } else {
            b.dropped_lines += 1;
            b.dropped_bytes += len as u64;
        }
        let report = match b.reported {
            None if !admit => Some(Report::Started),
            Some(at) if b.dropped_lines > 0 && now.duration_since(at) >= REPORT_EVERY => {
                Some(Report::Dropped(b.dropped_lines, b.dropped_bytes))
            }
            _ => None,
        };
        if let Some(r) = &report {
            b.reported = Some(now);
            if let Report::Dropped(..) = r {
                (b.dropped_lines, b.dropped_bytes) = (0, 0);
            }
        }
        Decision { admit, report }
    }

    fn report(&self, t: &GuestTag, report: Report) {
        let (lines, bytes) = (self.lines_per_s, self.bytes_per_s);
        match report {
            Report::Started => tracing::warn!(component = %t.component, pipeline = %t.pipeline,
                "component `{}` logs more than its budget of {lines} lines and {bytes} bytes a \
                 second (budgets.log_lines_per_s, budgets.log_bytes_per_s; stdout and stderr \
                 count too): lines beyond it are dropped, and a count of them follows every \
                 {} s", t.component, REPORT_EVERY.as_secs()),
            Report::Dropped(n, b) => tracing::warn!(component = %t.component,
                pipeline = %t.pipeline, dropped_lines = n, dropped_bytes = b,
                "component `{}`: {n} log lines ({b} bytes) dropped over its log budget since \
                 the last count", t.component),
        }
    }
}

impl Drop for LogBudget {
    /// Reports what was dropped since the last count, when the component is
    /// replaced (a reload) or the host stops.
    fn drop(&mut self) {
        let b = self
            .bucket
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        let (n, bytes) = (b.dropped_lines, b.dropped_bytes);
        if n > 0 {
            if let Some(t) = self.reported_as.get() {
                self.report(t, Report::Dropped(n, bytes));
            }
        }
    }
}

/// `text` cut to [`MAX_LOG_LINE`] bytes (at a character boundary), saying
/// how much was cut.
pub fn cut_line(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= MAX_LOG_LINE {
        return text.into();
    }
    let mut end = MAX_LOG_LINE;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} … [{} more bytes cut]", &text[..end], text.len() - end).into()
}

/// What wasmtime reports when a guest hands the host more data in one
/// answer or one host call than the store's hostcall fuel allows (set to
/// `budgets.output_bytes_per_call` in `Loaded::new_store`). Its error type
/// is private, so the message is what identifies it.
const LIFT_FUEL_EXHAUSTED: &str = "fuel allocated for hostcalls has been exhausted";

/// Whether `error` is the host refusing to copy more than
/// `budgets.output_bytes_per_call` out of a guest.
pub fn is_output_over(error: &wasmtime::Error) -> bool {
    error
        .chain()
        .any(|cause| cause.to_string().contains(LIFT_FUEL_EXHAUSTED))
}

/// The message of a call that handed the host more than `budget` bytes,
/// naming the budget. `what` says what was handed over.
pub fn output_over(what: &str, budget: u64) -> String {
    format!(
        "it handed the host more than its budget of {budget} bytes of {what} in one call \
         (budgets.output_bytes_per_call); the call fails like a trap and on_failure applies"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(lines: u32, bytes: u64) -> LogBudget {
        LogBudget::new(&Budgets {
            log_lines_per_s: lines,
            log_bytes_per_s: bytes,
            ..Budgets::default()
        })
    }

    #[test]
    fn a_burst_beyond_a_second_s_worth_is_dropped_then_refilled() {
        let b = budget(10, 1 << 20);
        let t0 = Instant::now();
        let admitted = (0..100).filter(|_| b.decide(10, t0).admit).count();
        assert_eq!(admitted, 10);
        // Half a second refills five lines.
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!((0..100).filter(|_| b.decide(10, t1).admit).count(), 5);
    }

    #[test]
    fn bytes_bound_the_log_as_well_as_lines() {
        let b = budget(1000, 1000);
        let t0 = Instant::now();
        assert_eq!((0..100).filter(|_| b.decide(300, t0).admit).count(), 3);
    }

    #[test]
    fn the_first_drop_is_reported_at_once_then_a_count_per_interval() {
        let b = budget(1, 1 << 20);
        let t0 = Instant::now();
        let first = b.decide(1, t0);
        assert!(first.admit && first.report.is_none());
        let dropped = b.decide(1, t0);
        assert!(!dropped.admit && matches!(dropped.report, Some(Report::Started)));
        // The next drops wait for the interval.
        assert!(b
            .decide(1, t0 + Duration::from_secs(1) / 10)
            .report
            .is_none());
        match b.decide(1, t0 + REPORT_EVERY).report {
            Some(Report::Dropped(n, _)) => assert!(n >= 2, "{n}"),
            _ => panic!("no count after an interval"),
        }
        // Nothing dropped since: no report.
        assert!(b.decide(1, t0 + REPORT_EVERY * 3).report.is_none());
    }

    #[test]
    fn long_lines_are_cut_at_a_character_boundary() {
        let text = "é".repeat(MAX_LOG_LINE);
        let cut = cut_line(&text);
        assert!(cut.len() < MAX_LOG_LINE + 40);
        assert!(cut.ends_with(&format!("[{} more bytes cut]", text.len() - MAX_LOG_LINE)));
        assert_eq!(cut_line("short"), "short");
    }
}
