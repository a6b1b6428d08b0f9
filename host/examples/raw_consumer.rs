//! The benchmark's ceiling: a plain librdkafka consumer loop, in the same
//! group set-up as flumen, that only touches each payload (sums its bytes)
//! and commits once at the end. What flumen adds on top of this — batching,
//! the Wasm guests, the offset tracker — is what the benchmark measures.
//!
//! With COMMIT_EVERY it also commits its position (asynchronously, so the
//! loop never waits for the broker) after every COMMIT_EVERY events: the
//! baseline for what committing often costs the broker and librdkafka,
//! whoever the consumer is.
//!
//! Usage: raw_consumer BOOTSTRAP TOPIC GROUP EXPECTED_EVENTS [COMMIT_EVERY]
//! Prints one JSON line: events, bytes, seconds and CPU seconds from the
//! first event to the final commit, and its own peak RSS (read here: a parent's `wait4` would
//! report the forking parent's high-water mark when that is higher).

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::ClientConfig;
use std::time::{Duration, Instant};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (bootstrap, topic, group, expected, commit_every) = match args.as_slice() {
        [_, b, t, g, e] => (b, t, g, e, None),
        [_, b, t, g, e, every] => (b, t, g, e, Some(every.parse::<u64>()?.max(1))),
        _ => anyhow::bail!(
            "usage: raw_consumer BOOTSTRAP TOPIC GROUP EXPECTED_EVENTS [COMMIT_EVERY]"
        ),
    };
    let expected: u64 = expected.parse()?;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .create()?;
    consumer.subscribe(&[topic])?;
    let (mut events, mut bytes, mut checksum) = (0u64, 0u64, 0u64);
    let mut first: Option<(Instant, f64)> = None;
    while events < expected {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                if first.is_none() {
                    first = Some((Instant::now(), cpu_seconds()?));
                }
                let payload = m.payload().unwrap_or_default();
                // Touch every byte, so the payload is really read.
                checksum = checksum.wrapping_add(payload.iter().map(|&b| u64::from(b)).sum());
                bytes += payload.len() as u64;
                events += 1;
                if commit_every.is_some_and(|n| events % n == 0) {
                    consumer.commit_consumer_state(CommitMode::Async)?;
                }
            }
            Some(Err(e)) => eprintln!("consumer error: {e}"),
            None => {}
        }
    }
    consumer.commit_consumer_state(CommitMode::Sync)?;
    let (seconds, cpu) = match first {
        Some((at, cpu)) => (at.elapsed().as_secs_f64(), cpu_seconds()? - cpu),
        None => (0.0, 0.0),
    };
    let rss_kib = std::fs::read_to_string("/proc/self/status")?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0);
    println!(
        "{{\"events\": {events}, \"bytes\": {bytes}, \"seconds\": {seconds}, \"cpu\": {cpu}, \"checksum\": {checksum}, \"rss_kib\": {rss_kib}}}"
    );
    Ok(())
}

/// User + system CPU seconds of this process so far, from /proc/self/stat
/// (fields 14 and 15, in clock ticks of 1/100 s on Linux).
fn cpu_seconds() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<f64> {
        Ok(fields
            .get(i)
            .ok_or_else(|| anyhow::anyhow!("short /proc/self/stat"))?
            .parse::<f64>()?)
    };
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}
