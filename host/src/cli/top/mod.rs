//! `flumen top`: a live terminal view of a running flumen — per-pipeline and
//! per-component rates, call latency and lag — read from its admin
//! endpoint's `/metrics`, so it works against any flumen it can reach and
//! needs nothing from the process but what Prometheus would scrape.

mod exposition;

pub use exposition::{parse, Sample};

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Why a scrape failed.
#[derive(Debug, thiserror::Error)]
pub enum TopError {
    /// The endpoint could not be reached or answered badly.
    #[error(
        "cannot read http://{addr}/metrics: {reason} (is flumen running with `[admin] listen = \"{addr}\"`? \
         point `flumen top --admin ADDR` at its admin endpoint)"
    )]
    Scrape {
        /// The admin address.
        addr: String,
        /// Why.
        reason: String,
    },
}

/// The samples of one scrape and when it was taken.
#[derive(Debug, Clone)]
pub struct Scrape {
    at: Instant,
    samples: Vec<Sample>,
}

/// Reads `/metrics` from the admin endpoint at `addr`.
pub fn scrape(addr: &str) -> Result<Scrape, TopError> {
    let fail = |reason: String| TopError::Scrape {
        addr: addr.to_owned(),
        reason,
    };
    let mut stream = TcpStream::connect(addr).map_err(|e| fail(e.to_string()))?;
    let timeout = Some(Duration::from_secs(5));
    stream
        .set_read_timeout(timeout)
        .and_then(|()| stream.set_write_timeout(timeout))
        .map_err(|e| fail(e.to_string()))?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| fail(e.to_string()))?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| fail(e.to_string()))?;
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .ok_or_else(|| fail("no HTTP answer".into()))?;
    if head.split_whitespace().nth(1) != Some("200") {
        return Err(fail(head.lines().next().unwrap_or("").to_owned()));
    }
    Ok(Scrape {
        at: Instant::now(),
        samples: parse(body),
    })
}

impl Scrape {
    /// Sum of metric `name` over the samples whose labels include `want`.
    fn sum(&self, name: &str, want: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.matches(name, want))
            .map(|s| s.value)
            .sum()
    }

    /// The distinct values of label `key` over metric `name`'s samples
    /// (each with the matching value of `with`, if given).
    fn keys(&self, name: &str, key: &str, with: &[&str]) -> Vec<Vec<String>> {
        let mut out: Vec<Vec<String>> = self
            .samples
            .iter()
            .filter(|s| s.name == name)
            .filter_map(|s| {
                std::iter::once(key)
                    .chain(with.iter().copied())
                    .map(|k| s.labels.get(k).cloned())
                    .collect()
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// Rate per second of a counter between two scrapes.
fn rate(prev: &Scrape, now: &Scrape, name: &str, want: &[(&str, &str)]) -> f64 {
    let dt = now.at.duration_since(prev.at).as_secs_f64();
    if dt <= 0.0 {
        return 0.0;
    }
    (now.sum(name, want) - prev.sum(name, want)).max(0.0) / dt
}

/// The mean, in milliseconds, of what counter `sum` adds up per increment
/// of counter `count` between two scrapes (a call's mean latency, a call's
/// mean wait); 0 when `count` did not move.
fn mean_ms(prev: &Scrape, now: &Scrape, sum: &str, count: &str, want: &[(&str, &str)]) -> f64 {
    let n = now.sum(count, want) - prev.sum(count, want);
    if n > 0.0 {
        (now.sum(sum, want) - prev.sum(sum, want)) / n * 1000.0
    } else {
        0.0
    }
}

/// The labels of one partition's samples, from a `keys(…, "pipeline",
/// &["topic", "partition"])` key.
fn partition_labels(key: &[String]) -> [(&'static str, &str); 3] {
    [
        ("pipeline", key[0].as_str()),
        ("topic", key[1].as_str()),
        ("partition", key[2].as_str()),
    ]
}

/// One frame of the view: what changed between `prev` and `now`.
pub fn render(addr: &str, prev: &Scrape, now: &Scrape) -> String {
    let mut out = String::new();
    let secs = now.at.duration_since(prev.at).as_secs_f64();
    let _ = writeln!(out, "flumen top  {addr}  rates over the last {secs:.1} s");
    let _ = writeln!(
        out,
        "\n{:<20} {:>12} {:>12} {:>12} {:>10} {:>8} {:>9}",
        "PIPELINE", "consumed/s", "dropped/s", "finalized/s", "lag", "blocked", "retries/s"
    );
    for key in now.keys("flumen_events_consumed_total", "pipeline", &[]) {
        let p = [("pipeline", key[0].as_str())];
        let _ = writeln!(
            out,
            "{:<20} {:>12.0} {:>12.0} {:>12.0} {:>10.0} {:>8.0} {:>9.1}",
            key[0],
            rate(prev, now, "flumen_events_consumed_total", &p),
            rate(prev, now, "flumen_events_dropped_total", &p),
            rate(prev, now, "flumen_events_finalized_total", &p),
            now.sum("flumen_consumer_lag", &p),
            now.sum("flumen_partitions_blocked", &p),
            rate(prev, now, "flumen_retries_total", &p),
        );
    }
    let _ = writeln!(
        out,
        "\n{:<28} {:<11} {:>10} {:>10} {:>9} {:>8} {:>9} {:>7} {:>6}",
        "COMPONENT (pipeline)",
        "kind",
        "in/s",
        "out/s",
        "MB/s in",
        "calls/s",
        "avg ms",
        "errors",
        "traps"
    );
    for key in now.keys(
        "flumen_guest_events_in_total",
        "pipeline",
        &["component", "kind"],
    ) {
        let c = [
            ("pipeline", key[0].as_str()),
            ("component", key[1].as_str()),
        ];
        let avg_ms = mean_ms(
            prev,
            now,
            "flumen_guest_call_duration_seconds_sum",
            "flumen_guest_call_duration_seconds_count",
            &c,
        );
        let outcome =
            |o: &'static str| now.sum("flumen_guest_calls_total", &[c[0], c[1], ("outcome", o)]);
        let _ = writeln!(
            out,
            "{:<28} {:<11} {:>10.0} {:>10.0} {:>9.1} {:>8.1} {:>9.2} {:>7.0} {:>6.0}",
            format!("{} ({})", key[1], key[0]),
            key[2],
            rate(prev, now, "flumen_guest_events_in_total", &c),
            rate(prev, now, "flumen_guest_events_out_total", &c),
            rate(prev, now, "flumen_guest_bytes_in_total", &c) / 1e6,
            rate(prev, now, "flumen_guest_call_duration_seconds_count", &c),
            avg_ms,
            outcome("error") + outcome("contract") + outcome("start_failed"),
            outcome("trap") + outcome("over_budget"),
        );
    }
    let sinks = now.keys("flumen_sink_window", "pipeline", &["sink"]);
    if !sinks.is_empty() {
        let _ = writeln!(
            out,
            "\n{:<28} {:>10} {:>8} {:>14}",
            "SINK (pipeline)", "in flight", "window", "batch wait ms"
        );
        for key in sinks {
            let s = [("pipeline", key[0].as_str()), ("sink", key[1].as_str())];
            let wait_ms = mean_ms(
                prev,
                now,
                "flumen_sink_batch_wait_seconds_total",
                "flumen_sink_calls_formed_total",
                &s,
            );
            let _ = writeln!(
                out,
                "{:<28} {:>10.0} {:>8.0} {:>14.1}",
                format!("{} ({})", key[1], key[0]),
                now.sum("flumen_sink_calls_in_flight", &s),
                now.sum("flumen_sink_window", &s),
                wait_ms,
            );
        }
    }
    let partitions = now.keys("flumen_high_watermark", "pipeline", &["topic", "partition"]);
    if !partitions.is_empty() {
        let _ = writeln!(
            out,
            "\n{:<20} {:<24} {:>9} {:>14} {:>14} {:>10}",
            "PIPELINE", "topic", "partition", "committed", "end", "lag"
        );
        for key in partitions {
            let p = partition_labels(&key);
            let _ = writeln!(
                out,
                "{:<20} {:<24} {:>9} {:>14.0} {:>14.0} {:>10.0}",
                key[0],
                key[1],
                key[2],
                now.sum("flumen_committed_offset", &p),
                now.sum("flumen_high_watermark", &p),
                now.sum("flumen_consumer_lag", &p),
            );
        }
    }
    for key in now.keys(
        "flumen_partition_unreadable_offset",
        "pipeline",
        &["topic", "partition"],
    ) {
        let p = partition_labels(&key);
        let _ = writeln!(
            out,
            "\nUNREADABLE {}[{}] (pipeline {}) stopped at offset {:.0}: a batch there cannot be \
             decoded; see the log",
            key[1],
            key[2],
            key[0],
            now.sum("flumen_partition_unreadable_offset", &p),
        );
    }
    out
}

/// Runs the view: a frame every `every`, forever, or one frame if `once`.
pub fn run(addr: &str, every: Duration, once: bool) -> Result<(), TopError> {
    let mut prev = scrape(addr)?;
    loop {
        std::thread::sleep(every);
        let now = scrape(addr)?;
        let frame = render(addr, &prev, &now);
        if once {
            print!("{frame}");
            return Ok(());
        }
        // Clear the screen and go home, then draw.
        print!("\x1b[2J\x1b[H{frame}");
        let _ = std::io::stdout().flush();
        prev = now;
    }
}

/// Runs `flumen top`.
pub fn command(admin: &str, interval: f64, once: bool) -> anyhow::Result<ExitCode> {
    let every = Duration::try_from_secs_f64(interval)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| anyhow::anyhow!("--interval must be a positive number of seconds"))?;
    run(admin, every, once)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrape_at(at: Instant, text: &str) -> Scrape {
        Scrape {
            at,
            samples: parse(text),
        }
    }

    #[test]
    fn a_frame_shows_rates_latency_and_lag() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(2);
        let before = "flumen_events_consumed_total{pipeline=\"p\"} 100\n\
            flumen_guest_events_in_total{pipeline=\"p\",component=\"f\",kind=\"interceptor\"} 100\n\
            flumen_guest_call_duration_seconds_count{pipeline=\"p\",component=\"f\",kind=\"interceptor\"} 1\n\
            flumen_guest_call_duration_seconds_sum{pipeline=\"p\",component=\"f\",kind=\"interceptor\"} 0.001\n";
        let after = "flumen_events_consumed_total{pipeline=\"p\"} 2100\n\
            flumen_guest_events_in_total{pipeline=\"p\",component=\"f\",kind=\"interceptor\"} 2100\n\
            flumen_guest_call_duration_seconds_count{pipeline=\"p\",component=\"f\",kind=\"interceptor\"} 5\n\
            flumen_guest_call_duration_seconds_sum{pipeline=\"p\",component=\"f\",kind=\"interceptor\"} 0.009\n\
            flumen_high_watermark{pipeline=\"p\",topic=\"t\",partition=\"0\"} 2500\n\
            flumen_committed_offset{pipeline=\"p\",topic=\"t\",partition=\"0\"} 2100\n\
            flumen_consumer_lag{pipeline=\"p\",topic=\"t\",partition=\"0\"} 400\n\
            flumen_partition_unreadable_offset{pipeline=\"p\",topic=\"t\",partition=\"1\"} 77\n\
            flumen_sink_calls_in_flight{pipeline=\"p\",sink=\"api\"} 12\n\
            flumen_sink_window{pipeline=\"p\",sink=\"api\"} 16\n\
            flumen_sink_calls_formed_total{pipeline=\"p\",sink=\"api\"} 10\n\
            flumen_sink_batch_wait_seconds_total{pipeline=\"p\",sink=\"api\"} 0.5\n";
        let frame = render("h:1", &scrape_at(t0, before), &scrape_at(t1, after));
        let pipeline = frame.lines().find(|l| l.starts_with("p ")).expect(&frame);
        assert!(
            pipeline.contains(" 1000 ") && pipeline.contains(" 400 "),
            "{frame}"
        );
        let component = frame
            .lines()
            .find(|l| l.starts_with("f (p)"))
            .expect(&frame);
        // 4 calls took 8 ms: 2 ms each.
        assert!(component.contains(" 2.00 "), "{frame}");
        assert!(frame.contains("2100") && frame.contains("2500"), "{frame}");
        // 10 calls waited 0.5 s in all: 50 ms each.
        let sink = frame
            .lines()
            .find(|l| l.starts_with("api (p)"))
            .expect(&frame);
        assert!(sink.contains(" 12 ") && sink.contains(" 16 "), "{frame}");
        assert!(sink.contains(" 50.0"), "{frame}");
        assert!(
            frame.contains("UNREADABLE t[1] (pipeline p) stopped at offset 77"),
            "{frame}"
        );
    }
}
